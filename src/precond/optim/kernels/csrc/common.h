// Shared pieces of the fused CPU kernels of the precond update rules (one file per rule in this
// folder, all compiled into one extension by precond/optim/kernels/_build.py).
//
// Each rule is ONE op over all the tensors of a param group: one OpenMP parallel region
// (at::parallel_for over the concatenated element range, so 2 threads split 149 tensors of very
// different sizes evenly), auto-vectorised inner loops (-O3 -fno-math-errno; gcc vectorises sqrt
// only without errno).
//
// Storage: float32, float64, bfloat16; math in float32 (float64 for float64 storage), bfloat16
// stored back with round-to-nearest-even (as Tensor.copy_ does in the loop path).
//
// The contract with Python (precond/optim/functional/_rule.py):
// * every per-step scalar comes from the host in double, one row per tensor of the rule's
//   coefficient record (`coeffs`, shape (n, K), rows may be broadcast with stride 0), computed by
//   the same function the reference loop uses; or, for a batched optimizer's stacked runs, one
//   row per run (`coeffs` of shape (n, R, K): tensor j's elements are R equal rows, the r-th
//   stepped with coeffs[j][r], e.g. its own lr); a rule declares the record's fields once with
//   PRECOND_COEFFICIENTS and reads them by name (`k.beta2`), and the Python loader checks the
//   field list (op `coefficient_fields`) against the record's `_fields` when it loads;
// * the shared pre-step (maximize, L2 or decoupled decay) comes as three explicit arguments,
//   PRECOND_PRE_STEP_ARGS, applied by pre_step() below: the mode is never read off a value.
// Nothing here depends on the step count, so the extension is compiled once.
//
// A tensor the kernel does not handle (another device or dtype, a layout not shared by its
// state) is left untouched and its index returned: the caller runs the reference loop on it
// (AdaGradNorm, whose step size is a norm over every tensor, then changes nothing at all).
//
// The element formulas follow, operation for operation, the reference loops in
// src/precond/optim/functional/<rule>.py; torch's own fused Adam
// (aten/src/ATen/native/FusedAdam.cpp) was read for the structure, not copied.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace precond_kernels {

using at::Tensor;
using at::TensorList;

constexpr int64_t kGrain = 1 << 15;  // elements below which one thread does the work

// ---- storage types ------------------------------------------------------------------------
struct bf16 {
  uint16_t x;
};

template <typename T>
struct Acc {
  using type = T;
};
template <>
struct Acc<bf16> {
  using type = float;
};

static inline float ld(const float* p, int64_t i) { return p[i]; }
static inline double ld(const double* p, int64_t i) { return p[i]; }
static inline float ld(const bf16* p, int64_t i) {
  uint32_t u = static_cast<uint32_t>(p[i].x) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
static inline void st(float* p, int64_t i, float v) { p[i] = v; }
static inline void st(double* p, int64_t i, double v) { p[i] = v; }
static inline void st(bf16* p, int64_t i, float v) {
  // round to nearest even, NaN -> quiet NaN (c10::BFloat16's rule)
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  p[i].x = static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : r);
}

// NaN-propagating max/clamp, as torch.maximum and Tensor.clamp
template <typename C>
static inline C nan_max(C a, C b) { return (b > a || b != b) ? b : a; }
template <typename C>
static inline C clamp_lo(C x, C lo) { return x < lo ? lo : x; }
template <typename C>
static inline C clamp_hi(C x, C hi) { return x > hi ? hi : x; }
// torch.lerp's formula (aten/src/ATen/native/Lerp.h): exact at both ends
template <typename C>
static inline C lerp(C self, C end, C w) {
  return (w < C(0.5)) ? self + w * (end - self) : end - (end - self) * (C(1) - w);
}

enum Kind : int { kF32 = 0, kF64 = 1, kBF16 = 2, kNone = -1 };

static inline Kind kind_of(const Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return kF32;
    case at::kDouble: return kF64;
    case at::kBFloat16: return kBF16;
    default: return kNone;
  }
}

// ---- the plan: which tensors the kernel takes, and the global element range ---------------
struct Plan {
  std::vector<int64_t> idx;     // indices into the lists of the tensors taken
  std::vector<int64_t> offset;  // prefix sums of their numel (size idx.size() + 1)
  std::vector<Kind> kind;
  std::vector<std::vector<void*>> ptr;  // ptr[list][j]; null pointers for an empty (unused) list
  std::vector<int64_t> skipped;
};

Plan make_plan(const std::vector<TensorList>& lists);

// body(j, lo, hi): update elements [lo, hi) of the j-th tensor taken
template <typename Body>
static void run_plan(const Plan& plan, const Body& body) {
  const int64_t total = plan.offset.back();
  if (total == 0) return;
  const int64_t m = static_cast<int64_t>(plan.idx.size());
  at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    int64_t j = std::upper_bound(plan.offset.begin(), plan.offset.end(), begin) - plan.offset.begin() - 1;
    for (; j < m && plan.offset[j] < end; ++j) {
      const int64_t lo = std::max(begin, plan.offset[j]) - plan.offset[j];
      const int64_t hi = std::min(end, plan.offset[j + 1]) - plan.offset[j];
      if (hi > lo) body(j, lo, hi);
    }
  });
}

template <typename T>
static T* P(const Plan& plan, size_t list, int64_t j) {
  return static_cast<T*>(plan.ptr[list][j]);
}

// Adam's, AdaBound's and AGD's second moment (functional/_common.py ema_square_):
// v = beta2 v + (1-beta2) x^2, and with AMS vmax = max(vmax, v) stored at i; returns what the
// denominator reads (vmax or v).
template <bool AMS, typename T, typename C>
static inline C ema_square(C& v, C x, C beta2, C one_m_b2, T* __restrict__ vm_, int64_t i) {
  v = v * beta2 + one_m_b2 * (x * x);
  if (!AMS) return v;
  const C den = nan_max(ld(vm_, i), v);
  st(vm_, i, den);
  return den;
}

// ---- the coefficient record --------------------------------------------------------------
// PRECOND_COEFFICIENTS(Name, "rule", FIELDS) with `#define FIELDS(X) X(a) X(b) ...` declares
// `struct Name { double a; double b; ... }` (one row of the table, read by name) and registers
// the field names under "rule" for the op coefficient_fields.
bool register_fields(const char* rule, std::vector<std::string> names);

#define PRECOND_DOUBLE_FIELD(name) double name;
#define PRECOND_FIELD_NAME(name) #name,
#define PRECOND_COEFFICIENTS(Name, rule, FIELDS)                                                    \
  struct Name {                                                                                     \
    FIELDS(PRECOND_DOUBLE_FIELD)                                                                    \
  };                                                                                                \
  static_assert(std::is_trivially_copyable<Name>::value && sizeof(Name) % sizeof(double) == 0, ""); \
  [[maybe_unused]] static const bool Name##_registered = register_fields(rule, {FIELDS(PRECOND_FIELD_NAME)});

// The row of tensor i (and run r of a 3-D table), after checking the table's shape against the record.
template <typename K>
static void check_coeffs(const Tensor& coeffs, int64_t n, const char* op) {
  constexpr int64_t k = sizeof(K) / sizeof(double);
  const int64_t d = coeffs.dim();
  TORCH_CHECK(coeffs.scalar_type() == at::kDouble && coeffs.device().is_cpu() && (d == 2 || d == 3) &&
                  coeffs.size(0) == n && coeffs.size(d - 1) == k && coeffs.stride(d - 1) == 1 &&
                  (d == 2 || coeffs.size(1) >= 1),
              op, ": coeffs must be a CPU float64 tensor of shape (", n, ", ", k, ") or (", n, ", runs, ", k, ")");
}
template <typename K>
static K coeff_row(const Tensor& coeffs, int64_t i, int64_t r = 0) {
  K k;
  const int64_t at = i * coeffs.stride(0) + (coeffs.dim() == 3 ? r * coeffs.stride(1) : 0);
  std::memcpy(&k, coeffs.const_data_ptr<double>() + at, sizeof k);
  return k;
}

// ---- the shared pre-step (precond/optim/functional/_rule.py PreStep) ---------------------
// kDecay is the decoupled and the fixed mode alike: p *= factor (1 - lr*wd or 1 - wd).
enum WeightDecay : int { kNoDecay = 0, kL2 = 1, kDecay = 2 };

#define PRECOND_PRE_STEP_ARGS "str weight_decay, float weight_decay_factor, bool maximize"

struct PreStep {
  WeightDecay mode;
  double factor;
  bool maximize;
};

// the mode named by Python ("none", "l2", "decoupled", "fixed"); `allowed`: the modes the rule has
PreStep pre_step_of(const std::string& weight_decay, double factor, bool maximize, const char* op,
                    std::initializer_list<WeightDecay> allowed = {kNoDecay, kL2, kDecay});

// g = -g under maximize; then g += factor p (L2) or p *= factor (decoupled or fixed decay)
template <int WD, typename C>
static inline void pre_step(C& p, C& g, C sign, C factor) {
  g = sign * g;
  if (WD == kL2) g = g + factor * p;
  if (WD == kDecay) p = p * factor;
}

// ---- one generic dispatch of the runtime options to template arguments --------------------
// dispatch(kind, f, opt...) calls f(Type<T>{}, std::integral_constant<decltype(opt), opt>{}...)
// with T the storage type of `kind` and each option (a bool, or an enum with kChoices values)
// as a compile-time constant: one instantiation of f per combination, no hand-written ladder.
template <typename T>
struct Type {
  using type = T;
};

template <typename V>
constexpr int kChoices = 2;  // bool
template <>
constexpr int kChoices<WeightDecay> = 3;

template <typename F>
static inline void with_static(const F& f) {
  f();
}
template <typename F, typename V, typename... Rest>
static inline void with_static(const F& f, V v, Rest... rest);

template <typename F, typename V, int... I, typename... Rest>
static inline void with_choice(const F& f, V v, std::integer_sequence<int, I...>, Rest... rest) {
  (void)((static_cast<int>(v) == I &&
          (with_static([&](auto... more) { f(std::integral_constant<V, static_cast<V>(I)>{}, more...); }, rest...),
           true)) ||
         ...);
}
template <typename F, typename V, typename... Rest>
static inline void with_static(const F& f, V v, Rest... rest) {
  with_choice(f, v, std::make_integer_sequence<int, kChoices<V>>{}, rest...);
}

template <typename F, typename... Options>
static inline void dispatch(Kind kind, const F& f, Options... options) {
  auto run = [&](auto type) { with_static([&](auto... o) { f(type, o...); }, options...); };
  switch (kind) {
    case kF32: run(Type<float>{}); break;
    case kF64: run(Type<double>{}); break;
    case kBF16: run(Type<bf16>{}); break;
    default: break;
  }
}

// The pointers of tensor j of a plan, list by list: ptrs[l] is list l's (null for an unused list).
template <typename T>
struct Ptrs {
  const Plan& plan;
  int64_t j;
  T* operator[](size_t list) const { return P<T>(plan, list, j); }
};

// One rule's step over a plan: for every chunk [lo, hi) of every tensor j taken,
// range(Ptrs<T>{plan, j}, lo, hi, row of j, pre-step mode, option...) with T the storage type and
// the pre-step mode and each option compile-time constants (dispatch). With a 3-D table (n, R, K)
// a chunk is cut where tensor j's runs meet (each of numel / R elements), and each piece takes its
// run's row. Returns the skipped indices.
template <typename K, typename Range, typename... Options>
static std::vector<int64_t> step_over(const Plan& plan, const Tensor& coeffs, const PreStep& pre, const Range& range,
                                      Options... options) {
  const int64_t runs = coeffs.dim() == 3 ? coeffs.size(1) : 1;
  for (size_t j = 0; runs > 1 && j + 1 < plan.offset.size(); ++j) {
    TORCH_CHECK((plan.offset[j + 1] - plan.offset[j]) % runs == 0, "precond kernels: a tensor of ",
                plan.offset[j + 1] - plan.offset[j], " elements cannot be cut into ", runs, " runs (coeffs' dim 1)");
  }
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const int64_t len = (plan.offset[j + 1] - plan.offset[j]) / runs;  // elements of one run
    for (int64_t a = lo; a < hi;) {
      const int64_t r = runs == 1 ? 0 : a / len, b = runs == 1 ? hi : std::min(hi, (r + 1) * len);
      const K k = coeff_row<K>(coeffs, plan.idx[j], r);
      dispatch(
          plan.kind[j], [&](auto t, auto... o) { range(Ptrs<typename decltype(t)::type>{plan, j}, a, b, k, o...); },
          pre.mode, options...);
      a = b;
    }
  });
  return plan.skipped;
}

// The compile-time value of a dispatched option (an integral_constant).
#define PRECOND_STATIC(option) decltype(option)::value

// The schema's head for a rule's op: the tensor lists, then `Tensor coeffs` and the pre-step.
#define PRECOND_STEP_ARGS(lists) lists ", Tensor coeffs, " PRECOND_PRE_STEP_ARGS

// Registers precond_kernels::name as the CPU kernel of the op torch.ops.precond.name (at global scope).
#define PRECOND_OP(name, schema)                                    \
  TORCH_LIBRARY_FRAGMENT(precond, m) { m.def(#name "(" schema); } \
  TORCH_LIBRARY_IMPL(precond, CPU, m) { m.impl(#name, &precond_kernels::name); }

}  // namespace precond_kernels

// Fused CPU kernels of the precond update rules: ONE op per rule over all the tensors of a
// param group, one OpenMP parallel region (at::parallel_for over the concatenated element
// range, so 2 threads split 149 tensors of very different sizes evenly), auto-vectorised
// inner loops (-O3 -fno-math-errno; gcc vectorises sqrt only without errno).
//
// Storage: float32, float64, bfloat16; math in float32 (float64 for float64 storage),
// bfloat16 stored back with round-to-nearest-even (as Tensor.copy_ does in the loop path).
// Every per-step scalar (bias corrections, floors, bounds) comes from the host in double,
// one row per tensor (`coeffs`, shape (n, K), rows may be broadcast with stride 0),
// computed by the same Python helpers the reference loop uses
// (precond.optim.functional.*_coefficients). Nothing here depends on the step count, so the
// extension is compiled once.
//
// A tensor the kernel does not handle (another device or dtype, a layout not shared by its
// state) is left untouched and its index returned: the caller runs the reference loop on it
// (AdaGradNorm, whose step size is a norm over every tensor, then changes nothing at all).
//
// The element formulas follow, operation for operation, the reference loops in
// src/precond/optim/functional/{agd,adam,sgd,adagrad,rmsprop,adabound,sophia,gauss_newton,
// adagrad_norm}.py; torch's own fused Adam (aten/src/ATen/native/FusedAdam.cpp) was read for the
// structure, not copied.

#include <torch/library.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/isfinite.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

static Kind kind_of(const Tensor& t) {
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
  std::vector<std::vector<void*>> ptr;  // ptr[list][j]
  std::vector<int64_t> skipped;
};

static Plan make_plan(const std::vector<TensorList>& lists) {
  const TensorList& params = lists[0];
  const int64_t n = static_cast<int64_t>(params.size());
  std::vector<TensorList> used;
  for (const auto& l : lists) {
    if (l.empty()) continue;
    TORCH_CHECK(static_cast<int64_t>(l.size()) == n, "precond kernels: tensor lists of different lengths (",
                l.size(), " vs ", n, ")");
    used.push_back(l);
  }
  Plan plan;
  plan.offset.push_back(0);
  plan.ptr.resize(used.size());
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& p = params[i];
    Kind k = p.defined() ? kind_of(p) : kNone;
    bool ok = k != kNone && p.device().is_cpu() && p.is_non_overlapping_and_dense();
    for (size_t l = 1; ok && l < used.size(); ++l) {
      const Tensor& t = used[l][i];
      ok = t.defined() && t.device().is_cpu() && t.scalar_type() == p.scalar_type() && t.sizes() == p.sizes() &&
           t.strides() == p.strides() && t.is_non_overlapping_and_dense();
    }
    if (!ok) {
      plan.skipped.push_back(i);
      continue;
    }
    plan.idx.push_back(i);
    plan.kind.push_back(k);
    plan.offset.push_back(plan.offset.back() + p.numel());
    for (size_t l = 0; l < used.size(); ++l) plan.ptr[l].push_back(used[l][i].data_ptr());
  }
  // lists that were empty get null pointers so that ptr[l] lines up with `lists`
  std::vector<std::vector<void*>> full(lists.size());
  size_t u = 0;
  for (size_t l = 0; l < lists.size(); ++l) {
    if (lists[l].empty()) {
      full[l].assign(plan.idx.size(), nullptr);
    } else {
      full[l] = std::move(plan.ptr[u++]);
    }
  }
  plan.ptr = std::move(full);
  return plan;
}

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

static const double* coeff_row(const Tensor& coeffs, int64_t i) {
  return coeffs.const_data_ptr<double>() + i * coeffs.stride(0);
}

static void check_coeffs(const Tensor& coeffs, int64_t n, int64_t k, const char* rule) {
  TORCH_CHECK(coeffs.scalar_type() == at::kDouble && coeffs.device().is_cpu() && coeffs.dim() == 2 &&
                  coeffs.size(0) == n && coeffs.size(1) == k && coeffs.stride(1) == 1,
              rule, ": coeffs must be a CPU float64 tensor of shape (", n, ", ", k, ")");
}

template <typename T>
static T* P(const Plan& plan, size_t list, int64_t j) {
  return static_cast<T*>(plan.ptr[list][j]);
}

// dispatch the storage type of tensor j
template <template <typename> class F, typename... Args>
static void by_kind(Kind k, Args&&... args) {
  switch (k) {
    case kF32: F<float>::run(std::forward<Args>(args)...); break;
    case kF64: F<double>::run(std::forward<Args>(args)...); break;
    case kBF16: F<bf16>::run(std::forward<Args>(args)...); break;
    default: break;
  }
}

// weight-decay modes shared by the rules
enum Wd : int { kNoWd = 0, kDecoupled = 1, kL2 = 2 };

// =================================================================================== AGD ===
// coeffs row (functional/agd.py AGDCoefficients):
//   0 beta1, 1 beta2, 2 c_m, 3 c_g, 4 floor, 5 eta, 6 decay, 7 l2, 8 win_z, 9 win_tau
// s = c_m m_{t-1} + c_g g;  m = b1 m + (1-b1) g;  b = b2 b + (1-b2) s^2;
// u = m / max(sqrt(b or bmax), floor) clamped to +-clip;  p -= eta u   (or the Win update)
template <typename T, int WD, bool AMS, bool WIN>
static void agd_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, T* __restrict__ b_,
                      T* __restrict__ bm_, T* __restrict__ z_, int64_t lo, int64_t hi, const double* k, double clip,
                      bool maximize) {
  using C = typename Acc<T>::type;
  const C beta1 = C(k[0]), beta2 = C(k[1]), c_m = C(k[2]), c_g = C(k[3]), floor_ = C(k[4]);
  const C decay = C(k[6]), l2 = C(k[7]), win_z = C(k[8]), win_tau = C(k[9]);
  const C one_m_b1 = C(1.0 - k[0]), one_m_b2 = C(1.0 - k[1]);
  const C neg_eta = C(-k[5]);
  const C win_u = C(-2.0 * k[9] * k[5]), win_zc = C(2.0 * k[9]);
  const C hi_clip = C(clip), lo_clip = C(-clip);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = sign * ld(g_, i), m = ld(m_, i), b = ld(b_, i);
    if (WD == kL2) g = g + l2 * p;
    if (WD == kDecoupled) p = p * decay;
    const C s = g * c_g + c_m * m;
    m = m * beta1 + one_m_b1 * g;
    b = b * beta2 + one_m_b2 * (s * s);
    C den = b;
    if (AMS) {
      den = nan_max(ld(bm_, i), b);
      st(bm_, i, den);
    }
    const C d = clamp_lo(C(std::sqrt(den)), floor_);
    const C u = clamp_hi(clamp_lo(m / d, lo_clip), hi_clip);
    if (WIN) {
      const C z = (ld(z_, i) + neg_eta * u) * win_z;
      p = p * win_tau + win_u * u + win_zc * z;
      st(z_, i, z);
    } else {
      p = p + neg_eta * u;
    }
    st(p_, i, p);
    st(m_, i, m);
    st(b_, i, b);
  }
}

template <typename T>
struct AgdRun {
  template <int WD, bool AMS>
  static void win(bool w, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, double clip, bool mx) {
    auto f = w ? &agd_range<T, WD, AMS, true> : &agd_range<T, WD, AMS, false>;
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), P<T>(pl, 3, j), P<T>(pl, 4, j), P<T>(pl, 5, j), lo, hi, k, clip,
      mx);
  }
  template <int WD>
  static void ams(bool a, bool w, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, double clip,
                  bool mx) {
    if (a) win<WD, true>(w, pl, j, lo, hi, k, clip, mx);
    else win<WD, false>(w, pl, j, lo, hi, k, clip, mx);
  }
  static void run(int wd, bool a, bool w, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k,
                  double clip, bool mx) {
    if (wd == kL2) ams<kL2>(a, w, pl, j, lo, hi, k, clip, mx);
    else if (wd == kDecoupled) ams<kDecoupled>(a, w, pl, j, lo, hi, k, clip, mx);
    else ams<kNoWd>(a, w, pl, j, lo, hi, k, clip, mx);
  }
};

std::vector<int64_t> agd_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                              TensorList max_exp_avg_sqs, TensorList zs, const Tensor& coeffs, bool amsgrad, bool win,
                              double clip, bool maximize) {
  check_coeffs(coeffs, params.size(), 10, "agd_step");
  TORCH_CHECK(!amsgrad || max_exp_avg_sqs.size() == params.size(), "agd_step: amsgrad needs max_exp_avg_sqs");
  TORCH_CHECK(!win || zs.size() == params.size(), "agd_step: win needs zs");
  Plan plan = make_plan({params, grads, exp_avgs, exp_avg_sqs, amsgrad ? max_exp_avg_sqs : TensorList(),
                         win ? zs : TensorList()});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    const int wd = (k[7] != 0.0) ? kL2 : (k[6] != 1.0 ? kDecoupled : kNoWd);
    by_kind<AgdRun>(plan.kind[j], wd, amsgrad, win, plan, j, lo, hi, k, clip, maximize);
  });
  return plan.skipped;
}

// ================================================================================== Adam ===
// coeffs row: 0 lerp weight (1-beta1), 1 beta2, 2 (1-beta2), 3 eps, 4 decay, 5 l2,
//             6 -lr/bc1, 7 sqrt(bc2), 8 bc2
// m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2; (vmax = max(vmax, v));
// p += (-lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)   or   m / sqrt(v/bc2 + eps)
template <typename T, int WD, bool AMS, bool EPS_IN>
static void adam_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, T* __restrict__ v_,
                       T* __restrict__ vm_, int64_t lo, int64_t hi, const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C w = C(k[0]), beta2 = C(k[1]), one_m_b2 = C(k[2]), eps = C(k[3]), decay = C(k[4]), l2 = C(k[5]);
  const C neg_step = C(k[6]), sqrt_bc2 = C(k[7]), bc2 = C(k[8]);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = sign * ld(g_, i), m = ld(m_, i), v = ld(v_, i);
    if (WD == kL2) g = g + l2 * p;
    if (WD == kDecoupled) p = p * decay;
    m = lerp(m, g, w);
    v = v * beta2 + one_m_b2 * (g * g);
    C den = v;
    if (AMS) {
      den = nan_max(ld(vm_, i), v);
      st(vm_, i, den);
    }
    const C denom = EPS_IN ? C(std::sqrt(den / bc2 + eps)) : C(std::sqrt(den)) / sqrt_bc2 + eps;
    p = p + neg_step * (m / denom);
    st(p_, i, p);
    st(m_, i, m);
    st(v_, i, v);
  }
}

template <typename T>
struct AdamRun {
  template <int WD, bool AMS>
  static void eps(bool e, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    auto f = e ? &adam_range<T, WD, AMS, true> : &adam_range<T, WD, AMS, false>;
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), P<T>(pl, 3, j), P<T>(pl, 4, j), lo, hi, k, mx);
  }
  template <int WD>
  static void ams(bool a, bool e, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    if (a) eps<WD, true>(e, pl, j, lo, hi, k, mx);
    else eps<WD, false>(e, pl, j, lo, hi, k, mx);
  }
  static void run(int wd, bool a, bool e, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k,
                  bool mx) {
    if (wd == kL2) ams<kL2>(a, e, pl, j, lo, hi, k, mx);
    else if (wd == kDecoupled) ams<kDecoupled>(a, e, pl, j, lo, hi, k, mx);
    else ams<kNoWd>(a, e, pl, j, lo, hi, k, mx);
  }
};

std::vector<int64_t> adam_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                               TensorList max_exp_avg_sqs, const Tensor& coeffs, bool amsgrad, bool eps_inside_sqrt,
                               bool maximize) {
  check_coeffs(coeffs, params.size(), 9, "adam_step");
  TORCH_CHECK(!amsgrad || max_exp_avg_sqs.size() == params.size(), "adam_step: amsgrad needs max_exp_avg_sqs");
  Plan plan = make_plan({params, grads, exp_avgs, exp_avg_sqs, amsgrad ? max_exp_avg_sqs : TensorList()});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    const int wd = (k[5] != 0.0) ? kL2 : (k[4] != 1.0 ? kDecoupled : kNoWd);
    by_kind<AdamRun>(plan.kind[j], wd, amsgrad, eps_inside_sqrt, plan, j, lo, hi, k, maximize);
  });
  return plan.skipped;
}

// =================================================================================== SGD ===
// coeffs row: 0 -lr, 1 momentum, 2 (1-dampening), 3 first step (1/0), 4 decay, 5 l2, 6 (1-momentum)
// style 0 heavy ball: v = g (first step) or mu v + (1-damp) g; d = nesterov ? g + mu v : v
// style 1 EMA:        v = mu v + (1-mu) g;                    d = nesterov ? mu v + (1-mu) g : v
// p += -lr d
template <typename T, int WD, int STYLE, bool NESTEROV>
static void sgd_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ v_, int64_t lo, int64_t hi,
                      const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C neg_lr = C(k[0]), mu = C(k[1]), one_m_damp = C(k[2]), decay = C(k[4]), l2 = C(k[5]), one_m_mu = C(k[6]);
  const bool first = k[3] != 0.0;
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = sign * ld(g_, i);
    if (WD == kL2) g = g + l2 * p;
    if (WD == kDecoupled) p = p * decay;
    C d = g;
    if (STYLE == 0) {  // heavy ball
      C v = first ? g : ld(v_, i) * mu + one_m_damp * g;
      st(v_, i, v);
      d = NESTEROV ? g + mu * v : v;
    } else if (STYLE == 1) {  // EMA
      C v = ld(v_, i) * mu + one_m_mu * g;
      st(v_, i, v);
      d = NESTEROV ? v * mu + one_m_mu * g : v;
    }
    p = p + neg_lr * d;
    st(p_, i, p);
  }
}

template <typename T>
struct SgdRun {
  template <int WD, int STYLE>
  static void nes(bool n, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    auto f = n ? &sgd_range<T, WD, STYLE, true> : &sgd_range<T, WD, STYLE, false>;
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), lo, hi, k, mx);
  }
  template <int WD>
  static void style(int s, bool n, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    if (s == 0) nes<WD, 0>(n, pl, j, lo, hi, k, mx);
    else if (s == 1) nes<WD, 1>(n, pl, j, lo, hi, k, mx);
    else nes<WD, 2>(false, pl, j, lo, hi, k, mx);
  }
  static void run(int wd, int s, bool n, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k,
                  bool mx) {
    if (wd == kL2) style<kL2>(s, n, pl, j, lo, hi, k, mx);
    else if (wd == kDecoupled) style<kDecoupled>(s, n, pl, j, lo, hi, k, mx);
    else style<kNoWd>(s, n, pl, j, lo, hi, k, mx);
  }
};

// style: 0 heavy ball, 1 EMA, 2 no momentum (momentum_buffers empty)
std::vector<int64_t> sgd_step(TensorList params, TensorList grads, TensorList momentum_buffers, const Tensor& coeffs,
                              int64_t style, bool nesterov, bool maximize) {
  check_coeffs(coeffs, params.size(), 7, "sgd_step");
  TORCH_CHECK(style == 2 || momentum_buffers.size() == params.size(), "sgd_step: momentum needs momentum_buffers");
  Plan plan = make_plan({params, grads, style == 2 ? TensorList() : momentum_buffers});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    const int wd = (k[5] != 0.0) ? kL2 : (k[4] != 1.0 ? kDecoupled : kNoWd);
    by_kind<SgdRun>(plan.kind[j], wd, static_cast<int>(style), nesterov, plan, j, lo, hi, k, maximize);
  });
  return plan.skipped;
}

// =============================================================================== AdaGrad ===
// coeffs row: 0 -clr, 1 l2, 2 eps.   s += g^2;  p += -clr * g / (sqrt(s) + eps)  (or sqrt(s + eps))
template <typename T, bool L2, bool EPS_IN>
static void adagrad_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ s_, int64_t lo, int64_t hi,
                          const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C neg_clr = C(k[0]), l2 = C(k[1]), eps = C(k[2]);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = sign * ld(g_, i);
    if (L2) g = g + l2 * p;
    const C s = ld(s_, i) + g * g;
    const C std_ = EPS_IN ? C(std::sqrt(s + eps)) : C(std::sqrt(s)) + eps;
    p = p + neg_clr * (g / std_);
    st(s_, i, s);
    st(p_, i, p);
  }
}

template <typename T>
struct AdagradRun {
  static void run(bool l2, bool e, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    auto f = l2 ? (e ? &adagrad_range<T, true, true> : &adagrad_range<T, true, false>)
                : (e ? &adagrad_range<T, false, true> : &adagrad_range<T, false, false>);
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), lo, hi, k, mx);
  }
};

std::vector<int64_t> adagrad_step(TensorList params, TensorList grads, TensorList state_sums, const Tensor& coeffs,
                                  bool eps_inside_sqrt, bool maximize) {
  check_coeffs(coeffs, params.size(), 3, "adagrad_step");
  Plan plan = make_plan({params, grads, state_sums});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    by_kind<AdagradRun>(plan.kind[j], k[1] != 0.0, eps_inside_sqrt, plan, j, lo, hi, k, maximize);
  });
  return plan.skipped;
}

// =============================================================================== RMSProp ===
// coeffs row: 0 -lr, 1 alpha, 2 (1-alpha), 3 eps, 4 l2, 5 momentum
// s = a s + (1-a) g^2; (centered: gavg = lerp(gavg, g, 1-a), var = s - gavg^2);
// denom = sqrt(var) + eps (or sqrt(var + eps)); momentum: u = mu u + g/denom, p += -lr u;
// else p += -lr g/denom
template <typename T, bool L2, bool CENTERED, bool MOM, bool EPS_IN>
static void rmsprop_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ s_, T* __restrict__ a_,
                          T* __restrict__ u_, int64_t lo, int64_t hi, const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C neg_lr = C(k[0]), alpha = C(k[1]), one_m_alpha = C(k[2]), eps = C(k[3]), l2 = C(k[4]), mu = C(k[5]);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = sign * ld(g_, i);
    if (L2) g = g + l2 * p;
    const C s = ld(s_, i) * alpha + one_m_alpha * (g * g);
    st(s_, i, s);
    C var = s;
    if (CENTERED) {
      const C a = lerp(ld(a_, i), g, one_m_alpha);
      st(a_, i, a);
      var = s - a * a;
    }
    const C denom = EPS_IN ? C(std::sqrt(var + eps)) : C(std::sqrt(var)) + eps;
    if (MOM) {
      const C u = ld(u_, i) * mu + g / denom;
      st(u_, i, u);
      p = p + neg_lr * u;
    } else {
      p = p + neg_lr * (g / denom);
    }
    st(p_, i, p);
  }
}

template <typename T>
struct RmspropRun {
  template <bool L2, bool CEN, bool MOM>
  static void e(bool ein, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    auto f = ein ? &rmsprop_range<T, L2, CEN, MOM, true> : &rmsprop_range<T, L2, CEN, MOM, false>;
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), P<T>(pl, 3, j), P<T>(pl, 4, j), lo, hi, k, mx);
  }
  template <bool L2, bool CEN>
  static void mom(bool m, bool ein, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    if (m) e<L2, CEN, true>(ein, pl, j, lo, hi, k, mx);
    else e<L2, CEN, false>(ein, pl, j, lo, hi, k, mx);
  }
  template <bool L2>
  static void cen(bool c, bool m, bool ein, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k,
                  bool mx) {
    if (c) mom<L2, true>(m, ein, pl, j, lo, hi, k, mx);
    else mom<L2, false>(m, ein, pl, j, lo, hi, k, mx);
  }
  static void run(bool l2, bool c, bool m, bool ein, const Plan& pl, int64_t j, int64_t lo, int64_t hi,
                  const double* k, bool mx) {
    if (l2) cen<true>(c, m, ein, pl, j, lo, hi, k, mx);
    else cen<false>(c, m, ein, pl, j, lo, hi, k, mx);
  }
};

std::vector<int64_t> rmsprop_step(TensorList params, TensorList grads, TensorList square_avgs, TensorList grad_avgs,
                                  TensorList momentum_buffers, const Tensor& coeffs, bool centered, bool momentum,
                                  bool eps_inside_sqrt, bool maximize) {
  check_coeffs(coeffs, params.size(), 6, "rmsprop_step");
  TORCH_CHECK(!centered || grad_avgs.size() == params.size(), "rmsprop_step: centered needs grad_avgs");
  TORCH_CHECK(!momentum || momentum_buffers.size() == params.size(), "rmsprop_step: momentum needs buffers");
  Plan plan = make_plan({params, grads, square_avgs, centered ? grad_avgs : TensorList(),
                         momentum ? momentum_buffers : TensorList()});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    by_kind<RmspropRun>(plan.kind[j], k[4] != 0.0, centered, momentum, eps_inside_sqrt, plan, j, lo, hi, k, maximize);
  });
  return plan.skipped;
}

// ============================================================================== AdaBound ===
// coeffs row: 0 beta1, 1 (1-beta1), 2 beta2, 3 (1-beta2), 4 eps, 5 l2, 6 step_size, 7 lower, 8 upper
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; (vmax); rate = clamp(step_size/(sqrt(v)+eps), lower, upper);
// p -= rate m
template <typename T, bool L2, bool AMS>
static void adabound_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, T* __restrict__ v_,
                           T* __restrict__ vm_, int64_t lo, int64_t hi, const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C beta1 = C(k[0]), one_m_b1 = C(k[1]), beta2 = C(k[2]), one_m_b2 = C(k[3]), eps = C(k[4]), l2 = C(k[5]);
  const C step_size = C(k[6]), lower = C(k[7]), upper = C(k[8]);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = sign * ld(g_, i), m = ld(m_, i), v = ld(v_, i);
    if (L2) g = g + l2 * p;
    m = m * beta1 + one_m_b1 * g;
    v = v * beta2 + one_m_b2 * (g * g);
    C den = v;
    if (AMS) {
      den = nan_max(ld(vm_, i), v);
      st(vm_, i, den);
    }
    const C rate = clamp_hi(clamp_lo(step_size / (C(std::sqrt(den)) + eps), lower), upper);
    p = p - rate * m;
    st(p_, i, p);
    st(m_, i, m);
    st(v_, i, v);
  }
}

template <typename T>
struct AdaboundRun {
  static void run(bool l2, bool a, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    auto f = l2 ? (a ? &adabound_range<T, true, true> : &adabound_range<T, true, false>)
                : (a ? &adabound_range<T, false, true> : &adabound_range<T, false, false>);
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), P<T>(pl, 3, j), P<T>(pl, 4, j), lo, hi, k, mx);
  }
};

std::vector<int64_t> adabound_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                                   TensorList max_exp_avg_sqs, const Tensor& coeffs, bool amsbound, bool maximize) {
  check_coeffs(coeffs, params.size(), 9, "adabound_step");
  TORCH_CHECK(!amsbound || max_exp_avg_sqs.size() == params.size(), "adabound_step: amsbound needs max_exp_avg_sqs");
  Plan plan = make_plan({params, grads, exp_avgs, exp_avg_sqs, amsbound ? max_exp_avg_sqs : TensorList()});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    by_kind<AdaboundRun>(plan.kind[j], k[5] != 0.0, amsbound, plan, j, lo, hi, k, maximize);
  });
  return plan.skipped;
}

// ================================================================================ Sophia ===
// coeffs row (functional/sophia.py SophiaCoefficients): 0 decay (1 - lr wd), 1 beta1, 2 rho*bs, 3 eps, 4 -lr
// p *= decay; m = b1 m + (1-b1) g; r = min(|m| / (max(rho bs h, 0) + eps), 1); p += (-lr sign(m)) r
// reads p, g, m, h; writes p, m (6 floats per parameter)
template <typename T>
static void sophia_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, const T* __restrict__ h_,
                         int64_t lo, int64_t hi, const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C decay = C(k[0]), beta1 = C(k[1]), one_m_b1 = C(1.0 - k[1]), rho_bs = C(k[2]), eps = C(k[3]);
  const C neg_lr = C(k[4]);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    const C g = sign * ld(g_, i);
    C p = ld(p_, i) * decay;
    const C m = ld(m_, i) * beta1 + one_m_b1 * g;
    const C ratio = clamp_hi(C(std::abs(m)) / (clamp_lo(rho_bs * ld(h_, i), C(0)) + eps), C(1));
    const C sgn = C(m > C(0)) - C(m < C(0));  // torch.sign: -1, 0, 1 (0 for NaN)
    p = p + (neg_lr * sgn) * ratio;
    st(p_, i, p);
    st(m_, i, m);
  }
}

template <typename T>
struct SophiaRun {
  static void run(const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    sophia_range<T>(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), P<T>(pl, 3, j), lo, hi, k, mx);
  }
};

std::vector<int64_t> sophia_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList hessians,
                                 const Tensor& coeffs, bool maximize) {
  check_coeffs(coeffs, params.size(), 5, "sophia_step");
  TORCH_CHECK(exp_avgs.size() == params.size() && hessians.size() == params.size(),
              "sophia_step: one exp_avg and one hessian per parameter");
  Plan plan = make_plan({params, grads, exp_avgs, hessians});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    by_kind<SophiaRun>(plan.kind[j], plan, j, lo, hi, coeff_row(coeffs, plan.idx[j]), maximize);
  });
  return plan.skipped;
}

// ======================================================================= GaussNewtonDiag ===
// coeffs row (functional/gauss_newton.py GaussNewtonCoefficients):
//   0 decay (1 - lr wd), 1 beta1 (momentum), 2 bc1 = 1 - beta1^t, 3 bc2 = 1 - beta2^k (1 when beta2 = 0),
//   4 damping, 5 -lr
// p *= decay; u = g, or m = b1 m + (1-b1) g and u = m / bc1; x = |h / bc2| + damping;
// p += (-lr d) u with d = 1/x (power -1) or 1/sqrt(x) (power -1/2; torch's pow(x, -0.5) is this rsqrt),
// d = 0 where x = 0 (damping 0 and h 0: no step, never 0 * inf)
// reads p, g, (m,) h; writes p (, m): 4 floats per parameter, 6 with momentum
template <typename T, bool MOM, bool RSQRT>
static void gauss_newton_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_,
                               const T* __restrict__ h_, int64_t lo, int64_t hi, const double* k, bool maximize) {
  using C = typename Acc<T>::type;
  const C decay = C(k[0]), beta1 = C(k[1]), one_m_b1 = C(1.0 - k[1]), bc1 = C(k[2]), bc2 = C(k[3]);
  const C damping = C(k[4]), neg_lr = C(k[5]);
  const C sign = maximize ? C(-1) : C(1);
  for (int64_t i = lo; i < hi; ++i) {
    const C g = sign * ld(g_, i);
    C p = ld(p_, i) * decay;
    C u = g;
    if (MOM) {
      const C m = ld(m_, i) * beta1 + one_m_b1 * g;
      st(m_, i, m);
      u = m / bc1;
    }
    const C x = C(std::abs(ld(h_, i) / bc2)) + damping;
    const C d = x == C(0) ? C(0) : RSQRT ? C(1) / C(std::sqrt(x)) : C(1) / x;
    p = p + (neg_lr * d) * u;
    st(p_, i, p);
  }
}

template <typename T>
struct GaussNewtonRun {
  static void run(bool mom, bool rsqrt, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, bool mx) {
    auto f = mom ? (rsqrt ? &gauss_newton_range<T, true, true> : &gauss_newton_range<T, true, false>)
                 : (rsqrt ? &gauss_newton_range<T, false, true> : &gauss_newton_range<T, false, false>);
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), P<T>(pl, 2, j), P<T>(pl, 3, j), lo, hi, k, mx);
  }
};

// power: -1 or -0.5; momentum: whether exp_avgs are used (beta1 > 0)
std::vector<int64_t> gauss_newton_diag_step(TensorList params, TensorList grads, TensorList exp_avgs,
                                            TensorList curvatures, const Tensor& coeffs, double power, bool momentum,
                                            bool maximize) {
  check_coeffs(coeffs, params.size(), 6, "gauss_newton_diag_step");
  TORCH_CHECK(power == -1.0 || power == -0.5, "gauss_newton_diag_step: power must be -1 or -0.5, got ", power);
  TORCH_CHECK(!momentum || exp_avgs.size() == params.size(), "gauss_newton_diag_step: momentum needs exp_avgs");
  TORCH_CHECK(curvatures.size() == params.size(), "gauss_newton_diag_step: one curvature per parameter");
  const bool rsqrt = power == -0.5;
  Plan plan = make_plan({params, grads, momentum ? exp_avgs : TensorList(), curvatures});
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    by_kind<GaussNewtonRun>(plan.kind[j], momentum, rsqrt, plan, j, lo, hi, coeff_row(coeffs, plan.idx[j]),
                            maximize);
  });
  return plan.skipped;
}

// =========================================================================== AdaGradNorm ===
// coeffs row (one per tensor, from its param group): 0 sign (-1 under maximize), 1 l2 (weight decay), 2 lr, 3 eps
// u = sign g + l2 p (stored type: bfloat16 rounds it, as the loop's g.add(p) in bfloat16);
// acc += sum over ALL tensors of u^2 (double); b = sqrt(acc); p += (-lr / (b + eps)) u
// Pass 1 reduces in double over fixed blocks of the concatenated range (block partials summed in
// order afterwards), so the result does not depend on the number of threads; pass 2 updates.
// All or nothing: if the plan skips any tensor, nothing is changed and the skipped indices are
// returned (the caller runs the reference loop on the whole scope, whose norm needs every tensor).
// reads g (and p with weight decay) in pass 1, p and g in pass 2, writes p: 4 floats per parameter
// (5 with weight decay).
constexpr int64_t kSumBlock = 1 << 14;

static inline float storage_round(const float*, float v) { return v; }
static inline double storage_round(const double*, double v) { return v; }
static inline float storage_round(const bf16*, float v) {
  bf16 t;
  st(&t, 0, v);
  return ld(&t, 0);
}

template <typename T, bool L2>
static inline typename Acc<T>::type norm_grad(const T* g_, const T* p_, int64_t i, typename Acc<T>::type sign,
                                              typename Acc<T>::type l2) {
  using C = typename Acc<T>::type;
  C g = sign * ld(g_, i);
  if (L2) g = storage_round(g_, g + l2 * ld(p_, i));
  return g;
}

template <typename T, bool L2>
static double sumsq_range(const T* __restrict__ g_, const T* __restrict__ p_, int64_t lo, int64_t hi,
                          const double* k) {
  using C = typename Acc<T>::type;
  const C sign = C(k[0]), l2 = C(k[1]);
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // independent partial sums: vectorisable, fixed order
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8) {
    for (int u = 0; u < 8; ++u) {
      const double x = double(norm_grad<T, L2>(g_, p_, i + u, sign, l2));
      a[u] += x * x;
    }
  }
  for (int u = 0; i < hi; ++i, ++u) {
    const double x = double(norm_grad<T, L2>(g_, p_, i, sign, l2));
    a[u] += x * x;
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

template <typename T, bool L2>
static void adagrad_norm_range(T* __restrict__ p_, const T* __restrict__ g_, int64_t lo, int64_t hi,
                               const double* k, double scale) {
  using C = typename Acc<T>::type;
  const C sign = C(k[0]), l2 = C(k[1]), s = C(scale);
  for (int64_t i = lo; i < hi; ++i) {
    const C u = norm_grad<T, L2>(g_, p_, i, sign, l2);
    st(p_, i, C(ld(p_, i) + s * u));
  }
}

template <typename T>
struct SumsqRun {
  static void run(double& out, const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k) {
    auto f = k[1] != 0.0 ? &sumsq_range<T, true> : &sumsq_range<T, false>;
    out = f(P<T>(pl, 1, j), P<T>(pl, 0, j), lo, hi, k);
  }
};

template <typename T>
struct AdagradNormRun {
  static void run(const Plan& pl, int64_t j, int64_t lo, int64_t hi, const double* k, double scale) {
    auto f = k[1] != 0.0 ? &adagrad_norm_range<T, true> : &adagrad_norm_range<T, false>;
    f(P<T>(pl, 0, j), P<T>(pl, 1, j), lo, hi, k, scale);
  }
};

std::vector<int64_t> adagrad_norm_step(TensorList params, TensorList grads, const Tensor& coeffs,
                                       const Tensor& accumulator) {
  check_coeffs(coeffs, params.size(), 4, "adagrad_norm_step");
  TORCH_CHECK(accumulator.scalar_type() == at::kDouble && accumulator.device().is_cpu() && accumulator.numel() == 1,
              "adagrad_norm_step: accumulator must be a one-element CPU float64 tensor");
  Plan plan = make_plan({params, grads});
  if (!plan.skipped.empty()) return plan.skipped;
  const int64_t total = plan.offset.back();
  const int64_t m = static_cast<int64_t>(plan.idx.size());
  const int64_t nblocks = (total + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(nblocks, 0.0);
  at::parallel_for(0, nblocks, std::max<int64_t>(1, kGrain / kSumBlock), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * kSumBlock, end = std::min(total, begin + kSumBlock);
      int64_t j = std::upper_bound(plan.offset.begin(), plan.offset.end(), begin) - plan.offset.begin() - 1;
      double s = 0.0;
      for (; j < m && plan.offset[j] < end; ++j) {
        const int64_t lo = std::max(begin, plan.offset[j]) - plan.offset[j];
        const int64_t hi = std::min(end, plan.offset[j + 1]) - plan.offset[j];
        if (hi <= lo) continue;
        double piece = 0.0;
        by_kind<SumsqRun>(plan.kind[j], piece, plan, j, lo, hi, coeff_row(coeffs, plan.idx[j]));
        s += piece;
      }
      partial[b] = s;
    }
  });
  double sq = 0.0;
  for (double x : partial) sq += x;
  double* acc = accumulator.data_ptr<double>();
  *acc += sq;
  const double b = std::sqrt(*acc);
  std::vector<double> scale(m);
  for (int64_t j = 0; j < m; ++j) {
    const double* k = coeff_row(coeffs, plan.idx[j]);
    scale[j] = -k[2] / (b + k[3]);
  }
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    by_kind<AdagradNormRun>(plan.kind[j], plan, j, lo, hi, coeff_row(coeffs, plan.idx[j]), scale[j]);
  });
  return plan.skipped;
}

// ============================================================================ all_finite ===
// Read-only scan: a float is non-finite iff its exponent bits are all ones. Blocks of 65536
// elements, an integer OR-reduction per block (vectorised), a shared flag to stop early.
template <typename U>
static bool block_bad(const U* x, int64_t lo, int64_t hi, U mask) {
  U bad = 0;
  for (int64_t i = lo; i < hi; ++i) bad |= ((x[i] & mask) == mask);
  return bad != 0;
}

// Four interleaved streams per thread: a single read stream per core leaves memory
// bandwidth unused (too few misses in flight); the update kernels read 3-4 streams.
template <typename U>
static bool block_bad4(const U* x, int64_t lo, int64_t hi, U mask) {
  const int64_t q = (hi - lo) / 4;
  if (q < 1024) return block_bad(x, lo, hi, mask);
  const U* a = x + lo;
  const U* b = a + q;
  const U* c = b + q;
  const U* d = c + q;
  U bad = 0;
  for (int64_t i = 0; i < q; ++i) {
    bad |= ((a[i] & mask) == mask) | ((b[i] & mask) == mask) | ((c[i] & mask) == mask) | ((d[i] & mask) == mask);
  }
  return bad != 0 || block_bad(x, lo + 4 * q, hi, mask);
}

static bool scan(const void* data, int elem, int64_t lo, int64_t hi) {
  switch (elem) {
    case 2: return block_bad4(static_cast<const uint16_t*>(data), lo, hi, uint16_t(0x7F80));  // bf16
    case 3: return block_bad4(static_cast<const uint16_t*>(data), lo, hi, uint16_t(0x7C00));  // fp16
    case 4: return block_bad4(static_cast<const uint32_t*>(data), lo, hi, uint32_t(0x7F800000u));
    case 8: return block_bad4(static_cast<const uint64_t*>(data), lo, hi, uint64_t(0x7FF0000000000000ull));
    default: return false;
  }
}

// Every element of every CPU tensor finite? Tensors of other dtypes/layouts are checked with
// at::isfinite (integer tensors are finite by definition).
bool all_finite(TensorList tensors) {
  std::vector<const void*> data;
  std::vector<int> elem;
  std::vector<int64_t> offset{0};
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    TORCH_CHECK(t.device().is_cpu(), "precond::all_finite: CPU tensors only");
    int e = 0;
    switch (t.scalar_type()) {
      case at::kBFloat16: e = 2; break;
      case at::kHalf: e = 3; break;
      case at::kFloat: e = 4; break;
      case at::kDouble: e = 8; break;
      default: e = 0;
    }
    if (!at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type())) continue;
    if (e == 0 || !t.is_non_overlapping_and_dense()) {
      if (!at::isfinite(t).all().item<bool>()) return false;
      continue;
    }
    data.push_back(t.const_data_ptr());
    elem.push_back(e);
    offset.push_back(offset.back() + t.numel());
  }
  const int64_t total = offset.back();
  if (total == 0) return true;
  std::atomic<bool> bad{false};
  const int64_t m = static_cast<int64_t>(data.size());
  constexpr int64_t kBlock = 1 << 16;
  at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    int64_t j = std::upper_bound(offset.begin(), offset.end(), begin) - offset.begin() - 1;
    for (; j < m && offset[j] < end; ++j) {
      const int64_t lo = std::max(begin, offset[j]) - offset[j];
      const int64_t hi = std::min(end, offset[j + 1]) - offset[j];
      for (int64_t b = lo; b < hi; b += kBlock) {
        if (bad.load(std::memory_order_relaxed)) return;
        if (scan(data[j], elem[j], b, std::min(hi, b + kBlock))) {
          bad.store(true, std::memory_order_relaxed);
          return;
        }
      }
    }
  });
  return !bad.load();
}

}  // namespace precond_kernels

TORCH_LIBRARY(precond, m) {
  m.def(
      "agd_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
      "Tensor(d!)[] max_exp_avg_sqs, Tensor(e!)[] zs, Tensor coeffs, bool amsgrad, bool win, float clip, "
      "bool maximize) -> int[]");
  m.def(
      "adam_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
      "Tensor(d!)[] max_exp_avg_sqs, Tensor coeffs, bool amsgrad, bool eps_inside_sqrt, bool maximize) -> int[]");
  m.def(
      "sgd_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, Tensor coeffs, int style, "
      "bool nesterov, bool maximize) -> int[]");
  m.def(
      "adagrad_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] state_sums, Tensor coeffs, "
      "bool eps_inside_sqrt, bool maximize) -> int[]");
  m.def(
      "rmsprop_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] square_avgs, Tensor(c!)[] grad_avgs, "
      "Tensor(d!)[] momentum_buffers, Tensor coeffs, bool centered, bool momentum, bool eps_inside_sqrt, "
      "bool maximize) -> int[]");
  m.def(
      "adabound_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
      "Tensor(d!)[] max_exp_avg_sqs, Tensor coeffs, bool amsbound, bool maximize) -> int[]");
  m.def(
      "sophia_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor[] hessians, Tensor coeffs, "
      "bool maximize) -> int[]");
  m.def(
      "gauss_newton_diag_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor[] curvatures, "
      "Tensor coeffs, float power, bool momentum, bool maximize) -> int[]");
  m.def("adagrad_norm_step(Tensor(a!)[] params, Tensor[] grads, Tensor coeffs, Tensor(b!) accumulator) -> int[]");
  m.def("all_finite(Tensor[] tensors) -> bool");
}

TORCH_LIBRARY_IMPL(precond, CPU, m) {
  m.impl("agd_step", &precond_kernels::agd_step);
  m.impl("adam_step", &precond_kernels::adam_step);
  m.impl("sgd_step", &precond_kernels::sgd_step);
  m.impl("adagrad_step", &precond_kernels::adagrad_step);
  m.impl("rmsprop_step", &precond_kernels::rmsprop_step);
  m.impl("adabound_step", &precond_kernels::adabound_step);
  m.impl("sophia_step", &precond_kernels::sophia_step);
  m.impl("gauss_newton_diag_step", &precond_kernels::gauss_newton_diag_step);
  m.impl("adagrad_norm_step", &precond_kernels::adagrad_norm_step);
  m.impl("all_finite", &precond_kernels::all_finite);
}

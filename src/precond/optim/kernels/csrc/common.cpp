// The shared part of the extension (common.h): the plan, the coefficient-field registry and its
// op, the pre-step's modes, and the non-finite check all_finite.
#include "common.h"

#include <ATen/ops/isfinite.h>

#include <atomic>
#include <map>

namespace precond_kernels {

Plan make_plan(const std::vector<TensorList>& lists) {
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

static std::map<std::string, std::vector<std::string>>& field_registry() {
  static std::map<std::string, std::vector<std::string>> registry;  // filled before main (static init)
  return registry;
}

bool register_fields(const char* rule, std::vector<std::string> names) {
  field_registry()[rule] = std::move(names);
  return true;
}

// The field names of the coefficient record the kernel of `rule` reads, in row order.
std::vector<std::string> coefficient_fields(const std::string& rule) {
  auto it = field_registry().find(rule);
  TORCH_CHECK(it != field_registry().end(), "precond kernels: no coefficient record for rule '", rule, "'");
  return it->second;
}

PreStep pre_step_of(const std::string& weight_decay, double factor, bool maximize, const char* op,
                    std::initializer_list<WeightDecay> allowed) {
  WeightDecay mode;
  if (weight_decay == "none") {
    mode = kNoDecay;
  } else if (weight_decay == "l2") {
    mode = kL2;
  } else if (weight_decay == "decoupled" || weight_decay == "fixed") {
    mode = kDecay;
  } else {
    TORCH_CHECK(false, op, ": weight_decay must be 'none', 'l2', 'decoupled' or 'fixed', got '", weight_decay, "'");
  }
  TORCH_CHECK(std::find(allowed.begin(), allowed.end(), mode) != allowed.end(), op, ": no weight_decay='",
              weight_decay, "' in this rule");
  return PreStep{mode, factor, maximize};
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

// The rules' ops are defined by their own files (TORCH_LIBRARY_FRAGMENT).
TORCH_LIBRARY(precond, m) {
  m.def("all_finite(Tensor[] tensors) -> bool");
  m.def("coefficient_fields(str rule) -> str[]", &precond_kernels::coefficient_fields);
}

TORCH_LIBRARY_IMPL(precond, CPU, m) { m.impl("all_finite", &precond_kernels::all_finite); }

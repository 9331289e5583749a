// AdaGrad-Norm (precond/optim/functional/adagrad_norm.py), one call for a whole scope:
// u = pre-step(g) (stored type: bfloat16 rounds an L2-decayed u, as the loop's g.add(p) in bfloat16);
// acc += sum over ALL tensors of u^2 (double); b = sqrt(acc); p += (-lr / (b + eps)) u
// Pass 1 reduces in double over fixed blocks of the concatenated range (block partials summed in
// order afterwards), so the result does not depend on the number of threads; pass 2 updates.
// All or nothing: if the plan skips any tensor, nothing is changed and the skipped indices are
// returned (the caller runs the reference loop on the whole scope, whose norm needs every tensor).
// reads g (and p with weight decay) in pass 1, p and g in pass 2, writes p: 4 floats per parameter
// (5 with weight decay). Each tensor has its group's row and pre-step (the pre-step lists).
#include "common.h"

namespace precond_kernels {

// AdaGradNormCoefficients of functional/adagrad_norm.py, field for field
#define ADAGRAD_NORM_FIELDS(X) X(lr) X(eps)
PRECOND_COEFFICIENTS(AdaGradNormCoefficients, "adagrad_norm", ADAGRAD_NORM_FIELDS)

constexpr int64_t kSumBlock = 1 << 14;

static inline float storage_round(const float*, float v) { return v; }
static inline double storage_round(const double*, double v) { return v; }
static inline float storage_round(const bf16*, float v) {
  bf16 t;
  st(&t, 0, v);
  return ld(&t, 0);
}

// the effective gradient u of element i (the pre-step; an L2 sum rounded to the stored type)
template <typename T, int WD>
static inline typename Acc<T>::type norm_grad(const T* g_, const T* p_, int64_t i, typename Acc<T>::type sign,
                                              typename Acc<T>::type factor) {
  using C = typename Acc<T>::type;
  C g = ld(g_, i), p = WD == kL2 ? ld(p_, i) : C(0);
  pre_step<WD>(p, g, sign, factor);
  return WD == kL2 ? storage_round(g_, g) : g;
}

template <typename T, int WD>
static double sumsq_range(const T* __restrict__ g_, const T* __restrict__ p_, int64_t lo, int64_t hi,
                          const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // independent partial sums: vectorisable, fixed order
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8) {
    for (int u = 0; u < 8; ++u) {
      const double x = double(norm_grad<T, WD>(g_, p_, i + u, sign, factor));
      a[u] += x * x;
    }
  }
  for (int u = 0; i < hi; ++i, ++u) {
    const double x = double(norm_grad<T, WD>(g_, p_, i, sign, factor));
    a[u] += x * x;
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

template <typename T, int WD>
static void adagrad_norm_range(T* __restrict__ p_, const T* __restrict__ g_, int64_t lo, int64_t hi,
                               const PreStep& pre, double scale) {
  using C = typename Acc<T>::type;
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor), s = C(scale);
  for (int64_t i = lo; i < hi; ++i) {
    const C u = norm_grad<T, WD>(g_, p_, i, sign, factor);
    st(p_, i, C(ld(p_, i) + s * u));
  }
}

std::vector<int64_t> adagrad_norm_step(TensorList params, TensorList grads, const Tensor& coeffs,
                                       std::vector<std::string> weight_decay, std::vector<double> weight_decay_factor,
                                       c10::List<bool> maximize, const Tensor& accumulator) {
  const int64_t n = static_cast<int64_t>(params.size());
  check_coeffs<AdaGradNormCoefficients>(coeffs, n, "adagrad_norm_step");
  TORCH_CHECK(coeffs.dim() == 2, "adagrad_norm_step: coeffs must have one row per tensor (its step size is a norm over all of them)");
  TORCH_CHECK(static_cast<int64_t>(weight_decay.size()) == n && static_cast<int64_t>(weight_decay_factor.size()) == n &&
                  static_cast<int64_t>(maximize.size()) == n,
              "adagrad_norm_step: one pre-step per tensor");
  TORCH_CHECK(accumulator.scalar_type() == at::kDouble && accumulator.device().is_cpu() && accumulator.numel() == 1,
              "adagrad_norm_step: accumulator must be a one-element CPU float64 tensor");
  std::vector<PreStep> pres;
  for (int64_t i = 0; i < n; ++i) {
    pres.push_back(pre_step_of(weight_decay[i], weight_decay_factor[i], maximize[i], "adagrad_norm_step", {kNoDecay, kL2}));
  }
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
        const PreStep& pre = pres[plan.idx[j]];
        dispatch(
            plan.kind[j],
            [&](auto t, auto l2) {
              using T = typename decltype(t)::type;
              s += sumsq_range<T, decltype(l2)::value ? kL2 : kNoDecay>(P<T>(plan, 1, j), P<T>(plan, 0, j), lo, hi, pre);
            },
            pre.mode == kL2);
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
    const auto k = coeff_row<AdaGradNormCoefficients>(coeffs, plan.idx[j]);
    scale[j] = -k.lr / (b + k.eps);
  }
  run_plan(plan, [&](int64_t j, int64_t lo, int64_t hi) {
    const PreStep& pre = pres[plan.idx[j]];
    dispatch(
        plan.kind[j],
        [&](auto t, auto l2) {
          using T = typename decltype(t)::type;
          adagrad_norm_range<T, decltype(l2)::value ? kL2 : kNoDecay>(P<T>(plan, 0, j), P<T>(plan, 1, j), lo, hi, pre,
                                                                       scale[j]);
        },
        pre.mode == kL2);
  });
  return plan.skipped;
}

}  // namespace precond_kernels

PRECOND_OP(adagrad_norm_step, "Tensor(a!)[] params, Tensor[] grads, Tensor coeffs, str[] weight_decay, "
           "float[] weight_decay_factor, bool[] maximize, Tensor(b!) accumulator) -> int[]")

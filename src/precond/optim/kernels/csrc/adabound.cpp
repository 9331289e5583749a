// AdaBound / AMSBound (precond/optim/functional/adabound.py):
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; (vmax); rate = clamp(step_size/(sqrt(v)+eps), lower, upper);
// p -= rate m
// reads p, g, m, v (, vmax); writes p, m, v (, vmax): 7 floats per parameter
#include "common.h"

namespace precond_kernels {

// AdaBoundCoefficients of functional/adabound.py, field for field
#define ADABOUND_FIELDS(X) X(beta1) X(one_m_beta1) X(beta2) X(one_m_beta2) X(eps) X(step_size) X(lower) X(upper)
PRECOND_COEFFICIENTS(AdaBoundCoefficients, "adabound", ADABOUND_FIELDS)

template <int WD, bool AMS, typename T>
static void adabound_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, T* __restrict__ v_,
                           T* __restrict__ vm_, int64_t lo, int64_t hi, const AdaBoundCoefficients& k,
                           const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C beta1 = C(k.beta1), one_m_b1 = C(k.one_m_beta1), beta2 = C(k.beta2), one_m_b2 = C(k.one_m_beta2);
  const C eps = C(k.eps), step_size = C(k.step_size), lower = C(k.lower), upper = C(k.upper);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i), m = ld(m_, i), v = ld(v_, i);
    pre_step<WD>(p, g, sign, factor);
    m = m * beta1 + one_m_b1 * g;
    const C den = ema_square<AMS>(v, g, beta2, one_m_b2, vm_, i);
    const C rate = clamp_hi(clamp_lo(step_size / (C(std::sqrt(den)) + eps), lower), upper);
    p = p - rate * m;
    st(p_, i, p);
    st(m_, i, m);
    st(v_, i, v);
  }
}

std::vector<int64_t> adabound_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                                   TensorList max_exp_avg_sqs, const Tensor& coeffs, std::string weight_decay,
                                   double weight_decay_factor, bool maximize, bool amsbound) {
  check_coeffs<AdaBoundCoefficients>(coeffs, params.size(), "adabound_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "adabound_step", {kNoDecay, kL2});
  TORCH_CHECK(!amsbound || max_exp_avg_sqs.size() == params.size(), "adabound_step: amsbound needs max_exp_avg_sqs");
  Plan plan = make_plan({params, grads, exp_avgs, exp_avg_sqs, amsbound ? max_exp_avg_sqs : TensorList()});
  auto range = [&](auto x, int64_t lo, int64_t hi, const AdaBoundCoefficients& k, auto wd, auto ams) {
    adabound_range<PRECOND_STATIC(wd), PRECOND_STATIC(ams)>(x[0], x[1], x[2], x[3], x[4], lo, hi, k, pre);
  };
  return step_over<AdaBoundCoefficients>(plan, coeffs, pre, range, amsbound);
}

}  // namespace precond_kernels

PRECOND_OP(adabound_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
           "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs")
           ", bool amsbound) -> int[]")

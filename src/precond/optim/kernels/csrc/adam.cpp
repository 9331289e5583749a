// Adam / AMSGrad / AdamW (precond/optim/functional/adam.py):
// m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2; (vmax = max(vmax, v));
// p += (-lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)   or   m / sqrt(v/bc2 + eps)
// reads p, g, m, v (, vmax); writes p, m, v (, vmax): 7 floats per parameter, 9 with amsgrad
#include "common.h"

namespace precond_kernels {

// AdamCoefficients of functional/adam.py, field for field
#define ADAM_FIELDS(X) X(one_m_beta1) X(beta2) X(one_m_beta2) X(eps) X(neg_step) X(sqrt_bc2) X(bc2)
PRECOND_COEFFICIENTS(AdamCoefficients, "adam", ADAM_FIELDS)

template <int WD, bool AMS, bool EPS_IN, typename T>
static void adam_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, T* __restrict__ v_,
                       T* __restrict__ vm_, int64_t lo, int64_t hi, const AdamCoefficients& k, const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C w = C(k.one_m_beta1), beta2 = C(k.beta2), one_m_b2 = C(k.one_m_beta2), eps = C(k.eps);
  const C neg_step = C(k.neg_step), sqrt_bc2 = C(k.sqrt_bc2), bc2 = C(k.bc2);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i), m = ld(m_, i), v = ld(v_, i);
    pre_step<WD>(p, g, sign, factor);
    m = lerp(m, g, w);
    const C den = ema_square<AMS>(v, g, beta2, one_m_b2, vm_, i);
    const C denom = EPS_IN ? C(std::sqrt(den / bc2 + eps)) : C(std::sqrt(den)) / sqrt_bc2 + eps;
    p = p + neg_step * (m / denom);
    st(p_, i, p);
    st(m_, i, m);
    st(v_, i, v);
  }
}

std::vector<int64_t> adam_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                               TensorList max_exp_avg_sqs, const Tensor& coeffs, std::string weight_decay,
                               double weight_decay_factor, bool maximize, bool amsgrad, bool eps_inside_sqrt) {
  check_coeffs<AdamCoefficients>(coeffs, params.size(), "adam_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "adam_step");
  TORCH_CHECK(!amsgrad || max_exp_avg_sqs.size() == params.size(), "adam_step: amsgrad needs max_exp_avg_sqs");
  Plan plan = make_plan({params, grads, exp_avgs, exp_avg_sqs, amsgrad ? max_exp_avg_sqs : TensorList()});
  auto range = [&](auto x, int64_t lo, int64_t hi, const AdamCoefficients& k, auto wd, auto ams, auto eps_in) {
    adam_range<PRECOND_STATIC(wd), PRECOND_STATIC(ams), PRECOND_STATIC(eps_in)>(x[0], x[1], x[2], x[3], x[4], lo, hi, k, pre);
  };
  return step_over<AdamCoefficients>(plan, coeffs, pre, range, amsgrad, eps_inside_sqrt);
}

}  // namespace precond_kernels

PRECOND_OP(adam_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
           "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs")
           ", bool amsgrad, bool eps_inside_sqrt) -> int[]")

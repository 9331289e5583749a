// RMSProp (precond/optim/functional/rmsprop.py):
// s = a s + (1-a) g^2; (centered: gavg = lerp(gavg, g, 1-a), var = s - gavg^2);
// denom = sqrt(var) + eps (or sqrt(var + eps)); momentum: u = mu u + g/denom, p += -lr u;
// else p += -lr g/denom
// reads p, g, s (, gavg, u); writes p, s (, gavg, u): 5 floats per parameter
#include "common.h"

namespace precond_kernels {

// RMSPropCoefficients of functional/rmsprop.py, field for field
#define RMSPROP_FIELDS(X) X(neg_lr) X(alpha) X(one_m_alpha) X(eps) X(momentum)
PRECOND_COEFFICIENTS(RMSPropCoefficients, "rmsprop", RMSPROP_FIELDS)

template <int WD, bool CENTERED, bool MOM, bool EPS_IN, typename T>
static void rmsprop_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ s_, T* __restrict__ a_,
                          T* __restrict__ u_, int64_t lo, int64_t hi, const RMSPropCoefficients& k,
                          const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C neg_lr = C(k.neg_lr), alpha = C(k.alpha), one_m_alpha = C(k.one_m_alpha), eps = C(k.eps);
  const C mu = C(k.momentum);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i);
    pre_step<WD>(p, g, sign, factor);
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

std::vector<int64_t> rmsprop_step(TensorList params, TensorList grads, TensorList square_avgs, TensorList grad_avgs,
                                  TensorList momentum_buffers, const Tensor& coeffs, std::string weight_decay,
                                  double weight_decay_factor, bool maximize, bool centered, bool momentum,
                                  bool eps_inside_sqrt) {
  check_coeffs<RMSPropCoefficients>(coeffs, params.size(), "rmsprop_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "rmsprop_step", {kNoDecay, kL2});
  TORCH_CHECK(!centered || grad_avgs.size() == params.size(), "rmsprop_step: centered needs grad_avgs");
  TORCH_CHECK(!momentum || momentum_buffers.size() == params.size(), "rmsprop_step: momentum needs buffers");
  Plan plan = make_plan({params, grads, square_avgs, centered ? grad_avgs : TensorList(),
                         momentum ? momentum_buffers : TensorList()});
  auto range = [&](auto x, int64_t lo, int64_t hi, const RMSPropCoefficients& k, auto wd, auto cen, auto mom,
                   auto eps_in) {
    rmsprop_range<PRECOND_STATIC(wd), PRECOND_STATIC(cen), PRECOND_STATIC(mom), PRECOND_STATIC(eps_in)>(
        x[0], x[1], x[2], x[3], x[4], lo, hi, k, pre);
  };
  return step_over<RMSPropCoefficients>(plan, coeffs, pre, range, centered, momentum, eps_inside_sqrt);
}

}  // namespace precond_kernels

PRECOND_OP(rmsprop_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] square_avgs, "
           "Tensor(c!)[] grad_avgs, Tensor(d!)[] momentum_buffers")
           ", bool centered, bool momentum, bool eps_inside_sqrt) -> int[]")

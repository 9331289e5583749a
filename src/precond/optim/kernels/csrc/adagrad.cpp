// AdaGrad (precond/optim/functional/adagrad.py): s += g^2;  p += -clr * g / (sqrt(s) + eps)  (or sqrt(s + eps))
// reads p, g, s; writes p, s: 5 floats per parameter
#include "common.h"

namespace precond_kernels {

// AdaGradCoefficients of functional/adagrad.py, field for field
#define ADAGRAD_FIELDS(X) X(neg_clr) X(eps)
PRECOND_COEFFICIENTS(AdaGradCoefficients, "adagrad", ADAGRAD_FIELDS)

template <int WD, bool EPS_IN, typename T>
static void adagrad_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ s_, int64_t lo, int64_t hi,
                          const AdaGradCoefficients& k, const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C neg_clr = C(k.neg_clr), eps = C(k.eps);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i);
    pre_step<WD>(p, g, sign, factor);
    const C s = ld(s_, i) + g * g;
    const C std_ = EPS_IN ? C(std::sqrt(s + eps)) : C(std::sqrt(s)) + eps;
    p = p + neg_clr * (g / std_);
    st(s_, i, s);
    st(p_, i, p);
  }
}

std::vector<int64_t> adagrad_step(TensorList params, TensorList grads, TensorList state_sums, const Tensor& coeffs,
                                  std::string weight_decay, double weight_decay_factor, bool maximize,
                                  bool eps_inside_sqrt) {
  check_coeffs<AdaGradCoefficients>(coeffs, params.size(), "adagrad_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "adagrad_step", {kNoDecay, kL2});
  Plan plan = make_plan({params, grads, state_sums});
  auto range = [&](auto x, int64_t lo, int64_t hi, const AdaGradCoefficients& k, auto wd, auto eps_in) {
    adagrad_range<PRECOND_STATIC(wd), PRECOND_STATIC(eps_in)>(x[0], x[1], x[2], lo, hi, k, pre);
  };
  return step_over<AdaGradCoefficients>(plan, coeffs, pre, range, eps_inside_sqrt);
}

}  // namespace precond_kernels

PRECOND_OP(adagrad_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] state_sums")
           ", bool eps_inside_sqrt) -> int[]")

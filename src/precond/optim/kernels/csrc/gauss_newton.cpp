// GaussNewtonDiag (precond/optim/functional/gauss_newton.py), after the pre-step p *= 1 - lr wd:
// u = g, or m = b1 m + (1-b1) g and u = m / bc1; x = |h / bc2| + damping;
// p += (-lr d) u with d = 1/x (power -1) or 1/sqrt(x) (power -1/2; torch's pow(x, -0.5) is this rsqrt),
// d = 0 where x = 0 (damping 0 and h 0: no step, never 0 * inf)
// reads p, g, (m,) h; writes p (, m): 4 floats per parameter, 6 with momentum
#include "common.h"

namespace precond_kernels {

// GaussNewtonCoefficients of functional/gauss_newton.py, field for field
#define GAUSS_NEWTON_FIELDS(X) X(beta1) X(bc1) X(bc2) X(damping) X(neg_lr)
PRECOND_COEFFICIENTS(GaussNewtonCoefficients, "gauss_newton_diag", GAUSS_NEWTON_FIELDS)

template <int WD, bool MOM, bool RSQRT, typename T>
static void gauss_newton_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_,
                               const T* __restrict__ h_, int64_t lo, int64_t hi, const GaussNewtonCoefficients& k,
                               const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C beta1 = C(k.beta1), one_m_b1 = C(1.0 - k.beta1), bc1 = C(k.bc1), bc2 = C(k.bc2);
  const C damping = C(k.damping), neg_lr = C(k.neg_lr);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i);
    pre_step<WD>(p, g, sign, factor);
    C u = g;
    if (MOM) {
      const C m = ld(m_, i) * beta1 + one_m_b1 * g;
      st(m_, i, m);
      u = m / bc1;
    }
    const C x = C(std::abs(ld(h_, i) / bc2)) + damping;
    // vectorised only with -fno-trapping-math (_build.py): the compare on a value that may come from
    // a division by 0 kept gcc's if-conversion off and the loop scalar (2.4x torch's fused Adam)
    const C r = RSQRT ? C(1) / C(std::sqrt(x)) : C(1) / x;
    const C d = x == C(0) ? C(0) : r;
    p = p + (neg_lr * d) * u;
    st(p_, i, p);
  }
}

// power: -1 or -0.5; momentum: whether exp_avgs are used (beta1 > 0)
std::vector<int64_t> gauss_newton_diag_step(TensorList params, TensorList grads, TensorList exp_avgs,
                                            TensorList curvatures, const Tensor& coeffs, std::string weight_decay,
                                            double weight_decay_factor, bool maximize, double power, bool momentum) {
  check_coeffs<GaussNewtonCoefficients>(coeffs, params.size(), "gauss_newton_diag_step");
  const PreStep pre =
      pre_step_of(weight_decay, weight_decay_factor, maximize, "gauss_newton_diag_step", {kNoDecay, kDecay});
  TORCH_CHECK(power == -1.0 || power == -0.5, "gauss_newton_diag_step: power must be -1 or -0.5, got ", power);
  TORCH_CHECK(!momentum || exp_avgs.size() == params.size(), "gauss_newton_diag_step: momentum needs exp_avgs");
  TORCH_CHECK(curvatures.size() == params.size(), "gauss_newton_diag_step: one curvature per parameter");
  Plan plan = make_plan({params, grads, momentum ? exp_avgs : TensorList(), curvatures});
  auto range = [&](auto x, int64_t lo, int64_t hi, const GaussNewtonCoefficients& k, auto wd, auto mom, auto rsqrt) {
    gauss_newton_range<PRECOND_STATIC(wd), PRECOND_STATIC(mom), PRECOND_STATIC(rsqrt)>(x[0], x[1], x[2], x[3], lo, hi,
                                                                                       k, pre);
  };
  return step_over<GaussNewtonCoefficients>(plan, coeffs, pre, range, momentum, power == -0.5);
}

}  // namespace precond_kernels

PRECOND_OP(gauss_newton_diag_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
           "Tensor[] curvatures")
           ", float power, bool momentum) -> int[]")

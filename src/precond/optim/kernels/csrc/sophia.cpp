// SophiaG (precond/optim/functional/sophia.py), after the pre-step p *= 1 - lr wd:
// m = b1 m + (1-b1) g; r = min(|m| / (max(rho bs h, 0) + eps), 1); p += (-lr sign(m)) r
// reads p, g, m, h; writes p, m (6 floats per parameter)
#include "common.h"

namespace precond_kernels {

// SophiaCoefficients of functional/sophia.py, field for field
#define SOPHIA_FIELDS(X) X(beta1) X(rho_bs) X(eps) X(neg_lr)
PRECOND_COEFFICIENTS(SophiaCoefficients, "sophia", SOPHIA_FIELDS)

template <int WD, typename T>
static void sophia_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, const T* __restrict__ h_,
                         int64_t lo, int64_t hi, const SophiaCoefficients& k, const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C beta1 = C(k.beta1), one_m_b1 = C(1.0 - k.beta1), rho_bs = C(k.rho_bs), eps = C(k.eps), neg_lr = C(k.neg_lr);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i);
    pre_step<WD>(p, g, sign, factor);
    const C m = ld(m_, i) * beta1 + one_m_b1 * g;
    const C ratio = clamp_hi(C(std::abs(m)) / (clamp_lo(rho_bs * ld(h_, i), C(0)) + eps), C(1));
    const C sgn = C(m > C(0)) - C(m < C(0));  // torch.sign: -1, 0, 1 (0 for NaN)
    p = p + (neg_lr * sgn) * ratio;
    st(p_, i, p);
    st(m_, i, m);
  }
}

std::vector<int64_t> sophia_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList hessians,
                                 const Tensor& coeffs, std::string weight_decay, double weight_decay_factor,
                                 bool maximize) {
  check_coeffs<SophiaCoefficients>(coeffs, params.size(), "sophia_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "sophia_step", {kNoDecay, kDecay});
  TORCH_CHECK(exp_avgs.size() == params.size() && hessians.size() == params.size(),
              "sophia_step: one exp_avg and one hessian per parameter");
  Plan plan = make_plan({params, grads, exp_avgs, hessians});
  auto range = [&](auto x, int64_t lo, int64_t hi, const SophiaCoefficients& k, auto wd) {
    sophia_range<PRECOND_STATIC(wd)>(x[0], x[1], x[2], x[3], lo, hi, k, pre);
  };
  return step_over<SophiaCoefficients>(plan, coeffs, pre, range);
}

}  // namespace precond_kernels

PRECOND_OP(sophia_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor[] hessians")
           ") -> int[]")

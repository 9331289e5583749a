// SGD (precond/optim/functional/sgd.py), p += -lr d with
// heavy ball: v = g (first step) or mu v + (1-damp) g; d = nesterov ? g + mu v : v
// EMA:        v = mu v + (1-mu) g;                    d = nesterov ? mu v + (1-mu) g : v
// none:       d = g
// reads p, g (, v); writes p (, v): 5 floats per parameter with momentum
#include "common.h"

namespace precond_kernels {

// SGDCoefficients of functional/sgd.py, field for field
#define SGD_FIELDS(X) X(neg_lr) X(momentum) X(one_m_dampening) X(first_step) X(one_m_momentum)
PRECOND_COEFFICIENTS(SGDCoefficients, "sgd", SGD_FIELDS)

enum Momentum : int { kHeavyBall = 0, kEma = 1, kNoMomentum = 2 };
template <>
constexpr int kChoices<Momentum> = 3;

template <int WD, int STYLE, bool NESTEROV, typename T>
static void sgd_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ v_, int64_t lo, int64_t hi,
                      const SGDCoefficients& k, const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C neg_lr = C(k.neg_lr), mu = C(k.momentum), one_m_damp = C(k.one_m_dampening), one_m_mu = C(k.one_m_momentum);
  const bool first = k.first_step != 0.0;
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i);
    pre_step<WD>(p, g, sign, factor);
    C d = g;
    if (STYLE == kHeavyBall) {
      C v = first ? g : ld(v_, i) * mu + one_m_damp * g;
      st(v_, i, v);
      d = NESTEROV ? g + mu * v : v;
    } else if (STYLE == kEma) {
      C v = ld(v_, i) * mu + one_m_mu * g;
      st(v_, i, v);
      d = NESTEROV ? v * mu + one_m_mu * g : v;
    }
    p = p + neg_lr * d;
    st(p_, i, p);
  }
}

std::vector<int64_t> sgd_step(TensorList params, TensorList grads, TensorList momentum_buffers, const Tensor& coeffs,
                              std::string weight_decay, double weight_decay_factor, bool maximize,
                              std::string momentum_style, bool nesterov) {
  check_coeffs<SGDCoefficients>(coeffs, params.size(), "sgd_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "sgd_step");
  TORCH_CHECK(momentum_style == "heavy_ball" || momentum_style == "ema" || momentum_style == "none",
              "sgd_step: momentum_style must be 'heavy_ball', 'ema' or 'none', got '", momentum_style, "'");
  const Momentum style = momentum_style == "heavy_ball" ? kHeavyBall : momentum_style == "ema" ? kEma : kNoMomentum;
  TORCH_CHECK(style == kNoMomentum || momentum_buffers.size() == params.size(),
              "sgd_step: momentum needs momentum_buffers");
  Plan plan = make_plan({params, grads, style == kNoMomentum ? TensorList() : momentum_buffers});
  auto range = [&](auto x, int64_t lo, int64_t hi, const SGDCoefficients& k, auto wd, auto s, auto n) {
    sgd_range<PRECOND_STATIC(wd), PRECOND_STATIC(s), PRECOND_STATIC(n)>(x[0], x[1], x[2], lo, hi, k, pre);
  };
  return step_over<SGDCoefficients>(plan, coeffs, pre, range, style, nesterov && style != kNoMomentum);
}

}  // namespace precond_kernels

PRECOND_OP(sgd_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers")
           ", str momentum_style, bool nesterov) -> int[]")

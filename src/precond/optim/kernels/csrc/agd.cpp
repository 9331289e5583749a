// AGD (precond/optim/functional/agd.py):
// s = c_m m_{t-1} + c_g g;  m = b1 m + (1-b1) g;  b = b2 b + (1-b2) s^2;
// u = m / max(sqrt(b or bmax), floor) clamped to +-clip;  p -= eta u   (or the Win update)
// reads p, g, m, b (, bmax, z); writes p, m, b (, bmax, z): 7 floats per parameter, 9 with amsgrad
#include "common.h"

namespace precond_kernels {

// AGDCoefficients of functional/agd.py, field for field
#define AGD_FIELDS(X) X(beta1) X(beta2) X(c_m) X(c_g) X(floor) X(eta) X(win_z) X(win_tau)
PRECOND_COEFFICIENTS(AGDCoefficients, "agd", AGD_FIELDS)

template <int WD, bool AMS, bool WIN, typename T>
static void agd_range(T* __restrict__ p_, const T* __restrict__ g_, T* __restrict__ m_, T* __restrict__ b_,
                      T* __restrict__ bm_, T* __restrict__ z_, int64_t lo, int64_t hi, const AGDCoefficients& k,
                      double clip, const PreStep& pre) {
  using C = typename Acc<T>::type;
  const C beta1 = C(k.beta1), beta2 = C(k.beta2), c_m = C(k.c_m), c_g = C(k.c_g), floor_ = C(k.floor);
  const C win_z = C(k.win_z), win_tau = C(k.win_tau);
  const C one_m_b1 = C(1.0 - k.beta1), one_m_b2 = C(1.0 - k.beta2);
  const C neg_eta = C(-k.eta);
  const C win_u = C(-2.0 * k.win_tau * k.eta), win_zc = C(2.0 * k.win_tau);
  const C hi_clip = C(clip), lo_clip = C(-clip);
  const C sign = pre.maximize ? C(-1) : C(1), factor = C(pre.factor);
  for (int64_t i = lo; i < hi; ++i) {
    C p = ld(p_, i), g = ld(g_, i), m = ld(m_, i), b = ld(b_, i);
    pre_step<WD>(p, g, sign, factor);
    const C s = g * c_g + c_m * m;
    m = m * beta1 + one_m_b1 * g;
    const C den = ema_square<AMS>(b, s, beta2, one_m_b2, bm_, i);
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

std::vector<int64_t> agd_step(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                              TensorList max_exp_avg_sqs, TensorList zs, const Tensor& coeffs, std::string weight_decay,
                              double weight_decay_factor, bool maximize, bool amsgrad, bool win, double clip) {
  check_coeffs<AGDCoefficients>(coeffs, params.size(), "agd_step");
  const PreStep pre = pre_step_of(weight_decay, weight_decay_factor, maximize, "agd_step");
  TORCH_CHECK(!amsgrad || max_exp_avg_sqs.size() == params.size(), "agd_step: amsgrad needs max_exp_avg_sqs");
  TORCH_CHECK(!win || zs.size() == params.size(), "agd_step: win needs zs");
  Plan plan = make_plan({params, grads, exp_avgs, exp_avg_sqs, amsgrad ? max_exp_avg_sqs : TensorList(),
                         win ? zs : TensorList()});
  auto range = [&](auto x, int64_t lo, int64_t hi, const AGDCoefficients& k, auto wd, auto ams, auto w) {
    agd_range<PRECOND_STATIC(wd), PRECOND_STATIC(ams), PRECOND_STATIC(w)>(x[0], x[1], x[2], x[3], x[4], x[5], lo, hi, k,
                                                                          clip, pre);
  };
  return step_over<AGDCoefficients>(plan, coeffs, pre, range, amsgrad, win);
}

}  // namespace precond_kernels

PRECOND_OP(agd_step, PRECOND_STEP_ARGS("Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
           "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs, Tensor(e!)[] zs")
           ", bool amsgrad, bool win, float clip) -> int[]")

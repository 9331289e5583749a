"""Functional update rules: one :class:`~precond.optim.functional._rule.Rule` per optimizer,
over lists of tensors, with its hyperparameter record.

The optimizer classes in :mod:`precond.optim` do the bookkeeping and call these; the fast
paths (``impl="foreach"``/``"fused"``) plug in under the same rules. A rule is called as
``rule(params, grads, state, hyper, impl="loop")`` (:mod:`._rule` shows a whole call);
AdaGradNorm's step covers a scope of groups: :func:`adagrad_norm`.
"""

from ._rule import PreStep, Rule
from .adabound import AdaBoundHyper, adabound
from .adagrad import AdaGradHyper, adagrad
from .adagrad_norm import AdaGradNormHyper, adagrad_norm
from .adam import AdamHyper, AdamWHyper, adam
from .agd import AGDHyper, agd, agd_adaptive_mask, agd_coefficients
from .curvature_ema import update_curvature_ema
from .gauss_newton import GaussNewtonHyper, gauss_newton_diag
from .rmsprop import RMSPropHyper, rmsprop
from .sgd import SGDHyper, sgd
from .sophia import SophiaHyper, sophia

__all__ = [
    "AGDHyper", "AdaBoundHyper", "AdaGradHyper", "AdaGradNormHyper", "AdamHyper", "AdamWHyper", "GaussNewtonHyper",
    "PreStep", "RMSPropHyper", "Rule", "SGDHyper", "SophiaHyper", "adabound", "adagrad", "adagrad_norm", "adam", "agd",
    "agd_adaptive_mask", "agd_coefficients", "gauss_newton_diag", "rmsprop", "sgd", "sophia", "update_curvature_ema",
]  # fmt: skip

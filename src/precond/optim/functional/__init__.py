"""Functional update rules: one function per optimizer, over lists of tensors.

The optimizer classes in :mod:`precond.optim` do the bookkeeping and call these; the
fast paths (``impl="foreach"``/``"fused"``) plug in under the same functions.
"""

from .adabound import adabound
from .adagrad import adagrad
from .adagrad_norm import adagrad_norm
from .adam import adam
from .agd import agd, agd_adaptive_mask, agd_coefficients
from .curvature_ema import update_curvature_ema
from .gauss_newton import gauss_newton_diag
from .rmsprop import rmsprop
from .sgd import sgd
from .sophia import sophia

__all__ = ["adabound", "adagrad", "adagrad_norm", "adam", "agd", "agd_adaptive_mask", "agd_coefficients", "gauss_newton_diag", "rmsprop", "sgd", "sophia", "update_curvature_ema"]

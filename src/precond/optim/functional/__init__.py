"""Functional update rules: one function per optimizer, over lists of tensors.

The optimizer classes in :mod:`precond.optim` do the bookkeeping and call these; the
fast paths (``impl="foreach"``/``"fused"``) plug in under the same functions.
"""

from .adabound import adabound
from .adagrad import adagrad
from .adagrad_norm import adagrad_norm
from .adam import adam
from .agd import agd, agd_adaptive_mask, agd_coefficients
from .rmsprop import rmsprop
from .sgd import sgd

__all__ = ["adabound", "adagrad", "adagrad_norm", "adam", "agd", "agd_adaptive_mask", "agd_coefficients", "rmsprop", "sgd"]

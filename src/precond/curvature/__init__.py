"""Curvature: Hessian and Gauss-Newton quantities, stochastic diagonal estimators, bases, diagnostics.

* :mod:`.exact`: Hessian, GGN, their diagonals, Hessian- and GGN-vector products;
* :mod:`.estimators`: Hutchinson (Hessian diagonal) and Gauss-Newton-Bartlett (GGN diagonal);
* :mod:`.schedule`: :class:`CurvatureSchedule`, which estimator and which steps (``.of(optimizer)``);
* :mod:`.feed`: :class:`CurvatureFeeder`, which feeds ``optimizer.update_curvature`` on that schedule;
* :mod:`.basis`: :class:`RotatedOptimizer` and the geodesic between two bases;
* :mod:`.diagnostics`: callbacks for training loops (AGD, Sophia, noise, smoothness, spectrum).

Imports only torch, numpy, scipy and :mod:`precond.optim`.
"""

from .basis import RotatedOptimizer, align_signs, eigenbasis, geodesic, log_rotation
from .estimators import CURVATURE_ESTIMATORS, ESTIMATOR_ALIASES, canonical_estimator, estimate_diagonal, gnb_diagonal, gnb_samples, hutchinson_diagonal, hutchinson_samples
from .exact import GGNVP, HVP, ggn, ggn_diagonal, ggn_vector_product, hessian, hessian_diagonal, hvp, jacobian
from .feed import CurvatureFeeder
from .losses import LOSS_TYPES, loss_from_outputs, output_hessian, sample_targets
from .params import as_function, flat_grads, flat_params, flatten, set_flat_params, trainable, unflatten
from .schedule import CurvatureSchedule

__all__ = [
    "CURVATURE_ESTIMATORS", "CurvatureFeeder", "CurvatureSchedule", "ESTIMATOR_ALIASES", "GGNVP", "HVP", "LOSS_TYPES", "RotatedOptimizer", "align_signs", "as_function", "canonical_estimator",
    "eigenbasis", "estimate_diagonal", "flat_grads", "flat_params", "flatten", "geodesic", "ggn",
    "ggn_diagonal", "ggn_vector_product", "gnb_diagonal", "gnb_samples", "hessian", "hessian_diagonal", "hutchinson_diagonal", "hutchinson_samples",
    "hvp", "jacobian", "log_rotation", "loss_from_outputs", "output_hessian", "sample_targets",
    "set_flat_params", "trainable", "unflatten",
]  # fmt: skip

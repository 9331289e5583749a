"""Fast implementations (``foreach`` and ``fused``) of the functional rules.

Importing this package registers them in
:data:`precond.optim.functional._common.FAST_IMPLS` (one module per rule). The ``fused``
paths run one C++ kernel per rule over all tensors (``csrc/<rule>.cpp`` over the shared
``csrc/common.h``, compiled into one extension at first use by :mod:`._build`); the
``foreach`` paths use ``torch._foreach_*`` (fast on GPUs, slower than the loop on CPUs). Both
take the rule's records (:mod:`precond.optim.functional._rule`): the hyperparameters, the
shared pre-step and the per-step coefficients the loop uses, so they agree with it to
rounding. What every fast path shares is :mod:`._host`.

On CUDA, ``fused=True`` runs the Triton kernels of :mod:`.triton` (imported on first use, only
where ``triton`` is installed: :func:`triton_rules`).
"""

import functools

from . import adabound, adagrad, adagrad_norm, adam, agd, gauss_newton, rmsprop, sgd, sophia  # noqa: F401  (registration)
from ._build import KernelsUnavailableWarning, load, status

__all__ = ["KernelsUnavailableWarning", "load", "status", "triton_rules"]


@functools.cache
def triton_rules() -> frozenset[str]:
    """The rules with a Triton kernel (:mod:`.triton`; AdaGrad-Norm's two passes are not a
    ``TritonRule`` but count); empty when ``triton`` does not import."""
    try:
        from . import triton
    except ImportError:
        return frozenset()
    return frozenset([*triton.RULES, "adagrad_norm"])

"""Fast implementations (``foreach`` and ``fused``) of the functional rules.

Importing this package registers them in
:data:`precond.optim.functional._common.FAST_IMPLS` (one module per rule). The ``fused``
paths run one C++ kernel per rule over all tensors (``precond_kernels.cpp``, compiled at
first use by :mod:`._build`); the ``foreach`` paths use ``torch._foreach_*`` (fast on GPUs,
slower than the loop on CPUs). Both take the rule's own signature and per-step scalars from
the rule's coefficient helper, so they agree with the reference loop to rounding.
"""

from . import adabound, adagrad, adagrad_norm, adam, agd, gauss_newton, rmsprop, sgd, sophia  # noqa: F401  (registration)
from ._build import KernelsUnavailableWarning, load, status

__all__ = ["KernelsUnavailableWarning", "load", "status"]

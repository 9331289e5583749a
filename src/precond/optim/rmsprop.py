"""RMSProp class (the rule: :data:`precond.optim.functional.rmsprop.rmsprop`)."""

from __future__ import annotations

from ._base import PrecondOptimizer
from .functional.rmsprop import rmsprop


class RMSProp(PrecondOptimizer):
    """RMSProp as ``torch.optim.RMSprop`` (``alpha`` is the notes' rho; ``centered``,
    ``momentum``), plus the notes' ``sqrt(s + eps)`` with ``eps_inside_sqrt=True``. ``eps``
    must be > 0 (at 0 a zero gradient gives 0/0); complex parameters as torch's. Arguments:
    the fields of :class:`~precond.optim.functional.rmsprop.RMSPropHyper` (``help(RMSProp)``)."""

    rule = rmsprop
    batchable = True

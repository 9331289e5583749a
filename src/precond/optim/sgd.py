"""SGD class (the rule: :data:`precond.optim.functional.sgd.sgd`)."""

from __future__ import annotations

from ._base import PrecondOptimizer
from .functional.sgd import sgd


class SGD(PrecondOptimizer):
    """Gradient descent with momentum in both forms of the lecture notes.

    ``momentum_style="heavy_ball"`` (default) is ``torch.optim.SGD``'s
    ``v = momentum*v + (1-dampening)*g``; ``"ema"`` is the notes'
    ``v = momentum*v + (1-momentum)*g`` from ``v = 0``. ``nesterov`` looks ahead in either
    form; ``decoupled_weight_decay=True`` applies ``p *= 1 - lr*wd`` instead of L2.
    Arguments: the fields of :class:`~precond.optim.functional.sgd.SGDHyper` (``help(SGD)``).
    """

    rule = sgd
    batchable = True

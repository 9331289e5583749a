"""AdaGrad class (the rule: :data:`precond.optim.functional.adagrad.adagrad`)."""

from __future__ import annotations

from typing import Any

import torch

from ._base import PrecondOptimizer
from .functional.adagrad import adagrad


class AdaGrad(PrecondOptimizer):
    """AdaGrad as ``torch.optim.Adagrad`` (``lr_decay``, ``initial_accumulator_value``), plus
    the notes' ``sqrt(s + eps)`` with ``eps_inside_sqrt=True``.

    The anisotropic-smoothness paper's AdaGrad (``v_{-1} = eps * 1``, divide by
    ``sqrt(v)``) is ``AdaGrad(params, lr, initial_accumulator_value=eps, eps=0.0)``.
    Sparse gradients are refused (use ``torch.optim.Adagrad`` for those). Arguments: the
    fields of :class:`~precond.optim.functional.adagrad.AdaGradHyper` (``help(AdaGrad)``).
    """

    rule = adagrad
    batchable = True

    def _init_state(self, group: dict[str, Any], p: torch.Tensor, state: dict[str, Any]) -> None:
        super()._init_state(group, p, state)
        init = group["initial_accumulator_value"]
        state["sum"].fill_(complex(init, init) if p.is_complex() else init)  # torch.optim.Adagrad's start

"""AdaBound / AMSBound class (the rule: :data:`precond.optim.functional.adabound.adabound`)."""

from __future__ import annotations

from typing import Any

from ._base import PrecondOptimizer
from .functional.adabound import adabound


class AdaBound(PrecondOptimizer):
    """AdaBound (Luo et al., ICLR 2019) as the authors' ``adabound.AdaBound``.

    Adam whose per-coordinate rate is clipped to bounds that converge to ``final_lr``
    at speed ``gamma``; ``amsbound=True`` gives AMSBound. Weight decay is L2, as in the
    original. The bounds follow the group's lr relative to ``base_lr`` (the lr it was
    created with, kept in the group), so schedulers scale them as in the original. A state
    dict of the authors' class (which keeps ``base_lr`` outside its groups) loads with this
    optimizer's ``base_lr``, as theirs takes the lr it was constructed with.
    ``eps`` may be 0 (the rate is clipped, so a zero gradient still gives a finite step).
    Arguments: the fields of :class:`~precond.optim.functional.adabound.AdaBoundHyper`
    (``help(AdaBound)``).
    """

    rule = adabound
    batchable = True

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group.get("base_lr") is None:
            group["base_lr"] = float(group["lr"])

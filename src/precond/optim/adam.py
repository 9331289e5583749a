"""Adam, AMSGrad and AdamW classes (the rule: :data:`precond.optim.functional.adam.adam`)."""

from __future__ import annotations

from ._base import PrecondOptimizer
from .functional.adam import AdamWHyper, adam


class Adam(PrecondOptimizer):
    r"""Adam (Kingma & Ba 2015) with AMSGrad and AdamW as options.

    Arguments: the fields of :class:`~precond.optim.functional.adam.AdamHyper` (``help(Adam)``
    shows them), then ``foreach``, ``fused``, ``nan_policy`` (:class:`PrecondOptimizer`).

    ``m_hat / (sqrt(v_hat) + eps)`` (torch's placement, default) or the lecture notes'
    ``m_hat / sqrt(v_hat + eps)`` with ``eps_inside_sqrt=True``. ``amsgrad=True`` gives
    AMSGrad (``v_hat = max(v_hat, v)``, bias-corrected as torch), and
    ``decoupled_weight_decay=True`` gives AdamW. Equations in
    :mod:`precond.optim.functional.adam`; equal to ``torch.optim.Adam``/``AdamW`` to
    rounding with the default placement, complex parameters included. ``eps`` must be > 0
    (at 0, a coordinate whose gradient is 0 gives 0/0 on its first step; torch accepts 0).
    """

    rule = adam
    batchable = True


class AdamW(Adam):
    """AdamW: :class:`Adam` with ``decoupled_weight_decay=True`` and torch's default ``weight_decay=1e-2``.

    Arguments: the fields of :class:`~precond.optim.functional.adam.AdamWHyper`.
    """

    Hyper = AdamWHyper

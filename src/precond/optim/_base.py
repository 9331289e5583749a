"""Bookkeeping shared by every precond optimizer.

The update rules live in :mod:`precond.optim.functional` as functions over lists of
tensors (torch.optim's own split: ``Adam.step`` collects tensors, ``_single_tensor_adam``
does the math). A subclass of :class:`PrecondOptimizer` only

* validates its hyperparameters (``_validate_group``),
* creates its per-parameter state (``_init_state``), and
* calls its functional rule on one param group (``_group_step``).

This base class does the rest of the ``torch.optim`` contract: closures, params without
gradients skipped, sparse gradients refused, the non-finite gradient policy, state dicts
that load across versions, ``foreach``/``fused`` dispatch. Optimizer hooks and LR
schedulers come from :class:`torch.optim.Optimizer` itself.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

import torch
from torch.optim import Optimizer

from . import _checks
from ._dispatch import resolve_impl
from ._finite import all_finite


def group_lr(group: dict[str, Any]) -> float | torch.Tensor:
    """A param group's ``lr`` as the functional rules take it: a float (a number or a 0-dim
    tensor, as torch.optim accepts), or, left as it is, a tensor of one or more dimensions
    broadcastable against the parameters: one lr per row of a stacked parameter, which
    :mod:`precond.experiments.vectorized` uses to run a sweep's configs as one batch (the
    reference loop runs such groups; elementwise rules only)."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor) and lr.dim() > 0:
        return lr
    return float(lr)


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds NaN or inf and ``nan_policy='raise'``."""


class PrecondOptimizer(Optimizer):
    """Base class: a ``torch.optim.Optimizer`` whose math lives in a functional rule.

    Args shared by every subclass (all keyword-only):
        maximize: maximize the objective instead of minimizing (per group).
        foreach: use the multi-tensor path (per group). ``None`` lets precond choose.
        fused: use the fused kernel (per group). ``None`` lets precond choose the fastest
            path known to work for the device and dtype.
        nan_policy: what a step does when any gradient holds NaN or inf:
            ``"raise"`` (default) raises :class:`NonFiniteGradientError` before any state
            changes; ``"skip"`` leaves parameters and state untouched, counts the step in
            ``optimizer.skipped_steps`` and warns; ``"propagate"`` applies the update
            as is (no check, no cost: what torch.optim does).
    """

    #: names of the per-parameter tensors a subclass keeps (besides ``step``)
    state_names: tuple[str, ...] = ()
    #: per-parameter scalar state held as a CPU tensor of this dtype whatever the parameter's
    #: (restored so by :meth:`load_state_dict`)
    _scalar_state_dtypes: dict[str, torch.dtype] = {"step": torch.float32}

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        _checks.check_nan_policy(nan_policy)
        if fused and foreach:
            raise ValueError("fused=True and foreach=True are exclusive: choose one (or leave both None)")
        defaults = dict(defaults, maximize=bool(maximize), foreach=foreach, fused=fused)
        self._validate_group(defaults)
        self.nan_policy = nan_policy
        self.skipped_steps = 0
        super().__init__(params, defaults)

    # ---- hyperparameters -------------------------------------------------------------
    def _validate_group(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group.get("fused") and group.get("foreach"):
            raise ValueError("fused=True and foreach=True are exclusive in one param group")
        self._validate_group(group)

    # ---- state -----------------------------------------------------------------------
    def _init_state(self, group: dict[str, Any], p: torch.Tensor, state: dict[str, Any]) -> None:
        """Create the state of ``p`` (called once, on its first step with a gradient)."""
        state["step"] = torch.tensor(0.0, dtype=torch.float32)
        for name in self.state_names:
            if self._state_enabled(group, name):
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _state_enabled(self, group: dict[str, Any], name: str) -> bool:
        """Whether the optional state ``name`` exists under ``group``'s options."""
        return True

    def _group_state(self, group: dict[str, Any], params: list[torch.Tensor]) -> dict[str, list[Any]]:
        """Lists of each state tensor for ``params``, creating missing state (torch's ``_init_group``)."""
        out: dict[str, list[Any]] = {"step": []}
        names = [n for n in self.state_names if self._state_enabled(group, n)]
        for n in names:
            out[n] = []
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                self._init_state(group, p, state)
            for n in names:
                if n not in state:  # an option switched on after the state was made
                    state[n] = torch.zeros_like(p, memory_format=torch.preserve_format)
                out[n].append(state[n])
            out["step"].append(state["step"])
        return out

    # ---- the step ----------------------------------------------------------------------
    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _params_with_grad(self, group: dict[str, Any]) -> list[torch.Tensor]:
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients; use dense gradients "
                    "(e.g. nn.Embedding(sparse=False)) or torch.optim.SparseAdam for sparse embeddings"
                )
            params.append(p)
        return params

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss;
                it is called with gradients enabled, as in ``torch.optim``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:
            params = self._params_with_grad(group)
            if params:
                work.append((group, params, [p.grad for p in params]))
        if not work:
            return loss
        if self.nan_policy != "propagate":
            if not all_finite([g for _, _, grads in work for g in grads]):
                if self.nan_policy == "raise":
                    raise NonFiniteGradientError(
                        f"{type(self).__name__}.step: a gradient holds NaN or inf; no parameter or state "
                        "was changed. Fix the loss (or lower the lr), or construct the optimizer with "
                        "nan_policy='skip' to skip such steps or nan_policy='propagate' to apply them."
                    )
                self.skipped_steps += 1
                warnings.warn(
                    f"{type(self).__name__}.step skipped: non-finite gradient "
                    f"({self.skipped_steps} step(s) skipped so far)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return loss
        self._apply(work)
        return loss

    def _apply(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> None:
        """Update every ``(group, params, grads)``; one group at a time unless overridden."""
        for group, params, grads in work:
            self._group_step(group, params, grads, resolve_impl(self, group, params))

    # ---- state dicts -------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, also from older precond versions and the published code.

        Group options missing from ``state_dict`` take this optimizer's defaults, and the
        scalar state of :attr:`_scalar_state_dtypes` comes back as CPU tensors of its dtype
        (an integer or float ``step`` of older checkpoints becomes the float32 tensor used now;
        torch.optim would cast such state to the parameter's dtype, e.g. bfloat16).
        """
        # scalar state kept as CPU tensors of a fixed dtype: taken before torch.optim's load,
        # which casts floating-point state to the parameter's dtype and device
        kept = {
            (i, key): float(value)
            for i, s in state_dict["state"].items() if isinstance(s, dict)
            for key, value in s.items() if key in self._scalar_state_dtypes
        }  # fmt: skip
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(saved_ids, params):
            state = self.state.get(p, {})
            for key, dtype in self._scalar_state_dtypes.items():
                if (i, key) in kept and key in state:
                    state[key] = torch.tensor(kept[(i, key)], dtype=dtype)

    # ---- helpers for subclasses ---------------------------------------------------------
    @staticmethod
    def _steps_as_ints(steps: list[torch.Tensor]) -> list[int]:
        return [int(s.item()) for s in steps]

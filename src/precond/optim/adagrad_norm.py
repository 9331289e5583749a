"""AdaGradNorm class (math in :func:`precond.optim.functional.adagrad_norm.adagrad_norm`)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from ._base import PrecondOptimizer, real_views
from ._dispatch import resolve_impl
from .distributed import any_dtensor, local_list, shard_sum
from .functional.adagrad_norm import AdaGradNormHyper, adagrad_norm


class AdaGradNorm(PrecondOptimizer):
    """AdaGrad-Norm (Ward, Wu, Bottou 2019): ``b^2 += ||g||^2``, ``x -= lr * g / (b + eps)``.

    One scalar accumulator shared by all coordinates of each param group
    (``scope="group"``, default) or of all groups (``scope="global"``): a uniform step
    size, the comparator of seed 001. ``initial_accumulator_value`` is ``b_0^2``. ``scope``
    is a setting of the whole optimizer (read-only ``optimizer.scope``); the norm of a complex
    parameter is that of its real view (``|g|^2`` summed).

    Every parameter's state holds the accumulator of its scope as a 0-dim float64 tensor
    (the same value across the scope), so state dicts save and load it like any state
    (:meth:`load_state_dict` keeps it in float64 whatever the parameter's dtype).

    ``foreach``, ``fused``, ``maximize``, ``nan_policy``: see :class:`PrecondOptimizer`; the
    default is ``fused`` on CPU (:mod:`precond.optim.kernels.adagrad_norm`: one call per scope,
    the norm reduced in double). ``fused=True`` on CUDA runs the Triton kernels
    (:mod:`precond.optim.kernels.triton.adagrad_norm`: two launches per group and dtype, the
    accumulator and the step counters on the params' device, GradScaler's ``grad_scale`` /
    ``found_inf`` and the non-finite check on the device, no host sync). Under
    ``scope="global"`` one step covers every group, so the groups must resolve to the same path
    (different explicit ``foreach``/``fused`` per group raise ``ValueError``).

    Under FSDP2 (``DTensor`` parameters) ``||g||^2`` is the sum over every shard on every
    rank (:func:`precond.optim.distributed.shard_sum`, one ``all_reduce`` per step and scope),
    so every rank keeps the same accumulator and takes the step of the whole parameter; the
    fused kernel, which sums and steps in one pass, gives way to the loop (``foreach`` off the CPU),
    and so does the Triton path (its device-side skip flag and GradScaler's scale with it).
    """

    Hyper = AdaGradNormHyper
    #: the Triton step of ``fused=True`` on CUDA (:func:`precond.optim._dispatch.triton_path`)
    triton_kernel = "adagrad_norm"
    _scalar_state_dtypes = {"step": torch.float32, "sum": torch.float64}
    _optimizer_options = PrecondOptimizer._optimizer_options + ("scope",)

    @property
    def scope(self) -> str:
        """``"group"`` (one accumulator per param group) or ``"global"`` (one for all)."""
        return self._option("scope")

    def _accumulator(self, groups: list[dict[str, Any]], device: torch.device | None) -> torch.Tensor:
        """The scope's ``b^2`` (a copy), on ``device`` when given (the Triton path keeps it there)."""
        for group in groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state and "sum" in state:
                    return state["sum"].to(device if device is not None else state["sum"].device, copy=True)
        acc = torch.tensor(float(groups[0]["initial_accumulator_value"]), dtype=torch.float64)
        return acc if device is None else acc.to(device)

    def _triton_begin(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> bool:
        """The base's device-side skip flag, except under FSDP2, where the step leaves the
        Triton path (the host-side check then runs)."""
        return not any_dtensor([p for _, params, _ in work for p in params]) and super()._triton_begin(work)

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """As the base, but never under FSDP2 (the loop/foreach step does not read GradScaler's
        ``grad_scale``/``found_inf``: GradScaler then unscales and checks itself)."""
        params = [p for g in self.param_groups for p in g["params"]]
        return not any_dtensor(params) and super()._step_supports_amp_scaling

    def _apply(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> None:
        if self.scope == "global":
            self._step_scope(work)
        else:
            for item in work:
                self._step_scope([item])

    def _scope_impl(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> str:
        """The path of one scope's step: every group's choice, which must agree."""
        params = [p for _, ps, _ in work for p in ps]
        impls = {resolve_impl(self, group, params) for group, _, _ in work}
        if len(impls) > 1:
            raise ValueError(
                f"AdaGradNorm(scope='global'): the param groups ask for different paths ({', '.join(sorted(impls))}), "
                "but one step covers all of them: give every group the same foreach/fused (or leave both None)"
            )
        return impls.pop()

    def _step_scope(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> None:
        groups = [g for g, _, _ in work]
        impl = self._scope_impl(work)
        every = [p for _, params, _ in work for p in params]
        sharded = any_dtensor(every)
        if sharded and impl not in ("loop", "foreach"):  # FSDP2: a kernel sums and steps in one pass
            impl = "loop" if all(p.is_cpu for p in every) else "foreach"
        device = every[0].device if impl == "triton" else None  # the Triton path: b^2 and counters on the device
        acc = self._accumulator(groups, device)
        steps = []
        for _, params, _ in work:
            for p in params:
                state = self.state[p]
                if "step" not in state:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                if device is not None and state["step"].device != device:
                    state["step"] = state["step"].to(device)
                steps.append(state["step"])
        view = (lambda ts: real_views(local_list(ts))) if sharded else real_views
        scopes = [(view(params), view(grads), self._hyper(g)) for g, params, grads in work]
        if impl == "triton":
            from .kernels.triton import adagrad_norm as triton_adagrad_norm

            triton_adagrad_norm.optimizer_step(self, scopes, acc, steps)
        else:
            reduce = partial(shard_sum, every) if sharded else None  # FSDP2: ||g||^2 over all shards
            adagrad_norm(scopes, acc, steps, impl=impl, reduce=reduce)
        kept = []
        for group in groups:  # every param of the scope carries the new value
            for p in group["params"]:
                state = self.state[p]
                if p.grad is not None or "sum" in state:
                    old = state.get("sum")
                    if device is not None and old is not None and old.device == device:  # Triton: in place
                        kept.append(old)
                    else:
                        state["sum"] = acc.clone()
                    state.setdefault("step", torch.tensor(0.0, dtype=torch.float32))
        if kept:
            torch._foreach_copy_(kept, [acc] * len(kept))  # one launch, not one clone per param

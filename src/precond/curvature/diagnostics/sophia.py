"""Sophia's "win rate": the fraction of coordinates not clipped at the last step."""

from __future__ import annotations

from .base import Diagnostic, StepContext


class SophiaWinRate(Diagnostic):
    """``overall`` and ``param/<name>`` from :meth:`precond.optim.Sophia.win_rate`."""

    name = "sophia_win_rate"
    requires_method = "win_rate"

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        fn = getattr(ctx.optimizer, "win_rate", None)
        if not callable(fn):
            raise TypeError(f"{self.name} needs a Sophia optimizer (with win_rate()), got {type(ctx.optimizer).__name__}")
        wr = fn()
        names = {id(p): n for n, p in ctx.model.named_parameters()}
        out: dict[str, float | list[float]] = {"overall": float("nan") if wr["overall"] is None else wr["overall"]}
        for group, fracs in zip(ctx.optimizer.param_groups, wr["params"]):
            for p, f in zip(group["params"], fracs):
                if f is not None:
                    out[f"param/{names.get(id(p), str(id(p)))}"] = float(f)
        return out

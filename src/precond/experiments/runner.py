"""One run: a problem, an optimizer with its hyperparameters, a seed and a budget.

The loop is plain ``torch.optim`` training: ``zero_grad``, the problem's loss on the next
batch, ``backward``, ``step``, the problem's ``after_step``; every ``eval_every`` steps
(and at step 0 and the last step) it records the training loss and ``problem.evaluate``.

A run *diverges* at step ``t`` when the loss at ``t`` is NaN, inf or above
``divergence_bound``, or when the optimizer refuses a non-finite gradient
(:class:`~precond.optim.NonFiniteGradientError`): it is recorded with status
``"diverged"`` and ``diverged_step = t``, not raised.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from .diagnostics import make_diagnostics
from .run_config import RunConfig

if TYPE_CHECKING:
    from precond.problems import ProblemHandle


def _finite_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _metrics_of(problem: Any, model: torch.nn.Module, wanted: tuple[str, ...]) -> dict[str, Any]:
    with torch.no_grad():
        m = problem.evaluate(model)
    out = {k: (_finite_float(v) if not isinstance(v, (list, tuple)) else [float(a) for a in v]) for k, v in m.items()}
    missing = [w for w in wanted if w not in out]
    if missing:
        raise KeyError(f"metrics {missing} requested by the spec are not returned by {type(problem).__name__}.evaluate (it returns {sorted(out)})")
    return out


def append_evaluation(history: dict[str, list[Any]], step: int, loss: float, metrics: dict[str, Any]) -> None:
    """Append one evaluation to a run's history: ``step``, ``train_loss`` (the loss of the step's
    batch, which every run records) and the problem's ``evaluate()`` metrics, where a
    ``train_loss`` of its own (the classification and language problems' loss over the whole
    training split) is kept as ``train_set_loss``, so that each list has one entry per step."""
    history["step"].append(step)
    history["train_loss"].append(loss)
    for k, v in metrics.items():
        history.setdefault("train_set_loss" if k == "train_loss" else k, []).append(v)


NOISE_STREAM_OFFSET = 1_000_003  # a batch stream independent of the training one, for noise estimates


def _online_regret(problem: Any, played: list[list[float]], history: dict[str, list[Any]], final: dict[str, Any]) -> None:
    """For the online problems (Reddi et al.'s counterexamples): the average regret ``R_t / t`` of the points
    played, ``x_t`` at step t (:func:`precond.problems.counterexamples.regret`), at every evaluation and at the end."""
    from precond.problems.counterexamples import regret

    if not played:
        return
    avg = regret(problem, played).average.reshape(len(played), -1)[:, 0]
    history["average_regret"] = [math.nan if s == 0 else float(avg[s - 1]) for s in history["step"]]
    final["average_regret"] = float(avg[-1])


def run_one(cfg: RunConfig, problem: ProblemHandle | None = None) -> dict[str, Any]:
    """Run ``cfg`` to the end (or to divergence); returns the store record (without env).
    ``problem``: ``cfg``'s problem as its sweep resolved it (default: resolved from ``cfg``)."""
    from precond.optim import NonFiniteGradientError, get_optimizer

    t0 = time.perf_counter()
    problem = (problem or cfg.resolve_problem()).build()
    torch.manual_seed(cfg.seed)
    model = problem.model(cfg.seed)  # in the problem's dtype (the spec's, where the problem takes one)
    opt = get_optimizer(cfg.optimizer)(model.parameters(), **cfg.hyperparameters)
    schedule = None
    if cfg.lr_schedule == "inverse_sqrt":  # lr / sqrt(t) at step t = k + 1
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / math.sqrt(k + 1))
    batches = problem.batches(cfg.seed)
    # the spec's diagnostics at the evaluation cadence (they cost only when due); AGD's fraction only for AGD
    diags = [d for d in make_diagnostics(cfg.diagnostics, cfg.eval_every) if d.applies_to(opt)]
    feeder = None
    if getattr(opt, "needs_curvature", False):  # Sophia, GaussNewtonDiag: curvature every k steps
        from precond.curvature import CurvatureFeeder

        feeder = CurvatureFeeder(opt, model, loss_type=problem.loss_type, generator=torch.Generator().manual_seed(cfg.seed))
    sample_losses = None
    if diags:
        from precond.curvature.diagnostics import StepContext, run_after, run_before

        noise_batches = problem.batches(cfg.seed + NOISE_STREAM_OFFSET)

        def sample_losses(n: int) -> list[Any]:
            return [lambda m, b=next(noise_batches): problem.loss(m, b) for _ in range(n)]
    params = [p for p in model.parameters() if p.requires_grad]
    from precond.problems.counterexamples import OnlineLinear

    online = isinstance(problem, OnlineLinear)  # its regret needs the points played, trajectory or not
    track = (cfg.trajectory or online) and sum(p.numel() for p in params) in (1, 2)
    history: dict[str, list[Any]] = {"step": [], "train_loss": []}
    trajectory: list[list[float]] = []
    if track:
        trajectory.append(torch.cat([p.detach().reshape(-1) for p in params]).tolist())

    def record(step: int, loss: float, extra: dict[str, Any]) -> None:
        append_evaluation(history, step, loss, {**_metrics_of(problem, model, cfg.metrics), **extra})

    def agd_fraction() -> dict[str, float]:
        if hasattr(opt, "adaptive_fraction"):
            f = opt.adaptive_fraction()["overall"]
            return {"adaptive_fraction": math.nan if f is None else float(f)}
        return {}

    status, diverged_step = "done", None
    last_loss = math.nan
    reached = None  # budget.target: the steps taken when the loss was first <= target
    for t in range(1, cfg.steps + 1):
        batch = next(batches)
        if getattr(batch, "t", 0) == 0:
            batch.t = t
        if t == 1:
            with torch.no_grad():
                loss0 = float(problem.loss(model, batch))
            record(0, loss0, {})
        opt.zero_grad(set_to_none=True)
        loss = problem.loss(model, batch)
        lv = float(loss.detach())
        if cfg.target is not None and reached is None and lv <= cfg.target:
            reached = t - 1  # the loss of x_{t-1}, the iterate after t - 1 steps
        if not math.isfinite(lv) or lv > cfg.divergence_bound:
            status, diverged_step = "diverged", t
            break
        loss.backward()
        loss_fn = lambda m, b=batch: problem.loss(m, b)  # noqa: E731
        outputs_fn = lambda m, b=batch: problem.forward(m, b)  # noqa: E731
        if feeder is not None:
            feeder.maybe_update(loss_fn=loss_fn, outputs_fn=outputs_fn)
        if diags:
            ctx = StepContext(step=t - 1, model=model, optimizer=opt, loss_fn=loss_fn, outputs_fn=outputs_fn,
                              loss_type=problem.loss_type, sample_losses=sample_losses)  # fmt: skip
            run_before(diags, ctx)
        try:
            opt.step()
        except NonFiniteGradientError:
            status, diverged_step = "diverged", t
            break
        problem.after_step(model, t)
        if schedule is not None:
            schedule.step()
        if diags:
            ctx.step = t
            for k, v in run_after(diags, ctx).items():
                history.setdefault(f"diag.{k}", []).append(v)
                history.setdefault(f"diag.{k}.step", []).append(t)
        last_loss = lv
        if track:
            trajectory.append(torch.cat([p.detach().reshape(-1) for p in params]).tolist())
        if t % cfg.eval_every == 0 or t == cfg.steps:
            record(t, lv, agd_fraction())
    final: dict[str, Any] = {}
    if status == "done":
        final = {k: v[-1] for k, v in history.items() if k not in ("step",) and not k.endswith(".step") and v}
        final["train_loss"] = last_loss
        if cfg.target is not None:
            final["steps_to_target"] = cfg.steps + 1 if reached is None else reached
    if track and cfg.trajectory:
        history["trajectory"] = trajectory
    if online and status == "done":
        _online_regret(problem, trajectory[:-1], history, final)
    return {
        "status": status,
        "diverged_step": diverged_step,
        "final_metrics": final,
        "history": history,
        "wall_time": time.perf_counter() - t0,
        "mode": "loop",
    }

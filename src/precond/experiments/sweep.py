"""A sweep: every (optimizer, hyperparameters, seed) of a spec, in worker processes, into a store.

Runs already in the store are skipped (restart after any kill redoes nothing finished);
each finished run (or batch of vectorized runs) is committed in one transaction by the
parent process as soon as it arrives. Workers are ``spawn``/``forkserver`` processes with
one torch thread each. A run that raises is recorded in ``failures`` and retried on the
next start; a diverging run is a result, not an error.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .spec import Experiment, RunConfig, canonical_json, resolve_problem
from .store import Store


# ---- environment ---------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Package versions, git commit (if any), python, platform and device."""
    import numpy
    import torch

    import precond

    env: dict[str, Any] = {
        "precond": getattr(precond, "__version__", "?"),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        root = Path(precond.__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            env["git_commit"] = out.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5)  # fmt: skip
            env["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return env


# ---- tasks ---------------------------------------------------------------------------------------
@dataclass
class Task:
    configs: list[RunConfig]
    vectorized: bool


def _init_worker(extra_path: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    for p in extra_path:
        if p not in sys.path:
            sys.path.insert(0, p)


def execute(task: Task) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """Run a task; ``(key, record or None, error or None)`` per config."""
    from .runner import run_one
    from .vectorized import run_group

    try:
        if task.vectorized:
            recs = run_group(task.configs)
            return [(c.key, r, None) for c, r in zip(task.configs, recs)]
    except Exception:  # noqa: BLE001 - fall back to one-by-one, which reports per run
        pass
    out = []
    for c in task.configs:
        try:
            out.append((c.key, run_one(c), None))
        except Exception:  # noqa: BLE001
            out.append((c.key, None, traceback.format_exc(limit=8)))
    return out


def plan(configs: list[RunConfig], vectorize: str, max_rows: int = 4096) -> list[Task]:
    """Tasks: vectorizable configs grouped by :func:`vectorized.group_key`, the others one by one."""
    from .spec import vectorizable
    from .vectorized import ELEMENTWISE, group_key

    tasks: list[Task] = []
    if vectorize == "never" or not configs:
        return [Task([c], False) for c in configs]
    problem_ok: dict[str, bool] = {}
    groups: dict[str, list[RunConfig]] = {}
    for c in configs:
        pk = canonical_json([c.problem, c.problem_args])
        if pk not in problem_ok:
            try:
                problem_ok[pk] = vectorizable(resolve_problem(c.problem, c.problem_args))
            except Exception:  # noqa: BLE001 - the run itself will report it
                problem_ok[pk] = False
        if problem_ok[pk] and c.optimizer.lower() in ELEMENTWISE and not c.diagnostics:
            groups.setdefault(group_key(c), []).append(c)
        else:
            tasks.append(Task([c], False))
    for g in groups.values():
        for i in range(0, len(g), max_rows):
            tasks.append(Task(g[i : i + max_rows], True))
    return tasks


# ---- the sweep -----------------------------------------------------------------------------------
@dataclass
class SweepResult:
    total: int
    skipped: int
    ran: int
    diverged: int
    failed: int
    wall_time: float
    failures: list[str] = field(default_factory=list)


def run_sweep(
    exp: Experiment,
    store_path: str | Path,
    *,
    workers: int = 1,
    progress: bool = True,
    start_method: str | None = None,
    on_record: Callable[[RunConfig, dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every run of ``exp`` not yet in the store at ``store_path``."""
    t0 = time.perf_counter()
    store = Store(store_path)
    problem = resolve_problem(exp.spec.problem.name, exp.spec.problem.args)
    meta = {
        "val_metric": getattr(problem, "val_metric", "val_loss"),
        "test_metric": getattr(problem, "test_metric", "test_loss"),
        "higher_is_better": bool(getattr(problem, "higher_is_better", False)),
        "optimum": getattr(problem, "optimum", None),
        "kind": getattr(problem, "kind", ""),
        "vectorizable": bool(getattr(problem, "vectorizable", False)),
        "labels": exp.labels(),
        "grids": {lab: g for lab, g in zip(exp.labels(), exp.grids)},
        "seeds": list(exp.spec.seeds),
        "steps": exp.steps,
    }
    store.put_experiment(exp.name, exp.source, exp.spec.problem.name, meta)
    configs = exp.runs()
    done = store.done_keys(exp.name)
    todo = [c for c in configs if c.key not in done]
    skipped = len(configs) - len(todo)
    tasks = plan(todo, exp.spec.vectorize)
    env = environment()
    by_key = {c.key: c for c in todo}
    result = SweepResult(total=len(configs), skipped=skipped, ran=0, diverged=0, failed=0, wall_time=0.0)
    bar = _progress(len(configs), skipped, exp.name, progress)
    best: tuple[float, str] | None = None
    sign = -1.0 if meta["higher_is_better"] else 1.0

    def handle(outs: list[tuple[str, dict[str, Any] | None, str | None]]) -> None:
        nonlocal best
        records = []
        for key, rec, err in outs:
            cfg = by_key[key]
            if rec is None:
                store.put_failure(key, exp.name, cfg.to_dict(), err or "?")
                result.failed += 1
                result.failures.append(f"{cfg.label} {cfg.hyperparameters} seed={cfg.seed}: {(err or '').strip().splitlines()[-1]}")
                continue
            full = dict(rec, key=key, experiment=cfg.experiment, problem=cfg.problem, problem_args=cfg.problem_args,
                        optimizer=cfg.optimizer, label=cfg.label, hyperparameters=cfg.hyperparameters, seed=cfg.seed,
                        steps=cfg.steps, config=cfg.to_dict(), env=env)  # fmt: skip
            records.append(full)
            result.diverged += rec["status"] == "diverged"
            v = rec["final_metrics"].get(meta["val_metric"])
            if isinstance(v, (int, float)) and math.isfinite(v) and (best is None or sign * v < sign * best[0]):
                best = (float(v), cfg.label)
            if on_record is not None:
                on_record(cfg, full)
        result.ran += store.put_runs(records)
        if bar is not None:
            bar.update(len(outs))
            if best is not None:
                bar.set_postfix_str(f"best {meta['val_metric']}={best[0]:.4g} ({best[1]})", refresh=False)

    try:
        if workers <= 1 or len(tasks) <= 1:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for task in tasks:
                    handle(execute(task))
            finally:
                torch.set_num_threads(threads)
        else:
            method = start_method or ("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            ctx = mp.get_context(method)
            extra = [p for p in sys.path if p and os.path.isdir(p)]
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(extra,)) as pool:
                pending: set[Future] = {pool.submit(execute, t) for t in tasks}
                try:
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            handle(f.result())
                except BaseException:
                    for f in pending:
                        f.cancel()
                    raise
    finally:
        if bar is not None:
            bar.close()
        store.close()
    result.wall_time = time.perf_counter() - t0
    return result


def _progress(total: int, initial: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="run", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.2, smoothing=0.1)  # fmt: skip

"""A sweep: every (optimizer, hyperparameters, seed) of a spec, in worker processes, into a store.

Runs already in the store are skipped (restart after any kill redoes nothing finished);
each finished run (or batch of vectorized runs) is committed in one transaction by the
parent process as soon as it arrives. Workers are ``spawn``/``forkserver`` processes with
one torch thread each. A run that raises is recorded in ``failures`` and retried on the
next start; a diverging run is a result, not an error.

Where the tasks run is an :class:`Executor`: the sweep's own process (:class:`InProcess`), a
pool of worker processes (:class:`ProcessPool`, the default) or a Ray cluster
(:class:`.ray_backend.RayExecutor`); the sweep loop (claim, submit, store) is the same for all.
Each record's provenance (:func:`environment`: host, versions, device) is taken in the process
that ran it (:func:`run_task`).

Sharing and stopping:

* each task's runs are claimed in the store just before the task starts (at most
  ``workers`` tasks are in flight), so two sweeps of one spec on one store split the work
  instead of both computing every run; runs another sweep holds are skipped and counted
  (``SweepResult.taken``). A heartbeat thread keeps this sweep's claims fresh.
* workers ignore SIGINT and exit when the sweep process dies, even by SIGKILL
  (:mod:`.procs`); SIGTERM and Ctrl-C stop the workers, release the claims and raise
  :class:`KeyboardInterrupt` (:class:`Terminated` for SIGTERM), every finished run kept.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing as mp
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .run_config import RunConfig
from .spec import Experiment
from .store import LEASE_TIMEOUT, Lease, Store
from .tuning import test_higher_is_better

if TYPE_CHECKING:
    from precond.problems import ProblemHandle


# ---- environment ---------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Package versions, git commit (if any), python, host, platform and device of this process."""
    import numpy
    import torch

    import precond

    env: dict[str, Any] = {
        "precond": getattr(precond, "__version__", "?"),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
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
    """Runs for one worker: one config, or configs batched as one (``vectorized``), of ``problem``."""

    configs: list[RunConfig]
    vectorized: bool
    problem: ProblemHandle  # pickled by name: the worker looks up the factory, not the spec


def _init_worker(extra_path: list[str], owner_pid: int) -> None:
    import torch

    from .procs import exit_with

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle: it stops the workers
    exit_with(owner_pid)
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
            recs = run_group(task.configs, task.problem)
            return [(c.key, r, None) for c, r in zip(task.configs, recs)]
    except Exception:  # noqa: BLE001 - fall back to one-by-one, which reports per run
        pass
    out = []
    for c in task.configs:
        try:
            out.append((c.key, run_one(c, task.problem), None))
        except Exception:  # noqa: BLE001
            out.append((c.key, None, traceback.format_exc(limit=8)))
    return out


@functools.lru_cache(maxsize=1)
def _environment_here() -> tuple[tuple[str, Any], ...]:
    return tuple(environment().items())  # once per process: it runs git


def run_task(task: Task) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any] | None, str | None]]]:
    """:func:`execute` ``task`` here, with the provenance of this process (:func:`environment`, taken once
    per process): what every :class:`Executor` runs, in the sweep's process, a worker process or a Ray worker."""
    return dict(_environment_here()), execute(task)


def plan(configs: list[RunConfig], vectorize: str, problem: ProblemHandle, max_rows: int = 4096, workers: int = 1) -> list[Task]:
    """Tasks for ``configs`` (all of ``problem``): with a problem whose runs can be batched
    (:func:`vectorized.can_batch`: flat points, or a stacked model), the configs that can run in a
    batch (:func:`vectorized.batchable_config`: a batchable optimizer, no diagnostics, ...) grouped by
    :func:`vectorized.group_key`, at most ``max_rows`` a task (stacked models: fewer where their steps
    are costly, :func:`.batched_modules.stack_rows`, in enough tasks for ``workers``); the others one by one."""
    from .batched_modules import chunks, stack_rows
    from .vectorized import batchable_config, can_batch, group_key

    if vectorize == "never" or not can_batch(problem) or not configs:
        return [Task([c], False, problem) for c in configs]
    if not problem.vectorizable:
        max_rows = min(max_rows, stack_rows(problem))
        if max_rows == 1 and vectorize == "auto":  # one run a task is slower stacked than in the loop
            return [Task([c], False, problem) for c in configs]
    tasks: list[Task] = []
    groups: dict[str, list[RunConfig]] = {}
    for c in configs:
        if batchable_config(c):
            groups.setdefault(group_key(c), []).append(c)
        else:
            tasks.append(Task([c], False, problem))
    for g in groups.values():
        size = max_rows if problem.vectorizable else chunks(len(g), len(groups), workers, max_rows)
        for i in range(0, len(g), size):
            tasks.append(Task(g[i : i + size], True, problem))
    return tasks


def describe_plan(tasks: list[Task]) -> str:
    """One line: how the runs of ``tasks`` are batched, e.g. ``"175 runs: 175 batched (stacked models) in 5 tasks"``."""
    batched = [t for t in tasks if t.vectorized]
    n = sum(len(t.configs) for t in tasks)
    if not n:
        return ""
    if not batched:
        return f"{n} runs, one by one"
    how = "vectorized points" if batched[0].problem.vectorizable else "stacked models"
    k = sum(len(t.configs) for t in batched)
    return f"{n} runs: {k} batched ({how}) in {len(batched)} task{'s' * (len(batched) > 1)}, {n - k} one by one"


# ---- the sweep -----------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """Counts of one sweep: ``total = skipped + taken + ran + failed`` (less when interrupted)."""

    total: int
    skipped: int  # already in the store when the sweep started
    ran: int
    diverged: int  # of those that ran
    failed: int
    wall_time: float
    taken: int = 0  # claimed or stored by another process while this sweep ran
    archived: int = 0  # runs of the experiment's previous spec moved to archived_runs (replace=True)
    batched: int = 0  # of those that ran, how many in a batch (vectorized points or stacked models)
    plan: str = ""  # how the runs to do were batched (describe_plan)
    failures: list[str] = field(default_factory=list)


class Terminated(KeyboardInterrupt):
    """The sweep process received SIGTERM."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("SIGTERM")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class _Heartbeat(threading.Thread):
    """Refreshes ``lease``'s claims every ``interval`` seconds, on a connection of its own."""

    def __init__(self, path: str | Path, lease: Lease, interval: float) -> None:
        super().__init__(name="precond-claims-heartbeat", daemon=True)
        self.path, self.lease, self.interval, self.done = path, lease, interval, threading.Event()

    def run(self) -> None:
        store = Store(self.path)
        try:
            while not self.done.wait(self.interval):
                with contextlib.suppress(sqlite3.Error):
                    store.heartbeat(self.lease)
        finally:
            store.close()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


# ---- where tasks run -----------------------------------------------------------------------------
class Executor:
    """Where a sweep's tasks run. The sweep keeps at most ``slots`` tasks submitted and not finished,
    takes their results in the order they finish, and ends with :meth:`close` (all results in) or,
    interrupted (Ctrl-C, SIGTERM, an error), with :meth:`stop`."""

    slots: int = 1

    def submit(self, task: Task) -> Future:
        """A future of :func:`run_task` ``(task)``'s result, ``(environment, outcomes)``."""
        raise NotImplementedError

    def stop(self) -> None:
        """End the submitted tasks now: cancel those not started, end those running."""
        self.close()

    def close(self) -> None:
        """Every submitted task has finished: release what the executor holds for this sweep."""


class InProcess(Executor):
    """Each task runs in the sweep's own process when submitted, with one torch thread (restored at the end)."""

    def __init__(self) -> None:
        import torch

        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def submit(self, task: Task) -> Future:
        done: Future = Future()
        done.set_result(run_task(task))
        return done

    def close(self) -> None:
        import torch

        torch.set_num_threads(self._threads)


class ProcessPool(Executor):
    """``workers`` worker processes (``forkserver`` where available, else ``spawn``) with the sweep's
    ``sys.path``, one torch thread each; they ignore SIGINT and die with the sweep (:mod:`.procs`)."""

    def __init__(self, workers: int, start_method: str | None = None) -> None:
        method = start_method or ("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        extra = [p for p in sys.path if p and os.path.isdir(p)]
        self.slots = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                                         initializer=_init_worker, initargs=(extra, os.getpid()))  # fmt: skip

    def submit(self, task: Task) -> Future:
        return self._pool.submit(run_task, task)

    def stop(self) -> None:
        _stop_pool(self._pool)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (``shutdown`` alone waits for running tasks)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)  # (it drops pool._processes: read them first)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


def run_sweep(
    exp: Experiment,
    store_path: str | Path,
    *,
    workers: int = 1,
    progress: bool = True,
    start_method: str | None = None,
    on_record: Callable[[RunConfig, dict[str, Any]], None] | None = None,
    replace: bool = False,
    lease_timeout: float = LEASE_TIMEOUT,
    executor: Executor | None = None,
) -> SweepResult:
    """Run every run of ``exp`` not yet in the store at ``store_path`` nor claimed by another sweep.

    The tasks run on ``executor`` (e.g. a :class:`.ray_backend.RayExecutor`, its ``slots`` tasks
    in flight), else in ``workers`` worker processes (:class:`ProcessPool`), or in this process
    when ``workers <= 1`` or there is a single task (:class:`InProcess`).

    Raises :class:`~.store.StoreError` for a file that is no results store and
    :class:`~.store.SpecConflict` when the store holds runs of another spec under this
    experiment's name (unless ``replace``: they are archived), both before anything runs.
    """
    t0 = time.perf_counter()
    store = Store(store_path)
    try:
        problem = exp.problem
        tuning = exp.spec.tuning  # the spec's choice of metrics, else the problem's
        meta = {
            "val_metric": tuning.metric if tuning else problem.val_metric,
            "test_metric": (tuning.report or tuning.metric) if tuning else problem.test_metric,
            "higher_is_better": tuning.higher_is_better if tuning else problem.higher_is_better,
            "test_higher_is_better": tuning.report_higher_is_better if tuning else problem.test_higher_is_better,
            "optimum": getattr(problem.build(), "optimum", None),  # not one of the handle's fields
            "kind": problem.kind,
            "vectorizable": problem.flat,
            "labels": exp.labels(),
            "grids": {lab: g for lab, g in zip(exp.labels(), exp.grids)},
            "seeds": list(exp.spec.seeds),
            "steps": exp.steps,
        }
        meta["test_higher_is_better"] = test_higher_is_better(meta)  # a [tuning] report without a direction: by its name
        configs = exp.runs()
        archived = store.put_experiment(exp.name, exp.source, exp.spec.problem.name, meta, exp.spec_hash,
                                        [c.key for c in configs], replace=replace)  # fmt: skip
        done = store.done_keys(exp.name)
        todo = [c for c in configs if c.key not in done]
        result = SweepResult(total=len(configs), skipped=len(configs) - len(todo), ran=0, diverged=0, failed=0,
                             wall_time=0.0, archived=archived)  # fmt: skip
        _sweep(exp, store, store_path, todo, meta, result, workers=workers, progress=progress, start_method=start_method,
               on_record=on_record, lease_timeout=lease_timeout, executor=executor)  # fmt: skip
    finally:
        store.close()
    result.wall_time = time.perf_counter() - t0
    return result


def _sweep(exp: Experiment, store: Store, store_path: str | Path, todo: list[RunConfig], meta: dict[str, Any],
           result: SweepResult, *, workers: int, progress: bool, start_method: str | None,
           on_record: Callable[[RunConfig, dict[str, Any]], None] | None, lease_timeout: float,
           executor: Executor | None) -> None:  # fmt: skip
    """Claim, run and store ``todo`` (the body of :func:`run_sweep`), updating ``result``."""
    if executor is not None:
        workers = executor.slots
    planned = plan(todo, exp.spec.vectorize, exp.problem, workers=workers)
    result.plan = describe_plan(planned)
    tasks = iter(planned)
    by_key = {c.key: c for c in todo}
    bar = _progress(result.total, result.skipped, exp.name, progress)
    best: tuple[float, str] | None = None
    sign = -1.0 if meta["higher_is_better"] else 1.0
    lease = Lease()
    spec_hash = exp.spec_hash  # once: it hashes every run key

    def next_task() -> Task | None:
        """The next task, cut down to the runs this sweep could claim (None: nothing left)."""
        for task in tasks:
            claimed, taken = store.claim([c.key for c in task.configs], exp.name, lease, lease_timeout)
            result.taken += len(taken)
            if bar is not None and taken:
                bar.update(len(taken))
            if claimed:
                mine = set(claimed)
                return Task([c for c in task.configs if c.key in mine], task.vectorized, task.problem)
        return None

    def handle(env: dict[str, Any], outs: list[tuple[str, dict[str, Any] | None, str | None]]) -> None:
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
                        steps=cfg.steps, config=cfg.to_dict(), env=env, spec_hash=spec_hash)  # fmt: skip
            records.append(full)
            result.diverged += rec["status"] == "diverged"
            result.batched += rec.get("mode", "loop") != "loop"
            v = rec["final_metrics"].get(meta["val_metric"])
            if isinstance(v, (int, float)) and math.isfinite(v) and (best is None or sign * v < sign * best[0]):
                best = (float(v), cfg.label)
            if on_record is not None:
                on_record(cfg, full)
        inserted = store.put_runs(records)
        result.ran += inserted
        result.taken += len(records) - inserted  # another sweep stored them first (after taking over a stale claim)
        if bar is not None:
            bar.update(len(outs))
            if best is not None:
                bar.set_postfix_str(f"best {meta['val_metric']}={best[0]:.4g} ({best[1]})", refresh=False)

    beat = _Heartbeat(store_path, lease, lease_timeout / 6)
    beat.start()
    try:
        with _sigterm_interrupts():
            ex = executor or (InProcess() if workers <= 1 or len(planned) <= 1 else ProcessPool(workers, start_method))
            try:
                pending: set[Future] = set()
                while True:
                    while len(pending) < ex.slots and (task := next_task()) is not None:
                        pending.add(ex.submit(task))
                    if not pending:
                        break
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        handle(*f.result())
            except BaseException:
                ex.stop()
                raise
            ex.close()
    finally:
        beat.stop()
        with contextlib.suppress(sqlite3.Error):
            store.release(lease)
        if bar is not None:
            bar.close()


def _progress(total: int, initial: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="run", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.2, smoothing=0.1)  # fmt: skip

"""Running claims: plan their experiments, run them into a results store (resumable), measure,
decide, draw.

1. **Plan** (:func:`plan`): for each claim at one size, its experiments (spec dicts) become
   :class:`~precond.experiments.spec.Experiment` s named ``claims.<id>.<tag>.<hash>``, the
   hash being that of the spec's text: an experiment is its spec, so a sensitivity variant
   that leaves an experiment unchanged shares its runs, and editing a claim's spec makes a
   new experiment instead of mixing runs. Each open setting adds one variant per value of its
   sweep (the size's parameters with that value).
2. **Run** (:func:`execute`): every experiment not yet complete in the store runs through
   :func:`precond.experiments.sweep.run_sweep` (each run committed as it finishes: kill at
   any moment, start again, nothing finished is redone); computations
   (:class:`~precond.claims.base.Computation`) run beside them. ``workers`` processes share
   the jobs (each runs its sweeps in-process), which exit when this process dies; one
   progress bar counts runs.
3. **Decide** (:func:`evaluate`): ``measure`` reads the runs of exactly the spec each
   experiment names (every run's ``spec_hash`` is checked, and a missing run makes the claim
   inconclusive), ``verdict`` applies the rule, ``figure`` draws the main variant.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from precond.experiments.spec import Experiment, parse_spec
from precond.experiments.store import Store

from .base import INCONCLUSIVE, Claim, Computation, OpenSetting, Verdict, flag

# ---- spec dicts as TOML -----------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "inf" if v == math.inf else "-inf" if v == -math.inf else "nan" if math.isnan(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(a) for a in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(a)}" for k, a in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} ({type(v).__name__}) as a TOML value")


def to_toml(spec: Mapping[str, Any]) -> str:
    """A spec dict (top-level keys, ``problem`` and ``budget`` tables, ``optimizers`` list) as TOML
    text for :func:`precond.experiments.spec.parse_spec`; nested dicts below them are inline tables."""
    top = [f"{k} = {_toml_value(v)}" for k, v in spec.items() if not isinstance(v, Mapping) and k != "optimizers"]
    out = top
    for k, v in spec.items():
        if isinstance(v, Mapping):
            out += ["", f"[{k}]"] + [f"{a} = {_toml_value(b)}" for a, b in v.items()]
    for o in spec.get("optimizers", []):
        out += ["", "[[optimizers]]"] + [f"{a} = {_toml_value(b)}" for a, b in o.items() if a != "hyperparameters"]
        if o.get("hyperparameters"):
            out += ["[optimizers.hyperparameters]"] + [f"{a} = {_toml_value(b)}" for a, b in o["hyperparameters"].items()]
    return "\n".join(out) + "\n"


def experiment_name(claim_id: str, tag: str, spec: Mapping[str, Any]) -> str:
    """``claims.<id>.<tag>.<8 hex digits of the spec text's hash>``."""
    digest = hashlib.sha256(to_toml({k: v for k, v in spec.items() if k != "name"}).encode()).hexdigest()[:8]
    return f"claims.{claim_id}.{tag}.{digest}"


def _computation_key(c: Computation) -> str:
    """A hash of the function's name, its arguments and its module's source (an edited module is a new computation)."""
    import inspect

    source = inspect.getsource(importlib.import_module(c.func.partition(":")[0]))
    return hashlib.sha256(json.dumps([c.func, dict(c.kwargs), source], sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_dir(store_path: str | Path) -> Path:
    """Where the computations' results are kept beside a store: ``<store>.computed/<key>.json``."""
    return Path(f"{store_path}.computed")


# ---- the plan ---------------------------------------------------------------------------------


@dataclass
class Variant:
    """The claim at one setting: the main choice (``setting is None``) or one value of an open setting's sweep."""

    setting: OpenSetting | None
    value: Any
    params: dict[str, Any]
    sweeps: dict[str, str] = field(default_factory=dict)  # tag -> experiment name
    computations: dict[str, str] = field(default_factory=dict)  # tag -> computation key


@dataclass
class ClaimPlan:
    claim: Claim
    size: str
    variants: list[Variant]
    errors: list[str] = field(default_factory=list)


@dataclass
class Plan:
    claims: list[ClaimPlan]
    sweeps: dict[str, Experiment]
    computations: dict[str, Computation]
    size: str = "quick"
    sensitivity: bool = True


def _variant(claim: Claim, params: dict[str, Any], setting: OpenSetting | None, value: Any, plan_: Plan,
             errors: list[str]) -> Variant:  # fmt: skip
    var = Variant(setting, value, params)
    for tag, spec in claim.experiments(params).items():
        name = experiment_name(claim.id, tag, spec)
        var.sweeps[tag] = name
        if name not in plan_.sweeps:
            try:
                plan_.sweeps[name] = parse_spec(to_toml({"name": name, **spec}), f"claim {claim.id} ({tag})")
            except Exception as exc:  # noqa: BLE001 - reported as the claim's error
                errors.append(f"experiment {tag}: {exc}")
                del var.sweeps[tag]
    for tag, comp in claim.computations(params).items():
        key = _computation_key(comp)
        var.computations[tag] = key
        plan_.computations.setdefault(key, comp)
    return var


def plan(claims: list[Claim], size: str, *, sensitivity: bool = True) -> Plan:
    """The experiments and computations of ``claims`` at ``size`` (and of their sensitivity sweeps)."""
    out = Plan([], {}, {}, size, sensitivity)
    for claim in claims:
        errors: list[str] = []
        params = claim.params(size)
        variants = [_variant(claim, params, None, None, out, errors)]
        if sensitivity:
            for s in claim.open_settings:
                for v in s.alternatives():
                    variants.append(_variant(claim, {**params, s.param: v}, s, v, out, errors))
        out.claims.append(ClaimPlan(claim, size, variants, errors))
    return out


# ---- running ----------------------------------------------------------------------------------


def _init_worker(owner_pid: int) -> None:
    import torch

    from precond.experiments.procs import exit_with

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    exit_with(owner_pid)
    torch.set_num_threads(1)


def _sweep_job(text: str, name: str, store_path: str, on_record: Callable | None = None) -> tuple[str, int]:
    """Run one experiment (in this process) into the store; returns ``(name, runs that failed)``."""
    from precond.experiments.sweep import run_sweep

    exp = parse_spec(text, name)
    res = run_sweep(exp, store_path, workers=1, progress=False, replace=True, on_record=on_record)
    return name, res.failed


def _computation_job(key: str, func: str, kwargs: dict[str, Any], cache: str) -> tuple[str, dict[str, Any]]:
    """Compute (or read from ``cache``) one computation; a new result is written atomically."""
    path = Path(cache) / f"{key}.json"
    if path.is_file():
        return key, json.loads(path.read_text())
    mod, _, attr = func.partition(":")
    result = getattr(importlib.import_module(mod), attr)(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return key, json.loads(path.read_text())


@dataclass
class Outcome:
    """What :func:`execute` produced: computed results, and errors by experiment name or computation key."""

    computed: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0
    runs: int = 0  #: runs of every planned experiment
    stored_before: int = 0  #: of them, already in the store when execute started
    stored_after: int = 0  #: of them, in the store when it ended


def _done(store: Store, name: str, keys: set[str]) -> int:
    return len(store.done_keys(name) & keys)


def _cost(exp: Experiment) -> float:
    return len(exp.runs()) * exp.steps


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` processes (None for one: everything runs here) that exit when this process dies;
    an exception (Ctrl-C, SIGTERM) ends them at once, every finished run staying in the store."""
    if workers <= 1:
        yield None
        return
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method), initializer=_init_worker,
                               initargs=(os.getpid(),))  # fmt: skip
    try:
        yield pool
    except BaseException:
        procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
        pool.shutdown(wait=False, cancel_futures=True)  # (it drops pool._processes: read them first)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        raise
    pool.shutdown(wait=True)


def execute(p: Plan, store_path: str | Path, *, workers: int = 1, progress: bool = True,
            pool: ProcessPoolExecutor | None = None) -> Outcome:  # fmt: skip
    """Run every experiment of ``p`` not yet complete in the store, and every computation, in
    ``pool`` (or a pool of ``workers`` made for the call; in this process when 1).

    Raises :class:`KeyboardInterrupt` (Ctrl-C or, as :class:`precond.experiments.sweep.Terminated`,
    SIGTERM) after stopping the workers; every finished run stays in the store.
    """
    from precond.experiments.sweep import Terminated

    t0 = time.perf_counter()
    store_path = str(store_path)
    out = Outcome()
    keys = {n: {c.key for c in e.runs()} for n, e in p.sweeps.items()}
    with Store(store_path) as store:  # refuses a file that is no results store, before anything runs
        done = {n: _done(store, n, keys[n]) for n in p.sweeps}
    total = {n: len(k) for n, k in keys.items()}
    out.runs, out.stored_before = sum(total.values()), sum(done.values())
    todo = sorted((n for n in p.sweeps if done[n] < total[n]), key=lambda n: -_cost(p.sweeps[n]))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(total.values()) + len(p.computations), initial=sum(done.values()), desc="claims",
                   unit="run", file=sys.stderr, dynamic_ncols=True, mininterval=0.2)  # fmt: skip

    def tick(n: int = 1) -> None:
        if bar is not None:
            bar.update(n)

    def stop(signum: int, frame: Any) -> None:
        raise Terminated("SIGTERM")

    old = signal.signal(signal.SIGTERM, stop) if _main_thread() else None
    try:
        if pool is not None:
            _execute_pool(p, store_path, todo, pool, out, bar, {n: (done[n], keys[n]) for n in todo})
        elif workers > 1:
            with worker_pool(workers) as own:
                _execute_pool(p, store_path, todo, own, out, bar, {n: (done[n], keys[n]) for n in todo})
        else:
            for n in todo:
                try:
                    _, failed = _sweep_job(p.sweeps[n].source, n, store_path, on_record=lambda cfg, rec: tick())
                    if failed:
                        out.errors[n] = f"{failed} run(s) failed"
                except Exception as exc:  # noqa: BLE001 - the claim reports it
                    out.errors[n] = f"{type(exc).__name__}: {exc}"
            for key, comp in p.computations.items():
                _run_computation_here(key, comp, out, str(cache_dir(store_path)))
                tick()
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if bar is not None:
            bar.close()
    with Store(store_path) as store:
        out.stored_after = sum(_done(store, n, keys[n]) for n in p.sweeps)
    out.wall_time = time.perf_counter() - t0
    return out


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run_computation_here(key: str, comp: Computation, out: Outcome, cache: str) -> None:
    try:
        out.computed[key] = _computation_job(key, comp.func, dict(comp.kwargs), cache)[1]
    except Exception as exc:  # noqa: BLE001
        out.errors[key] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"


def _execute_pool(p: Plan, store_path: str, todo: list[str], pool: ProcessPoolExecutor, out: Outcome, bar: Any,
                  shown: dict[str, tuple[int, set[str]]]) -> None:  # fmt: skip
    """:func:`execute` in ``pool``; ``shown``: per experiment, the runs counted so far and its keys."""
    futures: dict[Future, str] = {}
    for n in todo:
        futures[pool.submit(_sweep_job, p.sweeps[n].source, n, store_path)] = n
    for key, comp in p.computations.items():
        futures[pool.submit(_computation_job, key, comp.func, dict(comp.kwargs), str(cache_dir(store_path)))] = key
    pending = set(futures)
    with Store(store_path) as store:
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in finished:
                job = futures[f]
                try:
                    res = f.result()
                except Exception as exc:  # noqa: BLE001 - the claim reports it
                    out.errors[job] = f"{type(exc).__name__}: {exc}"
                    continue
                if job in p.computations:
                    out.computed[job] = res[1]
                    if bar is not None:
                        bar.update(1)
                elif res[1]:
                    out.errors[job] = f"{res[1]} run(s) failed"
            if bar is not None:
                for n, (before, keys) in shown.items():
                    now = _done(store, n, keys)
                    bar.update(now - before)
                    shown[n] = (now, keys)


# ---- deciding ---------------------------------------------------------------------------------


class MissingRuns(RuntimeError):
    """An experiment of the claim is not complete in the store (runs failed or were not run)."""


class Inputs:
    """What ``measure`` reads: the runs of each experiment (of its spec only), its problem, and
    the computed results."""

    def __init__(self, store: Store, p: Plan, variant: Variant, outcome: Outcome, cache: dict | None = None) -> None:
        self._store, self._plan, self._variant, self._outcome = store, p, variant, outcome
        self._cache = {} if cache is None else cache  # (name, history) -> runs, shared by a claim's variants

    def experiment(self, tag: str) -> Experiment:
        try:
            return self._plan.sweeps[self._variant.sweeps[tag]]
        except KeyError:
            raise MissingRuns(f"experiment {tag!r} was not planned (its spec was refused)") from None

    def runs(self, tag: str, *, history: bool = True) -> list[dict[str, Any]]:
        """Every run of experiment ``tag``, all of its spec (raises :class:`MissingRuns` otherwise)."""
        exp = self.experiment(tag)
        if (exp.name, history) not in self._cache:
            self._cache[(exp.name, history)] = self._store.runs(exp.name, history=history)
        runs = self._cache[(exp.name, history)]
        keys, spec_hash = {c.key for c in exp.runs()}, exp.spec_hash
        runs = [r for r in runs if r["key"] in keys and r["spec_hash"] == spec_hash]
        if len(runs) < len(keys):
            err = self._outcome.errors.get(exp.name, "not run yet")
            raise MissingRuns(f"experiment {tag!r} ({exp.name}): {len(keys) - len(runs)} of {len(keys)} runs missing ({err})")
        return runs

    def grids(self, tag: str) -> dict[str, dict[str, list[Any]]]:
        """Label -> hyperparameter -> the values of its grid, as the spec expanded them."""
        exp = self.experiment(tag)
        return dict(zip(exp.labels(), exp.grids))

    def problem(self, tag: str) -> Any:
        from precond.problems import resolve

        s = self.experiment(tag).spec
        return resolve(s.problem.name, dict(s.problem.args), s.dtype).build()

    def computed(self, tag: str) -> dict[str, Any]:
        key = self._variant.computations.get(tag)
        if key is None or key not in self._outcome.computed:
            raise MissingRuns(f"computation {tag!r} failed: {self._outcome.errors.get(key or '', 'not run')}")
        return self._outcome.computed[key]


@dataclass
class Sensitivity:
    setting: OpenSetting
    value: Any
    verdict: Verdict


@dataclass
class ClaimResult:
    claim: Claim
    size: str
    params: dict[str, Any]
    verdict: Verdict
    numbers: dict[str, Any]
    figure: Path | None
    sensitivity: list[Sensitivity]
    experiments: list[dict[str, Any]]  # tag, name, spec_hash, runs

    def to_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id, "title": c.title, "source": c.source, "claim": c.statement, "expected": c.expected,
            "verdict": self.verdict.status, "measured": self.verdict.measured, "rule": c.rule,
            "checks": [k.to_dict() for k in self.verdict.checks], "notes": self.verdict.notes,
            "figure": None if self.figure is None else str(self.figure), "size": self.size,
            "numbers": _public(self.numbers), "experiments": self.experiments,
            "open_settings": [{"name": s.name, "choice": s.choice, "why": s.why, "values": list(s.values)}
                              for s in c.open_settings],
            "sensitivity": [{"setting": s.setting.name, "value": s.value, "verdict": s.verdict.status,
                             "measured": s.verdict.measured} for s in self.sensitivity],
        }  # fmt: skip


def _public(numbers: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in numbers.items() if not k.startswith("_")}


def _decide(claim: Claim, inputs: Inputs, params: dict[str, Any]) -> tuple[Verdict, dict[str, Any]]:
    try:
        numbers = claim.measure(inputs, params)
    except MissingRuns as exc:
        return Verdict(INCONCLUSIVE, [flag("runs", str(exc))], f"not measured: {exc}"), {}
    return claim.verdict(numbers), numbers


def _evaluate_claim(cp: ClaimPlan, p: Plan, outcome: Outcome, store: Store, figdir: str | Path | None) -> ClaimResult:
    cache: dict = {}
    main = cp.variants[0]
    verdict, numbers = _decide(cp.claim, Inputs(store, p, main, outcome, cache), main.params)
    if cp.errors:
        verdict = Verdict(INCONCLUSIVE, verdict.checks + [flag("plan", e) for e in cp.errors], verdict.measured,
                          verdict.notes)  # fmt: skip
    fig = None
    if figdir is not None and numbers:
        fig = cp.claim.figure(numbers, Path(figdir) / cp.claim.id)
    sens = [Sensitivity(v.setting, v.value, _decide(cp.claim, Inputs(store, p, v, outcome, cache), v.params)[0])
            for v in cp.variants[1:] if v.setting is not None]  # fmt: skip
    exps = [{"tag": tag, "name": name, "spec_hash": p.sweeps[name].spec_hash, "runs": len(p.sweeps[name].runs())}
            for tag, name in main.sweeps.items()]  # fmt: skip
    return ClaimResult(cp.claim, cp.size, main.params, verdict, numbers, fig, sens, exps)


def _evaluate_job(claim_id: str, size: str, sensitivity: bool, store_path: str, figdir: str | None,
                  outcome: Outcome) -> tuple[Any, ...]:  # fmt: skip
    """:func:`evaluate` of one claim in a worker (it plans the claim again: a Claim does not pickle)."""
    from .registry import get

    p = plan(get([claim_id]), size, sensitivity=sensitivity)
    with Store(store_path) as store:
        r = _evaluate_claim(p.claims[0], p, outcome, store, figdir)
    return r.verdict, r.numbers, r.figure, [(s.setting.param, s.value, s.verdict) for s in r.sensitivity], r.experiments


def evaluate(p: Plan, outcome: Outcome, store_path: str | Path, figdir: str | Path | None,
             pool: ProcessPoolExecutor | None = None) -> list[ClaimResult]:  # fmt: skip
    """Measure, decide and draw every claim of ``p`` (figures under ``figdir``; None: no figures),
    one claim per task of ``pool`` when given."""
    if pool is None or len(p.claims) < 2:
        with Store(store_path) as store:
            return [_evaluate_claim(cp, p, outcome, store, figdir) for cp in p.claims]
    def cost(cp: ClaimPlan) -> int:  # the claims with the most runs to read first
        return -sum(len(p.sweeps[n].runs()) for v in cp.variants for n in v.sweeps.values())

    futures = {cp.claim.id: pool.submit(_evaluate_job, cp.claim.id, p.size, p.sensitivity, str(store_path),
                                        None if figdir is None else str(figdir), outcome)
               for cp in sorted(p.claims, key=cost)}  # fmt: skip
    results = []
    for cp in p.claims:
        f = futures[cp.claim.id]
        verdict, numbers, fig, sens, exps = f.result()
        settings = {s.param: s for s in cp.claim.open_settings}
        results.append(ClaimResult(cp.claim, cp.size, cp.variants[0].params, verdict, numbers, fig,
                                   [Sensitivity(settings[k], v, vd) for k, v, vd in sens], exps))  # fmt: skip
    return results

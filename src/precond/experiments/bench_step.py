"""Optimizer step speed and memory: every precond optimizer on every path against torch's Adam.

For each optimizer and path (loop / foreach / fused) and torch.optim.Adam's own paths,
measured in one process: median ms per step, effective GB/s (the minimal traffic of the
rule: 7 floats per parameter for Adam and AGD, 9 with amsgrad, divided by the time), the
ratio to torch.optim.Adam(fused=True), the ratio to torch's fused optimizer of the same
rule where torch has one ("x torch same rule": AMSGrad against torch's fused AMSGrad, which
moves 9 floats per parameter to Adam's 7; SGD, AdaGrad, AdamW likewise; AGD against Adam,
AGD with amsgrad against AMSGrad), the peak memory of a step (peak RSS of a forked child
above its parameters and gradients, i.e. optimizer state plus temporaries; CUDA: peak
allocated), and the first step (state creation, and the kernels' build or load).

The machine's speed drifts (by about 40% within minutes on a shared 2-core VM): every
configuration is timed in alternation, step by step, with a torch.optim.Adam(fused=True)
(the baseline) on the same tensors, in ``--rounds`` rounds (baseline first in even rounds,
the configuration first in odd ones: ABAB..., then BABA...). A round's ratio is the median
of its steps over the median of its baseline steps; the row's ratio is the median of the
round ratios, and its spread their interquartile range over their median. A row is flagged
``noisy`` when that spread exceeds ``--noise-threshold`` (default 0.10) or the baseline's
own round medians spread by more than ``BASELINE_NOISE`` (0.25): the machine was too busy
for its ratio to mean much (:func:`round_stats`). Only these same-process ratios mean anything.

Fast paths run with ``nan_policy="propagate"`` (torch's behaviour, no check); the rows
``agd+check`` add precond's default ``nan_policy="raise"`` (one read-only pass over the
gradients before the step).

    precond bench step                          # the GPT-2-like list, float32, CPU
    precond bench step --preset small --steps 5 --optimizers agd,adam
    precond bench step --model mnist1d_mlp --json out.json
    precond bench step --rounds 9 --steps 27      # more rounds: a noisy machine shows as spread
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import queue
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from precond.problems import DTYPES

# GPT-2-like list of the issue: 74.7M parameters in 149 tensors
PRESETS: dict[str, list[tuple[int, ...]]] = {
    "gpt2": [(768, 768)] * 24 + [(768, 3072)] * 12 + [(3072, 768)] * 12 + [(768,)] * 100 + [(5000, 768)],
    "small": [(256, 256)] * 8 + [(256, 1024)] * 4 + [(1024, 256)] * 4 + [(256,)] * 20 + [(2000, 256)],
}



def _fed(opt: Any) -> Any:
    """A curvature optimizer with one curvature estimate received (a positive diagonal)."""
    opt.update_curvature([torch.full_like(p, 0.5) for g in opt.param_groups for p in g["params"]])
    return opt


# optimizer name -> (constructor over params, floats moved per parameter by its rule): the
# cases of precond.optim.cases with a bench row name, each at lr=1e-4
def _optimizers() -> dict[str, tuple[Callable[..., torch.optim.Optimizer], int]]:
    from precond.optim.cases import cases

    def maker(case: Any) -> Callable[..., torch.optim.Optimizer]:
        def make(ps: list[torch.Tensor], **kw: Any) -> torch.optim.Optimizer:
            opt = case.make(ps, lr=1e-4, **kw)
            return _fed(opt) if case.needs_curvature else opt

        return make

    return {case.bench: (maker(case), case.traffic) for case in cases(bench=True)}


def _torch_optimizers() -> dict[str, tuple[Callable[..., torch.optim.Optimizer], int]]:
    return {
        "torch.Adam fused": (lambda ps: torch.optim.Adam(ps, lr=1e-4, fused=True), 7),
        "torch.Adam foreach": (lambda ps: torch.optim.Adam(ps, lr=1e-4, foreach=True), 7),
        "torch.Adam loop": (lambda ps: torch.optim.Adam(ps, lr=1e-4, foreach=False), 7),
        "torch.AdamW fused": (lambda ps: torch.optim.AdamW(ps, lr=1e-4, fused=True), 7),
        "torch.Adam amsgrad fused": (lambda ps: torch.optim.Adam(ps, lr=1e-4, amsgrad=True, fused=True), 9),
        "torch.SGD fused": (lambda ps: torch.optim.SGD(ps, lr=1e-4, momentum=0.9, fused=True), 5),
        "torch.Adagrad fused": (lambda ps: torch.optim.Adagrad(ps, lr=1e-4, fused=True), 5),
    }


#: torch's fused optimizer with the same rule (and traffic) as a precond one: the column
#: "x torch same rule". AGD's is Adam (what AGD replaces; same traffic), amsgrad or not.
TORCH_COUNTERPART = {
    "agd": "torch.Adam fused",
    "agd+check": "torch.Adam fused",
    "agd_amsgrad": "torch.Adam amsgrad fused",
    "adam": "torch.Adam fused",
    "adamw": "torch.AdamW fused",
    "amsgrad": "torch.Adam amsgrad fused",
    "sgd": "torch.SGD fused",
    "adagrad": "torch.Adagrad fused",
}
TORCH_PATH_ROWS = ("torch.Adam foreach", "torch.Adam loop")


PATHS = {"loop": dict(foreach=False, fused=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
DEFAULT_OPTIMIZERS = "agd,agd_amsgrad,adam,adamw,amsgrad,sgd,adagrad,rmsprop,adabound,sophia,gauss_newton,adagrad_norm"
#: a row is noisy when the IQR/median of its round ratios exceeds this (``--noise-threshold``)
NOISE_THRESHOLD = 0.10
#: a row is noisy too when the baseline's own round medians spread (IQR/median) by more than this
BASELINE_NOISE = 0.25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpt2", help="parameter list (default: the GPT-2-like 74.7M list)")
    parser.add_argument("--model", default=None, help="use the parameters of this problem's model instead (see `precond problems`)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--optimizers", default=DEFAULT_OPTIMIZERS, help=f"comma-separated subset of {DEFAULT_OPTIMIZERS}")
    parser.add_argument("--paths", default="loop,foreach,fused", help="comma-separated subset of loop,foreach,fused")
    parser.add_argument("--steps", type=int, default=15, help="timed steps per configuration (after 2 warm-up steps), split into --rounds rounds")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of steps alternating with the baseline; the ratio is the median of the round ratios (default 5)")
    parser.add_argument("--noise-threshold", type=float, default=NOISE_THRESHOLD,
                        help=f"flag a row noisy when the IQR/median of its round ratios exceeds this (default {NOISE_THRESHOLD})")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--no-torch-paths", action="store_true", help="skip torch's foreach and loop Adam rows (its fused optimizers are always timed)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")


@dataclass(frozen=True)
class RoundStats:
    ratio: float  # median of the round ratios
    ratio_spread: float  # IQR / median of the round ratios (nan for 1 round)
    round_ratios: list[float]
    median_s: float  # median of all the configuration's timed steps
    baseline_s: float  # median of all the baseline's timed steps
    baseline_spread: float  # IQR / median of the baseline's round medians (nan for 1 round)
    noisy: bool
    reason: str  # why it is noisy, "" otherwise


def _iqr_over_median(x: list[float]) -> float:
    if len(x) < 2:
        return math.nan
    q1, med, q3 = statistics.quantiles(x, n=4, method="inclusive")
    return (q3 - q1) / med


def round_stats(times: list[list[float]], baseline: list[list[float]], *, threshold: float = NOISE_THRESHOLD,
                baseline_threshold: float = BASELINE_NOISE) -> RoundStats:  # fmt: skip
    """Ratio, spread and noise flag from per-round step times (``times[r]``, ``baseline[r]``: the
    seconds of round ``r``'s steps of the configuration and of the baseline).

    ``ratio_r = median(times[r]) / median(baseline[r])``; ``ratio = median_r ratio_r``, robust
    to a minority of disturbed rounds; ``spread = IQR(ratio_r) / ratio`` (quartiles by linear
    interpolation). Noisy when ``spread > threshold`` or the baseline's round medians have
    ``IQR / median > baseline_threshold``: timings that vary this much between rounds give a
    ratio that another run would not reproduce.
    """
    if len(times) != len(baseline) or not times or not all(times) or not all(baseline):
        raise ValueError("round_stats needs the same number (>= 1) of non-empty rounds of times and of baseline times")
    base_med = [statistics.median(b) for b in baseline]
    ratios = [statistics.median(t) / b for t, b in zip(times, base_med)]
    spread, bspread = _iqr_over_median(ratios), _iqr_over_median(base_med)
    why = []
    if spread > threshold:
        why.append(f"round ratios spread {spread:.0%} > {threshold:.0%}")
    if bspread > baseline_threshold:
        why.append(f"baseline rounds spread {bspread:.0%} > {baseline_threshold:.0%}")
    return RoundStats(
        ratio=statistics.median(ratios), ratio_spread=spread, round_ratios=ratios,
        median_s=statistics.median([x for t in times for x in t]),
        baseline_s=statistics.median([x for b in baseline for x in b]),
        baseline_spread=bspread, noisy=bool(why), reason="; ".join(why),
    )  # fmt: skip


def _rounds(steps: int, rounds: int) -> list[int]:
    """Steps per round: ``steps`` split into ``min(rounds, steps)`` rounds as evenly as possible."""
    r = max(1, min(rounds, steps))
    return [steps // r + (i < steps % r) for i in range(r)]


def _interleaved(opt: torch.optim.Optimizer, baseline: torch.optim.Optimizer, device: str, per_round: list[int]):
    """Per-round step times of ``opt`` and ``baseline``, alternated step by step; the baseline
    steps first in even rounds and second in odd ones (ABAB..., BABA...), so that neither
    always follows the other."""
    times: list[list[float]] = []
    base: list[list[float]] = []
    for r, k in enumerate(per_round):
        t, b = [], []
        for _ in range(k):
            if r % 2 == 0:
                b.append(_timed_step(baseline, device))
                t.append(_timed_step(opt, device))
            else:
                t.append(_timed_step(opt, device))
                b.append(_timed_step(baseline, device))
        times.append(t)
        base.append(b)
    return times, base


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _shapes(args: argparse.Namespace) -> list[tuple[int, ...]]:
    if args.model is None:
        return PRESETS[args.preset]
    from precond.problems import resolve

    model = resolve(args.model).build().model(0)
    return [tuple(p.shape) for p in model.parameters()]


def make_tensors(shapes: list[tuple[int, ...]], dtype: torch.dtype, device: str) -> list[torch.Tensor]:
    """Parameters ~ N(0, 0.02^2) with gradients ~ N(0, 1e-4) (no subnormals in the states)."""
    g = torch.Generator().manual_seed(0)
    params = []
    for s in shapes:
        p = (torch.randn(s, generator=g) * 0.02).to(device=device, dtype=dtype).requires_grad_()
        p.grad = (torch.randn(s, generator=g) * 1e-2).to(device=device, dtype=dtype)
        params.append(p)
    return params


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed_step(opt: torch.optim.Optimizer, device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    opt.step()
    _sync(device)
    return time.perf_counter() - t


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Linux: reset this process's peak RSS (VmHWM) to its current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _peak_rss_bytes() > 0
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _exact_rss() -> None:
    """glibc: serve every block above 128 KiB by mmap (no dynamic threshold), so freed
    tensors leave the RSS at once and the RSS follows the live memory."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except Exception:  # not glibc: the measure is only coarser
        pass


def _memory_child(queue: Any, shapes, dtype, device, name, path) -> None:
    try:
        _exact_rss()
        make = _factory(name, path)
        # warm up on a tiny list first (libraries, kernels, thread pools), so that only the
        # step's own memory is measured
        tiny = make_tensors([(8,), (4, 4)], dtype, device)
        warm = make(tiny)
        for _ in range(2):
            warm.step()
        params = make_tensors(shapes, dtype, device)
        # The peak counts from after construction: a curvature optimizer's constructor here
        # feeds it one estimate (a temporary the size of the params, not the step's memory);
        # the state it creates stays counted (measured from `base`, taken before).
        if device.startswith("cuda"):
            base = torch.cuda.memory_allocated()
            opt = make(params)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            for _ in range(3):
                opt.step()
            torch.cuda.synchronize()
            queue.put(torch.cuda.max_memory_allocated() - base)
            return
        _exact_rss()
        base = _rss_bytes()
        opt = make(params)
        _exact_rss()
        resettable = _reset_peak_rss()
        for _ in range(3):
            opt.step()
        peak = _peak_rss_bytes() if resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        queue.put(peak - base)
    except Exception as exc:  # pragma: no cover - reported, not raised
        queue.put(f"{type(exc).__name__}: {exc}")


def peak_step_memory(shapes, dtype, device, name, path, timeout: float = 600.0) -> float | str:
    """Peak memory of steps in a fresh child process, above its params and grads (bytes), or
    a message saying why it could not be measured.

    The child comes from a fork server (a clean process that imported torch and nothing ran
    in): a plain fork of a process whose OpenMP threads have run can deadlock in the child
    (GNU libgomp is not fork-safe), and a spawned child would pay torch's import each time.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "precond.experiments.bench_step"])
    q = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(q, shapes, dtype, device, name, path))
    proc.start()
    try:
        out = q.get(timeout=timeout)
    except queue.Empty:
        out = f"no answer from the memory probe in {timeout:.0f} s (exit code {proc.exitcode})"
    proc.join(timeout=30)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return out


def _factory(name: str, path: str | None) -> Callable[[list[torch.Tensor]], torch.optim.Optimizer]:
    if name.startswith("torch."):
        return _torch_optimizers()[name][0]
    base = name.removesuffix("+check")
    make, _ = _optimizers()[base]
    policy = "raise" if name.endswith("+check") else "propagate"
    return lambda ps: make(ps, nan_policy=policy, **PATHS[path])


def main(args: argparse.Namespace) -> int:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[args.dtype]
    shapes = _shapes(args)
    table = _optimizers()
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    bad = [n for n in names if n not in table]
    if bad:
        raise SystemExit(f"unknown optimizer(s) {bad}: choose from {DEFAULT_OPTIMIZERS}")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if any(p not in PATHS for p in paths):
        raise SystemExit(f"invalid --paths {args.paths!r}: choose from loop,foreach,fused")
    if args.steps < 1 or args.rounds < 1:
        raise SystemExit(f"--steps ({args.steps}) and --rounds ({args.rounds}) must be >= 1")
    per_round = _rounds(args.steps, args.rounds)
    n_params = sum(int(torch.Size(s).numel()) for s in shapes)
    esize = torch.empty((), dtype=dtype).element_size()

    # configurations: (name, path, floats per parameter)
    configs: list[tuple[str, str | None, int]] = []
    wanted = {"torch.Adam fused"} | {TORCH_COUNTERPART[n] for n in names if n in TORCH_COUNTERPART}
    if not args.no_torch_paths:
        wanted |= set(TORCH_PATH_ROWS)
    for tn, (_, floats) in _torch_optimizers().items():
        if tn in wanted:
            configs.append((tn, None, floats))
    for n in names:
        for p in paths:
            configs.append((n, p, table[n][1]))
        if n == "agd" and "fused" in paths:
            configs.append(("agd+check", "fused", 7))

    header = {
        "device": device, "dtype": args.dtype, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "params": n_params, "tensors": len(shapes), "preset": args.model or args.preset, "steps": args.steps,
        "rounds": len(per_round), "noise_threshold": args.noise_threshold, "baseline_noise_threshold": BASELINE_NOISE,
    }  # fmt: skip
    _log(f"bench step: {n_params / 1e6:.1f}M params in {len(shapes)} tensors, {args.dtype}, {device}, "
         f"{torch.get_num_threads()} threads")  # fmt: skip

    # peak memory first, in forked children (before this process grows)
    memory: dict[tuple[str, str | None], Any] = {}
    if not args.no_memory:
        for name, path, _ in configs:
            if name.startswith("torch.") and not name.endswith("fused"):
                continue
            if path == "foreach" or name == "agd+check":
                continue
            _log(f"  memory {name} {path or ''}")
            memory[(name, path)] = peak_step_memory(shapes, dtype, device, name, path)

    from precond.optim.kernels import _build

    t = time.perf_counter()
    if device == "cpu":
        kernels = _build.load() is not None
    else:  # CUDA: fused=True runs the Triton kernels where triton imports (docs/fast_steps.md, GPU path)
        from precond.optim.kernels import triton_rules

        kernels = bool(triton_rules())
    load_s = time.perf_counter() - t
    _log(f"  kernels {'available' if kernels else 'unavailable'} (build/load {load_s:.1f} s)")

    params = make_tensors(shapes, dtype, device)
    baseline = torch.optim.Adam(params, lr=1e-4, fused=True)
    baseline.step()
    results = []
    for i, (name, path, floats) in enumerate(configs):
        label = f"{name} {path or ''}".strip()
        _log(f"  [{i + 1}/{len(configs)}] {label}")
        try:
            opt = _factory(name, path)(params)
            first = _timed_step(opt, device)
            opt.step()
            baseline.step()  # the baseline warm again too: it last ran before this construction
            ours, base = _interleaved(opt, baseline, device, per_round)  # alternated: drift cancels
            del opt
        except Exception as exc:
            _log(f"    failed: {type(exc).__name__}: {exc}")
            results.append({"optimizer": name, "path": path, "error": f"{type(exc).__name__}: {exc}"})
            continue
        st = round_stats(ours, base, threshold=args.noise_threshold)
        mem = memory.get((name, path))
        results.append({
            "optimizer": name, "path": path or "",
            "nan_policy": "raise" if name.endswith("+check") else ("propagate" if not name.startswith("torch.") else "-"),
            "median_ms": st.median_s * 1e3, "ratio_to_torch_fused_adam": st.ratio, "baseline_ms": st.baseline_s * 1e3,
            "ratio_spread": st.ratio_spread, "round_ratios": st.round_ratios, "baseline_spread": st.baseline_spread,
            "noisy": st.noisy, "noise": st.reason,
            "gb_per_s": floats * esize * n_params / st.median_s / 1e9, "first_step_ms": first * 1e3,
            "peak_step_mb": (mem / 2**20) if isinstance(mem, (int, float)) else None,
        })  # fmt: skip
        _log(f"    {st.median_s * 1e3:.1f} ms (x{st.ratio:.2f} torch fused Adam at {st.baseline_s * 1e3:.1f} ms)"
             + (f"  noisy: {st.reason}" if st.noisy else ""))  # fmt: skip

    # ratio to torch's fused optimizer of the same rule, through their two same-process ratios
    torch_rows = {r["optimizer"]: r for r in results if "error" not in r and not r["path"]}
    for r in results:
        twin = TORCH_COUNTERPART.get(r["optimizer"])
        if "error" not in r and twin in torch_rows:
            r["torch_same_rule"] = twin
            r["ratio_to_torch_same_rule"] = r["ratio_to_torch_fused_adam"] / torch_rows[twin]["ratio_to_torch_fused_adam"]
            r["same_rule_noisy"] = r["noisy"] or torch_rows[twin]["noisy"]
    base_mem = memory.get(("torch.Adam fused", None))
    for r in results:
        if r.get("peak_step_mb") is not None and isinstance(base_mem, (int, float)) and base_mem > 0:
            r["peak_step_vs_torch"] = r["peak_step_mb"] * 2**20 / base_mem
    print(format_table(header, results, load_s, kernels))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "kernels": kernels, "kernel_load_s": load_s, "results": results,
                       "warnings": noise_warnings(header, results)}, f, indent=2)  # fmt: skip
    return 0


def format_table(header: dict[str, Any], results: list[dict[str, Any]], load_s: float, kernels: bool) -> str:
    """The Markdown table, then a warning line when a row is noisy (see :func:`round_stats`)."""
    rounds = header.get("rounds", 1)
    lines = [
        f"{header['params'] / 1e6:.1f}M params in {header['tensors']} tensors ({header['preset']}), {header['dtype']}, "
        f"{header['device']}, {header['threads']} threads, torch {header['torch']}; {header['steps']} steps in {rounds} rounds "
        f"alternating with the baseline torch.Adam fused (its ms: `baseline ms`), ratio = median of the round ratios; "
        f"kernels {'loaded' if kernels else 'unavailable'} in {load_s:.1f} s",
        "",
        "| optimizer | path | nan_policy | ms/step | baseline ms | x torch fused Adam | spread | x torch same rule | GB/s "
        "| peak step MB (x torch) | first step ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in results:
        if "error" in r:
            lines.append(f"| {r['optimizer']} | {r['path'] or ''} | | failed: {r['error']} | | | | | | | |")
            continue
        mem = "-"
        if r.get("peak_step_mb") is not None:
            mem = f"{r['peak_step_mb']:.0f}"
            if "peak_step_vs_torch" in r:
                mem += f" ({r['peak_step_vs_torch']:.2f})"
        same = "-"
        if "ratio_to_torch_same_rule" in r:
            same = f"{r['ratio_to_torch_same_rule']:.2f} ({r['torch_same_rule'].removeprefix('torch.').removesuffix(' fused')})"
            same += " noisy" if r.get("same_rule_noisy") else ""
        ratio = f"{r['ratio_to_torch_fused_adam']:.2f}" + (" noisy" if r.get("noisy") else "")
        spread = "-" if math.isnan(r.get("ratio_spread", math.nan)) else f"{r['ratio_spread']:.0%}"
        lines.append(
            f"| {r['optimizer']} | {r['path']} | {r['nan_policy']} | {r['median_ms']:.1f} | {r['baseline_ms']:.1f} | "
            f"{ratio} | {spread} | {same} | {r['gb_per_s']:.1f} | {mem} | {r['first_step_ms']:.0f} |"
        )
    warnings = noise_warnings(header, results)
    return "\n".join(lines + ([""] + warnings if warnings else []))


def noise_warnings(header: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    """Warning lines: the rows flagged noisy, and the control (``torch.Adam fused`` timed
    against the baseline, the same optimizer) when its ratio is off 1 by more than the
    threshold, a bias that alternation did not cancel and that every row shares."""
    threshold = header.get("noise_threshold", NOISE_THRESHOLD)
    out = []
    noisy = [r for r in results if r.get("noisy")]
    if noisy:
        out.append(
            f"warning: {len(noisy)} of {len(results)} rows are noisy (their round ratios spread by more than "
            f"{threshold:.0%} of their median, or the baseline's rounds by more than "
            f"{header.get('baseline_noise_threshold', BASELINE_NOISE):.0%}): the machine was too busy for those ratios "
            "to mean anything; rerun on a quiet machine, or with more --rounds and --steps"
        )  # fmt: skip
    control = next((r for r in results if r["optimizer"] == "torch.Adam fused" and "error" not in r), None)
    if control is not None and abs(math.log(control["ratio_to_torch_fused_adam"])) > math.log1p(threshold):
        out.append(
            f"warning: the baseline timed against itself (torch.Adam fused) measured x{control['ratio_to_torch_fused_adam']:.2f}, "
            f"not 1 within {threshold:.0%}: every ratio of this run may carry that bias"
        )  # fmt: skip
    return out

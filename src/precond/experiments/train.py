"""Train one problem with one optimizer, on one process or under torchrun (DDP, or FSDP2 with --fsdp).

Examples:
  precond train digits_mlp --optimizer agd lr=1e-3 --steps 500
  precond train digits_mlp --optimizer gaussnewtondiag lr=0.1 damping=1e-3 --steps 200 --checkpoint-every 50
  torchrun --nproc-per-node 2 -m precond train digits_mlp --optimizer adam lr=1e-3 --steps 500
  torchrun --nproc-per-node 2 -m precond train digits_mlp --optimizer sophia --fsdp --resume

Hyperparameters are KEY=VALUE words after the optimizer's name (values as Python literals:
lr=1e-3, betas=0.9,0.999, fused=True; anything else is a string: estimator=ggn). Every rank
draws the problem's global batch t and trains on its own equal share of the rows (the
gradient mean over ranks is then the one-process gradient on the whole batch); curvature-fed
optimizers average their estimates over the ranks. A checkpoint (torch.distributed.checkpoint:
model, optimizer and the run's position, sharded under FSDP2) is written to
--checkpoint-dir every --checkpoint-every steps and at the end; --resume continues from the
latest one, on any number of processes. See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

#: a checkpoint directory holds run.json and one folder per saved step
STEP_DIR = "step-{:08d}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", help="problem name (precond problems list) or module:Class")
    parser.add_argument("--optimizer", required=True, nargs="+", metavar=("NAME", "KEY=VALUE"),
                        help="optimizer name (agd, adam, sophia, ...; torch.<Name> for torch.optim's), then its hyperparameters (lr=1e-3 betas=0.9,0.999)")
    parser.add_argument("--steps", type=int, default=100, help="total steps of the run (default 100; a resumed run continues to it)")
    parser.add_argument("--args", default="{}", metavar="JSON", help='the problem\'s arguments, e.g. \'{"batch_size": 64}\'')
    parser.add_argument("--dtype", default=None, help="the problem's dtype where it takes one (float32, float64, ...)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model, the batches and the curvature draws (default 0)")
    parser.add_argument("--fsdp", action="store_true", help="shard parameters, gradients and state with FSDP2 (fully_shard) instead of DDP")
    parser.add_argument("--backend", default=None, help="torch.distributed backend (default: nccl on CUDA, else gloo)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun: cuda:LOCAL_RANK)")
    parser.add_argument("--checkpoint-dir", default=None, help="where checkpoints go (default: checkpoints/PROBLEM-OPTIMIZER)")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="save every N steps (default 0: only at the end)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --checkpoint-dir")
    parser.add_argument("--no-checkpoint", action="store_true", help="save no checkpoint at all")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_hyperparameters(words: list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "betas=0.9,0.999", "estimator=ggn"]`` -> ``{"lr": 0.001, "betas": (0.9, 0.999), "estimator": "ggn"}``."""
    out: dict[str, Any] = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"hyperparameter {word!r} is not KEY=VALUE (e.g. lr=1e-3)")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


# ---- processes ---------------------------------------------------------------------------
def init_processes(backend: str | None, device: str, fsdp: bool) -> tuple[int, int, torch.device]:
    """``(rank, world, device)``: joins torchrun's process group (``WORLD_SIZE`` set), or makes a
    one-process group for ``--fsdp`` alone; one process without torchrun needs none."""
    import torch.distributed as dist

    under_torchrun = "WORLD_SIZE" in os.environ
    dev = torch.device(device)
    if dev.type == "cuda" and under_torchrun:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    if not dist.is_initialized() and (under_torchrun or fsdp):
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        if under_torchrun:
            dist.init_process_group(backend)
        else:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dev
    return 0, 1, dev


def shard_rows(batch: Any, rank: int, world: int) -> tuple[Any, float]:
    """This rank's rows of ``batch`` (``numpy.array_split`` order: the first ``B mod W`` ranks take
    one more) and the weight ``W n_r / B`` of its mean loss, so that the mean over ranks of the
    weighted losses is the mean loss on the whole batch. A batch without a row tensor (an
    analytic problem's) is every rank's whole, with weight 1."""
    from precond.problems.base import Batch

    x, y = batch.inputs, batch.targets
    if world == 1 or not isinstance(x, torch.Tensor) or x.dim() == 0:
        return batch, 1.0
    n = x.shape[0]
    if isinstance(y, torch.Tensor) and (y.dim() == 0 or y.shape[0] != n):
        return batch, 1.0
    if n < world:
        raise ValueError(f"a batch of {n} rows cannot feed {world} processes: use a batch_size >= {world} (--args)")
    sizes = [n // world + (1 if r < n % world else 0) for r in range(world)]
    lo = sum(sizes[:rank])
    part = slice(lo, lo + sizes[rank])
    return Batch(x[part], y[part] if isinstance(y, torch.Tensor) else y, batch.t, batch.extra), world * sizes[rank] / n


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with its tensors on ``device`` (the problems make CPU batches)."""
    from precond.problems.base import Batch

    move = lambda v: v.to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
    return Batch(move(batch.inputs), move(batch.targets), batch.t, batch.extra)


def wrap_model(model: torch.nn.Module, world: int, fsdp: bool, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module, Any]:
    """``(trained, inner, replica)``: the module the loop calls, the one whose parameters the
    optimizer holds (``ddp.module`` under DDP), and FSDP2's full-parameter replica for curvature."""
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        replica = copy.deepcopy(model)
        for child in model.children():  # one FSDP unit per top-level block holding parameters, then the root
            if any(True for _ in child.parameters()):
                fully_shard(child)
        fully_shard(model)
        return model, model, replica
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        return ddp, ddp.module, None
    return model, model, None


# ---- checkpoints -------------------------------------------------------------------------
def latest_checkpoint(directory: Path) -> tuple[int, Path] | None:
    """``(step, path)`` of the last complete checkpoint (one with DCP's ``.metadata``) in ``directory``."""
    found = []
    for p in directory.glob("step-*"):
        if (p / ".metadata").is_file() and p.name[5:].isdigit():
            found.append((int(p.name[5:]), p))
    return max(found) if found else None


def _state(model: torch.nn.Module, opt: Any, step: int, generator: torch.Generator | None) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, opt)  # canonical names (no DDP 'module.'); a fresh optimizer gets its state
    run = {"step": torch.tensor(step)}
    if generator is not None:
        run["generator"] = generator.get_state()
    return {"model": msd, "optim": osd, "run": run}


@contextmanager
def _quiet_single_process() -> Iterator[None]:
    """DCP warns on every call without a process group that it assumes one process: we know."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def save_checkpoint(path: Path, model: torch.nn.Module, opt: Any, step: int, generator: torch.Generator | None) -> None:
    import torch.distributed.checkpoint as dcp

    with _quiet_single_process():
        dcp.save(_state(model, opt, step, generator), checkpoint_id=str(path))


def load_checkpoint(path: Path, model: torch.nn.Module, opt: Any, generator: torch.Generator | None) -> int:
    """Load ``path`` into ``model`` and ``opt`` (resharded to this world size); returns its step."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    state = _state(model, opt, 0, generator)
    with _quiet_single_process():
        dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    if generator is not None:
        generator.set_state(state["run"]["generator"])
    return int(state["run"]["step"])


# ---- the loop ----------------------------------------------------------------------------
def train(problem: str, optimizer: str, hyperparameters: dict[str, Any] | None = None, *, steps: int = 100,
          problem_args: dict[str, Any] | None = None, dtype: str | None = None, seed: int = 0, fsdp: bool = False,
          backend: str | None = None, device: str = "cpu", checkpoint_dir: str | Path | None = None,
          checkpoint_every: int = 0, resume: bool = False, progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Train ``problem`` with ``optimizer`` to ``steps`` on this process's share of every batch
    (module docstring); returns ``{"step", "loss", "losses", "metrics", "world", "mode", "resumed_from", "wall_time"}``
    with ``losses`` the whole-batch training loss of each step run here (the same on every rank)."""
    import torch.distributed as dist

    from precond.optim import NonFiniteGradientError, get_optimizer
    from precond.problems import resolve

    t0 = time.perf_counter()
    hyper = dict(hyperparameters or {})
    handle = resolve(problem, problem_args or {}, dtype)
    if fsdp and handle.flat:
        raise ValueError(f"problem {problem!r} reads its parameter directly (value(x)), which FSDP2 cannot shard: train it without --fsdp")
    cls = get_optimizer(optimizer)
    rank, world, dev = init_processes(backend, device, fsdp)
    mode = "fsdp" if fsdp else ("ddp" if world > 1 else "single")
    prob = handle.build()
    torch.manual_seed(seed)
    base = prob.model(seed)
    on_cpu = base if dev.type == "cpu" else copy.deepcopy(base)  # the problems evaluate on the CPU
    # a flat problem reads model.x (no rows to share): every rank computes the whole, unwrapped
    model, inner, replica = wrap_model(base.to(dev), 1 if handle.flat else world, fsdp, dev)
    opt = cls(model.parameters(), **hyper)
    generator, feeder = None, None
    from precond.curvature.distributed import AllReduceMean, FullReplica

    if getattr(opt, "needs_curvature", False):
        from precond.curvature import CurvatureFeeder

        generator = torch.Generator().manual_seed(seed)
        reduction = FullReplica(replica) if fsdp else (AllReduceMean() if world > 1 else None)
        feeder = CurvatureFeeder(opt, inner, loss_type=handle.loss_type, generator=generator, reduction=reduction)

    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    meta = {"problem": problem, "problem_args": problem_args or {}, "dtype": dtype, "optimizer": optimizer,
            "hyperparameters": {k: repr(v) for k, v in sorted(hyper.items())}, "seed": seed}  # fmt: skip
    start, resumed_from = 0, None
    if ckpt is not None and resume and (found := latest_checkpoint(ckpt)) is not None:
        saved = json.loads((ckpt / "run.json").read_text()) if (ckpt / "run.json").is_file() else meta
        if saved != meta:
            changed = sorted(k for k in meta if saved.get(k) != meta[k])
            raise ValueError(f"{ckpt} holds a run with other settings ({', '.join(changed)}): resume with those, or give another --checkpoint-dir")
        start = resumed_from = load_checkpoint(found[1], model, opt, generator)
    if ckpt is not None and rank == 0:
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt / "run.json").write_text(json.dumps(meta, indent=1) + "\n")

    batches = prob.batches(seed)
    for _ in range(start):  # the batch stream from the start: the resumed run sees what the uninterrupted one saw
        next(batches)
    if feeder is not None:
        feeder.calls = start
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start, desc=f"{problem} {optimizer}", unit="step", file=sys.stderr, dynamic_ncols=True)
    losses: list[float] = []
    step = start
    try:
        for step in range(start + 1, steps + 1):
            batch = next(batches)
            if getattr(batch, "t", 0) == 0:
                batch.t = step
            mine, weight = shard_rows(batch, rank, world)
            if dev.type != "cpu":
                mine = to_device(mine, dev)
            opt.zero_grad(set_to_none=True)
            loss = prob.loss(model, mine)
            (loss * weight if weight != 1.0 else loss).backward()
            if feeder is not None:
                if isinstance(feeder.reduction, AllReduceMean):
                    feeder.reduction.weight = weight  # this rank's share of the rows
                feeder.maybe_update(loss_fn=lambda m, b=mine: prob.loss(m, b), outputs_fn=lambda m, b=mine: prob.forward(m, b))
            opt.step()
            prob.after_step(inner, step)
            lv = float(loss.detach()) * weight
            if world > 1:
                v = torch.tensor([lv], dtype=torch.float64, device=dev if dist.get_backend() == "nccl" else "cpu")
                dist.all_reduce(v)
                lv = float(v) / world
            losses.append(lv)
            if not math.isfinite(lv):
                raise FloatingPointError(f"the training loss is {lv} at step {step}: lower the lr")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{lv:.4g}", refresh=False)
            if ckpt is not None and checkpoint_every and step % checkpoint_every == 0 and step < steps:
                save_checkpoint(ckpt / STEP_DIR.format(step), model, opt, step, generator)
    except NonFiniteGradientError as exc:
        raise FloatingPointError(f"step {step}: {exc}") from None
    finally:
        if bar is not None:
            bar.close()
    if ckpt is not None and step > start:
        save_checkpoint(ckpt / STEP_DIR.format(step), model, opt, step, generator)
    judged = inner if dev.type == "cpu" else FullReplica(on_cpu).source(inner)  # full parameters, on the CPU
    with torch.no_grad():
        metrics = {k: v for k, v in prob.evaluate(judged).items() if isinstance(v, (int, float))}
    return {"step": step, "loss": losses[-1] if losses else math.nan, "losses": losses, "metrics": metrics, "world": world,
            "mode": mode, "resumed_from": resumed_from, "wall_time": time.perf_counter() - t0}  # fmt: skip


def main(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    optimizer, words = args.optimizer[0], args.optimizer[1:]
    try:
        hyper = parse_hyperparameters(words)
        problem_args = json.loads(args.args)
        if not isinstance(problem_args, dict):
            raise ValueError("--args must be a JSON object")
        if args.steps < 1 or args.checkpoint_every < 0:
            raise ValueError("--steps must be >= 1 and --checkpoint-every >= 0")
        ckpt = None if args.no_checkpoint else (args.checkpoint_dir or f"checkpoints/{args.problem.replace(':', '_')}-{optimizer.lower()}")
        res = train(args.problem, optimizer, hyper, steps=args.steps, problem_args=problem_args, dtype=args.dtype,
                    seed=args.seed, fsdp=args.fsdp, backend=args.backend, device=args.device, checkpoint_dir=ckpt,
                    checkpoint_every=args.checkpoint_every, resume=args.resume, progress=not args.no_progress)  # fmt: skip
    except (ValueError, TypeError, KeyError, FloatingPointError) as exc:
        print(f"precond train: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        return 1 if isinstance(exc, FloatingPointError) else 2
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank leaves while another still talks to it
        dist.destroy_process_group()
    if res["world"] == 1 or int(os.environ.get("RANK", "0")) == 0:
        how = f"{res['world']} process{'es' if res['world'] > 1 else ''} ({res['mode']})"
        since = f", resumed from step {res['resumed_from']}" if res["resumed_from"] is not None else ""
        if not res["losses"]:
            since += f" (nothing to train: the checkpoint is at step {res['step']}; raise --steps to go on)"
        metrics = ", ".join(f"{k} {v:.6g}" for k, v in res["metrics"].items())
        print(f"{args.problem} {optimizer}: step {res['step']} on {how}{since}; train loss {res['loss']:.10g}; {metrics}; "
              f"{res['wall_time']:.1f} s")  # fmt: skip
        if ckpt is not None:
            print(f"checkpoints: {Path(ckpt).resolve()} (continue with --resume)")
    return 0

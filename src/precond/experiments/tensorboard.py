"""Optional TensorBoard logging of run histories (needs the ``tensorboard`` package)."""

from __future__ import annotations

from typing import Any


class TensorBoardLogger:
    """Write each finished run's metric history as scalars under ``logdir/<experiment>/<label>/<key>``."""

    def __init__(self, logdir: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise ImportError(
                "--tensorboard needs the tensorboard package, which is not installed: "
                "`pip install 'precond[tensorboard]'` (or pip install tensorboard)"
            ) from None
        self.logdir = logdir

    def log_run(self, cfg: Any, record: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        hp = ",".join(f"{k}={v}" for k, v in sorted(cfg.hyperparameters.items()))
        w = SummaryWriter(f"{self.logdir}/{cfg.experiment}/{cfg.label}/{hp},seed={cfg.seed}")
        h = record["history"]
        for name, values in h.items():
            if name in ("step", "trajectory") or name.endswith(".step"):
                continue
            steps = h.get(f"{name}.step", h["step"])
            for s, v in zip(steps, values):
                if isinstance(v, (int, float)):
                    w.add_scalar(name, v, s)
        w.close()

    def close(self) -> None:
        pass

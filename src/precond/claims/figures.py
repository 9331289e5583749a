"""Drawing helpers the claims' figures share (matplotlib, Agg; PNG and SVG through
:func:`precond.experiments.plots.save`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from precond.experiments.plots import plt, save

__all__ = ["contours", "done", "figure", "plt", "save", "verdict_title"]


def figure(ncols: int, *, width: float = 5.2, height: float = 4.2) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def contours(ax: Any, problem: Any, bounds: tuple[tuple[float, float], tuple[float, float]], *, levels: int = 25) -> None:
    """log10 contours of ``problem.value - min`` over ``bounds`` ((x0, x1), (y0, y1))."""
    import torch

    (x0, x1), (y0, y1) = bounds
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    with torch.no_grad():
        Z = problem.value(torch.tensor(np.stack([X, Y], -1), dtype=torch.float64)).numpy()
    ax.contour(X, Y, np.log10(Z - np.nanmin(Z) + 1e-12), levels=levels, cmap="viridis", linewidths=0.6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def verdict_title(fig: Any, claim_id: str, title: str) -> None:
    fig.suptitle(f"{claim_id}: {title}", fontsize=11)


def done(fig: Any, base: Path) -> Path:
    fig.tight_layout()
    return save(fig, Path(base))

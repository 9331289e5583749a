r"""Per-coordinate gradient noise: the noise-to-signal ratio and the noise vector sigma.

From ``n`` independent minibatch gradients :math:`g^{(1..n)}` at the current point:
:math:`\hat\mu_i` (mean), :math:`\hat\sigma_i` (unbiased std, ``ddof = 1``) and the
noise-to-signal ratio :math:`\mathrm{NSR}_i = \hat\sigma_i / |\hat\mu_i|` (lecture notes,
seed 003). :math:`\sigma` is the anisotropic noise vector of seed 001
(:math:`\mathbb E (g_i - \nabla_i f)^2 \le \sigma_i^2`), compared as
:math:`\|\sigma\|_1` against :math:`\sqrt d\,\|\sigma\|_2` (ratio 1 when isotropic, down to
:math:`1/\sqrt d` when one coordinate carries all the noise).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import Diagnostic, StepContext, sampled_gradients


def noise_statistics(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` per coordinate of ``(n, d)`` gradient samples (``std`` with ``ddof=1``)."""
    if grads.dim() != 2 or grads.shape[0] < 2:
        raise ValueError(f"need an (n, d) array of n >= 2 gradient samples, got shape {tuple(grads.shape)}")
    return grads.mean(0), grads.std(0, correction=1)


def nsr_summary(mean: torch.Tensor, std: torch.Tensor, *, bins: int = 30) -> dict[str, float | list[float]]:
    """Summary of ``NSR = std / |mean|``: quantiles, fraction above 1, and a histogram of log10(NSR)."""
    nsr = (std / mean.abs()).double().cpu().numpy()
    finite = nsr[np.isfinite(nsr)]
    out: dict[str, float | list[float]] = {"frac_infinite": float(1.0 - finite.size / max(nsr.size, 1))}
    if finite.size == 0:
        return out
    q = np.quantile(finite, [0.1, 0.5, 0.9])
    out.update(
        median=float(q[1]), q10=float(q[0]), q90=float(q[2]), mean=float(finite.mean()),
        frac_above_1=float((nsr > 1).mean()),
    )  # fmt: skip
    pos = finite[finite > 0]
    if pos.size:
        counts, edges = np.histogram(np.log10(pos), bins=bins)
        out["hist_log10_counts"] = [float(c) for c in counts]
        out["hist_log10_edges"] = [float(e) for e in edges]
    return out


def sigma_summary(std: torch.Tensor) -> dict[str, float]:
    """``||sigma||_1``, ``sqrt(d)*||sigma||_2`` and their ratio (<= 1; small = anisotropic noise)."""
    d = std.numel()
    l1 = float(std.abs().sum())
    l2d = math.sqrt(d) * float(std.norm())
    return {"sigma_l1": l1, "sigma_sqrt_d_l2": l2d, "sigma_ratio": l1 / l2d if l2d > 0 else float("nan")}


class GradientNoise(Diagnostic):
    """NSR statistics (``nsr/...``) and the noise vector sigma (``sigma_l1`` ...) from
    ``n_samples`` minibatch gradients (``StepContext.sample_losses``).

    ``return_vectors=True`` also returns ``sigma`` and ``mean`` as lists (small models)."""

    name = "gradient_noise"

    def __init__(self, n_samples: int = 16, every: int = 1, *, bins: int = 30, return_vectors: bool = False, name: str | None = None) -> None:
        super().__init__(every, name)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
            raise ValueError(f"invalid n_samples={n_samples!r}: must be an integer >= 2")
        self.n_samples, self.bins, self.return_vectors = n_samples, bins, return_vectors

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        grads = sampled_gradients(ctx, self.n_samples, self.name)
        mean, std = noise_statistics(grads)
        out: dict[str, float | list[float]] = {f"nsr/{k}": v for k, v in nsr_summary(mean, std, bins=self.bins).items()}
        out.update(sigma_summary(std))
        if self.return_vectors:
            out["sigma"] = std.double().tolist()
            out["mean"] = mean.double().tolist()
        return out

"""Sophia's "win rate": the fraction of coordinates not clipped at the last step."""

from __future__ import annotations

from .base import ParameterFractions


class SophiaWinRate(ParameterFractions):
    """``overall`` and ``param/<name>`` from :meth:`precond.optim.Sophia.win_rate`."""

    name = "sophia_win_rate"
    requires_method = "win_rate"
    optimizer_kind = "a Sophia optimizer"

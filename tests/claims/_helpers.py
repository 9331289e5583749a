"""Running claims at the test suite's size (``tiny``) in this process, and the one numbers-dict edit
the rule tests use."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from precond.claims import engine, registry


def run_tiny(ids: list[str], tmp_path: Path, *, sensitivity: bool = False, figures: bool = False) -> list[engine.ClaimResult]:
    """Plan, run (one process) and evaluate the claims ``ids`` at size ``tiny`` into ``tmp_path``."""
    store = str(tmp_path / "claims.sqlite")
    p = engine.plan(registry.get(ids), "tiny", sensitivity=sensitivity)
    outcome = engine.execute(p, store, workers=1, progress=False)
    assert not outcome.errors, outcome.errors
    return engine.evaluate(p, outcome, store, tmp_path / "fig" if figures else None)


def changed(numbers: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``numbers`` with the entry at ``path`` (keys and indices) replaced by ``value``."""
    out = copy.deepcopy(numbers)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out

"""The spec's ``diagnostics``: names of :mod:`precond.curvature.diagnostics` classes.

A diagnostic is named by its class's ``name`` (``"gradient_noise"``) or its class name in
lower case (``"gradientnoise"``).
"""

from __future__ import annotations

from typing import Any


def diagnostic_classes() -> dict[str, type]:
    """The :class:`~precond.curvature.diagnostics.Diagnostic` classes by each of their names."""
    from precond.curvature import diagnostics as dg

    out: dict[str, type] = {}
    for attr in dir(dg):
        obj = getattr(dg, attr)
        if isinstance(obj, type) and issubclass(obj, dg.Diagnostic) and obj is not dg.Diagnostic:
            out[attr.lower()] = obj
            name = getattr(obj, "name", None)
            if isinstance(name, str) and name:
                out[name] = obj
    return out


def check_diagnostic(name: str) -> str | None:
    """None when ``name`` is a known diagnostic, else the reason (with the known names)."""
    known = diagnostic_classes()
    if name not in known:
        return f"is not a known diagnostic; allowed: {', '.join(sorted(known)) or '(none)'}"
    return None


def make_diagnostics(names: tuple[str, ...] | list[str], every: int) -> list[Any]:
    """One instance per name, measuring every ``every`` steps."""
    table = diagnostic_classes() if names else {}
    return [table[name](every=max(1, every)) for name in names]

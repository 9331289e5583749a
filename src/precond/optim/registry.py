"""Optimizers by name, for specs and the command line: ``get_optimizer("agd")``."""

from __future__ import annotations

import torch


def available() -> dict[str, type]:
    """Lower-case name -> class, for every optimizer exported by :mod:`precond.optim` (each once:
    torch's spellings ``Adagrad``, ``RMSprop`` are the same classes under the same lower-case names)."""
    import precond.optim as po

    out = {}
    for name in po.__all__:
        obj = getattr(po, name)
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer) and obj is not po.PrecondOptimizer:
            out[name.lower()] = obj
    return out


def get_optimizer(name: str) -> type:
    """The optimizer class called ``name`` (case-insensitive); ``torch.X`` names torch.optim's."""
    if name.lower().startswith("torch."):
        cls = getattr(torch.optim, name.split(".", 1)[1], None)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            return cls
        raise KeyError(f"unknown optimizer {name!r}: torch.optim has no class {name.split('.', 1)[1]!r}")
    table = available()
    try:
        return table[name.lower()]
    except KeyError:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(sorted(table))} (or torch.<Name>)") from None

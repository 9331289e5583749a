"""The problem registry: ``precond.problems.get(name, **kwargs)``."""

from __future__ import annotations

from typing import Any, Callable

from .base import Problem

_REGISTRY: dict[str, Callable[..., Problem]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register a problem class (or factory) under ``name``."""

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"problem {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls

    return deco


def names() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def get(name: str, **kwargs: Any) -> Problem:
    """A problem instance by name; keyword arguments go to its constructor."""
    _import_all()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise TypeError(f"problem {name!r}: bad arguments {kwargs}: {exc}") from None


def _import_all() -> None:
    """Import every module of the package so that their ``@register`` decorators run."""
    import importlib
    import pkgutil

    import precond.problems as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name not in ("base", "registry", "cli"):
            importlib.import_module(f"precond.problems.{info.name}")

"""The problem registry: ``precond.problems.get(name, **kwargs)``.

Misspellings are answered with the closest names (``difflib``): an unknown problem with the
nearest registered ones, an unknown argument with the nearest argument and the whole list.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
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


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def lookup(name: str) -> Callable[..., Problem]:
    """The factory (class) of problem ``name``: a registered name, or ``"module:Class"`` for a
    problem defined elsewhere (imported). ``KeyError`` naming the closest registered names;
    ``ImportError``/``AttributeError`` (``ValueError`` for ``":Class"``) when the module or the
    attribute is not there."""
    if ":" in name:
        import importlib

        mod, _, attr = name.partition(":")
        module = importlib.import_module(mod)
        if not hasattr(module, attr):
            raise AttributeError(f"{name!r}: module {mod!r} has no attribute {attr!r}")
        return getattr(module, attr)
    _import_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        raise KeyError(f"{name!r} is not a registered problem{_did_you_mean(name, known)}; known: {', '.join(known)}") from None


def get(name: str, **kwargs: Any) -> Problem:
    """A problem instance by name; keyword arguments go to its constructor."""
    factory = lookup(name)
    unknown = [msg for _, msg in check_arguments(factory, kwargs, types=False)]
    if unknown:
        raise TypeError(f"problem {name!r}: {'; '.join(unknown)}")
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise TypeError(f"problem {name!r}: bad arguments {kwargs}: {exc}") from None


# ---- argument checks ---------------------------------------------------------------------------------
_NATURAL = {"bool": "a boolean (true or false)", "int": "a number", "float": "a number", "str": "a string"}


def _natural_type(param: inspect.Parameter) -> str | None:
    """What kind of TOML value a parameter takes, from its default or else its annotation: one of
    ``_NATURAL``'s descriptions, ``"an array"`` for tuple defaults, or None when there is no single answer."""
    d = param.default
    ann = param.annotation
    if isinstance(ann, str) and len({_NATURAL.get(t.strip(), t.strip()) for t in ann.split("|") if t.strip() != "None"}) > 1:
        return None  # "str | Sequence[float]": the default's kind is one of several
    if isinstance(d, bool):
        return _NATURAL["bool"]
    if isinstance(d, numbers.Real):
        return _NATURAL["float"]
    if isinstance(d, str):
        return _NATURAL["str"]
    if isinstance(d, tuple):
        return "an array"
    if d is None and isinstance(ann, str):  # "float | None": postponed annotations are strings
        kinds = {_NATURAL.get(t.strip()) for t in ann.split("|") if t.strip() != "None"}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def value_kind(value: Any) -> str:
    """``"a boolean"``, ``"a number"``, ``"a string"``, ``"an array"`` or ``"a table"``: a TOML value's kind."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    return "a table" if isinstance(value, dict) else type(value).__name__


def _is(kind: str, value: Any) -> bool:
    if kind == _NATURAL["bool"]:
        return isinstance(value, bool)
    if kind == _NATURAL["float"]:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == _NATURAL["str"]:
        return isinstance(value, str)
    return isinstance(value, (list, tuple))


def check_arguments(factory: Callable[..., Any], kwargs: dict[str, Any], *, types: bool = True, noun: str = "an argument",
                    skip: tuple[str, ...] = ("self", "params")) -> list[tuple[str, str]]:  # fmt: skip
    """``(name, problem)`` for each keyword argument that ``factory`` does not take (with the closest
    name and the allowed ones), and with ``types``, each whose value is not of the parameter's
    natural type (see :func:`_natural_type`; e.g. ``"100"`` or ``true`` for a number)."""
    try:
        params = {n: p for n, p in inspect.signature(factory).parameters.items() if n not in skip}
    except (TypeError, ValueError):
        return []
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    out = []
    for name, value in kwargs.items():
        if name not in params:
            if not takes_any:
                out.append((name, f"{name!r} is not {noun}{_did_you_mean(name, allowed)}; allowed: {', '.join(allowed) or '(none)'}"))
            continue
        kind = _natural_type(params[name]) if types else None
        if kind and not _is(kind, value):
            out.append((name, f"{value!r} ({value_kind(value)}) is not {kind}"))
    return out


# ---- data --------------------------------------------------------------------------------------------
def data_error(problem: Problem) -> str | None:
    """None when ``problem`` can make its first training batch, else why not (one line; e.g. the
    CIFAR-10 or PTB directory or a Shakespeare file is missing). Loads the data, so it can take seconds."""
    try:
        next(iter(problem.batches(0)))
    except Exception as exc:  # noqa: BLE001 - any reason is reported, not raised
        msg = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {msg[0] if msg else ''}"
    return None


def _import_all() -> None:
    """Import every module of the package so that their ``@register`` decorators run."""
    import importlib
    import pkgutil

    import precond.problems as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name not in ("base", "registry", "handle", "cli"):
            importlib.import_module(f"precond.problems.{info.name}")

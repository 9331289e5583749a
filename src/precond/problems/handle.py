"""Problems resolved once: ``resolve(name, args, dtype) -> ProblemHandle``.

A handle is what the layers above pass around instead of ``(name, args)`` strings: the name
and arguments exactly as given, the factory they resolve to, and the problem's metadata,
read once from a probe instance, as typed fields. ``build()`` makes the Problem.

``args`` are kept as given (a read-only mapping; the factory's defaults are *not* filled in),
so run keys and spec hashes that hash ``(name, args)`` stay what they were. ``dtype`` (a
spec's) goes to factories that take a ``dtype`` argument and were not given one in ``args``;
other problems keep their own (data) dtype.

Errors: :class:`ProblemNameError` (a ``KeyError``; the message names the closest registered
names, or says what ``module:Class`` lacks), :class:`ProblemArgumentError` (a ``TypeError``;
``errors`` holds one ``(argument, message)`` per bad argument, from
:func:`~precond.problems.registry.check_arguments`), and whatever the factory itself raises
when the arguments are of the right kind but cannot make the problem.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .base import Problem
from .registry import check_arguments, data_error, lookup


class ProblemNameError(KeyError):
    """The problem name resolves to no factory (unknown name, or a ``module:Class`` that is not there)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class ProblemArgumentError(TypeError):
    """Arguments the problem's constructor does not take, or values of the wrong kind."""

    def __init__(self, name: str, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)  #: ``(argument, message)`` per bad argument
        super().__init__(f"problem {name!r}: {'; '.join(m for _, m in self.errors)}")


@dataclass(frozen=True, eq=False)
class ProblemHandle:
    """A resolved problem: what to build and what it is, without building it again.

    Made by :func:`resolve`; equality is identity. Pickles by name (the factory is looked up
    again on loading), so it can be sent to worker processes.
    """

    name: str  #: a registered name or ``"module:Class"``, as given
    args: Mapping[str, Any]  #: the constructor's keyword arguments as given (read-only; no defaults filled in)
    dtype: str | None  #: the spec's dtype, passed to factories that take one (see :attr:`build_args`)
    factory: Callable[..., Problem] = field(repr=False)
    kind: str = ""  #: "analytic", "quadratic", "online", "regression", "classification", "language", ...
    source: str = ""  #: the seed document or paper the problem comes from
    loss_type: str | None = None  #: one of ``precond.curvature.losses.LOSS_TYPES``, or None
    val_metric: str = "val_loss"  #: the metric tuning selects on
    test_metric: str = "test_loss"  #: the metric reported
    higher_is_better: bool = False  #: the direction of ``val_metric``: True for accuracies, False for losses
    test_higher_is_better: bool = False  #: the direction of ``test_metric`` (see :func:`metric_higher_is_better`)
    flat: bool = False  #: the problem's own ``vectorizable``: ``value(x)`` over ``(..., d)`` and ``initial_point(seed)`` exist
    vectorizable: bool = False  #: ``flat`` and no ``after_step``: runs can be batched as one ``(C, d)`` tensor
    stackable: bool = False  #: the problem's own ``stackable`` and no ``after_step``: runs can be batched as one stacked model
    steps_per_epoch: int | None = None  #: for ``budget.epochs``; None when the problem has no epochs
    needs_data: str | None = None  #: the files or package data the problem reads (None: generated in memory)
    _spare: list = field(default_factory=list, repr=False)  # the probe, handed out by the first build()

    @property
    def build_args(self) -> dict[str, Any]:
        """The keyword arguments ``build()`` passes: ``args``, plus ``dtype`` where the factory takes
        one and ``args`` do not give it."""
        return _build_args(self.factory, self.args, self.dtype)

    def build(self) -> Problem:
        """A Problem instance, ``factory(**build_args)``; every call returns a new one (the first
        call returns the probe :func:`resolve` made, unused)."""
        try:
            return self._spare.pop()
        except IndexError:
            return self.factory(**self.build_args)

    def data_error(self) -> str | None:
        """None when the problem can make its first training batch, else why not, in one line
        (:func:`~precond.problems.registry.data_error`; loads the data, so it can take seconds)."""
        return data_error(self.build())

    def __reduce__(self):
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _IDENTITY}
        return _restore, (self.name, dict(self.args), self.dtype, meta)


_IDENTITY = ("name", "args", "dtype", "factory", "_spare")


def _restore(name: str, args: dict[str, Any], dtype: str | None, meta: dict[str, Any]) -> ProblemHandle:
    return ProblemHandle(name, MappingProxyType(args), dtype, lookup(name), **meta)


def _build_args(factory: Callable[..., Any], args: Mapping[str, Any], dtype: str | None) -> dict[str, Any]:
    out = dict(args)
    if dtype is not None and "dtype" not in out:
        try:
            takes_dtype = "dtype" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes_dtype = False
        if takes_dtype:
            out["dtype"] = dtype
    return out


def metric_higher_is_better(metric: str) -> bool:
    """The direction of a metric read from its name: accuracies (``*acc``, ``*accuracy``) are better
    higher; losses, perplexities and step counts lower."""
    return metric.endswith(("acc", "accuracy"))


def test_direction(val_metric: str, test_metric: str, val_higher_is_better: bool) -> bool:
    """The direction of ``test_metric``: that of ``val_metric`` when they are the same metric, else
    read from its name (a problem that tunes on ``val_loss`` and reports ``test_acc`` ranks its
    test results higher-is-better)."""
    return val_higher_is_better if test_metric == val_metric else metric_higher_is_better(test_metric)


def metadata(problem: Any) -> dict[str, Any]:
    """The handle's typed metadata of a problem instance (defaults where a ``module:Class``
    problem does not set an attribute)."""
    flat = bool(getattr(problem, "vectorizable", False))
    val, test = getattr(problem, "val_metric", "val_loss"), getattr(problem, "test_metric", "test_loss")
    higher = bool(getattr(problem, "higher_is_better", False))
    projects = isinstance(problem, Problem) and type(problem).after_step is not Problem.after_step
    return {
        "kind": getattr(problem, "kind", ""),
        "source": getattr(problem, "source", ""),
        "loss_type": getattr(problem, "loss_type", None),
        "val_metric": val,
        "test_metric": test,
        "higher_is_better": higher,
        "test_higher_is_better": bool(getattr(problem, "test_higher_is_better", test_direction(val, test, higher))),
        "flat": flat,
        "vectorizable": flat and not projects,
        "stackable": bool(getattr(problem, "stackable", False)) and not projects,
        "steps_per_epoch": getattr(problem, "steps_per_epoch", None),
        "needs_data": getattr(problem, "needs_data", None),
    }


def resolve(name: str, args: Mapping[str, Any] | None = None, dtype: str | None = None) -> ProblemHandle:
    """Resolve problem ``name`` (registered, or ``"module:Class"``) with ``args`` once: look up the
    factory, check the arguments (names and kinds), build a probe and read its metadata.

    Raises :class:`ProblemNameError`, :class:`ProblemArgumentError`, or what the factory raises.
    """
    try:
        factory = lookup(name)
    except (KeyError, ImportError, AttributeError, ValueError) as exc:
        raise ProblemNameError(exc.args[0] if isinstance(exc, KeyError) else str(exc)) from exc
    given = dict(args or {})
    bad = check_arguments(factory, given)
    if bad:
        raise ProblemArgumentError(name, bad)
    probe = factory(**_build_args(factory, given, dtype))
    return ProblemHandle(name, MappingProxyType(given), dtype, factory, **metadata(probe), _spare=[probe])

"""The table of precond's optimizers and their option sets: what the tests and the bench run.

The pattern of PyTorch's own ``torch.testing._internal.common_optimizers`` (an ``OptimizerInfo``
per class with its option sets and what it supports): one :class:`Case` per (optimizer class,
option set). Every test of the optimizer contract (``tests/optim/``: each option set against
``torch.optim`` where torch has the rule, the ``foreach``/``fused`` paths against the loop,
state dicts, copies, hooks, schedulers, ``GradScaler``, complex parameters) and
``precond bench step`` (the cases with a :attr:`Case.bench` row name) read this one table, so a
new option set is added here once and every check runs on it.

    from precond.optim.cases import cases, get_case
    [c.name for c in cases(tags={"needs_curvature"})]   # Sophia's and GaussNewtonDiag's
    opt = get_case("AGD-amsgrad").make(model.parameters(), lr=1e-3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from . import AGD, SGD, AdaBound, AdaGrad, AdaGradNorm, Adam, AdamW, GaussNewtonDiag, RMSProp, Sophia
from ._base import PrecondOptimizer

#: every precond optimizer's step paths (``foreach``/``fused`` flags of each)
PATHS = {"loop": dict(foreach=False, fused=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}


@dataclass(frozen=True)
class Case:
    """One optimizer class with one set of constructor arguments.

    Attributes:
        cls: the precond optimizer class.
        id: the option set's name, unique within ``cls`` (:attr:`name` is ``"<Class>-<id>"``).
        kwargs: constructor arguments (always with ``lr``).
        second_group: what a second param group overrides, in the tests that use two groups
            (``None``: half the lr).
        torch_cls: the ``torch.optim`` class with the same rule for these ``kwargs`` (and the
            second group), or ``None``.
        paths: the step paths it has (``"loop"``, ``"foreach"``, ``"fused"``; see :data:`PATHS`).
        bench: its row name in ``precond bench step`` (``None``: not a bench row).
        traffic: floats per parameter its fused step reads and writes (the bench's GB/s).
        tags: free labels, plus the derived ``"needs_curvature"`` (the class takes curvature
            from outside), ``"batchable"`` (elementwise rule, :meth:`PrecondOptimizer.batched`),
            ``"complex"`` (complex parameters supported), ``"torch"`` (it has a ``torch_cls``)
            and ``"maximize"`` (``kwargs`` maximize).
    """

    cls: type[PrecondOptimizer]
    id: str
    kwargs: dict[str, Any] = field(compare=False)
    second_group: dict[str, Any] | None = field(default=None, compare=False)
    torch_cls: type[torch.optim.Optimizer] | None = None
    paths: tuple[str, ...] = tuple(PATHS)
    bench: str | None = None
    traffic: int | None = None
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if "lr" not in self.kwargs:
            raise ValueError(f"case {self.name}: give lr in kwargs")
        derived = {
            "needs_curvature": getattr(self.cls, "needs_curvature", False),
            "batchable": self.cls.batchable,
            "complex": self.cls.supports_complex,
            "torch": self.torch_cls is not None,
            "maximize": bool(self.kwargs.get("maximize")),
        }
        object.__setattr__(self, "tags", frozenset(self.tags) | {t for t, on in derived.items() if on})

    @property
    def name(self) -> str:
        return f"{self.cls.__name__}-{self.id}"

    @property
    def needs_curvature(self) -> bool:
        return "needs_curvature" in self.tags

    def make(self, params: Iterable[Any], **overrides: Any) -> PrecondOptimizer:
        """``cls(params, **kwargs, **overrides)``."""
        return self.cls(params, **{**self.kwargs, **overrides})

    def groups(self, first: list[torch.Tensor], second: list[torch.Tensor]) -> list[dict[str, Any]]:
        """Two param groups: ``first`` with the constructor's options, ``second`` with
        :attr:`second_group`'s."""
        other = self.second_group if self.second_group is not None else {"lr": self.kwargs["lr"] / 2}
        return [{"params": list(first)}, {"params": list(second), **other}]


def _cases(cls: type[PrecondOptimizer], torch_cls: type | None, rows: list[tuple]) -> list[Case]:
    """``rows`` of ``(id, kwargs[, second_group[, extra fields]])``; ``torch_cls`` for every row
    unless its extra fields say ``torch_cls=None``."""
    out = []
    for id_, kwargs, *rest in rows:
        second = rest[0] if rest else None
        extra = {"torch_cls": torch_cls, **(rest[1] if len(rest) > 1 else {})}
        out.append(Case(cls, id_, kwargs, second, **extra))
    return out


NO_TORCH = {"torch_cls": None}

TABLE: tuple[Case, ...] = tuple(
    _cases(AGD, None, [
        ("default", dict(lr=1e-2), None, dict(bench="agd", traffic=7)),
        ("amsgrad", dict(lr=1e-2, amsgrad=True), None, dict(bench="agd_amsgrad", traffic=9)),
        ("decay", dict(lr=1e-2, weight_decay=0.1)),
        ("fixed-decay", dict(lr=1e-2, weight_decay=0.1, fixed_decay=True)),
        ("l2", dict(lr=1e-2, weight_decay=0.1, weight_decouple=False)),
        ("amsgrad-decay", dict(lr=1e-2, amsgrad=True, weight_decay=0.1), dict(lr=3e-3, betas=(0.8, 0.99), weight_decay=0.0)),
        ("betas-delta", dict(lr=3e-3, betas=(0.8, 0.99), delta=1e-3)),
        ("sgd-branch", dict(lr=1e-2, delta=1e-1)),  # mostly the SGD branch
        ("beta1-zero", dict(lr=1e-2, betas=(0.0, 0.999))),  # s_t = g_t - g_{t-1}
        ("clip", dict(lr=1e-2, clip=0.5, delta=1e-3)),
        ("win", dict(lr=1e-2, win=True, weight_decay=0.1)),
        ("win-zeros", dict(lr=1e-2, win=True, win_z_init="zeros")),
        ("win-zeros-decay", dict(lr=1e-2, win=True, weight_decay=0.01, win_z_init="zeros")),
        ("amsgrad-win-clip", dict(lr=1e-2, amsgrad=True, win=True, clip=1.0, weight_decay=0.05)),
        ("amsgrad-win-clip-max", dict(lr=1e-2, amsgrad=True, win=True, clip=2.0, weight_decay=0.05, maximize=True)),
    ])
    + _cases(Adam, torch.optim.Adam, [
        ("default", dict(lr=1e-2), dict(lr=3e-3, betas=(0.8, 0.99), weight_decay=0.1), dict(bench="adam", traffic=7)),
        ("amsgrad", dict(lr=1e-2, amsgrad=True), dict(lr=1e-3, eps=1e-4), dict(bench="amsgrad", traffic=9)),
        ("l2", dict(lr=1e-2, weight_decay=0.1), dict(lr=3e-3, betas=(0.8, 0.99), weight_decay=0.2)),
        ("decoupled", dict(lr=1e-2, decoupled_weight_decay=True, weight_decay=0.05), dict(lr=1e-3, weight_decay=0.2)),
        ("eps-inside", dict(lr=1e-2, eps_inside_sqrt=True, betas=(0.6, 0.9)), None, NO_TORCH),
    ])
    + _cases(AdamW, torch.optim.AdamW, [
        ("default", dict(lr=1e-2), dict(lr=3e-3, weight_decay=0.3), dict(bench="adamw", traffic=7)),
        ("decay", dict(lr=1e-2, weight_decay=0.1)),
        ("amsgrad-max", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True), dict(lr=1e-3, weight_decay=0.01)),
    ])
    + _cases(SGD, torch.optim.SGD, [
        ("plain", dict(lr=1e-2), dict(lr=2e-3, weight_decay=0.1)),
        ("momentum", dict(lr=1e-2, momentum=0.9), dict(lr=2e-2, momentum=0.5, dampening=0.3), dict(bench="sgd", traffic=5)),
        ("nesterov", dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.1), dict(momentum=0.8, weight_decay=1e-2)),
        ("dampening-max", dict(lr=1e-2, momentum=0.9, dampening=0.3, maximize=True)),
        ("ema", dict(lr=1e-2, momentum=0.9, momentum_style="ema"), None, NO_TORCH),
        ("ema-nesterov-decoupled", dict(lr=1e-2, momentum=0.9, momentum_style="ema", nesterov=True, weight_decay=0.1,
                                        decoupled_weight_decay=True), None, NO_TORCH),  # fmt: skip
    ])
    + _cases(AdaGrad, torch.optim.Adagrad, [
        ("default", dict(lr=1e-2), dict(lr=0.1, lr_decay=0.01, weight_decay=0.01), dict(bench="adagrad", traffic=5)),
        ("decay-init", dict(lr=1e-2, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
        # the seed-001 form (v_{-1} = eps, divide by sqrt(v)); torch reads the accumulator's
        # start from its constructor only, so it stays out of the second group
        ("eps0-init", dict(lr=5e-2, eps=0.0, initial_accumulator_value=0.1), dict(lr=2e-2, eps=1e-3)),
        ("eps-inside-max", dict(lr=1e-2, eps_inside_sqrt=True, eps=1e-8, maximize=True), None, NO_TORCH),
    ])
    + _cases(RMSProp, torch.optim.RMSprop, [
        ("default", dict(lr=1e-3), dict(lr=1e-2, alpha=0.9, weight_decay=0.1), dict(bench="rmsprop", traffic=5)),
        ("centered", dict(lr=1e-3, centered=True)),
        ("momentum-decay", dict(lr=1e-3, momentum=0.9, weight_decay=0.1)),
        ("centered-momentum", dict(lr=1e-3, centered=True, momentum=0.9), dict(centered=False, momentum=0.5, eps=1e-4)),
        ("centered-momentum-eps-inside-max", dict(lr=1e-3, centered=True, momentum=0.5, eps_inside_sqrt=True, maximize=True),
         None, NO_TORCH),  # fmt: skip
    ])
    + _cases(AdaBound, None, [
        ("default", dict(lr=1e-2), None, dict(bench="adabound", traffic=7)),
        ("amsbound-decay", dict(lr=1e-2, amsbound=True, weight_decay=0.1)),
        ("bounds-betas", dict(lr=3e-3, final_lr=0.05, gamma=1e-2, betas=(0.8, 0.9))),
        ("bounds-max", dict(lr=1e-2, final_lr=0.05, gamma=0.1, maximize=True)),
    ])
    + _cases(AdaGradNorm, None, [
        # g read twice (the norm, then the step), p read and written
        ("default", dict(lr=0.5), dict(lr=0.2, eps=1e-3, weight_decay=0.1, maximize=True), dict(bench="adagrad_norm", traffic=4)),
        ("decay-init", dict(lr=0.5, weight_decay=0.1, initial_accumulator_value=0.5)),
        ("global-eps-max", dict(lr=0.5, eps=1e-3, maximize=True, scope="global")),
        ("global-decay", dict(lr=0.5, weight_decay=0.05, scope="global"), dict(lr=0.2, eps=1e-3, weight_decay=0.1, maximize=True)),
    ])
    + _cases(Sophia, None, [
        ("plain", dict(lr=0.05, rho=0.05, weight_decay=0.0), dict(lr=0.02, betas=(0.8, 0.99), rho=0.02, weight_decay=0.1)),
        # p, g, m, h read; p, m written
        ("betas-decay", dict(lr=0.05, betas=(0.9, 0.95), rho=0.02, weight_decay=0.1), None, dict(bench="sophia", traffic=6)),
        ("bs-max", dict(lr=0.05, rho=0.01, bs=3.0, weight_decay=0.1, maximize=True)),
    ])
    + _cases(GaussNewtonDiag, None, [
        # p, g, h read; p written (no momentum)
        ("inverse", dict(lr=0.1, power=-1, damping=0.5), None, dict(bench="gauss_newton", traffic=4)),
        ("inverse-sqrt", dict(lr=0.1, power=-0.5, damping=0.1)),
        ("momentum-ema-decay", dict(lr=0.1, power=-1, momentum=0.9, beta2=0.9, damping=0.3, weight_decay=0.1),
         dict(lr=0.05, power=-0.5, momentum=0.0, beta2=0.0, damping=0.2, weight_decay=0.0)),
        ("sqrt-momentum-ema-max", dict(lr=0.1, power=-0.5, momentum=0.5, beta2=0.99, damping=1e-2, weight_decay=0.05,
                                       maximize=True)),  # fmt: skip
        ("ema", dict(lr=0.1, power=-1, beta2=0.5, damping=1.0)),
    ])
)  # fmt: skip


def cases(
    *,
    cls: type | tuple[type, ...] | None = None,
    tags: Iterable[str] = (),
    exclude: Iterable[str] = (),
    bench: bool | None = None,
) -> list[Case]:
    """The cases of :data:`TABLE` (in its order) of class ``cls`` (exactly: ``Adam`` excludes
    ``AdamW``; a tuple for several), with every tag of ``tags`` and none of ``exclude``, and
    with a bench row (``bench=True``) or without (``False``)."""
    classes = cls if isinstance(cls, tuple) else (cls,)
    want, drop = set(tags), set(exclude)
    return [
        c for c in TABLE
        if (cls is None or c.cls in classes) and want <= c.tags and not (drop & c.tags)
        and (bench is None or (c.bench is not None) == bench)
    ]  # fmt: skip


def get_case(name: str) -> Case:
    """The case called ``name`` (``"<Class>-<id>"``, e.g. ``"AGD-amsgrad"``)."""
    for c in TABLE:
        if c.name == name:
            return c
    raise KeyError(f"no case {name!r}; known: {', '.join(c.name for c in TABLE)}")

r"""The contract of an update rule: one hyperparameter record, one coefficient record, one pre-step.

Every rule of this package is a :class:`Rule`: its hyperparameters are a frozen dataclass
(:class:`Hyper`: the fields in the optimizer constructor's order, their defaults and their
checks), and its per-step scalars a ``NamedTuple`` computed by ONE function
``coefficients(hyper, step)`` in double on the host. These two records are the only thing the
class, the reference loop, the ``foreach`` path and the fused C++ kernel exchange:

* the class (:class:`precond.optim.PrecondOptimizer`) derives its constructor from the record,
  validates a param group with :meth:`Hyper.check` and builds the step's record from the group
  with :meth:`Hyper.of` (the lr as a float, or per row for a batched optimizer);
* the loop (:func:`loop_step`) runs the rule's ``tensor_step`` per tensor with the coefficients;
* ``foreach`` and ``fused`` (:mod:`precond.optim.kernels`) take the same coefficients; the
  kernel receives one row of the coefficient record per tensor and reads it by field name (its
  C++ struct is checked against the record's ``_fields`` when the extension loads).

Before its own math every rule applies the same **pre-step** (optax's composable
``add_decayed_weights`` and ``scale(-1)``, done once for all rules, :class:`PreStep`):

.. math::

    g \leftarrow -g \ \text{(maximize)},\qquad
    g \leftarrow g + \lambda\theta \ \text{(L2)}\quad\text{or}\quad
    \theta \leftarrow (1-\gamma\lambda)\,\theta \ \text{(decoupled)},\ (1-\lambda)\,\theta \ \text{(fixed)}

with the weight-decay mode given by the record (:attr:`Hyper.weight_decay_mode`), never read
off coefficient values. The loop applies it with :func:`apply_pre_step`, ``foreach`` with
:func:`precond.optim.kernels._host.foreach_pre_step`, the kernels with ``pre_step`` of
``kernels/csrc/common.h``.

Calling a rule functionally (what the class does for one param group)::

    from precond.optim.functional import adam, AdamHyper
    hyper = AdamHyper(lr=1e-3)                       # checked like the constructor's arguments
    state = {"step": [torch.tensor(0.0)], "exp_avg": [torch.zeros_like(p)],
             "exp_avg_sq": [torch.zeros_like(p)]}    # adam.state names the lists; unused ones may be left out
    adam([p], [p.grad], state, hyper)                # impl="foreach" / "fused" for the fast paths
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, NamedTuple

import torch

from ._common import fast_impl, step_all, working_precision

#: the weight-decay modes of the pre-step
WEIGHT_DECAY_MODES = ("none", "l2", "decoupled", "fixed")

#: kernel name -> coefficient record (every rule registers its own): what the C++ structs must match
COEFFICIENTS: dict[str, type] = {}


def hp(default: Any, check: Callable[[str, Any], Any] | None = None, *, argument: bool = True) -> Any:
    """A field of a :class:`Hyper` with its default and its check (:mod:`precond.optim._checks`);
    ``argument=False``: not an argument of the optimizer's constructor (its default is fixed
    there, or the class sets it in each group)."""
    return dataclasses.field(default=default, metadata={"check": check, "argument": argument})


class PreStep(NamedTuple):
    """The shared pre-step of one param group: what the kernels take as ``(weight_decay,
    weight_decay_factor, maximize)``."""

    weight_decay: str  # one of WEIGHT_DECAY_MODES
    factor: float | torch.Tensor  # l2: lambda (g += lambda p); decoupled: 1 - lr*lambda; fixed: 1 - lambda (p *= factor); none: 0
    maximize: bool


@dataclass(frozen=True)
class Hyper:
    """Base of the hyperparameter records: a frozen dataclass per rule.

    A subclass declares its fields in the order of the optimizer constructor's arguments
    (after ``params``), with :data:`dataclasses.KW_ONLY` before the keyword-only ones and
    ``maximize`` last; each field's default is the constructor's, and ``hp(default, check)``
    gives its check. ``hp(default, argument=False)`` marks a field that is not a constructor
    argument (AdamW's fixed ``decoupled_weight_decay=True``, AdaBound's ``base_lr`` from the group).
    Constructing a record checks it (so a functional caller gets the constructor's errors);
    :meth:`of` builds one from a param group without checks, once per group and step.
    """

    #: fields holding a learning rate (a batched optimizer's per-row lrs scale them)
    lr_fields: ClassVar[tuple[str, ...]] = ("lr",)
    #: how a nonzero ``weight_decay`` acts: ``False`` L2, ``True`` decoupled, or the name of the
    #: boolean field that chooses decoupled over L2 (:attr:`weight_decay_mode`)
    decoupled: ClassVar[bool | str] = False

    def __post_init__(self) -> None:
        for name, value in self.check(vars(self)).items():
            object.__setattr__(self, name, value)

    @classmethod
    @functools.cache
    def names(cls) -> tuple[str, ...]:
        """Every field's name, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, values: Mapping[str, Any], **override: Any) -> Any:
        """The record of a param group (or any mapping with every field), unchecked, with
        ``override`` replacing some values (the step's lr as :func:`precond.optim._base.group_lr`
        gives it)."""
        record = object.__new__(cls)
        record.__dict__.update({name: values[name] for name in cls.names()}, **override)
        return record

    @classmethod
    def check(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``values`` (the constructor's arguments or a param group): ``ValueError`` or
        ``TypeError`` naming the argument and its valid range. Returns the values to keep for
        the checked fields (the values themselves, or their canonical form: betas as a tuple)."""
        out = {}
        for f in dataclasses.fields(cls):
            check = f.metadata.get("check")
            if check is not None and f.name in values:
                out[f.name] = check(f.name, values[f.name])
        cls.check_together({**values, **out})
        return out

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> None:
        """Rules that tie several fields (after each field's own check); none by default."""

    @property
    def weight_decay_mode(self) -> str:
        """How this record's ``weight_decay`` acts: one of :data:`WEIGHT_DECAY_MODES` (``"none"``
        at 0, else as :attr:`decoupled` says)."""
        if getattr(self, "weight_decay", 0.0) == 0.0:
            return "none"
        decoupled = getattr(self, self.decoupled) if isinstance(self.decoupled, str) else self.decoupled
        return "decoupled" if decoupled else "l2"

    def pre_step(self) -> PreStep:
        """The group's :class:`PreStep` (the decoupled factor uses this record's lr: a tensor
        for a batched optimizer's rows)."""
        mode = self.weight_decay_mode
        wd = getattr(self, "weight_decay", 0.0)
        if mode == "l2":
            factor = wd
        elif mode == "decoupled":
            factor = 1.0 - self.lr * wd
        elif mode == "fixed":
            factor = 1.0 - wd
        else:
            factor = 0.0
        return PreStep(mode, factor, bool(self.maximize))

    def has_tensor(self) -> bool:
        """Whether a value is a tensor (a batched optimizer's per-row lrs): the loop's business."""
        return any(isinstance(v, torch.Tensor) for v in self.__dict__.values())


def apply_pre_step(p: torch.Tensor, g: torch.Tensor, pre: PreStep) -> torch.Tensor:
    """The loop's pre-step on one tensor: returns the effective gradient (a new tensor when
    changed: ``p.grad`` is never modified) and decays ``p`` in place."""
    if pre.maximize:
        g = torch.neg(g)
    if pre.weight_decay == "l2":
        g = g.add(p, alpha=pre.factor)
    elif pre.weight_decay != "none":
        p.mul_(pre.factor)
    return g


@dataclass(frozen=True, eq=False)
class Rule:
    """One update rule: the records it is defined by and its reference math.

    Calling it runs one step over lists of tensors::

        rule(params, grads, state, hyper, impl="loop")

    with ``state`` a mapping of the rule's :attr:`state` names (and ``"step"``, the float32
    step counters, incremented here) to lists of tensors (an optional list unused by
    ``hyper`` may be empty or missing), updated in place. ``impl="foreach"``/``"fused"`` run
    the fast paths registered by :mod:`precond.optim.kernels` on the same records.

    Attributes:
        name: the rule's name; its kernel is ``torch.ops.precond.<name>_step``.
        Hyper: its hyperparameter record.
        Coefficients: its coefficient record (a ``NamedTuple`` of floats; the kernel's row).
        coefficients: ``coefficients(hyper, step, *counts) -> Coefficients``, in double.
        state: the per-parameter state lists, in the kernel's order (after params and grads).
        tensor_step: the loop's math for one tensor, after the pre-step:
            ``tensor_step(p, g, *state_tensors, coefficients, hyper)`` (``None`` for an unused
            state tensor; low-precision tensors arrive as float32 working copies).
        optional: state lists that exist only when a hyperparameter is on (truthy): state name
            -> field name (``{"max_exp_avg_sq": "amsgrad"}``).
        counts: scalar state lists (not incremented here) whose values join the step as
            arguments of ``coefficients`` (GaussNewtonDiag's curvature count ``k``).
        check: called with ``state`` before anything changes (raises to refuse the step).
    """

    name: str
    Hyper: type[Hyper]
    Coefficients: type
    coefficients: Callable[..., Any]
    state: tuple[str, ...]
    tensor_step: Callable[..., None]
    optional: Mapping[str, str] = dataclasses.field(default_factory=dict)
    counts: tuple[str, ...] = ()
    check: Callable[[Mapping[str, list[Any]]], None] | None = None

    def __post_init__(self) -> None:
        COEFFICIENTS[self.name] = self.Coefficients

    def __call__(self, params: list[torch.Tensor], grads: list[torch.Tensor], state: Mapping[str, list[Any]],
                 hyper: Hyper, *, impl: str = "loop") -> None:  # fmt: skip
        if self.check is not None:
            self.check(state)
        if impl == "loop":
            loop_step(self, params, grads, state, hyper)
        else:
            fast_impl(self.name, impl)(self, params, grads, state, hyper)

    def lists(self, state: Mapping[str, list[Any]]) -> list[list[Any]]:
        """The state lists in :attr:`state` order (``[]`` for a missing one)."""
        return [state.get(name) or [] for name in self.state]

    def keys(self, steps: list[int], state: Mapping[str, list[Any]]) -> list[tuple[int, ...]]:
        """Per tensor, the arguments of :attr:`coefficients` after ``hyper``: its (already
        incremented) step and its :attr:`counts`."""
        if not self.counts:
            return [(s,) for s in steps]
        counts = [[int(c) for c in torch.stack(state[name]).tolist()] for name in self.counts]
        return list(zip(steps, *counts))


def loop_step(rule: Rule, params: list[torch.Tensor], grads: list[torch.Tensor], state: Mapping[str, list[Any]], hyper: Hyper) -> None:
    """The reference loop of ``rule``: per tensor, in working precision, the pre-step and
    ``rule.tensor_step`` with the coefficients of its step."""
    lists = rule.lists(state)
    pre = hyper.pre_step()
    coefficients: dict[tuple[int, ...], Any] = {}
    for i, key in enumerate(rule.keys(step_all(state["step"]), state)):
        if key not in coefficients:
            coefficients[key] = rule.coefficients(hyper, *key)
        with working_precision(params[i], grads[i], *[lst[i] if lst else None for lst in lists]) as (p, g, *tensors):
            rule.tensor_step(p, apply_pre_step(p, g, pre), *tensors, coefficients[key], hyper)

"""Bookkeeping shared by every precond optimizer.

The update rules live in :mod:`precond.optim.functional` as :class:`~precond.optim.functional._rule.Rule`
objects over lists of tensors (torch.optim's own split: ``Adam.step`` collects tensors,
``_single_tensor_adam`` does the math). A subclass of :class:`PrecondOptimizer` names its
``rule`` (and its hyperparameter record ``Hyper``, the rule's unless it says otherwise) and
says which state it keeps (``_state_enabled``, ``_init_state``); from the record come

* its constructor: ``Cls(params, <the record's fields>, *, foreach, fused, nan_policy)``, with
  the record's defaults (:func:`init_signature`; ``help(Cls)`` shows it),
* the checks of every param group (:meth:`~precond.optim.functional._rule.Hyper.check`), and
* each step's record, built from the group and handed to the rule (``_group_step``).

This base class does the rest of the ``torch.optim`` contract: closures, params without
gradients skipped, sparse gradients refused, complex parameters as real views, the
non-finite gradient policy, state dicts that load across versions, copies and pickles that
keep every setting, ``foreach``/``fused`` dispatch. Optimizer hooks and LR schedulers come
from :class:`torch.optim.Optimizer` itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from typing import Any, Callable, ClassVar, Iterable, Sequence

import torch
from torch.optim import Optimizer

from . import _checks
from ._dispatch import resolve_impl, takes_triton
from ._finite import all_finite
from .distributed import any_dtensor, local_list
from .functional._rule import Hyper, Rule

#: private group key of an optimizer made by :meth:`PrecondOptimizer.batched`: one lr per row
ROW_LR = "_row_lr"


def group_lr(group: dict[str, Any], key: str = "lr") -> float | torch.Tensor:
    """A param group's ``lr`` (or AdaBound's ``base_lr``, ``key="base_lr"``) as the functional
    rules take it: a float, from a number or a one-element tensor (shapes ``[]``, ``[1]``,
    ``[1, 1]``, as torch.optim accepts).

    In a group made by :meth:`PrecondOptimizer.batched` the value multiplies the group's
    private per-row tensor :data:`ROW_LR` of shape ``(C, 1, ...)``, and that product is
    returned: row ``i`` of the stacked parameter steps with ``lr * lrs[i]`` (the reference
    loop broadcasts it; elementwise rules only).
    """
    value = float(group[key])
    rows = group.get(ROW_LR)
    return value if rows is None else rows * value


def real_views(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Complex tensors as ``torch.view_as_real`` views (real and imaginary parts as separate
    real coordinates, torch.optim's semantics for complex parameters); others as they are."""
    return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds NaN or inf and ``nan_policy='raise'``."""


#: the keyword-only settings every constructor ends with: (name, default, annotation)
SETTINGS = (("foreach", None, "bool | None"), ("fused", None, "bool | None"), ("nan_policy", "raise", "str"))


def init_signature(hyper: type[Hyper]) -> inspect.Signature:
    """``(self, params, <hyper's constructor fields>, *, foreach, fused, nan_policy)``: the
    signature of an optimizer's constructor, from its record (field order, ``KW_ONLY``, defaults)."""
    P = inspect.Parameter
    fields = [f for f in dataclasses.fields(hyper) if f.metadata.get("argument", True)]
    head = [P("self", P.POSITIONAL_OR_KEYWORD), P("params", P.POSITIONAL_OR_KEYWORD, annotation="Iterable[Any]")]
    positional = [P(f.name, P.POSITIONAL_OR_KEYWORD, default=f.default, annotation=f.type) for f in fields if not f.kw_only]
    keyword = [P(f.name, P.KEYWORD_ONLY, default=f.default, annotation=f.type) for f in fields if f.kw_only]
    keyword += [P(name, P.KEYWORD_ONLY, default=default, annotation=ann) for name, default, ann in SETTINGS]
    return inspect.Signature(head + positional + keyword, return_annotation="None")


def _derived_init(cls: type) -> Callable[..., None]:
    """The constructor of ``cls`` taking the arguments of :func:`init_signature`."""
    signature = init_signature(cls.Hyper)
    fixed = {f.name: f.default for f in dataclasses.fields(cls.Hyper) if not f.metadata.get("argument", True)}

    def __init__(self: PrecondOptimizer, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{cls.__name__}(): {exc}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        del values["self"]
        params = values.pop("params")
        settings = {name: values.pop(name) for name, _, _ in SETTINGS}
        maximize = values.pop("maximize")
        PrecondOptimizer.__init__(self, params, {**values, **fixed}, maximize=maximize, **settings)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"See :class:`{cls.__name__}` (arguments: the fields of :class:`{cls.Hyper.__name__}`)."
    return __init__


class PrecondOptimizer(Optimizer):
    """Base class: a ``torch.optim.Optimizer`` whose math lives in a functional rule.

    Args shared by every subclass (all keyword-only):
        maximize: maximize the objective instead of minimizing (per group).
        foreach: use the multi-tensor path (per group). ``None`` lets precond choose.
        fused: use the fused kernel (per group). ``None`` lets precond choose the fastest
            path known to work for the device and dtype.
        nan_policy: what a step does when any gradient holds NaN or inf:
            ``"raise"`` (default) raises :class:`NonFiniteGradientError` before any state
            changes; ``"skip"`` leaves parameters and state untouched, counts the step in
            ``optimizer.skipped_steps`` and warns; ``"propagate"`` applies the update
            as is (no check, no cost: what torch.optim does).

    Settings of the whole optimizer (``nan_policy``; AdaGradNorm's ``scope``; the curvature
    optimizers' ``estimator``, ``update_every``, ``curvature_samples``) live in ``defaults``
    and every param group, as torch keeps ``foreach``: state dicts, ``copy.deepcopy`` and
    ``pickle`` carry them, a param group may not set another value, and they are read through
    read-only properties (``optimizer.nan_policy``...). ``skipped_steps`` is carried by
    ``deepcopy``/``pickle`` too.

    Complex parameters (where :attr:`supports_complex`) are optimized as torch.optim does:
    the rule sees ``torch.view_as_real`` of the parameter, its gradient and its state, so
    real and imaginary parts are separate coordinates.
    """

    #: names of the per-parameter tensors a subclass keeps (besides ``step``)
    state_names: tuple[str, ...] = ()
    #: per-parameter scalar state held as a CPU tensor of this dtype whatever the parameter's
    #: (restored so by :meth:`load_state_dict`)
    _scalar_state_dtypes: dict[str, torch.dtype] = {"step": torch.float32}
    #: settings of the whole optimizer, kept in ``defaults`` and every param group
    _optimizer_options: tuple[str, ...] = ("nan_policy",)
    #: the rule is elementwise: independent runs stacked as the rows of one parameter can
    #: take their steps together (:meth:`batched`)
    batchable: bool = False
    #: complex parameters are optimized as real views (else refused at construction)
    supports_complex: bool = True
    #: the update rule (:class:`~precond.optim.functional._rule.Rule`) and its hyperparameter
    #: record (the rule's unless a subclass says otherwise, e.g. AdamW's)
    rule: ClassVar[Rule | None] = None
    Hyper: ClassVar[type[Hyper]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass naming a ``rule`` or a ``Hyper`` gets its state names from the rule and
        its constructor from the record (unless it writes its own ``__init__``)."""
        super().__init_subclass__(**kwargs)
        if "rule" in cls.__dict__:
            cls.state_names = cls.rule.state
            cls.Hyper = cls.__dict__.get("Hyper", cls.rule.Hyper)
        if ("Hyper" in cls.__dict__ or "rule" in cls.__dict__) and "__init__" not in cls.__dict__:
            cls.__init__ = _derived_init(cls)  # type: ignore[method-assign]

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        if fused and foreach:
            raise ValueError("fused=True and foreach=True are exclusive: choose one (or leave both None)")
        defaults = dict(defaults, maximize=bool(maximize), foreach=foreach, fused=fused, nan_policy=nan_policy)
        self._check_options(defaults)
        self._validate_group(defaults)
        self._skipped_steps = 0
        super().__init__(params, defaults)

    # ---- settings ----------------------------------------------------------------------
    def _check_options(self, group: dict[str, Any]) -> None:
        """Validate (and canonicalize) the settings of :attr:`_optimizer_options` in ``group``."""
        _checks.check_nan_policy(group["nan_policy"])

    def _option(self, key: str) -> Any:
        groups = self.__dict__.get("param_groups")
        return groups[0][key] if groups else self.defaults[key]

    @property
    def nan_policy(self) -> str:
        """``"raise"``, ``"skip"`` or ``"propagate"`` (see the class docstring)."""
        return self._option("nan_policy")

    @property
    def skipped_steps(self) -> int:
        """Steps skipped under ``nan_policy="skip"`` so far (on the Triton path, waits for the
        device's pending checks)."""
        if self.__dict__.get("_triton_pending"):
            from .kernels import triton

            triton.report(self, wait=True)
        return self._skipped_steps

    def __getstate__(self) -> dict[str, Any]:
        return dict(super().__getstate__(), _skipped_steps=self._skipped_steps)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # (load_state_dict passes no _skipped_steps: the count stays)
        self.__dict__.setdefault("_skipped_steps", 0)

    @classmethod
    def validate_options(cls, **hyperparameters: Any) -> None:
        """Check constructor arguments without parameters: raises the ``ValueError``/``TypeError``
        that ``cls(params, **hyperparameters)`` raises (it builds the optimizer over one scalar
        parameter, so every check of the constructor runs, and nothing else)."""
        cls([torch.zeros((), requires_grad=True)], **hyperparameters)

    @classmethod
    def batched(cls, param: torch.Tensor | Sequence[torch.Tensor], lrs: Sequence[float], **hyperparameters: Any) -> "PrecondOptimizer":
        """``C = len(lrs)`` independent runs of this rule as one optimizer over ``param``, the
        ``(C, ...)`` stack of their parameters (or several such tensors, all of one rank: one per
        parameter of a stacked model): row ``i`` steps with lr ``lrs[i]``, all rows with the same
        other ``hyperparameters`` (:mod:`precond.experiments.vectorized` uses it).

        Only for :attr:`batchable` (elementwise) rules. Every lr is validated as the
        constructor's ``lr``. The lrs are kept in the group's private :data:`ROW_LR` tensor of
        shape ``(C, 1, ...)``; the group's ``lr`` is 1.0 and multiplies them, so an LR scheduler
        scales every row alike (:func:`group_lr`). The step runs the rule's fused kernel on the
        stacked tensors with one coefficient row per run (:mod:`precond.optim.kernels._host`), or
        its reference loop, which broadcasts the ``(C, 1, ...)`` lrs.
        """
        if not cls.batchable:
            raise TypeError(f"{cls.__name__} cannot run batched: its rule is not elementwise over the rows of a stacked parameter")
        if "lr" in hyperparameters:
            raise TypeError(f"{cls.__name__}.batched: give the learning rates as lrs (one per row), not lr")
        lrs = [float(lr) for lr in lrs]
        params = [param] if isinstance(param, torch.Tensor) else list(param)
        for p in params:
            if p.dim() < 1 or p.shape[0] != len(lrs):
                raise ValueError(f"{cls.__name__}.batched: {len(lrs)} lrs for a parameter of shape {tuple(p.shape)}: give one per row")
        if len({p.dim() for p in params}) > 1:
            raise ValueError(f"{cls.__name__}.batched: stacked parameters of ranks {sorted({p.dim() for p in params})}: "
                             "give them all as (C, n) (one lr tensor (C, 1, ...) broadcasts over each)")  # fmt: skip
        param = params[0]
        opt = cls(params, lr=1.0, **hyperparameters)
        group = opt.param_groups[0]
        for lr in lrs:
            opt._validate_group(dict(group, lr=lr))
        dtype = param.dtype if param.is_floating_point() else torch.float64  # the param's: a float64 lr on float32 rows costs a conversion per op
        group[ROW_LR] = torch.tensor(lrs, dtype=dtype, device=param.device).reshape(-1, *[1] * (param.dim() - 1))
        return opt

    # ---- hyperparameters -------------------------------------------------------------
    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check the hyperparameters of ``group`` (its record's checks), keeping canonical values."""
        group.update(self.Hyper.check(group))

    def _hyper(self, group: dict[str, Any]) -> Hyper:
        """The step's record of ``group``: every learning rate as :func:`group_lr` gives it."""
        return self.Hyper.of(group, **{key: group_lr(group, key) for key in self.Hyper.lr_fields})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group)
        except Exception:
            self.param_groups.pop()  # refused: the optimizer stays as it was
            raise

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        if group.get("fused") and group.get("foreach"):
            raise ValueError("fused=True and foreach=True are exclusive in one param group")
        self._check_options(group)
        first = self.param_groups[0]
        for key in self._optimizer_options:
            if group[key] != first[key]:
                raise ValueError(
                    f"{name}: {key} holds for the whole optimizer ({first[key]!r}); a param group cannot "
                    f"set {key}={group[key]!r}: pass it to the constructor"
                )
        if not self.supports_complex and any(p.is_complex() for p in group["params"]):
            raise ValueError(
                f"{name} does not support complex parameters: optimize their real and imaginary parts "
                "as a real parameter (torch.view_as_real)"
            )
        self._validate_group(group)

    # ---- state -----------------------------------------------------------------------
    def _init_state(self, group: dict[str, Any], p: torch.Tensor, state: dict[str, Any]) -> None:
        """Create the state of ``p`` (called once, on its first step with a gradient)."""
        state["step"] = torch.tensor(0.0, dtype=torch.float32)
        for name in self.state_names:
            if self._state_enabled(group, name):
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _state_enabled(self, group: dict[str, Any], name: str) -> bool:
        """Whether the state ``name`` exists under ``group``'s options (the rule's ``optional``)."""
        flag = self.rule.optional.get(name) if self.rule is not None else None
        return flag is None or bool(group[flag])

    def _group_state(self, group: dict[str, Any], params: list[torch.Tensor]) -> dict[str, list[Any]]:
        """Lists of each state tensor for ``params``, creating missing state (torch's ``_init_group``);
        the state of a complex parameter as its real view."""
        out: dict[str, list[Any]] = {"step": []}
        names = [n for n in self.state_names if self._state_enabled(group, n)]
        for n in names:
            out[n] = []
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                self._init_state(group, p, state)
            for n in names:
                if n not in state:  # an option switched on after the state was made
                    state[n] = torch.zeros_like(p, memory_format=torch.preserve_format)
                out[n].append(torch.view_as_real(state[n]) if state[n].is_complex() else state[n])
            out["step"].append(state["step"])
        for n in self.rule.counts if self.rule is not None else ():  # scalar state the rule reads
            out[n] = [self.state[p][n] for p in params]
        return out

    def _rule_inputs(
        self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, list[Any]]]:
        """What the functional rule takes for ``params``: the params and grads (complex ones as
        real views) and :meth:`_group_state`; of a ``DTensor`` (FSDP2), its local shard
        (elementwise rules are shard-local, :mod:`precond.optim.distributed`)."""
        state = self._group_state(group, params)
        if any_dtensor(params):
            state = {k: local_list(v) for k, v in state.items()}
            params, grads = local_list(params), local_list(grads)
        return real_views(params), real_views(grads), state

    # ---- the step ----------------------------------------------------------------------
    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        """One step of :attr:`rule` over ``group``'s params with a gradient, by path ``impl``."""
        originals = params
        params, grads, state = self._rule_inputs(group, params, grads)
        if impl == "triton":  # CUDA's fused path: GradScaler's scale and the skip flag act on the device
            from .kernels import triton

            return triton.optimizer_step(self, originals, params, grads, state, self._hyper(group))
        self.rule(params, grads, state, self._hyper(group), impl=impl)

    def _triton_begin(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> bool:
        """Whether every group of this step takes the Triton path; then the step's skip flag
        (GradScaler's ``found_inf`` or the non-finite check) is made on the device, no host sync
        (:func:`precond.optim.kernels.triton.begin_step`)."""
        if not all(takes_triton(self, group, params) for group, params, _ in work):
            return False
        from .kernels import triton

        triton.begin_step(self, real_views([g for _, _, grads in work for g in grads]))
        return True

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """GradScaler passes ``grad_scale``/``found_inf`` to :meth:`step` (unscaled and skipped on
        the device, as torch's fused optimizers) when every group takes the Triton path."""
        groups = [g for g in self.param_groups if g["params"]]
        return bool(groups) and all(takes_triton(self, g, list(g["params"])) for g in groups)

    def _params_with_grad(self, group: dict[str, Any]) -> list[torch.Tensor]:
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients; use dense gradients "
                    "(e.g. nn.Embedding(sparse=False)) or torch.optim.SparseAdam for sparse embeddings"
                )
            params.append(p)
        return params

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss;
                it is called with gradients enabled, as in ``torch.optim``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:
            params = self._params_with_grad(group)
            if params:
                work.append((group, params, [p.grad for p in params]))
        if not work:
            return loss
        policy = self.nan_policy
        on_device = self._triton_begin(work)
        if policy != "propagate" and not on_device:
            if not all_finite(real_views([g for _, _, grads in work for g in grads])):
                if policy == "raise":
                    raise NonFiniteGradientError(
                        f"{type(self).__name__}.step: a gradient holds NaN or inf; no parameter or state "
                        "was changed. Fix the loss (or lower the lr), or construct the optimizer with "
                        "nan_policy='skip' to skip such steps or nan_policy='propagate' to apply them."
                    )
                self._skipped_steps += 1
                warnings.warn(
                    f"{type(self).__name__}.step skipped: non-finite gradient "
                    f"({self.skipped_steps} step(s) skipped so far)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return loss
        self._apply(work)
        if on_device:
            from .kernels import triton

            triton.end_step(self)
        return loss

    def _apply(self, work: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]) -> None:
        """Update every ``(group, params, grads)``; one group at a time unless overridden."""
        for group, params, grads in work:
            self._group_step(group, params, grads, resolve_impl(self, group, params))

    # ---- state dicts -------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, also from older precond versions and the published code.

        As torch.optim, the saved group options replace this optimizer's, and
        :meth:`state_dict` then returns what was loaded. Options missing from ``state_dict``
        (older versions, the published code) keep this optimizer's values (its defaults, and
        e.g. AdaBound's ``base_lr``), and the scalar state of :attr:`_scalar_state_dtypes`
        comes back as CPU tensors of its dtype (an integer or float ``step`` of older
        checkpoints becomes the float32 tensor used now; torch.optim would cast such state
        to the parameter's dtype, e.g. bfloat16).
        """
        # scalar state kept as CPU tensors of a fixed dtype: taken before torch.optim's load,
        # which casts floating-point state to the parameter's dtype and device
        kept = {
            (i, key): float(value)
            for i, s in state_dict["state"].items() if isinstance(s, dict)
            for key, value in s.items() if key in self._scalar_state_dtypes
        }  # fmt: skip
        before = [dict(g) for g in self.param_groups]
        super().load_state_dict(state_dict)
        for group, old in zip(self.param_groups, before):
            for key, value in old.items():
                group.setdefault(key, value)
        for key in self._optimizer_options:  # the settings now in force
            self.defaults[key] = self.param_groups[0][key]
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(saved_ids, params):
            state = self.state.get(p, {})
            for key, dtype in self._scalar_state_dtypes.items():
                if (i, key) in kept and key in state:
                    state[key] = torch.tensor(kept[(i, key)], dtype=dtype)

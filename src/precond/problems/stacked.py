"""Stacked models: ``C`` copies of one architecture, each with its own parameters, evaluated as
one computation (the batched sweeps of network problems, :mod:`precond.experiments.batched_modules`).

Run ``i``'s parameters are row ``i`` of the model's parameters stacked to ``(C, *shape)``
(:class:`RowLayout`: views of one ``(C, n_k)`` tensor per parameter, or of the rows of one
``(C, d)`` tensor, :func:`split_rows`). The stacked forward :func:`stacked_forward` maps inputs
``(S, *input)`` to outputs ``(C, *output)`` with row ``i`` equal to ``model_i(inputs_{i // (C/S)})``:
``S = C`` gives every run its own batch, and ``S < C`` (a divisor of ``C``) lets ``C/S``
consecutive runs share one (runs of one seed: the same data order), without copies:

* for :class:`~.models.MLP`, :class:`~.models.CNN1d`, the regressions' weight vector and
  ``nn.Sequential``/``nn.Linear``/``nn.Conv1d``/parameter-free activations, as batched
  matrix products: ``Linear``: ``y_i^T = W_i x_i^T + b_i`` by ``torch.baddbmm``, the ``C/S``
  weights of runs sharing an input as one ``(C/S out, in)`` matrix (``(C/S) out x in x B``
  products, faster than ``C/S`` small ones); ``Conv1d``: the ``C`` convolutions as one grouped
  convolution (``groups = C``, inputs ``(B, C c_in, L)``);
* for any other model, ``torch.func.functional_call`` under ``torch.func.vmap``
  (``randomness="error"``: a model that draws random numbers is refused).

:func:`loss_rows` is ``loss_from_outputs`` of each row (the curvature layer's definitions:
``mse = 1/2 mean_i |o_i - y_i|^2``, ``logistic = mean softplus``-BCE, ``cross_entropy = mean -log
softmax``), one value per run. :class:`StackedProblem` puts them together for a problem: the
stacked forward and :func:`loss_rows` when the problem's ``forward`` is ``model(batch.inputs)``
up to a reshape with ``batch.targets`` and its ``loss`` is the base class's (checked on the
first batch), else the problem's own ``loss`` under ``vmap``.

Which problems can be stacked is their ``stackable`` (:class:`~.base.Problem`);
:func:`check_stateless` refuses models whose result depends on more than their parameters and
inputs (buffers such as batch-norm statistics, dropout, recurrent layers).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from precond.optim.kernels.matmul import bmm

from .base import LOSS_TYPES, Batch, Problem
from .models import CNN1d, MLP
from .regression import LinearModel

#: parameter-free modules applied to stacked tensors as they are (elementwise)
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Softplus, nn.Identity)

Params = dict[str, torch.Tensor]  # parameter name -> stacked (C, *shape)


def check_stateless(model: nn.Module, where: str) -> None:
    """Refuse (``ValueError``) a model whose output depends on more than its parameters and inputs."""
    buffers = [n for n, _ in model.named_buffers()]
    if buffers:
        raise ValueError(f"{where}: the model has buffers ({', '.join(buffers[:3])}); only stateless models can be stacked")
    for name, m in model.named_modules():
        if isinstance(m, (nn.modules.dropout._DropoutNd, nn.RNNBase, nn.modules.batchnorm._NormBase)):
            raise ValueError(f"{where}: {name or 'the model'} is a {type(m).__name__}; only stateless models can be stacked")


class RowLayout:
    """The trainable parameters of ``model`` (in ``parameters()`` order) stacked for ``C`` runs:
    one ``(C, n_k)`` tensor per parameter (:meth:`stack`), or the rows of one ``(C, d)`` tensor
    (their concatenation, the order of ``parameters_to_vector``)."""

    def __init__(self, model: nn.Module) -> None:
        self.parts = [(name, p.shape) for name, p in model.named_parameters() if p.requires_grad]
        self.sizes = [s.numel() for _, s in self.parts]

    def stack(self, models: list[nn.Module]) -> list[torch.Tensor]:
        """The trainable parameters of ``models`` (one run each), parameter by parameter: ``(C, n_k)`` tensors."""
        per_model = [[p for p in m.parameters() if p.requires_grad] for m in models]
        return [torch.stack([ps[k].detach().reshape(-1) for ps in per_model]) for k in range(len(self.parts))]

    def __call__(self, X: torch.Tensor | list[torch.Tensor], frozen: Params | None = None) -> Params:
        """The parameters, each ``(C, *shape)``: views of the ``(C, n_k)`` tensors of :meth:`stack`
        (their backward is a view too), or of the rows of ``X`` ``(C, d)`` (one split, whose backward
        is one ``cat``); ``frozen``: the stacked others."""
        views = X.split(self.sizes, dim=1) if isinstance(X, torch.Tensor) else X
        return {**(frozen or {}), **{name: _shaped(v, (v.shape[0], *s)) for (name, s), v in zip(self.parts, views)}}


def split_rows(model: nn.Module, X: torch.Tensor, frozen: Params | None = None) -> Params:
    """The trainable parameters of ``model`` as views of the rows of ``X`` (:class:`RowLayout`)."""
    return RowLayout(model)(X, frozen)


def rows_of(x: torch.Tensor, C: int) -> torch.Tensor:
    """Inputs ``(S, ...)`` shared by groups of ``C/S`` consecutive runs as ``(C, ...)``, one per run
    (a view for ``S = 1``, else a copy)."""
    S = x.shape[0]
    if S == C:
        return x
    if C % S:
        raise ValueError(f"stacked inputs: {S} groups cannot be shared by {C} runs; give C or a divisor of C groups")
    return x.unsqueeze(1).expand(S, C // S, *x.shape[1:]).reshape(C, *x.shape[1:])


# ---- batched forms of known modules ---------------------------------------------------------------
def _linear(m: nn.Linear, P: Params, pre: str, x: torch.Tensor) -> torch.Tensor:
    # y_i^T = W_i x_i^T + b_i: the weight's gradient is then (dy_i)^T x_i, a product MKL does fast for
    # few outputs (x_i^T dy_i, its transpose, is several times slower there); y comes out as a
    # transposed view, which the next layer's x^T reads back contiguously. Inputs (S, ...) shared by
    # C/S runs: their weights as one (C/S out, in) matrix (a view when W is (C, out, in) contiguous)
    # (Reshapes that change nothing are skipped: each is a node of the backward graph.)
    W, b = P[pre + "weight"], P.get(pre + "bias")
    C, out, S = W.shape[0], W.shape[1], x.shape[0]
    if C % S:
        x, S = rows_of(x, C), C  # not a divisor: refused
    if S != C:
        W, b = W.reshape(S, -1, W.shape[2]), None if b is None else b.reshape(S, -1)
    xt = _shaped(x, (S, -1, x.shape[-1])).transpose(1, 2)
    y = bmm(W, xt, None if b is None else b.unsqueeze(2))
    y = (y if S == C else y.view(C, out, -1)).transpose(1, 2)
    return _shaped(y, (C, *x.shape[1:-1], out))


def _shaped(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``t.reshape(shape)``, or ``t`` itself when that changes nothing (no view, no graph node)."""
    if len(shape) == t.dim() and all(n in (-1, m) for n, m in zip(shape, t.shape)):
        return t
    return t.reshape(shape)


class _Channels:
    """The outputs of stacked convolutions between layers: ``t`` ``(B, C c, 1, L)`` in channels-last
    memory (``(B, L, C c)``), as oneDNN's grouped 2-D convolutions of height 1 take and give them.
    Activations apply to ``t`` itself, so that their backward meets gradients of the same layout
    (ReLU's backward over the first layer's 2.9 M outputs of the default mnist1d_cnn's 35 rows:
    3.5 ms so, 14 ms with the gradient in the other layout); :meth:`rows` is the ``(C, B, c, L)``
    view, for any other module."""

    def __init__(self, t: torch.Tensor, C: int) -> None:
        self.t, self.C = t, C

    def rows(self) -> torch.Tensor:
        return self.t.squeeze(2).unflatten(1, (self.C, -1)).transpose(0, 1)


def _conv1d(m: nn.Conv1d, P: Params, pre: str, x: torch.Tensor | _Channels) -> _Channels:
    # The C convolutions as one grouped 2-D convolution of height 1 in channels-last layout: oneDNN
    # then runs the forward and both backward passes without the reorders that the (B, C c_in, L)
    # layout costs (a step of the default mnist1d_cnn's 35 rows: 50 against 62 to 70 ms). Inputs
    # (S, ...) shared by C/S runs (the data, for a first layer): S groups of C/S c_out output
    # channels each (the runs' weights side by side) instead of a copy of the input per run (one
    # input channel per group is oneDNN's slowest case). (An im2col of the inputs times the
    # weights by :func:`bmm` measured slower still, 72 ms: its unfold's backward alone took 14.)
    W, b = P[pre + "weight"], P.get(pre + "bias")
    C, c_out = W.shape[:2]
    if isinstance(x, _Channels):
        x4, S = x.t, C
    else:
        S = x.shape[0]
        if S != C and (m.groups != 1 or C % S):
            x, S = rows_of(x, C), C  # a module with groups of its own shares no input; a non-divisor is refused
        B, L = x.shape[1], x.shape[-1]
        x4 = x.transpose(0, 1).reshape(B, S * m.in_channels, 1, L)
    x4 = x4.contiguous(memory_format=torch.channels_last)
    pad = m.padding if isinstance(m.padding, str) else (0, m.padding[0])
    y = F.conv2d(x4, W.reshape(C * c_out, W.shape[2], 1, W.shape[3]), None if b is None else b.reshape(-1),
                 (1, m.stride[0]), pad, (1, m.dilation[0]), m.groups * S)  # fmt: skip
    return _Channels(y, C)


def _sequential(m: nn.Sequential, P: Params, pre: str, x: torch.Tensor | _Channels) -> torch.Tensor | _Channels:
    for name, child in m.named_children():
        x = _apply(child, P, f"{pre}{name}.", x)
    return x


def _mlp(m: MLP, P: Params, pre: str, x: torch.Tensor) -> torch.Tensor:
    return _apply(m.net, P, pre + "net.", x.flatten(2))  # MLP.forward: net(x.flatten(1)) per row


def _cnn1d(m: CNN1d, P: Params, pre: str, x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:  # CNN1d.forward: (N, L) -> (N, 1, L) per row
        x = x.unsqueeze(2)
    return _apply(m.head, P, pre + "head.", _rows(_apply(m.features, P, pre + "features.", x)).mean(-1))


def _weights(m: LinearModel, P: Params, pre: str, x: torch.Tensor) -> torch.Tensor:
    w = P[pre + "x"]  # LinearModel.forward: inputs @ x per row
    x = rows_of(x, w.shape[0])
    return bmm(x.reshape(w.shape[0], -1, w.shape[1]), w.unsqueeze(-1)).reshape(x.shape[:-1])


#: module type -> its batched form ``(module, params, prefix, x) -> y``
FORMS: dict[type, Callable[[nn.Module, Params, str, torch.Tensor], torch.Tensor]] = {
    nn.Linear: _linear, nn.Conv1d: _conv1d, nn.Sequential: _sequential, MLP: _mlp, CNN1d: _cnn1d, LinearModel: _weights,
}


def _apply(m: nn.Module, P: Params, pre: str, x: torch.Tensor | _Channels) -> torch.Tensor | _Channels:
    if isinstance(m, ELEMENTWISE):
        return _Channels(m(x.t), x.C) if isinstance(x, _Channels) else m(x)
    if not isinstance(m, (nn.Conv1d, nn.Sequential)):  # they take the convolutions' layout as it is
        x = _rows(x)
    return FORMS[type(m)](m, P, pre, x)


def _rows(x: torch.Tensor | _Channels) -> torch.Tensor:
    return x.rows() if isinstance(x, _Channels) else x


def has_form(model: nn.Module) -> bool:
    """Whether every module of ``model`` has a batched form (else :func:`stacked_forward` uses vmap)."""
    if isinstance(model, ELEMENTWISE):
        return True
    if type(model) not in FORMS or (isinstance(model, nn.Conv1d) and model.padding_mode != "zeros"):
        return False
    return all(has_form(c) for c in model.children())


def stacked_forward(model: nn.Module) -> Callable[[Params, torch.Tensor], torch.Tensor]:
    """``f(P, inputs) -> outputs``: row ``i`` of the outputs is ``model`` with the parameters
    ``P[name][i]`` applied to ``inputs[i // (C/S)]`` (inputs ``(S, ...)``; see the module docstring for how)."""
    if has_form(model):
        return lambda P, x: _rows(_apply(model, P, "", x))
    call = torch.func.vmap(lambda P, x: torch.func.functional_call(model, P, (x,)), randomness="error")
    return lambda P, x: call(P, rows_of(x, next(iter(P.values())).shape[0]))


def loss_rows(loss_type: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(C,)``: :func:`precond.curvature.losses.loss_from_outputs` of each row ``(outputs[i], targets[i])``."""
    C = outputs.shape[0]
    if loss_type == "mse":
        r = (outputs - targets).pow(2)
        return 0.5 * (r.sum(-1) if outputs.dim() > 2 else r).reshape(C, -1).mean(1)
    if loss_type == "logistic":
        e = F.binary_cross_entropy_with_logits(outputs, targets.to(outputs.dtype), reduction="none")
        return e.reshape(C, -1).mean(1)
    if loss_type == "cross_entropy":  # classes on dim 1: much faster than on the last dim for few classes
        k = outputs.shape[-1]
        return F.cross_entropy(_shaped(outputs, (C, -1, k)).transpose(1, 2), _shaped(targets, (C, -1)), reduction="none").mean(1)
    raise ValueError(f"loss_rows: loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


class _Loss(nn.Module):
    """``problem.loss`` of ``model`` as a module of the model's parameters (for ``functional_call``)."""

    def __init__(self, problem: Problem, model: nn.Module) -> None:
        super().__init__()
        self.problem, self.model = problem, model

    def forward(self, inputs, targets, t: int) -> torch.Tensor:
        return self.problem.loss(self.model, Batch(inputs, targets, t))


def _forward_is_model(problem: Problem, model: nn.Module, batch: Batch) -> bool:
    """Whether ``problem.forward(model, batch)`` is ``model(batch.inputs)`` reshaped, and ``batch.targets``
    (checked exactly on ``batch``)."""
    with torch.no_grad():
        out, targets = problem.forward(model, batch)
        raw = model(batch.inputs)
    return targets is batch.targets and out.numel() == raw.numel() and torch.equal(out, raw.reshape(out.shape))


class StackedProblem:
    """A problem's training loss for ``C`` copies of ``model`` stacked as parameters ``P`` (name ->
    ``(C, *shape)``, :class:`RowLayout`); ``batch`` is one run's first batch (to check the problem's
    ``forward``).

    ``loss(P, rows)`` ``(C,)``: row ``i`` on ``rows.inputs[i // (C/S)], rows.targets[i // (C/S)]``,
    inputs and targets stacked to ``(S, ...)`` (``S = C``: a batch per run; ``S = 1``: one batch
    for all). When the problem's ``forward`` is its model's output up to a reshape and its
    ``loss`` the base class's (``fast``): :func:`stacked_forward` and :func:`loss_rows`; else its
    own ``loss`` under ``vmap``. (Evaluation stays row by row: on whole data sets the stacked
    forward measured slower.)
    """

    def __init__(self, problem: Problem, model: nn.Module, batch: Batch) -> None:
        check_stateless(model, type(problem).__name__)
        self.problem, self.model = problem, model
        self.forward = stacked_forward(model)
        self.fast = type(problem).loss is Problem.loss and problem.loss_type in LOSS_TYPES and _forward_is_model(problem, model, batch)
        self.shape = problem.forward(model, batch)[0].shape if self.fast else None  # one row's training outputs
        self._own = _Loss(problem, model)

    def loss(self, P: Params, rows: Batch) -> torch.Tensor:
        C = next(iter(P.values())).shape[0]
        x, y = rows.inputs, rows.targets
        if not self.fast:
            one = lambda Q, x, y: torch.func.functional_call(self._own, {f"model.{k}": v for k, v in Q.items()}, (x, y, rows.t))  # noqa: E731
            if x.shape[0] == 1:
                return torch.func.vmap(one, in_dims=(0, None, None), randomness="error")(P, x[0], y[0])
            return torch.func.vmap(one, randomness="error")(P, rows_of(x, C), rows_of(y, C))
        return loss_rows(self.problem.loss_type, _shaped(self.forward(P, x), (C, *self.shape)), rows_of(y, C))

r"""The three losses the Gauss-Newton machinery understands, as functions of the outputs.

Conventions (the same as :meth:`precond.problems.base.Problem.loss_from_outputs`); the loss
is a mean over ``N`` *rows* of a per-row negative log-likelihood ``nll_i``:

=================  =======================================  ===================================  =================
``loss_type``      loss                                     rows / output dim ``k``              predictive p(y|o)
=================  =======================================  ===================================  =================
``mse``            ``0.5 * ||o - y||^2`` summed over the    last dim is ``k`` (1-D: ``k = 1``)    ``N(o, I)``
                   last dim, mean over the rest
``logistic``       ``BCE_with_logits`` mean over entries    every entry is a row, ``k = 1``       ``Bernoulli(sigmoid(o))``
``cross_entropy``  ``CE`` of ``o.reshape(-1, C)``, mean     last dim is ``k = C`` (logits)        ``Categorical(softmax(o))``
=================  =======================================  ===================================  =================

Shapes are checked, never broadcast (:func:`check_shapes`): mse and logistic need
``targets.shape == outputs.shape``; cross entropy needs ``targets.shape == outputs.shape[:-1]``
(or the flat ``(N,)`` of the rows).

So ``L = (1/N) sum_i nll_i(o_i)`` and the loss Hessian in output space is block diagonal,
``H_out = (1/N) diag(F_i)`` with ``F_i = I`` (mse), ``s(1-s)`` (logistic, ``s = sigmoid(o)``)
or ``diag(p) - p p^T`` (cross entropy, ``p = softmax(o)``): for these canonical losses the
output Hessian is also the Fisher of the predictive distribution, which is what the
Gauss-Newton-Bartlett estimator uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ("mse", "logistic", "cross_entropy")


def check_loss_type(loss_type: object) -> str:
    if loss_type not in LOSS_TYPES:
        raise ValueError(
            f"invalid loss_type={loss_type!r}: must be one of {', '.join(map(repr, LOSS_TYPES))} "
            "(Gauss-Newton quantities need the loss as a function of the model's outputs)"
        )
    return loss_type  # type: ignore[return-value]


def check_shapes(loss_type: str, outputs: torch.Tensor, targets: torch.Tensor | None) -> None:
    """``ValueError`` unless ``targets`` fits ``outputs`` for ``loss_type`` (module docstring):
    ``outputs (N, 1)`` with ``targets (N,)`` would broadcast to ``(N, N)`` under mse."""
    check_loss_type(loss_type)
    if targets is None:
        raise ValueError(f"loss_type {loss_type!r} needs targets, got None")
    o, t = tuple(outputs.shape), tuple(targets.shape)
    if loss_type != "cross_entropy":
        if o != t:
            hint = " (e.g. outputs.squeeze(-1))" if o == t + (1,) else " (e.g. targets.squeeze(-1))" if t == o + (1,) else ""
            raise ValueError(f"{loss_type} loss: outputs {o} and targets {t} differ in shape (they would broadcast): make them equal{hint}")
    elif not o or not o[-1] or t not in (o[:-1], (outputs.numel() // o[-1],)):
        raise ValueError(f"cross_entropy loss: logits {o} need targets {o[:-1]} (class indices, or the flat rows), got {t}")


def rows(loss_type: str, outputs: torch.Tensor) -> torch.Tensor:
    """``outputs`` as a ``(N, k)`` matrix of rows (see the module table)."""
    check_loss_type(loss_type)
    if loss_type == "logistic" or outputs.dim() <= 1:
        return outputs.reshape(-1, 1)
    return outputs.reshape(-1, outputs.shape[-1])


def loss_from_outputs(loss_type: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The scalar mean loss (module table); ``ValueError`` on shapes that do not fit (:func:`check_shapes`)."""
    check_shapes(loss_type, outputs, targets)
    if loss_type == "mse":
        if outputs.dim() > 1:
            return 0.5 * (outputs - targets).pow(2).sum(-1).mean()
        return 0.5 * (outputs - targets).pow(2).mean()
    if loss_type == "logistic":
        return F.binary_cross_entropy_with_logits(outputs, targets.to(outputs.dtype))
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


def output_hessian(loss_type: str, outputs: torch.Tensor) -> torch.Tensor:
    """Per-row blocks of the loss Hessian in output space, ``(N, k, k)``, including the ``1/N``.

    It does not depend on the targets for these losses (mse: ``I/N``; logistic:
    ``s(1-s)/N``; cross entropy: ``(diag(p) - p p^T)/N``).
    """
    o = rows(loss_type, outputs.detach())
    n, k = o.shape
    if loss_type == "mse":
        blocks = torch.eye(k, dtype=o.dtype, device=o.device).expand(n, k, k).clone()
    elif loss_type == "logistic":
        s = torch.sigmoid(o)
        blocks = (s * (1 - s)).unsqueeze(-1)
    else:
        p = torch.softmax(o, dim=-1)
        blocks = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
    return blocks / n


def sample_targets(loss_type: str, outputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Targets drawn from the model's predictive distribution (module table), detached."""
    check_loss_type(loss_type)
    o = outputs.detach()
    if loss_type == "mse":
        return o + torch.randn(o.shape, dtype=o.dtype, device=o.device, generator=generator)
    if loss_type == "logistic":
        return torch.bernoulli(torch.sigmoid(o), generator=generator)
    p = torch.softmax(o.reshape(-1, o.shape[-1]).to(torch.float64), dim=-1)
    y = torch.multinomial(p, 1, generator=generator).reshape(o.shape[:-1])
    return y


def output_gradient(loss_type: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``dL/do`` of the mean loss in closed form (shape of ``outputs``); ``targets`` may carry
    extra leading sample dimensions, which the result then has too."""
    check_loss_type(loss_type)
    o = outputs.detach()
    if loss_type == "mse":
        n = o.numel() // o.shape[-1] if o.dim() > 1 else o.numel()
        return (o - targets) / n
    if loss_type == "logistic":
        return (torch.sigmoid(o) - targets.to(o.dtype)) / o.numel()
    n = o.numel() // o.shape[-1]
    onehot = F.one_hot(targets.long(), o.shape[-1]).to(o.dtype)
    return (torch.softmax(o, dim=-1) - onehot) / n


def sample_output_gradients(loss_type: str, outputs: torch.Tensor, n_draws: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n_draws, *outputs.shape)``: ``dL/do`` at targets drawn from the predictive distribution,
    all draws at once (the output-space half of the Gauss-Newton-Bartlett estimator)."""
    check_loss_type(loss_type)
    o = outputs.detach()
    if loss_type == "mse":
        y = o + torch.randn((n_draws, *o.shape), dtype=o.dtype, device=o.device, generator=generator)
    elif loss_type == "logistic":
        y = torch.bernoulli(torch.sigmoid(o).expand(n_draws, *o.shape).contiguous(), generator=generator)
    else:
        p = torch.softmax(o.reshape(-1, o.shape[-1]).to(torch.float64), dim=-1)
        y = torch.multinomial(p, n_draws, replacement=True, generator=generator).T.reshape(n_draws, *o.shape[:-1])
    return output_gradient(loss_type, o, y)

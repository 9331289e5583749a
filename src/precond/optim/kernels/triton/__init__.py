"""Fused multi-tensor kernels in Triton: the GPU path of ``fused=True`` (issue 18).

One kernel per rule (``agd``, ``adam`` for Adam/AdamW/AMSGrad, ``adabound``, ``rmsprop``,
``adagrad``, ``sophia``, ``gauss_newton``; ``adagrad_norm`` for AdaGrad-Norm's two passes), each
the reference loop's formula element for element, with the rule's per-step coefficient record
computed inside the kernel from the step counter on the device (a ``@triton.jit`` coefficient
function per rule, equal field for field to the rule's ``coefficients``:
``tests/optim/test_triton_kernels.py``). A launch covers every tensor of one dtype of a param
group through a device table of their addresses, chunked as torch's ``multi_tensor_apply``
(:mod:`._plan`); the ops are ``torch.ops.precond_triton.<rule>_step`` custom ops with fake
implementations (:mod:`._driver`). GradScaler's ``grad_scale``/``found_inf`` and the default
non-finite check act on the device (:mod:`.finite`).

Importing this package imports ``triton`` (the ``triton`` extra). On CPU tensors the kernels run
only under Triton's interpreter (``TRITON_INTERPRET=1`` set before ``triton`` is imported): that
is how the tests check them. See docs/fast_steps.md, "GPU path".
"""

from __future__ import annotations

from . import adabound, adagrad, adagrad_norm, adam, agd, gauss_newton, rmsprop, sophia  # noqa: F401  (registration)
from ._config import CONFIG
from ._driver import RULES, begin_step, end_step, optimizer_step, report, step
from .finite import nonfinite_flag

__all__ = ["CONFIG", "RULES", "begin_step", "end_step", "nonfinite_flag", "optimizer_step", "report", "step"]

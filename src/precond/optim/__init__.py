"""Diagonal preconditioned optimizers on the ``torch.optim`` interface.

=================  ====================================================================
class              rule
=================  ====================================================================
``SGD``            heavy-ball (torch) or EMA momentum, Nesterov, L2 or decoupled decay
``AdaGrad``        ``s += g^2``; ``x -= lr g / (sqrt(s) + eps)``
``AdaGradNorm``    ``b^2 += ||g||^2``; ``x -= lr g / b`` (one scalar per group or global)
``RMSProp``        ``s = rho s + (1-rho) g^2``; centered and momentum options
``Adam``           Adam; ``amsgrad=True`` AMSGrad; ``decoupled_weight_decay=True`` AdamW
``AdamW``          Adam with decoupled weight decay
``AdaBound``       Adam with rates clipped to bounds converging to ``final_lr``
``AGD``            stepwise gradient-difference preconditioner with auto-switch ``delta``
=================  ====================================================================

``Adagrad`` and ``RMSprop`` are torch's spellings of ``AdaGrad`` and ``RMSProp`` (the same
classes), so ``torch.optim.X`` can be replaced by ``precond.optim.X`` for every class both have.
:mod:`precond.optim.cases` is the table of every optimizer's option sets that the tests and
``precond bench step`` read.
"""

from ._base import NonFiniteGradientError, PrecondOptimizer
from .adabound import AdaBound
from .adagrad import AdaGrad
from .adagrad_norm import AdaGradNorm
from .adam import Adam, AdamW
from .agd import AGD
from .gauss_newton import GaussNewtonDiag
from .rmsprop import RMSProp
from .sgd import SGD
from .sophia import Sophia
from .registry import available, get_optimizer

# torch.optim's spellings (same class objects)
Adagrad = AdaGrad
RMSprop = RMSProp

__all__ = [
    "AGD",
    "AdaBound",
    "AdaGrad",
    "AdaGradNorm",
    "Adagrad",
    "Adam",
    "AdamW",
    "GaussNewtonDiag",
    "NonFiniteGradientError",
    "PrecondOptimizer",
    "RMSProp",
    "RMSprop",
    "SGD",
    "Sophia",
    "available",
    "get_optimizer",
]

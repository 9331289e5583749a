"""Problems: objectives, models and datasets of the seed experiments, all offline.

``precond.problems.get(name, **kwargs)`` returns a :class:`Problem`; ``names()`` lists them.
"""

from .base import LOSS_TYPES, Batch, Problem
from .registry import get, names, register

__all__ = ["LOSS_TYPES", "Batch", "Problem", "get", "names", "register"]

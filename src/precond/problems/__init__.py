"""Problems: objectives, models and datasets of the seed experiments, all offline.

``precond.problems.get(name, **kwargs)`` returns a :class:`Problem`; ``names()`` lists them;
``resolve(name, args, dtype)`` checks a name and its arguments once and returns a
:class:`ProblemHandle` (typed metadata, ``build()``), which the experiments engine passes around.
``DTYPES`` maps dtype names to torch dtypes (the one map of the package).
"""

from ._common import DTYPES, as_dtype
from .base import LOSS_TYPES, Batch, Problem
from .handle import ProblemArgumentError, ProblemHandle, ProblemNameError, metric_higher_is_better, resolve, test_direction
from .registry import get, lookup, names, register

__all__ = ["DTYPES", "LOSS_TYPES", "Batch", "Problem", "ProblemArgumentError", "ProblemHandle", "ProblemNameError",
           "as_dtype", "get", "lookup", "metric_higher_is_better", "names", "register", "resolve", "test_direction"]

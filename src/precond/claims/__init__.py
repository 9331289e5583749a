"""Claims of the literature about diagonal preconditioned optimizers, each checked by
pre-registered experiments: ``precond claims`` (:mod:`.cli`).

A claim (:class:`~.base.Claim`) is data (id, source, statement, experiments at a ``quick``
and a ``full`` size, open settings) and two functions (the verdict rule and the figure);
:mod:`.engine` runs their experiments into a results store and decides, :mod:`.report`
writes the report. The claims are listed in :mod:`.registry`. This layer sits above
``experiments``; only the command line imports it.
"""

from .base import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Check, Claim, Computation, OpenSetting, Verdict, combine, flag
from .registry import all_claims, get

__all__ = ["INCONCLUSIVE", "NOT_REPRODUCED", "REPRODUCED", "Check", "Claim", "Computation", "OpenSetting", "Verdict",
           "all_claims", "combine", "flag", "get"]

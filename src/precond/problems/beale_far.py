"""Beale's function from (-2.5, -2.5): the start of the AGD claims' Beale comparison (issue 15, C9).

Beale's function (:class:`precond.problems.analytic.Beale`, minimum f(3, 1/2) = 0) from the
far corner (-2.5, -2.5), where f = 2175.9 and the gradient is (-1655, -4466): a start from
which an optimizer must cross the steep walls and the flat valley before it reaches the
minimum. Seeds != 0 perturb the start by ``init_scale`` N(0, I) (default 0.1).
"""

from __future__ import annotations

from .analytic import Beale
from .registry import register


@register("beale_far")
class BealeFar(Beale):
    """Beale's function f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2 from
    (-2.5, -2.5); minimum f(3, 0.5) = 0."""

    name = "beale_far"
    source = "seed 000 (AGD paper, suggested test: Beale), from (-2.5, -2.5) as issue 15 asks"
    start = (-2.5, -2.5)

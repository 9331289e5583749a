"""The claims, by id: one module per claim (``cNN_<topic>.py`` defining ``CLAIM``), listed here
in order. A new claim is one module and one line of :data:`MODULES`."""

from __future__ import annotations

import importlib

from .base import Claim

MODULES = (
    "c01_preconditioning",
    "c02_momentum",
    "c03_adagrad_rmsprop",
    "c04_adam_properties",
    "c05_reddi",
    "c06_adamw",
    "c07_wilson",
    "c08_gradient_difference",
    "c09_auto_switch",
    "c10_delta_sensitivity",
    "c11_generalization",
    "c12_adagrad_anisotropic",
    "c13_adam_gn_fullbatch",
    "c14_adam_gn_stochastic",
    "c15_adam_gn_mlp",
)


def all_claims() -> list[Claim]:
    """Every claim, in id order."""
    return [importlib.import_module(f"{__package__}.{m}").CLAIM for m in MODULES]


def get(ids: list[str] | None = None) -> list[Claim]:
    """The claims with these ids (case-insensitive, in the order given; None: all). ``KeyError``
    names the unknown ids and the known ones."""
    claims = all_claims()
    if not ids:
        return claims
    table = {c.id.lower(): c for c in claims}
    unknown = [i for i in ids if i.lower() not in table]
    if unknown:
        raise KeyError(f"unknown claim(s) {', '.join(unknown)}; known: {', '.join(c.id for c in claims)}")
    return [table[i.lower()] for i in dict.fromkeys(ids)]

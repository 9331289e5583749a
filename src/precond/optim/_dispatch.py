"""Choice of the implementation (``loop``, ``foreach`` or ``fused``) for one param group."""

from __future__ import annotations

from typing import Any

import torch

IMPLS = ("loop", "foreach", "fused")


def resolve_impl(optimizer: Any, group: dict[str, Any], params: list[torch.Tensor]) -> str:
    """``fused=True`` -> fused, ``foreach=True`` -> foreach, explicit False/False -> loop,
    and both ``None`` -> the fastest path known to work for these tensors."""
    fused, foreach = group.get("fused"), group.get("foreach")
    if fused:
        return "fused"
    if foreach:
        return "foreach"
    if fused is None and foreach is None:
        return default_impl(optimizer, params)
    return "loop"


def default_impl(optimizer: Any, params: list[torch.Tensor]) -> str:
    return "loop"

"""The non-finite gradient check used by ``nan_policy``."""

from __future__ import annotations

import torch


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when every element of every tensor is finite (one host sync per device)."""
    if not tensors:
        return True
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        by_device.setdefault(t.device, []).append(t)
    for device, ts in by_device.items():
        flags = torch.stack([torch.isfinite(t).all() for t in ts])
        if not bool(flags.all()):
            return False
    return True

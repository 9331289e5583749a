"""Where a curvature estimate goes for its all-reduce (curvature/distributed.py ``comm_device``):
NCCL takes CUDA tensors only, so an estimate made on the CPU moves to the current CUDA device
(and back afterwards); gloo and the others reduce it where it is. (The reductions themselves are
tested over gloo in tests/optim/test_distributed*.py.)"""

from __future__ import annotations

import pytest
import torch

from precond.curvature.distributed import comm_device


@pytest.mark.parametrize("backend,device,want", [
    ("nccl", "cpu", "cuda"),
    ("NCCL", "cpu", "cuda"),
    ("nccl", "cuda:1", "cuda:1"),
    ("gloo", "cpu", "cpu"),
    ("gloo", "cuda:0", "cuda:0"),
    ("mpi", "cpu", "cpu"),
])  # fmt: skip
def test_comm_device(backend, device, want):
    assert comm_device(backend, torch.device(device)) == torch.device(want)

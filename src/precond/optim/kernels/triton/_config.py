"""Launch settings of the Triton kernels (one place; the CPU tests shrink them)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton.language as tl

#: storage dtypes the kernels take, and their Triton types (math in float32, float64 for float64)
TL_DTYPES = {torch.float32: tl.float32, torch.float64: tl.float64, torch.bfloat16: tl.bfloat16}


@dataclass
class Config:
    """``block``: elements per vector step of a program (a power of 2); ``chunk``: elements per
    program (a multiple of ``block``); ``num_warps`` per program; ``fp_fusion``: contract
    ``a * b + c`` into FMAs (as nvcc does for torch's own CUDA kernels; given explicitly, since
    Triton 3.10 changes its default)."""

    block: int = 1024
    chunk: int = 8192
    num_warps: int = 4
    fp_fusion: bool = True

    def launch_options(self) -> dict:
        """The keyword arguments every launch takes."""
        return {"BLOCK": self.block, "CHUNK": self.chunk, "num_warps": self.num_warps, "enable_fp_fusion": self.fp_fusion}

    def set(self, *, block: int | None = None, chunk: int | None = None, num_warps: int | None = None) -> None:
        block = self.block if block is None else block
        chunk = self.chunk if chunk is None else chunk
        if block < 1 or block & (block - 1) or chunk % block:
            raise ValueError(f"invalid Triton launch config block={block}, chunk={chunk}: block a power of 2 dividing chunk")
        self.block, self.chunk = block, chunk
        if num_warps is not None:
            self.num_warps = num_warps


CONFIG = Config()

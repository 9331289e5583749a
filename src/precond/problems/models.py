"""Model definitions used by the problems: MLP, 1-D CNN, LSTM language model, a tiny GPT, and
the CIFAR ResNet-20/32 of He et al. (2016), option A shortcuts.

Written from the papers' descriptions (He et al. 2016 sec. 4.2; Zaremba et al. 2014 for the
PTB LSTM, which seed 000 uses scaled up; Radford et al. 2019 / nanoGPT for the pre-norm
transformer block); nothing is copied from their code.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """Fully connected net ``in -> hidden... -> out`` with ``activation`` ("relu" | "tanh" | "gelu")."""

    def __init__(self, d_in: int, hidden: Sequence[int], d_out: int, activation: str = "relu") -> None:
        super().__init__()
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
        if activation not in acts:
            raise ValueError(f"MLP: activation must be one of {sorted(acts)}, got {activation!r}")
        layers: list[nn.Module] = []
        d = d_in
        for h in hidden:
            layers += [nn.Linear(d, h), acts[activation]()]
            d = h
        layers.append(nn.Linear(d, d_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class CNN1d(nn.Module):
    """A small 1-D CNN for sequences of shape (N, L) or (N, C, L): ``len(channels)`` conv layers
    (kernel ``kernel``, stride 2, padding ``kernel // 2``, ReLU), global average pooling, linear head."""

    def __init__(self, length: int, d_out: int, channels: Sequence[int] = (16, 32), kernel: int = 5, in_channels: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for ch in channels:
            layers += [nn.Conv1d(c, ch, kernel, stride=2, padding=kernel // 2), nn.ReLU()]
            c = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.head(self.features(x).mean(-1))


class LSTMLM(nn.Module):
    """Character/word LSTM language model: embedding, ``num_layers`` LSTM layers, dropout, tied-free linear decoder.

    Zaremba et al. (2014)'s PTB model (2 layers, 200-1500 units) scaled down by ``hidden``.
    Input (N, T) token ids -> logits (N, T, vocab).
    """

    def __init__(self, vocab: int, embed: int = 64, hidden: int = 128, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.drop(self.embed(idx)))
        return self.decoder(self.drop(h))


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.heads = heads
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (z.view(N, T, self.heads, D // self.heads).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(N, T, D))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A small GPT-style decoder: token + learned position embeddings, ``layers`` pre-norm blocks
    (causal multi-head attention, 4x GELU MLP), final LayerNorm, linear head. (N, T) -> (N, T, vocab)."""

    def __init__(self, vocab: int, block_size: int = 64, d_model: int = 64, layers: int = 2, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"TinyGPT: d_model ({d_model}) must be divisible by heads ({heads})")
        self.block_size = block_size
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"TinyGPT: sequence length {T} exceeds block_size {self.block_size}")
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


class _ShortcutA(nn.Module):
    """Option A shortcut (He et al. 2016): subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = _ShortcutA((c_out - c_in) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    """He et al. (2016) sec. 4.2 CIFAR ResNet of depth ``6n + 2`` (20: n=3, 32: n=5, ...).

    3x3 conv (16) -> 3 stages of n basic blocks with 16/32/64 filters (stride 2 at the start of
    stages 2 and 3; option A: parameter-free zero-padding identity shortcuts) -> global average
    pool -> 10-way linear. Kaiming-normal conv init. ResNet-20 has 0.27M parameters, ResNet-32 0.46M.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"ResNetCIFAR: depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks: list[nn.Module] = []
        c = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(_BasicBlock(c, c_out, stride))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        return self.fc(out.mean((2, 3)))

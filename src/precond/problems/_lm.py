"""A base for next-token language-modelling problems on 1-D token streams (Shakespeare, PTB)."""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import nn

from ._common import ModuleProblem, generator
from .base import Batch


class LMProblem(ModuleProblem):
    """Token streams ``self.tokens[split]`` (int64, 1-D); batches are ``batch_size`` random windows
    of ``seq_len`` tokens (inputs) and the same windows shifted by one (targets).

    Metrics per split: ``{split}_loss`` (nats/token, on up to ``eval_tokens`` tokens of
    non-overlapping windows from the split's start), ``{split}_ppl`` = exp(loss) and
    ``{split}_bits`` = loss / ln 2 (bits per character for character models).
    """

    kind = "language"
    loss_type = "cross_entropy"
    val_metric = "val_loss"
    test_metric = "test_loss"

    def __init__(self, seq_len: int, batch_size: int, eval_tokens: int) -> None:
        for k, v in (("seq_len", seq_len), ("batch_size", batch_size), ("eval_tokens", eval_tokens)):
            if int(v) < 1:
                raise ValueError(f"{self.name}: {k} must be >= 1, got {v}")
        self.seq_len, self.batch_size, self.eval_tokens = int(seq_len), int(batch_size), int(eval_tokens)
        self._tokens: dict[str, torch.Tensor] | None = None

    vocab_size: int = 0

    def _load_tokens(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def tokens(self) -> dict[str, torch.Tensor]:
        if self._tokens is None:
            toks = self._load_tokens()
            for split, t in toks.items():
                if len(t) < self.seq_len + 2:
                    raise ValueError(f"{self.name}: the {split} split has {len(t)} tokens, fewer than seq_len + 2 = {self.seq_len + 2}")
            self._tokens = toks
        return self._tokens

    def batches(self, seed: int) -> Iterator[Batch]:
        data = self.tokens["train"]
        g = generator(seed)
        T = self.seq_len
        offs = torch.arange(T + 1)
        t = 0
        while True:
            t += 1
            start = torch.randint(0, len(data) - T - 1, (self.batch_size,), generator=g)
            w = data[start[:, None] + offs]
            yield Batch(w[:, :-1], w[:, 1:], t)

    def forward(self, model: nn.Module, batch: Batch):
        return model(batch.inputs), batch.targets

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        was = model.training
        model.eval()
        out: dict[str, float] = {}
        T = self.seq_len
        try:
            for split, data in self.tokens.items():
                n_win = max(1, min(self.eval_tokens, len(data) - 1) // T)
                x = data[: n_win * T].view(n_win, T)
                y = data[1: n_win * T + 1].view(n_win, T)
                tot = 0.0
                for i in range(0, n_win, 64):
                    o = model(x[i:i + 64])
                    tot += float(nn.functional.cross_entropy(o.reshape(-1, o.shape[-1]), y[i:i + 64].reshape(-1), reduction="sum"))
                loss = tot / (n_win * T)
                out[f"{split}_loss"] = loss
                out[f"{split}_ppl"] = math.exp(min(loss, 700.0))
                out[f"{split}_bits"] = loss / math.log(2)
        finally:
            model.train(was)
        return out

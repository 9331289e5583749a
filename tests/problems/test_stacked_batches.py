"""``ArrayProblem.stacked_batches(seeds)``: step by step, exactly ``torch.stack`` of every seed's
``batches(seed)`` (the batched sweeps' data, one gather a step), for minibatches, full batch, one
seed, and a subclass whose ``batches`` is its own."""

from __future__ import annotations

import itertools

import pytest
import torch

from precond.problems import resolve


def _stacked_streams(p, seeds, steps):
    streams = [p.batches(s) for s in seeds]
    for _ in range(steps):
        bs = [next(g) for g in streams]
        yield bs


@pytest.mark.parametrize("name,args,seeds", [
    ("digits_mlp", {}, [0, 3, 7]),
    ("digits_mlp", {"batch_size": 500}, [1, 2]),  # several epochs in 30 steps: the reshuffles too
    ("digits_mlp", {"batch_size": None}, [0, 1]),  # full batch: one (1, N, ...) batch for all
    ("mnist1d_mlp", {}, [5]),
])  # fmt: skip
def test_stacked_batches_are_the_seeds_batches_stacked(name, args, seeds):
    p = resolve(name, args).build()
    joint = p.stacked_batches(seeds)
    for step, bs in enumerate(_stacked_streams(p, seeds, 30)):
        got = next(joint)
        full = all(b.inputs is bs[0].inputs for b in bs)
        want_x = bs[0].inputs.unsqueeze(0) if full else torch.stack([b.inputs for b in bs])
        want_y = bs[0].targets.unsqueeze(0) if full else torch.stack([b.targets for b in bs])
        assert torch.equal(got.inputs, want_x) and torch.equal(got.targets, want_y), step
        assert got.t == bs[0].t == step + 1


def test_a_subclass_with_batches_of_its_own_gets_them_stacked():
    p = resolve("digits_mlp", {}).build()
    base = type(p)

    class Reversed(base):
        def batches(self, seed):
            for b in super().batches(seed):
                yield type(b)(b.inputs.flip(0), b.targets.flip(0), b.t)

    q = Reversed()
    for got, bs in zip(itertools.islice(q.stacked_batches([0, 1]), 5), _stacked_streams(q, [0, 1], 5)):
        assert torch.equal(got.inputs, torch.stack([b.inputs for b in bs]))


def test_the_generic_stacking_shares_one_batch_when_the_streams_give_the_same_tensors():
    # Problem.stacked_batches (the base class's, here through a subclass with its own batches): full
    # batch gives every seed the same tensors, so all rows read one (1, N, ...) batch
    base = type(resolve("digits_mlp", {"batch_size": None}).build())

    class Own(base):
        def batches(self, seed):
            X, y = self.data["train"]
            t = 0
            while True:
                t += 1
                yield type(next(super().batches(seed)))(X, y, t)

    q = Own(batch_size=None)
    X, y = q.data["train"]
    got = next(q.stacked_batches([0, 1, 2]))
    assert got.inputs.shape == (1, *X.shape) and torch.equal(got.inputs[0], X) and torch.equal(got.targets[0], y)

"""C15 (Adam vs GN^-1 vs GN^-1/2 on parity and staircase MLPs): the rule's three verdicts on synthetic
numbers, and the tiny run's steps to the target against a replay with torch.optim.Adam."""

from __future__ import annotations

import pytest
import torch

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c15_adam_gn_mlp import TASKS
from precond.problems import get as problem

from ._helpers import changed, run_tiny


def _task(adam: list[int], gn12: list[int]) -> dict:
    return {lab: {"lr": 0.01, "steps": s, "edge": [], "by_lr": {"0.01": sum(s) / len(s)}}
            for lab, s in (("Adam", adam), ("GN^-1", [50, 60, 55]), ("GN^-1/2", gn12))}  # fmt: skip


GOOD = {"steps": 400, "target": {"parity": 0.1, "staircase": 0.1},
        "tasks": {"parity": _task([100, 110, 105], [120, 125, 118]), "staircase": _task([200, 210, 190], [180, 200, 185])}}


def test_rule_gives_each_verdict():
    rule = get(["C15"])[0].verdict
    v = rule(GOOD)
    assert v.status == REPRODUCED, [c.text() for c in v.checks if c.status != REPRODUCED]
    assert rule(changed(GOOD, ("tasks", "parity", "GN^-1/2", "steps"), [400, 401, 390])).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("tasks", "parity", "GN^-1/2", "steps"), [100, 400, 150])).status == INCONCLUSIVE


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C15"], tmp_path_factory.mktemp("c15"), figures=True)[0]


def test_tiny_numbers(result):
    n = result.numbers
    assert result.figure.is_file()
    task = "parity"
    adam = n["tasks"][task]["Adam"]
    name, args = TASKS[task]
    prob = problem(name, **args)
    model = prob.model(0)  # replay the tuned Adam run (seed 0) with torch's Adam on the same batches
    opt = torch.optim.Adam(model.parameters(), lr=adam["lr"])
    batches, hit = prob.batches(0), n["steps"] + 1
    for t in range(n["steps"]):
        loss = prob.loss(model, next(batches))
        if float(loss.detach()) <= n["target"][task]:
            hit = t
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert adam["steps"] == [hit]
    for lab in ("Adam", "GN^-1", "GN^-1/2"):
        assert n["tasks"][task][lab]["steps"][0] == min(n["tasks"][task][lab]["by_lr"].values())

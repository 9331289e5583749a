"""A batched optimizer (``cls.batched``: C runs stacked as rows, one lr each) steps through the
rule's fused kernel with one coefficient row per run (``kernels/_host.run_table``, a 3-D table the
kernel cuts each tensor by, ``csrc/common.h`` ``step_over``), not the reference loop; every row
equals its own one-run optimizer."""

import pytest
import torch

import precond.optim.functional._rule as rule_module
from precond.optim.cases import cases
from precond.optim.functional.adam import adam_coefficients, AdamHyper
from precond.optim.kernels._host import coeff_table, run_table
from precond.optim.functional.adam import adam

BATCHABLE = [c for c in cases() if "batchable" in c.tags and "fused" in c.paths]
SHAPES = ((3,), (2, 4))  # two stacked parameters per run: (C, 3) and (C, 8)


def _rows(C: int, dtype: torch.dtype, g: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(C, *s, generator=g, dtype=dtype).reshape(C, -1) for s in SHAPES]


@pytest.mark.parametrize("case", BATCHABLE, ids=lambda c: c.name)
def test_fused_rows_equal_one_fused_optimizer_per_run_bit_for_bit(case, kernels, monkeypatch):
    """float64: every run's table row is the coefficient function of its own lr (as a float), so
    the batched kernel gives each row exactly what a fused optimizer of that run alone gives. A
    decoupled decay (one factor per run) is applied before the kernel, where the one-run kernel
    may fuse ``p * factor`` with its update (one rounding less): there, to 1e-15."""
    lr = case.kwargs["lr"]
    lrs = [lr, lr / 2, lr * 3]
    hyper = {k: v for k, v in case.kwargs.items() if k != "lr"}
    g = torch.Generator().manual_seed(0)
    P = [p.requires_grad_() for p in _rows(3, torch.float64, g)]
    singles = [[p[i].detach().clone().requires_grad_() for p in P] for i in range(3)]
    opt = case.cls.batched(P, lrs, **hyper)
    ones = [case.make(ps, lr=lri, fused=True) for ps, lri in zip(singles, lrs)]
    loops = []
    monkeypatch.setattr(rule_module, "loop_step", lambda *a: loops.append(a))  # any fall back to the loop is seen
    for _ in range(6):
        grads = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in P]
        for p, gr in zip(P, grads):
            p.grad = gr.clone()
        opt.step()
        for i, (ps, o) in enumerate(zip(singles, ones)):
            for q, gr in zip(ps, grads):
                q.grad = gr[i].clone()
            o.step()
    assert not loops, "the batched step ran the reference loop"
    decoupled = opt._hyper(opt.param_groups[0]).weight_decay_mode == "decoupled"
    for i, ps in enumerate(singles):
        for p, q in zip(P, ps):
            if decoupled:
                torch.testing.assert_close(p[i].detach(), q.detach(), rtol=1e-15, atol=1e-15)
            else:
                assert torch.equal(p[i].detach(), q.detach()), (case.name, i)
    assert not torch.equal(P[0][0], P[0][1])  # the rows' lrs differ, and so do the rows


@pytest.mark.parametrize("case", BATCHABLE, ids=lambda c: c.name)
def test_fused_rows_equal_the_loop_rows_in_float32(case, kernels):
    """float32 rows: the kernel and the reference loop (which broadcasts the (C, 1) lrs) agree to
    float32 rounding."""
    hyper = {k: v for k, v in case.kwargs.items() if k != "lr"}
    lrs = [case.kwargs["lr"] * f for f in (1.0, 0.3, 2.0, 0.7)]
    g = torch.Generator().manual_seed(1)
    P = [p.requires_grad_() for p in _rows(4, torch.float32, g)]
    Q = [p.detach().clone().requires_grad_() for p in P]
    fused, loop = case.cls.batched(P, lrs, **hyper), case.cls.batched(Q, lrs, **hyper, fused=False, foreach=False)
    for _ in range(6):
        for p, q in zip(P, Q):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        fused.step()
        loop.step()
    for p, q in zip(P, Q):
        torch.testing.assert_close(p, q, rtol=2e-5, atol=1e-6)


def test_run_table_holds_one_row_per_run_of_the_coefficient_function():
    hyper = AdamHyper.of({**vars(AdamHyper()), "lr": torch.tensor([[1e-3], [2e-2]], dtype=torch.float64)})
    table = run_table(adam, hyper, [(3,), (3,)], 2)
    assert table.shape == (2, 2, len(adam.Coefficients._fields)) and table.dtype == torch.float64
    for r, lr in enumerate((1e-3, 2e-2)):
        want = torch.tensor(adam_coefficients(AdamHyper(lr=lr), 3), dtype=torch.float64)
        assert torch.equal(table[0, r], want) and torch.equal(table[1, r], want)
    mixed = run_table(adam, hyper, [(3,), (5,)], 2)  # tensors at different steps: a row each
    assert torch.equal(mixed[1, 0], torch.tensor(adam_coefficients(AdamHyper(lr=1e-3), 5), dtype=torch.float64))


def test_kernel_cuts_a_tensor_into_its_runs(kernels):
    """The op with a (1, R, K) table equals R calls on the rows with (1, K) tables; a tensor that
    does not split into R equal runs is refused with a message naming both."""
    ops = torch.ops.precond
    g = torch.Generator().manual_seed(2)
    R, d = 3, 5
    p, grad = torch.randn(R, d, generator=g, dtype=torch.float64), torch.randn(R, d, generator=g, dtype=torch.float64)
    m, v = torch.zeros(R, d, dtype=torch.float64), torch.zeros(R, d, dtype=torch.float64)
    rows = [(p[i].clone(), m[i].clone(), v[i].clone()) for i in range(R)]
    coeffs = [adam_coefficients(AdamHyper(lr=lr), 1) for lr in (1e-3, 1e-2, 1e-1)]
    table = torch.tensor([coeffs], dtype=torch.float64)
    assert ops.adam_step([p], [grad], [m], [v], [], table, "none", 0.0, False, False, False) == []
    for i, (pi, mi, vi) in enumerate(rows):
        ops.adam_step([pi], [grad[i]], [mi], [vi], [], coeff_table([(1,)], lambda _: coeffs[i]), "none", 0.0, False, False, False)
        assert torch.equal(p[i], pi) and torch.equal(m[i], mi) and torch.equal(v[i], vi)
    with pytest.raises(RuntimeError, match="a tensor of 16 elements cannot be cut into 3 runs"):
        ops.adam_step([torch.zeros(16, dtype=torch.float64)], [torch.zeros(16, dtype=torch.float64)],
                      [torch.zeros(16, dtype=torch.float64)], [torch.zeros(16, dtype=torch.float64)], [], table,
                      "none", 0.0, False, False, False)  # fmt: skip

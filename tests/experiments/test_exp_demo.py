"""The demo's table (on the registry's problems since issue 12) keeps its numbers; the demo calls the
command modules of its own layer, not ``precond.cli``."""

import ast
import inspect

import pytest

from precond.experiments import cli_run, demo

#: ``run_one(function, optimizer, 300)`` of the demo before issue 12, which defined the functions itself
BEFORE_300 = {
    ("rosenbrock", "AGD"): (4.450445454896934, None), ("rosenbrock", "Adam"): (5.166533458987012, None),
    ("rosenbrock", "AdaBound"): (4.868104468881903, None), ("rosenbrock", "SGD+momentum"): (5.064852595724325, None),
    ("beale", "AGD"): (0.10370587744390797, None), ("beale", "Adam"): (1.4110902534542509, None),
    ("beale", "AdaBound"): (0.5061222577285688, None), ("beale", "SGD+momentum"): (0.7120016668758763, None),
    ("ravine", "AGD"): (2.636443750303222e-13, 42), ("ravine", "Adam"): (2.0034194595294051e-07, 207),
    ("ravine", "AdaBound"): (2.0034203067571054e-07, 207), ("ravine", "SGD+momentum"): (0.3132237995010553, None),
}  # fmt: skip


def test_table_numbers_unchanged():
    assert list(demo.STARTS) == ["rosenbrock", "beale", "ravine"]
    for (f, o), (gap, reached) in BEFORE_300.items():
        got_gap, got_reached = demo.run_one(f, o, 300)
        assert got_reached == reached and got_gap == pytest.approx(gap, rel=1e-9, abs=0), (f, o)


def test_table_steps_to_1e_3_at_2000_steps():  # two cells of the printed table (precond demo --table-only)
    gap, reached = demo.run_one("beale", "AGD", 2000)
    assert reached == 918 and gap == pytest.approx(2.363021867734894e-08, rel=1e-6)


def test_no_import_of_precond_cli():
    tree = ast.parse(inspect.getsource(demo))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m == "precond.cli" or m.startswith("precond.cli.")}


def test_commands_run_through_their_modules(capsys):
    assert demo._command("run", cli_run, ["--list"]) == 0
    assert "rosenbrock" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        demo._command("run", cli_run, ["--no-such-option"])
    assert "usage: precond run" in capsys.readouterr().err

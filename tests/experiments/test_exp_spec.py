"""Spec validation: every error names the key, the bad value and what is allowed."""

import pytest

from precond.experiments.spec import SpecError, expand_values, parse_spec

GOOD = """
name = "t"
seeds = [0, 1]
[problem]
name = "exp_toys:Quad"
args = {d = 2}
[budget]
steps = 10
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = {logspace = [1e-4, 1e-1, 4]}
[[optimizers]]
name = "SGD"
[optimizers.hyperparameters]
lr = [0.1, 0.01]
momentum = [0.0, 0.9]
"""


def _err(text: str) -> str:
    with pytest.raises(SpecError) as e:
        parse_spec(text)
    return str(e.value)


def test_good_spec_expands_grid_times_seeds():
    exp = parse_spec(GOOD)
    runs = exp.runs()
    assert len(runs) == (4 + 4) * 2
    assert exp.grids[0]["lr"] == [1e-4, 1e-3, 1e-2, 1e-1]
    assert len({r.key for r in runs}) == len(runs)
    assert runs[0].eval_every == 1  # steps // 10


def test_logspace_and_linspace():
    assert expand_values("k", {"logspace": [1e-3, 1.0, 4]}) == pytest.approx([1e-3, 1e-2, 1e-1, 1.0], rel=1e-12)
    assert expand_values("k", {"linspace": [0.0, 1.0, 3]}) == [0.0, 0.5, 1.0]
    assert expand_values("k", 0.3) == [0.3]


def test_negative_lr_names_key_value_and_bound():
    msg = _err(GOOD.replace("lr = [0.1, 0.01]", "lr = [0.1, -0.1]"))
    assert "optimizers[1].hyperparameters.lr: -0.1 is refused by SGD: invalid lr=-0.1: must lie in [0.0, inf)" in msg


def test_unknown_hyperparameter_lists_allowed():
    msg = _err(GOOD.replace("momentum = [0.0, 0.9]", "mom = [0.9]"))
    assert "optimizers[1].hyperparameters.mom" in msg and "allowed:" in msg and "momentum" in msg


def test_unknown_optimizer():
    msg = _err(GOOD.replace('name = "SGD"', 'name = "Nadamax"'))
    assert "optimizers[1].name" in msg and "Nadamax" in msg and "agd" in msg


def test_budget_needs_exactly_one_of_steps_epochs():
    msg = _err(GOOD.replace("steps = 10", "steps = 10\nepochs = 2"))
    assert "budget.steps or budget.epochs" in msg
    msg = _err(GOOD.replace("steps = 10", "steps = -3"))
    assert "budget.steps: -3 is not > 0" in msg


def test_unknown_top_level_key_lists_allowed():
    msg = _err("colour = 'red'\n" + GOOD)
    assert "colour: unknown key" in msg and "allowed:" in msg and "optimizers" in msg


def test_bad_logspace_and_betas():
    msg = _err(GOOD.replace("lr = {logspace = [1e-4, 1e-1, 4]}", "lr = {logspace = [0.0, 1e-1, 4]}"))
    assert "optimizers[0].hyperparameters.lr.logspace" in msg and "lo > 0" in msg
    msg = _err(GOOD.replace("lr = {logspace = [1e-4, 1e-1, 4]}", "betas = [[0.9, 1.5]]"))
    assert "optimizers[0].hyperparameters.betas: [0.9, 1.5] is refused by Adam: invalid betas[1]=1.5: must lie in [0.0, 1.0)" in msg


def test_unknown_problem_and_diagnostic():
    msg = _err(GOOD.replace('name = "exp_toys:Quad"', 'name = "no-such-problem"'))
    assert "problem.name: 'no-such-problem'" in msg
    msg = _err(GOOD.replace("seeds = [0, 1]", "seeds = [0, 1]\ndiagnostics = ['bogus_diag']"))
    assert "diagnostics[0]: 'bogus_diag'" in msg


def test_repeated_seeds_and_missing_key():
    msg = _err(GOOD.replace("seeds = [0, 1]", "seeds = [0, 0]"))
    assert "seeds: [0, 0]" in msg and "repeated" in msg
    msg = _err(GOOD.replace('[problem]\nname = "exp_toys:Quad"\nargs = {d = 2}\n', ""))
    assert "problem: missing" in msg


def test_keys_change_with_config():
    a = parse_spec(GOOD).runs()[0]
    b = parse_spec(GOOD.replace("steps = 10", "steps = 11")).runs()[0]
    c = parse_spec(GOOD.replace('name = "t"', 'name = "u"')).runs()[0]
    assert len({a.key, b.key, c.key}) == 3


# ---- issue 11, point 17: strict types, suggestions, missing data ----------------------------------
@pytest.mark.parametrize("old,new,message", [
    ("steps = 10", "steps = true", "budget.steps: True (a boolean) is not an integer"),
    ("steps = 10", 'steps = "100"', "budget.steps: '100' (a string) is not an integer"),
    ("steps = 10", "steps = 10.0", "budget.steps: 10.0 (a number) is not an integer"),
    ("seeds = [0, 1]", 'seeds = [0, "1"]', "seeds[1]: '1' (a string) is not an integer"),
    ("seeds = [0, 1]", 'seeds = [0, 1]\ntrajectory = "yes"', "trajectory: 'yes' (a string) is not a boolean"),
    ("momentum = [0.0, 0.9]", 'momentum = ["0.9"]', "optimizers[1].hyperparameters.momentum: '0.9' (a string) is not a number"),
    ("momentum = [0.0, 0.9]", "nesterov = 1", "optimizers[1].hyperparameters.nesterov: 1 (a number) is not a boolean"),
    ("args = {d = 2}", 'args = {d = "2"}', "problem.args.d: '2' (a string) is not a number"),
])  # fmt: skip
def test_types_are_strict(old, new, message):
    assert message in _err(GOOD.replace(old, new))


def test_misspelled_problem_argument_lists_the_allowed_ones():
    msg = _err(GOOD.replace('name = "exp_toys:Quad"\nargs = {d = 2}', 'name = "rosenbrock"\nargs = {init_scal = 0.1}'))
    assert "problem.args.init_scal: 'init_scal' is not an argument (did you mean 'init_scale'?); allowed: dim, a, b, dtype, init_scale" in msg
    from precond.problems import get

    with pytest.raises(TypeError, match=r"problem 'rosenbrock': 'init_scal' is not an argument \(did you mean 'init_scale'\?\)"):
        get("rosenbrock", init_scal=0.1)


def test_unknown_problem_suggests_the_closest():
    msg = _err(GOOD.replace('name = "exp_toys:Quad"', 'name = "rosenbrok"'))
    assert "problem.name: 'rosenbrok' is not a registered problem (did you mean 'rosenbrock'?); known: " in msg
    msg = _err(GOOD.replace("momentum = [0.0, 0.9]", "momentun = [0.9]"))
    assert "'momentun' is not a hyperparameter of SGD (did you mean 'momentum'" in msg


def _shakespeare_without_its_play(d):
    d.mkdir()
    (d / "SHA256SUMS").write_text("0" * 64 + "  hamlet_gut.txt\n")
    return {"data_dir": str(d)}


@pytest.mark.parametrize("problem,args,names", [
    ("cifar10_resnet20", lambda d: {"data_dir": str(d)}, "cifar-10-batches-py"),
    ("ptb_lstm", lambda d: {"data_dir": str(d)}, "ptb.train.txt"),
    ("shakespeare_lstm", _shakespeare_without_its_play, "hamlet_gut.txt"),
])  # fmt: skip
def test_check_says_when_data_is_missing(tmp_path, capsys, problem, args, names):
    from precond.cli import main as cli

    a = args(tmp_path / "data")
    spec = tmp_path / "s.toml"
    spec.write_text(GOOD.replace('name = "exp_toys:Quad"\nargs = {d = 2}', f'name = "{problem}"\nargs = {{data_dir = "{a["data_dir"]}"}}'))
    assert cli(["run", str(spec), "--check"]) == 2
    out = capsys.readouterr()
    assert "valid" not in out.out
    err = out.err.strip()
    assert err.count("\n") == 0 and f"problem {problem!r} cannot load its data: FileNotFoundError" in err and names in err
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert cli(["run", str(good), "--check"]) == 0 and "t: valid; 16 runs" in capsys.readouterr().out


# ---- issue 12: run keys and spec hashes are the stores' identity: pinned across refactors ------------
PINNED = """
name = "pinned"
seeds = [0, 3]
metrics = ["val_loss"]
dtype = "float32"
[problem]
name = "rosenbrock"
args = {init_scale = 0.1}
[budget]
steps = 20
eval_every = 5
divergence_bound = 1e8
[[optimizers]]
name = "AGD"
[optimizers.hyperparameters]
lr = {logspace = [1e-3, 1e-1, 3]}
betas = [[0.9, 0.999]]
amsgrad = [false, true]
[[optimizers]]
name = "SGD"
label = "heavy-ball"
[optimizers.hyperparameters]
lr = 0.01
momentum = 0.9
"""


def test_run_keys_and_spec_hashes_are_pinned():
    """Values computed by the code before issue 12's split of spec.py: a store written then must
    find its runs (same keys) and its spec (same hash) after it."""
    exp = parse_spec(PINNED)
    runs = exp.runs()
    assert len(runs) == 14 and exp.spec_hash == "dabbd9be1b237989"
    assert [(r.label, r.seed, r.key) for r in runs[:3] + runs[-1:]] == [
        ("AGD", 0, "b286b4586dc02882b5c8fc4b972f0d44"),
        ("AGD", 3, "141f86e800c55e24357a6e8073715459"),
        ("AGD", 0, "b8d0d9eca29e420bd378796e6b22736c"),
        ("heavy-ball", 3, "8f3bc94bc1a88e6a92ac8261f80207a5"),
    ]
    assert runs[0].hyperparameters == {"amsgrad": False, "betas": (0.9, 0.999), "lr": 0.001}
    good = parse_spec(GOOD)
    assert good.spec_hash == "2e00cd968d399842"
    assert (good.runs()[0].key, good.runs()[-1].key) == ("edcac48b59d2d0d324043355c32fbda1", "aa8762842332b8ffe28b67099136cd57")
    diag = parse_spec(GOOD.replace("seeds = [0, 1]", 'seeds = [0, 1]\ntrajectory = false\ndiagnostics = ["agd_adaptive_fraction"]'))
    assert (diag.spec_hash, diag.runs()[0].key) == ("93ca9973f139fad8", "450c186b331369688e553ee29a7ed4bd")


# ---- issue 12: a hyperparameter setting is the optimizer's to judge ---------------------------------------
ADAGRAD = GOOD.replace('name = "SGD"', 'name = "AdaGrad"').replace("momentum = [0.0, 0.9]", "HP")


def test_adagrad_seed_form_is_accepted_as_its_constructor_does():
    """eps=0 with a positive initial accumulator (AdaGrad's documented seed-001 form) was refused by
    the spec's own copy of the rules (eps > 0) although AdaGrad accepts it; now the optimizer decides."""
    exp = parse_spec(ADAGRAD.replace("HP", "eps = 0.0\ninitial_accumulator_value = 0.1"))
    assert exp.grids[1] == {"lr": [0.1, 0.01], "eps": [0.0], "initial_accumulator_value": [0.1]}
    msg = _err(ADAGRAD.replace("HP", "eps = 0.0\ninitial_accumulator_value = [0.0, 0.1]"))
    # only the setting with a zero accumulator is refused, and eps (not the accumulator, at its default) is blamed
    lines = msg.splitlines()[1:]
    assert len(lines) == 1 and lines[0].strip().startswith("optimizers[1].hyperparameters.eps: 0.0 is refused by AdaGrad: ")
    assert "initial_accumulator_value" in lines[0]  # AdaGrad's own message


def test_torch_optimizers_judge_their_own_settings():
    msg = _err(GOOD.replace('name = "SGD"', 'name = "torch.SGD"').replace("lr = [0.1, 0.01]", "lr = [0.1, -0.5]"))
    assert "optimizers[1].hyperparameters.lr: -0.5 is refused by torch.SGD: Invalid learning rate: -0.5" in msg
    msg = _err(GOOD.replace('name = "Adam"', 'name = "torch.Adam"').replace("lr = {logspace = [1e-4, 1e-1, 4]}", "betas = [[0.9]]"))
    assert "optimizers[0].hyperparameters.betas: [0.9] is refused by torch.Adam: IndexError" in msg


def test_non_finite_values_are_refused_by_the_spec():
    """The one value rule the spec keeps: runs are keyed and stored as JSON, which has no inf or nan."""
    msg = _err(GOOD.replace("lr = [0.1, 0.01]", "lr = [0.1, inf]"))
    assert "optimizers[1].hyperparameters.lr: inf is not finite" in msg


class _Validated:
    """An optimizer class that says what it accepts without being built (as precond's validate_options)."""

    def __init__(self, params, **hp):
        raise AssertionError("refusal() must ask validate_options, not construct")

    @classmethod
    def validate_options(cls, a=0, b=0):
        if a and b:
            raise ValueError("a and b cannot both be set")
        if a < 0:
            raise ValueError(f"invalid a={a}: must be >= 0")


def test_refusal_asks_validate_options_and_blames_one_key_or_the_setting():
    from precond.experiments.hyperparameters import _refusal_line, refusal

    assert refusal(_Validated, {"a": 1}) is None
    assert refusal(_Validated, {"a": -1}) == "invalid a=-1: must be >= 0"
    where = "optimizers[2].hyperparameters"
    assert _refusal_line(where, "V", _Validated, {"a": -1, "b": 0}, "m") == "optimizers[2].hyperparameters.a: -1 is refused by V: m"
    # either key alone is fine: the setting is named
    assert _refusal_line(where, "V", _Validated, {"a": 1, "b": (1, 2)}, "m") == "optimizers[2].hyperparameters: V refuses {'a': 1, 'b': [1, 2]}: m"


def test_unknown_curvature_estimator_is_refused_by_the_spec():
    """Sophia/GaussNewtonDiag keep the estimator as a name the curvature layer checks (issue 12): the
    spec asks that layer, so --check still refuses a name no estimator has."""
    msg = _err(GOOD.replace('name = "SGD"', 'name = "Sophia"').replace("momentum = [0.0, 0.9]", 'estimator = ["gnb", "kfac"]'))
    assert "optimizers[1].hyperparameters.estimator: 'kfac' is refused by Sophia: invalid estimator='kfac'" in msg
    assert "'hutchinson'" in msg  # the choices
    exp = parse_spec(GOOD.replace('name = "SGD"', 'name = "Sophia"').replace("momentum = [0.0, 0.9]", 'estimator = "Hutchinson"'))
    assert exp.grids[1]["estimator"] == ["Hutchinson"]

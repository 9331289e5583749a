"""The results store (issue 11, points 14, 16, 18 and 24): runs tied to their spec, edited specs
refused or replaced, old stores migrated, damaged files refused untouched, run claims."""

import sqlite3
import subprocess
import sys
import time

import pytest

from precond.cli import build_parser
from precond.cli import main as cli
from precond.experiments.spec import parse_spec
from precond.experiments.store import DEFAULT_STORE, Lease, SpecConflict, Store, StoreError
from precond.experiments.sweep import _Heartbeat, run_sweep
from precond.experiments.tuning import tune_store

SPEC = """
name = "e"
seeds = [0, 1, 2]
{extra}
[problem]
name = "exp_toys:Quad"
args = {{d = 2}}
[budget]
steps = {steps}
eval_every = 5
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.01, 0.1]
"""


def spec(steps=10, extra="", seeds=None):
    text = SPEC.format(steps=steps, extra=extra)
    return text.replace("seeds = [0, 1, 2]", f"seeds = {seeds}") if seeds else text


def _sweep(text, path, **kw):
    return run_sweep(parse_spec(text), path, workers=1, progress=False, **kw)


def _count(path, table="runs"):
    con = sqlite3.connect(str(path))
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


# ---- point 14: runs tied to their spec ------------------------------------------------------------
def test_run_keys_change_with_everything_that_changes_a_record():
    base = parse_spec(spec())
    keys = {c.key for c in base.runs()}
    for edited in (spec(extra="diagnostics = ['agd_adaptive_fraction']"), spec(extra="metrics = ['xnorm']"),
                   spec(extra="trajectory = false"), spec().replace('name = "Adam"', 'name = "Adam"\nlabel = "A"')):
        exp = parse_spec(edited)
        assert not keys & {c.key for c in exp.runs()}, edited
        assert exp.spec_hash != base.spec_hash
    # the hash ignores what does not change a record: description, comments, seed order
    same = parse_spec("# a comment\n" + spec(seeds="[2, 0, 1]").replace('name = "e"', 'name = "e"\ndescription = "x"'))
    assert same.spec_hash == base.spec_hash


def test_optimizers_differing_only_by_label_get_distinct_keys():
    two = spec() + '[[optimizers]]\nname = "Adam"\nlabel = "Adam again"\n[optimizers.hyperparameters]\nlr = [0.01, 0.1]\n'
    runs = parse_spec(two).runs()
    assert len(runs) == 12 and len({c.key for c in runs}) == 12


def test_edited_spec_is_refused_then_replaced(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    assert _sweep(spec(steps=10), path).ran == 6
    with pytest.raises(SpecConflict, match=r"'e' already holds 6 runs of a different spec \(changed: budget\).*--replace"):
        _sweep(spec(steps=20), path)
    assert _count(path) == 6
    # the CLI says it in one line and runs nothing
    toml = tmp_path / "e.toml"
    toml.write_text(spec(steps=20))
    assert cli(["run", str(toml), "--store", str(path), "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "different spec (changed: budget)" in err and "new name" in err
    with Store(path) as st:
        assert {r["steps"] for r in st.runs("e")} == {10}
    # --replace archives the old spec's runs and runs the new one
    assert cli(["run", str(toml), "--store", str(path), "--workers", "1", "--no-progress", "--replace"]) == 0
    out = capsys.readouterr().out
    assert "archived 6 runs" in out and "6 ran now" in out
    with Store(path) as st:
        assert {r["steps"] for r in st.runs("e")} == {20} and len(st.runs("e")) == 6
    assert _count(path, "archived_runs") == 6
    # more seeds: the new spec keeps the runs it shares with the old one (same key, same record)
    res = _sweep(spec(steps=20, seeds="[0, 1, 2, 3, 4]"), path, replace=True)
    assert (res.archived, res.skipped, res.ran) == (0, 6, 4)
    with Store(path) as st:
        tuned = tune_store(st, "e")
        assert [t.n_seeds for t in tuned] == [5]  # five seeds, not the 3 + 5 pooled before
        assert len(st.runs("e")) == 10 and len(st.runs("e", current=False)) == 10


def test_adding_a_diagnostic_records_it(tmp_path):
    path = tmp_path / "s.sqlite"
    agd = spec().replace('name = "Adam"', 'name = "AGD"')
    _sweep(agd, path)
    res = _sweep(agd.replace("[problem]", "diagnostics = ['agd_adaptive_fraction']\n[problem]"), path, replace=True)
    assert (res.ran, res.skipped, res.archived) == (6, 0, 6)  # recorded, not skipped as done
    with Store(path) as st:
        assert all("diag.agd_adaptive_fraction/overall" in r["history"] for r in st.runs("e"))


def _make_legacy(path):
    """A store as written before spec hashes: no spec_hash columns, no claims or archive tables, and
    run keys of the old identity (without label, diagnostics, metrics, trajectory)."""
    _sweep(spec(), path)
    con = sqlite3.connect(str(path))
    for sql in ("UPDATE runs SET key = 'old' || substr(key, 4)", "ALTER TABLE runs DROP COLUMN spec_hash", "ALTER TABLE experiments DROP COLUMN spec_hash",
                "DROP TABLE claims", "DROP TABLE archived_runs"):
        con.execute(sql)
    con.commit()
    con.close()


def test_old_store_opens_with_runs_of_unknown_spec(tmp_path):
    path = tmp_path / "old.sqlite"
    _make_legacy(path)
    with Store(path) as st:
        runs = st.runs("e")
        assert len(runs) == 6 and {r["spec_hash"] for r in runs} == {None}
        assert st.experiments()[0]["spec_hash"] is None
        assert len(tune_store(st, "e")) == 1
    with pytest.raises(SpecConflict, match="before precond tied runs to their spec"):
        _sweep(spec(), path)
    res = _sweep(spec(), path, replace=True)
    assert (res.archived, res.ran) == (6, 6)


# ---- point 16: damaged stores ---------------------------------------------------------------------
def _damaged(tmp_path, kind):
    if kind == "text":
        bad = tmp_path / "notes.sqlite"
        bad.write_text("these are my notes, not a database\n" * 20)
        return bad, "does not start with the SQLite header"
    bad = tmp_path / "cut.sqlite"
    _sweep(spec(), bad)
    data = bad.read_bytes()
    assert len(data) >= 3 * 4096
    bad.write_bytes(data[: len(data) // 2])
    return bad, "truncated"


@pytest.mark.parametrize("kind", ["text", "truncated"])
@pytest.mark.parametrize("command", ["run", "report"])
def test_damaged_store_is_one_line_and_untouched(tmp_path, capsys, kind, command):
    bad, why = _damaged(tmp_path, kind)
    data = bad.read_bytes()
    toml = tmp_path / "e.toml"
    toml.write_text(spec())
    args = ["run", str(toml), "--store", str(bad), "--workers", "1", "--no-progress"] if command == "run" else \
        ["report", str(bad), "-o", str(tmp_path / "rep")]  # fmt: skip
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "not a precond results store (SQLite)" in err and why in err
    assert bad.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([bad.name, "e.toml"])  # no report folder, no -wal
    with pytest.raises(StoreError):
        Store(bad)


def test_store_being_checkpointed_is_not_called_truncated(tmp_path):
    """While another process checkpoints a WAL store, page 1 (the new page count) reaches the file
    before the pages after it: a file shorter than its header with a -wal beside it is in use, not
    damaged (a fresh clone's `make demo` failed so: claims workers opening the store mid-checkpoint)."""
    from precond.experiments.store import check_store_file

    bad, _ = _damaged(tmp_path, "truncated")
    with pytest.raises(StoreError, match="truncated"):
        check_store_file(bad)
    (tmp_path / f"{bad.name}-wal").write_bytes(b"")
    check_store_file(bad)  # no error: in use


def test_other_sqlite_database_is_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(str(other))
    con.execute("CREATE TABLE songs (title TEXT)")
    con.commit()
    con.close()
    data = other.read_bytes()
    with pytest.raises(StoreError, match="without a runs table .*songs"):
        Store(other)
    assert other.read_bytes() == data


# ---- point 18: claims -------------------------------------------------------------------------------
def test_claims_live_stale_and_dead(tmp_path):
    path = tmp_path / "s.sqlite"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    me, other = Lease(), Lease(owner="other")
    with Store(path) as st:
        assert st.claim(["a", "b"], "e", other) == (["a", "b"], [])
        assert st.claim(["a", "c"], "e", me) == (["c"], ["a"])  # a: live claim of another owner
        assert st.claim(["a"], "e", me, timeout=0.0) == (["a"], [])  # stale: no heartbeat within the timeout
        st.claim(["d"], "e", Lease(owner="killed", pid=dead_pid))
        assert st.claim(["d"], "e", me) == (["d"], [])  # its owner is dead on this host: retaken at once
        far = Lease(owner="far", host="another-host", pid=dead_pid)
        st.claim(["f"], "e", far)
        assert st.claim(["f"], "e", me) == ([], ["f"])  # another host: only the heartbeat counts
        st.put_runs([])
        st.release(me)
        assert {c["key"] for c in st.claims("e")} == {"b", "f"}


def test_heartbeat_refreshes_claims(tmp_path):
    path = tmp_path / "s.sqlite"
    lease = Lease()
    with Store(path) as st:
        st.claim(["a"], "e", lease)
        t0 = st.claims()[0]["heartbeat"]
        beat = _Heartbeat(path, lease, 0.05)
        beat.start()
        time.sleep(0.4)
        beat.stop()
        assert st.claims()[0]["heartbeat"] > t0 + 0.1


def test_finished_runs_release_their_claims(tmp_path):
    path = tmp_path / "s.sqlite"
    res = _sweep(spec(), path)
    assert res.total == res.ran + res.skipped + res.taken + res.failed == 6
    with Store(path) as st:
        assert st.claims() == []


# ---- point 24: one default store ----------------------------------------------------------------------
def test_report_and_run_share_the_default_store():
    parser = build_parser()
    assert parser.parse_args(["report"]).store == parser.parse_args(["run", "x.toml"]).store == DEFAULT_STORE

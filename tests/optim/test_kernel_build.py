"""The kernels' build step: it says so when a first use must compile (issue 11, point 22)."""

from __future__ import annotations

import os
import subprocess
import sys

from precond.optim.kernels import _build


def test_needs_build_when_missing_or_older_than_source(tmp_path):
    lib = tmp_path / "k.so"
    assert _build.needs_build(lib)  # missing
    lib.write_bytes(b"")
    src = _build.SOURCE.stat().st_mtime
    os.utime(lib, (src - 10, src - 10))
    assert _build.needs_build(lib)  # older than the source: ninja will rebuild
    os.utime(lib, (src + 10, src + 10))
    assert not _build.needs_build(lib)


def test_first_build_prints_one_line(tmp_path, monkeypatch, capsys):
    from torch.utils import cpp_extension

    calls = []
    monkeypatch.setattr(_build, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: calls.append(kw))
    try:
        _build._build()
    except (AttributeError, RuntimeError):
        pass  # no kernels registered in this process: only the message is under test
    err = capsys.readouterr().err
    assert len(calls) == 1
    assert err.count("\n") == 1 and "building the fused C++ kernels" in err and str(tmp_path) in err
    name = _build.build_flags()[0]
    (tmp_path / name / f"{name}.so").write_bytes(b"")  # now built (newer than the source)
    try:
        _build._build()
    except (AttributeError, RuntimeError):
        pass
    assert capsys.readouterr().err == ""


def test_install_step_reports_ready():
    """``make install`` runs this module; with the kernels cached it says where they are."""
    out = subprocess.run([sys.executable, "-m", "precond.optim.kernels._build"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("precond kernels: ready in ") or "unavailable" in out.stdout

"""The kernels' build step: it says so when a first use must compile (issue 11, point 22)."""

from __future__ import annotations

import os
import subprocess
import sys

from precond.optim.kernels import _build


def test_needs_build_when_missing_or_older_than_any_source(tmp_path, monkeypatch):
    """The extension is every ``csrc/*.cpp`` (one per rule) over ``csrc/*.h``: a library older
    than any of them is rebuilt."""
    csrc = _build.CSRC
    assert _build.SOURCES == sorted(csrc.glob("*.cpp")) and len(_build.SOURCES) >= 10
    assert set(_build.FILES) == set(csrc.glob("*.cpp")) | set(csrc.glob("*.h")) and (csrc / "common.h") in _build.FILES
    lib = tmp_path / "k.so"
    assert _build.needs_build(lib)  # missing
    lib.write_bytes(b"")
    files = [tmp_path / "a.cpp", tmp_path / "b.cpp", tmp_path / "common.h"]
    for f in files:
        f.write_text("")
        os.utime(f, (1000.0, 1000.0))
    monkeypatch.setattr(_build, "FILES", files)
    os.utime(lib, (2000.0, 2000.0))
    assert not _build.needs_build(lib)
    for f in files:  # any one file newer than the library: ninja will rebuild
        os.utime(f, (3000.0, 3000.0))
        assert _build.needs_build(lib), f.name
        os.utime(f, (1000.0, 1000.0))


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
    assert _build.build_dir().parent == tmp_path and _build.build_dir().name == f"{name}-{_build.source_hash()}"
    (_build.build_dir() / f"{name}.so").write_bytes(b"")  # now built (newer than the source)
    try:
        _build._build()
    except (AttributeError, RuntimeError):
        pass
    assert capsys.readouterr().err == ""


def test_install_step_reports_ready():
    """``make install`` runs _build.main(); with the kernels cached it says where they are."""
    out = subprocess.run([sys.executable, "-c", "from precond.optim.kernels import _build; _build.main()"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("precond kernels: ready in ") or "unavailable" in out.stdout


def test_package_data_ships_every_kernel_source_and_names_no_missing_file():
    """A wheel carries what ``_build`` compiles (every ``csrc/*.cpp`` and ``*.h``); no pattern of
    ``precond.optim`` matches nothing (there never was a ``*.cu``)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(_build.__file__).resolve().parents[4]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["precond"]
    package = root / "src" / "precond"
    shipped = {f for pat in patterns for f in package.glob(pat)}
    assert set(_build.FILES) <= shipped
    for pat in patterns:
        if pat.startswith("optim/"):
            assert list(package.glob(pat)), f"package-data pattern {pat!r} matches no file"
    assert not any(fnmatch.fnmatch(p, "*.cu") for p in patterns)


def test_the_build_directory_follows_the_sources(tmp_path, monkeypatch):
    """Two checkouts with different kernel sources that share the cache build in two directories."""
    files = [tmp_path / "a.cpp", tmp_path / "common.h"]
    for f in files:
        f.write_text("int a;")
    monkeypatch.setattr(_build, "FILES", files)
    monkeypatch.setattr(_build, "cache_dir", lambda: tmp_path / "cache")
    first = _build.build_dir()
    assert _build.build_dir() == first  # stable
    files[1].write_text("int b;")
    assert _build.build_dir() != first and _build.build_dir().parent == first.parent

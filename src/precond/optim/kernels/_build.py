"""Build and load the C++ kernels (``csrc/*.cpp``: one file per rule over ``csrc/common.h``) at first use.

The extension is compiled by :func:`torch.utils.cpp_extension.load` the first time a fused
step (or the fast non-finite check) needs it, into a cache directory, and loaded from there
afterwards (a no-op ``ninja`` run, well under a second). ``make install`` builds them
ahead (:func:`main`), so neither ``make demo`` nor ``make test``
waits at a first step; a first use that must build prints one line to stderr saying so.

* cache: ``$TORCH_EXTENSIONS_DIR/precond/<tag>`` if that variable is set, else
  ``~/.cache/precond/<tag>`` (``$XDG_CACHE_HOME`` honoured); ``<tag>`` names the Python and
  torch versions and hashes torch's install path, so a torch upgrade builds afresh instead of
  loading a stale binary and two environments never rebuild over each other.
* sources: one file per rule in ``csrc/`` over ``csrc/common.h``, compiled as ONE translation
  unit (:func:`unity_source`, generated in the build directory: torch's headers are parsed once,
  about 20 s, instead of once per file, about 75 s of CPU); ninja's dependency file tracks
  every included file, so an edit to any of them rebuilds.
* flags: ``-O3 -fno-math-errno -fno-trapping-math -fopenmp`` (sqrt vectorises only without errno,
  and a select on a value that may come from a division by 0 only without trapping math), plus
  ``-mavx2 -mfma`` when torch reports the running CPU as AVX2- or AVX-512-capable; the build is
  for the machine that runs it, and the module name carries the ISA so a cache shared by
  other CPUs never loads a binary they cannot run.
* ``PRECOND_DISABLE_EXTENSIONS=1`` turns the kernels off; ``PRECOND_VERBOSE_BUILD=1`` shows
  the compiler's output.

If the build fails (no compiler, no ninja, a broken toolchain) or the kernels are disabled,
:func:`load` warns ONCE per process and returns ``None``; callers then use the reference loop
(``foreach`` on non-CPU devices). So it does when a kernel's coefficient fields (the C++
``PRECOND_COEFFICIENTS`` list, op ``coefficient_fields``) differ from the Python record's
``_fields`` (:func:`check_fields`): a kernel never reads a row by the wrong names.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

CSRC = Path(__file__).with_name("csrc")
#: the translation units of the extension, and every file they are built from
SOURCES = sorted(CSRC.glob("*.cpp"))
FILES = SOURCES + sorted(CSRC.glob("*.h"))
DISABLE_ENV = "PRECOND_DISABLE_EXTENSIONS"

_lock = threading.Lock()
_state: dict[str, Any] = {"tried": False, "ops": None, "error": None}


class KernelsUnavailableWarning(RuntimeWarning):
    """The C++ kernels could not be built or loaded; precond uses the reference loop instead."""


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def _isa() -> str:
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        return "generic"
    return "avx2" if cap in ("AVX2", "AVX512") else "generic"


def cache_dir() -> Path:
    """Where the compiled extension lives (see the module docstring)."""
    # the torch installation's path too: two environments with the same versions would
    # otherwise rebuild in turn (the compiler's include paths differ)
    where = hashlib.sha1(os.path.dirname(os.path.abspath(torch.__file__)).encode()).hexdigest()[:8]
    tag = f"py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__.replace('+', '_')}-{where}"
    base = os.environ.get("TORCH_EXTENSIONS_DIR")
    if base:
        return Path(base) / "precond" / tag
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "precond" / tag


def source_hash() -> str:
    """A short hash of every kernel source's name and text (:data:`FILES`)."""
    h = hashlib.sha1()
    for f in FILES:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:10]


def build_dir() -> Path:
    """Where this machine's build of these sources lives: ``cache_dir()/<module name>-<source hash>``."""
    return cache_dir() / f"{build_flags()[0]}-{source_hash()}"


def build_flags() -> tuple[str, list[str], list[str]]:
    """``(module name, compile flags, link flags)`` for this machine."""
    isa = _isa()
    cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp", "-DNDEBUG"]
    if isa == "avx2":
        cflags += ["-mavx2", "-mfma"]
    return f"precond_kernels_{isa}", cflags, ["-fopenmp"]


def _ensure_ninja_on_path() -> None:
    """``cpp_extension`` runs ``ninja`` from PATH; the ``ninja`` wheel may sit beside python only."""
    dirs = [os.path.dirname(sys.executable)]
    try:
        import ninja  # type: ignore[import-not-found]

        dirs.insert(0, ninja.BIN_DIR)
    except Exception:
        pass
    path = os.environ.get("PATH", "")
    parts = path.split(os.pathsep) if path else []
    missing = [d for d in dirs if d and d not in parts]
    if missing:
        os.environ["PATH"] = os.pathsep.join(missing + parts)


def needs_build(library: Path) -> bool:
    """Whether ``library`` is missing or older than a kernel source or header (a build will run)."""
    try:
        return library.stat().st_mtime < max(f.stat().st_mtime for f in FILES)
    except FileNotFoundError:
        return True


def unity_source(build_dir: Path) -> Path:
    """The translation unit that includes every ``csrc/*.cpp``, written to ``build_dir`` (only
    when its text changes, so that ninja does not rebuild for nothing)."""
    text = "// generated by precond/optim/kernels/_build.py: every rule's kernel in one translation unit\n"
    text += "".join(f'#include "{f}"\n' for f in SOURCES)
    path = build_dir / "precond_kernels.cpp"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def check_fields(ops: Any) -> None:
    """``RuntimeError`` unless every kernel reads the fields of its rule's coefficient record, in order."""
    from .. import functional  # noqa: F401  (every rule's module registers its record)
    from ..functional._rule import COEFFICIENTS

    for rule, record in sorted(COEFFICIENTS.items()):
        fields = list(ops.coefficient_fields(rule))
        if fields != list(record._fields):
            raise RuntimeError(
                f"the {rule} kernel reads the coefficients {fields}, but {record.__name__} has {list(record._fields)}: "
                "make PRECOND_COEFFICIENTS in kernels/csrc match the record"
            )


def _build() -> Any:
    from torch.utils import cpp_extension

    _ensure_ninja_on_path()
    name, cflags, ldflags = build_flags()
    where = build_dir()
    where.mkdir(parents=True, exist_ok=True)
    if needs_build(where / f"{name}.so"):
        print(
            f"precond: building the fused C++ kernels for this machine (once, about 20 s; cached in {where})",
            file=sys.stderr,
            flush=True,
        )
    cpp_extension.load(
        name=name,
        sources=[str(unity_source(where))],
        extra_cflags=cflags,
        extra_ldflags=ldflags,
        build_directory=str(where),
        is_python_module=False,
        verbose=_truthy(os.environ.get("PRECOND_VERBOSE_BUILD")),
    )
    ops = torch.ops.precond
    check_fields(ops)  # raises if the library did not register, or reads other fields
    return ops


def load() -> Any | None:
    """The ``torch.ops.precond`` namespace with the fused kernels, or ``None`` (warned once)."""
    if _state["tried"]:
        return _state["ops"]
    with _lock:
        if _state["tried"]:
            return _state["ops"]
        if _truthy(os.environ.get(DISABLE_ENV)):
            _state["error"] = f"disabled by {DISABLE_ENV}={os.environ[DISABLE_ENV]}"
        else:
            try:
                _state["ops"] = _build()
            except Exception as exc:  # compiler missing, build error, load error
                first = str(exc).strip().splitlines()[:1]
                _state["error"] = f"{type(exc).__name__}: {first[0] if first else ''}"
        _state["tried"] = True
        if _state["ops"] is None:
            warnings.warn(
                f"precond: the fused C++ kernels are unavailable ({_state['error']}); fused steps and "
                "the non-finite check use the reference loop instead (same results, slower). Install a "
                "C++ compiler and `ninja`, or set PRECOND_VERBOSE_BUILD=1 to see the build log.",
                KernelsUnavailableWarning,
                stacklevel=3,
            )
    return _state["ops"]


def status() -> dict[str, Any]:
    """What happened so far: ``{"tried", "available", "error", "cache_dir", "name", "cflags"}``."""
    name, cflags, _ = build_flags()
    return {
        "tried": _state["tried"],
        "available": _state["ops"] is not None,
        "error": _state["error"],
        "cache_dir": str(cache_dir()),
        "name": name,
        "cflags": cflags,
    }


def main() -> None:
    """``make install``: build ahead of the first step and say where; never fails the install."""
    ops = load()
    where = status()
    print(f"precond kernels: {'ready' if ops is not None else 'unavailable (' + str(where['error']) + ')'} in {where['cache_dir']}")


if __name__ == "__main__":
    main()

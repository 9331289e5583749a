"""Where a dataset's files are: one finder for every problem that reads files (CIFAR-10, PTB,
Shakespeare), with one lookup order and one error format; and file checksums.

Lookup order: the ``data_dir`` argument; else the directory in the dataset's environment
variable (an empty value counts as unset); else the first of the dataset's default locations
that holds its files; else its ``fallback`` (a directory that always exists, e.g. data bundled
in the package). A directory given explicitly (argument or variable) that lacks the files is
an error, never a silent fallback. Errors are one line,
``<dataset>: <dir> (from the <how>) lacks <files>; <how to get them>`` or
``<dataset>: no data directory given (argument data_dir or env var <VAR>); <how to get them>``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class DataDir:
    """A dataset's directory and how it was found (``"data_dir argument"``, ``"$VAR"`` or a default's name)."""

    path: Path
    how: str


def find_data_dir(dataset: str, data_dir: str | os.PathLike | None, env: str, need: Sequence[str], howto: str, *,
                  inside: str | None = None, defaults: Sequence[tuple[Path, str]] = (),
                  fallback: tuple[Path, str] | None = None) -> DataDir:  # fmt: skip
    """The directory holding every file of ``need``, by the module's lookup order.

    ``inside``: a folder name the files may sit in (CIFAR-10's ``cifar-10-batches-py``): the
    directory found may be ``<dir>/<inside>`` or ``<dir>`` itself. ``defaults``: ``(path, how)``
    tried in order when neither the argument nor ``env`` gives one. ``FileNotFoundError`` (the
    module's formats, ending in ``howto``) when there is none.
    """
    if data_dir is not None:
        d, how = Path(data_dir).expanduser(), "data_dir argument"
    elif os.environ.get(env):
        d, how = Path(os.environ[env]).expanduser(), f"${env}"
    else:
        for path, how in defaults:
            found = _holding(path, need, inside)
            if found is not None:
                return DataDir(found, how)
        if fallback is not None:
            return DataDir(*fallback)
        raise FileNotFoundError(f"{dataset}: no data directory given (argument data_dir or env var {env}); {howto}")
    found = _holding(d, need, inside)
    if found is None:
        where = d / inside if inside else d
        missing = [f for f in need if not (where / f).is_file()]
        lacks = f"{inside}/{{{', '.join(missing)}}}" if inside else ", ".join(missing)
        raise FileNotFoundError(f"{dataset}: {d} (from the {how}) lacks {lacks}; {howto}")
    return DataDir(found, how)


def _holding(d: Path, need: Sequence[str], inside: str | None) -> Path | None:
    for cand in ((d / inside, d) if inside else (d,)):
        if all((cand / f).is_file() for f in need):
            return cand
    return None


def repo_root() -> Path:
    """The repository root of a source checkout (``src/precond/problems`` -> three levels up)."""
    return Path(__file__).resolve().parents[3]


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

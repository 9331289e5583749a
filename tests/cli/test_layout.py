"""The package's shape (issue 12): no import goes up a layer; tests sit in tests/<layer>/ and no test
module imports another."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "precond"
#: the layers, lowest first: each may import only those before it (and itself)
LAYERS = ["optim", "curvature", "problems", "experiments", "claims", "cli"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "precond" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else ("cli" if parts[1] in ("cli", "__main__") else None)


def _imports(path: Path, package: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                out.append(node.module)
    return out


def test_no_import_goes_up_a_layer():
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        here = _layer(module)
        if here is None:
            continue
        for imported in _imports(path, package.removesuffix(".__init__")):
            there = _layer(imported)
            if there is not None and LAYERS.index(there) > LAYERS.index(here):
                bad.append(f"{module} imports {imported}")
    assert not bad, bad


def test_tests_sit_in_layer_folders_and_import_no_other_test_module():
    stray = [p.name for p in (ROOT / "tests").glob("test_*.py")]
    assert not stray, f"test files outside tests/<layer>/: {stray}"
    bad = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        for imported in _imports(path, "tests." + path.parent.name):
            if imported.split(".")[-1].startswith("test_"):
                bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not bad, bad

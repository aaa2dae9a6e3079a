"""Solvers meet only through coupling arguments and shared modules (issue 13): no module of `solvers/<a>/` imports
from `solvers/<b>/`; shared math lives in `genesis_torch/math/`, morph geometry in `genesis_torch/geometry/`."""

from __future__ import annotations

import ast
import pathlib

SOLVERS = pathlib.Path(__file__).resolve().parents[1] / "genesis_torch" / "solvers"


def _imported_modules(path: pathlib.Path) -> list[str]:
    """Absolute dotted names of the modules `path` imports (relative imports resolved)."""
    package = ["genesis_torch", *path.relative_to(SOLVERS.parent).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            out.append(".".join(base + ([node.module] if node.module else [])))
    return out


def test_no_solver_imports_another():
    solvers = [d.name for d in SOLVERS.iterdir() if d.is_dir() and any(d.glob("*.py"))]
    assert {"rigid", "mpm"} <= set(solvers)
    crossings = []
    for name in solvers:
        for path in (SOLVERS / name).rglob("*.py"):
            for mod in _imported_modules(path):
                parts = mod.split(".")
                if parts[:2] == ["genesis_torch", "solvers"] and len(parts) > 2 and parts[2] in solvers \
                        and parts[2] != name:
                    crossings.append(f"{path.relative_to(SOLVERS)} imports {mod}")
    assert not crossings, "solvers meet through genesis_torch/math, geometry or coupling arguments: " \
        + "; ".join(crossings)

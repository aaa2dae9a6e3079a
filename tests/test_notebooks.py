"""Every notebook in notebooks/ runs top to bottom (code cells executed in order in one namespace, in a temporary
working directory), so the examples cannot drift from the API."""

import json
import os
from pathlib import Path

import pytest

import genesis_torch as gs

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {}
    try:
        for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            exec(compile("".join(cell["source"]), f"{path.name}[{i}]", "exec"), namespace)
    finally:
        gs.destroy()
    assert os.listdir(tmp_path), "the notebook should have written its checkpoint"


def test_there_is_a_notebook():
    assert NOTEBOOKS

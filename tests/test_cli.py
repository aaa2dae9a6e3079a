"""The `genesis-torch` command: demo verifies a bit-exact restore; inspect and convert work on real checkpoints."""

import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.checkpoint import read_checkpoint_file
from genesis_torch.cli import main


@pytest.fixture(autouse=True)
def _fresh_runtime():
    yield
    gs.destroy()


def test_demo_restores_bit_exactly(tmp_path, capsys):
    out = tmp_path / "demo.safetensors"
    assert main(["demo", "--n-envs", "3", "--steps", "4", "--device", "cpu", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bit-exact continuation" in text and "env-steps/s" in text and "scene.t         4" in text
    assert read_checkpoint_file(out).step_index == 2


def test_inspect_and_convert(tmp_path, capsys):
    src = tmp_path / "demo.safetensors"
    assert main(["demo", "--n-envs", "2", "--steps", "2", "--device", "cpu", "--out", str(src)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(src)]) == 0
    text = capsys.readouterr().out
    assert "RigidSolver.qpos" in text and "(2, 9)" in text and "n_envs: 2" in text
    dst = tmp_path / "demo.pkl"
    assert main(["convert", str(src), str(dst)]) == 0
    a, b = read_checkpoint_file(src), read_checkpoint_file(dst)
    assert b.file_format == "pickle" and a.arrays.keys() == b.arrays.keys()
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_bad_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a checkpoint")
    assert main(["inspect", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err

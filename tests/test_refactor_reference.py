"""A rigid + MPM scene with contacts stepped 200 steps gives bitwise the arrays recorded before a refactor.

`tests/data/reference_rigid_mpm_<precision>.npz` holds every state array after 200 steps and every array of the
checkpoint saved then. They were written by this file's `write_references()` on main before the solver-protocol
refactor (commit named in `tests/data/README.md`); a change that is meant to leave physics untouched must keep them.
A deliberate physics change regenerates them (`python -m tests.test_refactor_reference`) and says why in its commit.
"""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch import checkpoint as ckpt

from .conftest import cpu_runtime

DATA = pathlib.Path(__file__).resolve().parent / "data"
STEPS = 200
N_ENVS = 2


def reference_scene():
    """Plane, a free box resting on it (rigid contacts) and an elastic MPM cube falling onto both (collider contacts),
    two envs that start apart (env 1's box spins and its cube is thrown sideways)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, substeps=2),
                     rigid_options=gs.options.RigidOptions(integrator=gs.integrator.implicitfast,
                                                            constraint_timeconst=0.02),  # recorded with MuJoCo's 0.02
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.4, -0.4, 0.0), upper_bound=(0.4, 0.4, 0.6),
                                                       grid_density=32, particle_size=1 / 48))
    scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0.1, 0.0, 0.05), size=(0.1, 0.1, 0.1)))
    cube = scene.add_entity(gs.morphs.Box(pos=(0.05, 0.0, 0.3), size=(0.12, 0.12, 0.12)),
                            material=gs.materials.MPM.Elastic(E=5e4, nu=0.3, rho=800.0))
    scene.build(n_envs=N_ENVS)
    box.set_dofs_velocity(torch.tensor([0.0, 0.3, 0.0, 0.0, 0.0, 4.0]), envs_idx=[1])
    cube.set_velocity(torch.tensor([0.4, 0.0, -0.5]), envs_idx=[1])
    return scene


def run_reference() -> dict[str, np.ndarray]:
    """`{"state/<key>": ..., "checkpoint/<key>": ...}` after STEPS steps of `reference_scene()`."""
    scene = reference_scene()
    for _ in range(STEPS):
        scene.step()
    out = {f"state/{k}": v for k, v in scene.get_state().to_arrays().items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "reference.safetensors"
        scene.save_checkpoint(path)
        out.update({f"checkpoint/{k}": v for k, v in ckpt.read_checkpoint_file(path).arrays.items()})
    return out


def _path(precision: str) -> pathlib.Path:
    return DATA / f"reference_rigid_mpm_f{precision}.npz"


@pytest.mark.parametrize("precision", ["32", "64"])
def test_arrays_equal_the_recorded_reference(precision):
    with cpu_runtime(precision):
        got = run_reference()
    want = dict(np.load(_path(precision)))
    assert sorted(got) == sorted(want), "the state or checkpoint keys changed"
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        differ = got[key].view(np.uint8) != value.view(np.uint8)
        assert not differ.any(), f"{key}: not bitwise equal to the reference (max |diff| " \
                                 f"{np.abs(got[key].astype(np.float64) - value.astype(np.float64)).max():.3g})"


def write_references() -> None:
    DATA.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    for precision in ("32", "64"):
        with cpu_runtime(precision):
            arrays = run_reference()
        np.savez(_path(precision), **arrays)
        print(f"wrote {_path(precision)} ({len(arrays)} arrays)")


if __name__ == "__main__":
    write_references()

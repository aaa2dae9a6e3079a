"""A rigid + MPM scene with contacts stepped 200 steps gives bitwise the arrays recorded before a refactor.

`tests/data/reference_rigid_mpm_<precision>.npz` holds every state array after 200 steps and every array of the
checkpoint saved then. They were written by this file's `write_references()` (history in `tests/data/README.md`);
a change that is meant to leave physics untouched must keep them. A deliberate physics change regenerates them
(`python -m tests.test_refactor_reference`) and says why in its commit.

Bits depend on the platform as well as the code: the CPU kernels torch dispatches to (its CPU capability), MKL's
code branch (`MKL_CBWR`, which genesis_torch sets) and torch's version. `tests/data/reference_platform.json` records
the platform the references were written on; there the comparison is bitwise. Elsewhere it cannot be (measured: the
same code on an Intel Xeon and an AMD EPYC, MKL's default branch, differed by 2.4e-5 (float32) / 5.1e-10 (float64)
in the box's qpos after the 200 contact steps), so positions and deformations are compared to `CROSS_PLATFORM_ATOL`
(~10x those differences) and the rest for keys, shapes, dtypes and exact integer / boolean arrays.
"""

from __future__ import annotations

import json
import os
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
PLATFORM_FILE = DATA / "reference_platform.json"
CROSS_PLATFORM_ATOL = {"32": 2e-4, "64": 5e-9}  # m, rad (quaternion components), deformation gradient entries
CROSS_PLATFORM_KEYS = ("RigidSolver.qpos", "RigidSolver.links_pos", "RigidSolver.links_quat", "MPMSolver.pos",
                       "MPMSolver.F")  # positions and deformations; velocities of the resting box are rounding noise


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


def platform() -> dict[str, str]:
    """What the recorded bits depend on besides the code."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl_cbwr": os.environ.get("MKL_CBWR", "")}


@pytest.mark.parametrize("precision", ["32", "64"])
def test_arrays_equal_the_recorded_reference(precision):
    with cpu_runtime(precision):
        got = run_reference()
    want = dict(np.load(_path(precision)))
    recorded = json.loads(PLATFORM_FILE.read_text())
    bitwise = recorded["platform"] == platform()
    assert sorted(got) == sorted(want), "the state or checkpoint keys changed"
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        both = np.isfinite(value) & np.isfinite(got[key]) if value.dtype.kind in "fc" else np.ones(value.shape, bool)
        diff = np.abs(got[key][both].astype(np.float64) - value[both].astype(np.float64)).max() if both.any() else 0.0
        if bitwise or value.dtype.kind not in "fc":
            differ = got[key].view(np.uint8) != value.view(np.uint8)
            assert not differ.any(), f"{key}: not bitwise equal to the reference (max |diff| {diff:.3g})"
        elif key.split("/", 1)[1] in CROSS_PLATFORM_KEYS:
            assert diff <= CROSS_PLATFORM_ATOL[precision], \
                f"{key}: {diff:.3g} from the reference recorded on {recorded['platform']} (this platform: " \
                f"{platform()}; bound {CROSS_PLATFORM_ATOL[precision]})"
        else:  # velocities, accelerations, parameters: finite where the reference is, the same infinities
            fin = np.isfinite(value)
            assert np.array_equal(np.isfinite(got[key]), fin), key
            assert np.array_equal(got[key][~fin], value[~fin], equal_nan=True), key


def write_references() -> None:
    DATA.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    for precision in ("32", "64"):
        with cpu_runtime(precision):
            arrays = run_reference()
        np.savez(_path(precision), **arrays)
        print(f"wrote {_path(precision)} ({len(arrays)} arrays)")
    PLATFORM_FILE.write_text(json.dumps({"platform": platform()}, indent=1) + "\n")
    print(f"wrote {PLATFORM_FILE}: {platform()}")


if __name__ == "__main__":
    write_references()

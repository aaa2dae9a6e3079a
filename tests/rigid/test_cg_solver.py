"""`RigidOptions(constraint_solver=gs.constraint_solver.CG)` (and an MJCF's `solver="CG"`): MuJoCo's conjugate-gradient
solver of the primal constraint problem (`solvers/rigid/cg.py`), checked against MuJoCo 4.0.1 on the same XML.

Measured: the first two CG iterations reproduce MuJoCo's to rounding; from the third on, MuJoCo 4.0.1's search
direction departs from the Polak-Ribiere update of its published `mj_solPrimal` on some envs (a negative multiple of
the previous direction, which that update cannot give), so step-by-step parity is not claimed past two iterations.
Run to convergence, CG reaches MuJoCo's (Newton) solution of the same convex problem.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs

from .test_mjcf_options import B, initial, xml

pytestmark = pytest.mark.usefixtures("single_thread")


def qacc_pair(tmp_path, option: str, oracle_option: str | None = None):
    """(ours, MuJoCo's) qacc (B, nv) of one forward pass at `initial`'s states, the scene loading `xml(option)` and
    MuJoCo `xml(oracle_option or option)`."""
    path = tmp_path / "model.xml"
    path.write_text(xml(option))
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=B)
    m = mujoco.MjModel.from_xml_string(xml(oracle_option or option))
    qpos, qvel, _ = initial(m)
    robot.set_qpos(torch.tensor(qpos))
    robot.set_dofs_velocity(torch.tensor(qvel))
    ours = scene.rigid_solver.forward(scene.get_state()["RigidSolver"]).qacc.numpy()
    ref = []
    for q, v in zip(qpos, qvel):
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:] = q, v
        mujoco.mj_forward(m, d)
        assert d.nefc > 0
        ref.append(d.qacc.copy())
    return ours, np.stack(ref), scene


@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("cone", ["pyramidal", "elliptic"])
def test_first_iterations_equal_mujoco_cg(gs64, tmp_path, iterations, cone):
    ours, ref, scene = qacc_pair(tmp_path, f'<option solver="CG" integrator="implicitfast" timestep="0.005" '
                                           f'cone="{cone}" iterations="{iterations}"/>')
    assert scene.rigid_options.constraint_solver is gs.constraint_solver.CG
    assert scene.rigid_solver.mj_model.opt.solver == int(mujoco.mjtSolver.mjSOL_CG)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_converged_cg_reaches_mujoco_newton_solution(gs64, tmp_path):
    option = '<option solver="CG" integrator="implicitfast" timestep="0.005" iterations="300" tolerance="1e-15"/>'
    ours, ref, _ = qacc_pair(tmp_path, option, option.replace('solver="CG"', 'solver="Newton"'))
    assert float(np.abs(ours - ref).max()) < 1e-7 * float(np.abs(ref).max())


def test_cg_from_scene_options_rests_a_box(gs_cpu):
    """Genesis-style options seen in client scripts: CG, 15 iterations, tolerance 1e-6, dt 5 ms."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005), rigid_options=gs.options.RigidOptions(
        constraint_solver=gs.constraint_solver.CG, iterations=15, tolerance=1e-6))
    scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.3), size=(0.1, 0.2, 0.1), euler=(5, 3, 0)))
    scene.build(n_envs=2)
    assert scene.rigid_solver.mj_model.opt.solver == int(mujoco.mjtSolver.mjSOL_CG)
    cg_options = gs.options.RigidOptions(constraint_solver=gs.constraint_solver.CG)
    assert cg_options.fingerprint() != gs.options.RigidOptions().fingerprint()  # checkpoints tell the solvers apart
    for _ in range(300):
        scene.step()
    qpos, qvel = box.get_qpos(), box.get_dofs_velocity()
    assert torch.all((qpos[:, 2] - 0.05).abs() < 1e-3), qpos[:, 2]
    assert torch.all(qvel.abs() < 1e-2), qvel

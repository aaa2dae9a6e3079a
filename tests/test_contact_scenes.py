"""Scenes with contacts through the public API: free primitives fall and rest on a plane, the Franka grasps a cube
and lifts it 10 cm, and too many contacts for `max_contacts` raise without changing the state."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import ContactOverflowError

HOME = np.array([0, -0.785, 0, -2.356, 0, 1.571, 0.785, 0.04, 0.04])


@pytest.mark.parametrize("morph,rest_z", [
    (lambda: gs.morphs.Box(pos=(0, 0, 0.3), size=(0.1, 0.2, 0.1), euler=(5, 3, 0)), 0.05),
    (lambda: gs.morphs.Sphere(pos=(0, 0, 0.3), radius=0.08), 0.08),
    # from 0.2 m: dropped from 0.3 m onto its end it topples under Genesis' stiffer default contacts
    # (constraint_timeconst 0.01 s), as it does in MuJoCo with solref 0.01 (and stands with 0.02)
    (lambda: gs.morphs.Cylinder(pos=(0, 0, 0.2), radius=0.05, height=0.2, euler=(3, 0, 0)), 0.1),
])
def test_free_primitives_fall_and_rest_on_the_plane(gs_cpu, morph, rest_z):
    """Dropped from 0.2-0.3 m they come to rest on the plane at their half height (soft contact: within 1 mm)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005))
    scene.add_entity(gs.morphs.Plane())
    body = scene.add_entity(morph())
    scene.build(n_envs=2)
    for _ in range(300):
        scene.step()
    qpos, qvel = body.get_qpos(), body.get_dofs_velocity()
    assert torch.all((qpos[:, 2] - rest_z).abs() < 1e-3), qpos[:, 2]
    assert torch.all(qvel.abs() < 1e-2), qvel
    assert torch.all(qpos[:, 3].abs() > 0.99)  # upright: the small initial tilt settled flat


def _ik(m: mujoco.MjModel, target: np.ndarray, q0: np.ndarray, site: int, R0: np.ndarray) -> np.ndarray:
    """Arm joints putting `site` at `target` with orientation R0 (damped least squares on MuJoCo's Jacobian; test
    setup only)."""
    d = mujoco.MjData(m)
    q = q0.copy()
    for _ in range(200):
        d.qpos[:9] = q
        mujoco.mj_forward(m, d)
        R = d.site_xmat[site].reshape(3, 3)
        err = np.concatenate([target - d.site_xpos[site], 0.5 * sum(np.cross(R[:, k], R0[:, k]) for k in range(3))])
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jp, jr, site)
        J = np.vstack([jp, jr])[:, :7]
        q[:7] += J.T @ np.linalg.solve(J @ J.T + 1e-6 * np.eye(6), err)
        if np.linalg.norm(err) < 1e-8:
            break
    return q


def test_franka_grasps_a_cube_and_lifts_it_10cm(gs_cpu):
    """Pre-grasp above a 5 cm cube, descend, close the fingers (position servos), lift the hand 12 cm: the cube
    rises at least 10 cm and stays between the fingers."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, substeps=2))
    scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    cube = scene.add_entity(gs.morphs.Box(pos=(0.55, 0.0, 0.025), size=(0.05, 0.05, 0.05)))
    scene.build()
    m = scene.rigid_solver.mj_model
    site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"{franka._mj_prefix}tcp")
    d = mujoco.MjData(m)
    d.qpos[:9] = HOME
    mujoco.mj_forward(m, d)
    R0 = d.site_xmat[site].reshape(3, 3).copy()  # fingers point down, closing along y
    pre = _ik(m, np.array([0.55, 0.0, 0.15]), HOME, site, R0)
    grasp = _ik(m, np.array([0.55, 0.0, 0.012]), pre, site, R0)
    lift = _ik(m, np.array([0.55, 0.0, 0.132]), grasp, site, R0)
    franka.set_dofs_position(torch.tensor(pre, dtype=torch.float32))

    def move(q, fingers: float, steps: int):
        franka.control_dofs_position(torch.tensor(np.concatenate([q[:7], [fingers, fingers]]), dtype=torch.float32))
        for _ in range(steps):
            scene.step()

    z0 = float(cube.get_qpos()[2])
    move(pre, 0.04, 20)
    move(grasp, 0.04, 50)
    assert abs(float(cube.get_qpos()[2]) - z0) < 1e-3  # the open fingers straddle the cube without moving it
    move(grasp, 0.0, 30)
    fingers = franka.get_dofs_position()[7:]
    assert torch.all((fingers > 0.015) & (fingers < 0.03)), fingers  # stopped by the cube (half width 2.5 cm)
    move(lift, 0.0, 70)
    z1 = float(cube.get_qpos()[2])
    assert z1 - z0 >= 0.10, (z0, z1)
    tcp_z = float(franka.get_links_pos()[franka.get_link("hand").idx_local, 2]) - 0.1034  # hand points down
    assert abs(z1 - tcp_z) < 0.02, (z1, tcp_z)  # held between the fingertips


@pytest.mark.parametrize("kind", ["implicitfast", "RK4"])
def test_contact_overflow_raises_and_changes_nothing(gs_cpu, kind):
    """Four box corners on the floor do not fit in 2 contact slots: step raises naming the option; state and t
    stay as they were (RK4: any of its four forward passes counts)."""
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(max_contacts=2,
                                                           integrator=getattr(gs.integrator, kind)))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.049), size=(0.1, 0.1, 0.1)))
    scene.build(n_envs=2)
    before = scene.get_state()
    with pytest.raises(ContactOverflowError, match=r"max_contacts=2\) to at least 4"):
        scene.step()
    assert scene.t == 0
    after = scene.get_state()
    for name in ("qpos", "dofs_vel", "qacc_warmstart"):
        assert torch.equal(getattr(after["RigidSolver"], name), getattr(before["RigidSolver"], name))


def test_humanoid_on_the_plane_follows_mujoco():
    """The bundled humanoid (19 motor hinges, capsules / spheres / boxes) lying on the plane after a 2 s fall, 8 envs
    with their own random motor controls for 20 steps (writhing: contacts come and go): qpos equals MuJoCo's
    `mj_step` on the scene's own model and controls to 1e-8 (float64; measured 7.5e-15 after 4 steps at 1024 envs)."""
    from .conftest import cpu_runtime

    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005))
        scene.add_entity(gs.morphs.Plane())
        robot = scene.add_entity(gs.morphs.MJCF(file="humanoid.xml"))
        scene.build(n_envs=8)
        m = scene.rigid_solver.mj_model
        d = mujoco.MjData(m)
        for _ in range(400):
            mujoco.mj_step(m, d)
        qpos0, qvel0 = d.qpos.copy(), d.qvel.copy()
        assert d.ncon >= 8 and qpos0[2] < 0.2  # lying on the plane
        robot.set_qpos(np.tile(qpos0, (8, 1)))
        robot.set_dofs_velocity(np.tile(qvel0, (8, 1)))
        ctrl = np.random.default_rng(0).uniform(-1, 1, size=(8, m.nu))
        gear = m.actuator_gear[:, 0]
        robot.control_dofs_force(ctrl * gear, dofs_idx_local=list(range(6, 25)))
        for _ in range(20):
            scene.step()
        ours = robot.get_qpos().numpy()
    assert np.abs(ours - qpos0).max() > 1e-2  # the controls moved it
    for e in range(8):
        d.qpos[:], d.qvel[:], d.ctrl[:] = qpos0, qvel0, ctrl[e]
        d.act[:] = 0
        d.qacc_warmstart[:] = 0
        for _ in range(20):
            mujoco.mj_step(m, d)
        np.testing.assert_allclose(ours[e], d.qpos, atol=1e-8, rtol=0)

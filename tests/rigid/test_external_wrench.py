"""External wrenches: `scene.rigid_solver.apply_links_external_wrench / _force / _torque` (Genesis' names, `ref`
'link_origin' / 'link_COM', `local`, `pos`) against MuJoCo on the same compiled model, float64, 3 envs with
different wrenches: for 'link_COM' in world axes MuJoCo's `xfrc_applied` itself; for the other frames and points
MuJoCo's `mj_applyFT` (force at the point, torque, body) into `qfrc_applied`, from the same state. Genesis' lifetime:
a wrench acts over the next `scene.step()` (all its substeps), calls before a step add up, and it is cleared after."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.errors import InvalidInputError

XML = """<mujoco><option timestep="0.002"/><worldbody>
  <body name="box" pos="0 0 1"><freejoint/>
    <inertial pos="0.05 0.02 -0.01" quat="0.9 0.1 0.3 0.2" mass="1.5" diaginertia="0.02 0.03 0.04"/>
    <geom type="box" size=".1 .2 .05" contype="0" conaffinity="0"/></body>
  <body name="arm" pos="1 0 1" euler="10 20 30"><joint type="hinge" axis="0 1 0" damping="0.1"/>
    <inertial pos="0.15 0 0.01" quat="0.8 0.2 0.1 0.4" mass="0.7" diaginertia="0.01 0.012 0.004"/>
    <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" contype="0" conaffinity="0"/>
    <body name="fore" pos="0.3 0 0"><joint type="ball"/>
      <inertial pos="0.1 0.01 0" quat="0.7 0.1 0.5 0.3" mass="0.4" diaginertia="0.005 0.006 0.002"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02" contype="0" conaffinity="0"/></body></body>
</worldbody></mujoco>"""
B = 3
STEPS = 50
TOL = 1e-10  # qpos/qvel after STEPS steps (measured ~1e-14)


def build(gs, tmp_path, substeps=1):
    path = tmp_path / "model.xml"
    path.write_text(XML)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002 * substeps, substeps=substeps),
                     rigid_options=gs.options.RigidOptions(integrator=gs.integrator.implicitfast))
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=B)
    m = copy.copy(scene.rigid_solver.mj_model)
    return scene, m, [mujoco.MjData(m) for _ in range(B)]


def wrenches(rng, nlinks):
    return rng.normal(size=(B, nlinks, 3)) * 2.0, rng.normal(size=(B, nlinks, 3)) * 0.3, \
        rng.normal(size=(B, nlinks, 3)) * 0.1


def mujoco_apply(m, d, b, force, torque, pos, ref, local):
    """Set `d`'s applied forces from Genesis' arguments for env `b`, using MuJoCo's frames and mj_applyFT."""
    d.xfrc_applied[:] = 0
    d.qfrc_applied[:] = 0
    for link in range(m.nbody - 1):
        body = link + 1
        f, t = force[b, link].copy(), torque[b, link].copy()
        R = (d.xmat if ref == "link_origin" else d.ximat)[body].reshape(3, 3)
        origin = (d.xpos if ref == "link_origin" else d.xipos)[body]
        if local:
            f, t = R @ f, R @ t
        if ref == "link_COM" and pos is None:
            d.xfrc_applied[body] = np.r_[f, t]  # MuJoCo's own xfrc_applied
            continue
        point = origin if pos is None else (origin + R @ pos[b, link] if local else pos[b, link])
        mujoco.mj_applyFT(m, d, f, t, point, body, d.qfrc_applied)


@pytest.mark.parametrize("with_pos", (False, True), ids=("no_pos", "pos"))
@pytest.mark.parametrize("local", (False, True), ids=("world", "local"))
@pytest.mark.parametrize("ref", ("link_origin", "link_COM"))
def test_wrench_every_step_matches_mujoco(gs64, tmp_path, ref, local, with_pos):
    scene, m, datas = build(gs64, tmp_path)
    rng = np.random.default_rng(7)
    for d in datas:
        mujoco.mj_forward(m, d)
    for _ in range(STEPS):
        force, torque, pos = wrenches(rng, m.nbody - 1)
        pos = pos if with_pos else None
        for b, d in enumerate(datas):
            mujoco.mj_forward(m, d)  # frames of the current qpos (after mj_step they are the previous step's)
            mujoco_apply(m, d, b, force, torque, pos, ref, local)
            mujoco.mj_step(m, d)
        scene.rigid_solver.apply_links_external_wrench(force, torque, pos=pos, ref=ref, local=local)
        scene.step()
    s = scene.get_state().solvers["RigidSolver"]
    err = max(max(np.abs(s.qpos[b].numpy() - d.qpos).max(), np.abs(s.dofs_vel[b].numpy() - d.qvel).max())
              for b, d in enumerate(datas))
    print(f"{ref} local={local} pos={with_pos}: {err:.2e}")
    assert err < TOL, f"{ref} local={local}: qpos/qvel differ from MuJoCo by {err:.3g}"
    assert np.abs(datas[0].qvel).max() > 1.0  # the wrenches moved things


@pytest.mark.parametrize("substeps", (1, 2))
def test_lifetime_one_step_and_accumulation(gs64, tmp_path, substeps):
    """Two calls before one step add up (a force, then a torque, on a subset of links and envs); they act over
    every substep of that step and are gone after: MuJoCo with xfrc_applied for `substeps` mj_steps, then none."""
    scene, m, datas = build(gs64, tmp_path, substeps)
    rng = np.random.default_rng(3)
    force, torque = rng.normal(size=(2, 3)) * 3, rng.normal(size=(2, 3)) * 0.5
    envs, links = [0, 2], [0, 2]
    solver = scene.rigid_solver
    solver.apply_links_external_force(np.tile(force, (2, 1, 1)), links, envs, ref="link_COM")
    solver.apply_links_external_torque(torque, links, envs, ref="link_COM")  # (L, 3) broadcasts over envs
    st = scene.get_state().solvers["RigidSolver"]
    assert st.links_xfrc.shape == (B, m.nbody - 1, 6) and st.links_xfrc_steps.tolist() == [substeps, 0, substeps]
    for b in envs:
        for k, link in enumerate(links):
            datas[b].xfrc_applied[link + 1] = np.r_[force[k], torque[k]]
    for step in range(5):
        scene.step()
        for d in datas:
            for _ in range(substeps):
                mujoco.mj_step(m, d)
            d.xfrc_applied[:] = 0
        s = scene.get_state().solvers["RigidSolver"]
        if step == 0:
            assert float(s.links_xfrc.abs().max()) == 0 and int(s.links_xfrc_steps.max()) == 0
        for b, d in enumerate(datas):
            np.testing.assert_allclose(s.qpos[b].numpy(), d.qpos, atol=TOL, rtol=0)
            np.testing.assert_allclose(s.dofs_vel[b].numpy(), d.qvel, atol=TOL, rtol=0)
    assert np.abs(datas[0].qvel - datas[1].qvel).max() > 1e-3  # env 1 got no wrench


def test_wrench_is_state(gs64, tmp_path):
    """A state captured after applying holds the wrench: reset to it and stepping repeats the step bitwise, and a
    checkpoint round trip keeps it."""
    scene, m, _ = build(gs64, tmp_path)
    scene.rigid_solver.apply_links_external_wrench(torch.ones(B, 3, 3), torch.ones(B, 3, 3) * 0.1, local=True)
    snap = scene.get_state()
    path = tmp_path / "ck.safetensors"
    scene.save_checkpoint(path)
    scene.step()
    after = scene.get_state().solvers["RigidSolver"].qpos.clone()
    scene.reset(state=snap)
    scene.step()
    assert torch.equal(scene.get_state().solvers["RigidSolver"].qpos, after)
    scene.load_checkpoint(path)
    assert int(scene.get_state().solvers["RigidSolver"].links_xfrc_steps.min()) == 1
    scene.step()
    assert torch.equal(scene.get_state().solvers["RigidSolver"].qpos, after)


def test_bad_input(gs64, tmp_path):
    scene, _, _ = build(gs64, tmp_path)
    s = scene.rigid_solver
    with pytest.raises(InvalidInputError, match="ref"):
        s.apply_links_external_force(np.zeros(3), ref="root_COM")
    with pytest.raises(InvalidInputError, match="force, torque"):
        s.apply_links_external_wrench()
    with pytest.raises(InvalidInputError, match="shape"):
        s.apply_links_external_force(np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="NaN"):
        s.apply_links_external_force(np.full(3, np.nan))
    with pytest.raises(InvalidInputError):
        s.apply_links_external_force(np.zeros(3), links_idx=[7])

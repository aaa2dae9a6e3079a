"""`RigidEntity.control_dofs_position_velocity`: Genesis 1.4.5's PD law `kp (p - q) + kv (v - qdot)` with a stored
velocity target (`RigidState.dofs_ctrl_vel`, Genesis' `ctrl_vel`), checked against the analytic law and against
MuJoCo stepping the same model with that force as `qfrc_applied`; gains set later apply; the other control calls
replace the velocity target as Genesis' kernels do; partial envs; checkpoints restore it bitwise."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.entities.rigid_entity import CTRL_NONE
from genesis_torch.errors import InvalidInputError

DT = 0.01
T = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
F = lambda shape, x: torch.full(shape, x, dtype=torch.float64)  # noqa: E731
Z = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
CHAIN = """<mujoco><option timestep="0.01" integrator="Euler"/><worldbody>
  <body name="a"><joint name="j0" type="hinge" axis="0 1 0"/>
    <geom type="capsule" fromto="0 0 0 0.4 0 0" size="0.03" mass="1.5" contype="0" conaffinity="0"/>
    <body name="b" pos="0.4 0 0"><joint name="j1" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" mass="0.8" contype="0" conaffinity="0"/>
    </body></body></worldbody>
  {actuator}</mujoco>"""
KP = T([[40.0, 25.0], [60.0, 10.0], [15.0, 30.0]])
KV = T([[3.0, 1.0], [0.5, 2.0], [4.0, 0.2]])


def _chain(tmp_path, actuator="", n_envs=3):
    path = tmp_path / "chain.xml"
    path.write_text(CHAIN.format(actuator=actuator))
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=DT),
                     rigid_options=gs.options.RigidOptions(integrator=gs.integrator.Euler))
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=n_envs)
    robot.set_dofs_position(T([[0.2, -0.4], [-0.1, 0.3], [0.5, 0.0]]))
    robot.set_dofs_velocity(T([[0.4, -1.0], [1.2, 0.1], [-0.3, 0.7]]))
    return scene, robot, path


def _pd(robot, p, v, kp=KP, kv=KV):
    return kp * (p - robot.get_dofs_position()) + kv * (v - robot.get_dofs_velocity())


def test_force_is_the_pd_law_and_steps_as_mujoco_with_it(gs64, tmp_path):
    """Every step: the control force equals the analytic law on the current state (float64, 1e-12), and the
    trajectory equals MuJoCo's with that law applied as qfrc_applied (20 steps, 3 envs of other gains)."""
    scene, robot, path = _chain(tmp_path)
    robot.set_dofs_kp(KP)
    robot.set_dofs_kv(KV)
    m = mujoco.MjModel.from_xml_path(str(path))
    datas = [mujoco.MjData(m) for _ in range(3)]
    for b, d in enumerate(datas):
        d.qpos[:] = robot.get_dofs_position()[b].numpy()
        d.qvel[:] = robot.get_dofs_velocity()[b].numpy()
    worst_force = worst_state = 0.0
    for k in range(20):
        t = k * DT
        p = T([[0.3 * np.sin(2 * t), -0.2], [0.1, 0.4 * np.cos(3 * t)], [0.0, 0.25]])
        v = T([[0.6 * np.cos(2 * t), 0.5], [-0.8, -1.2 * np.sin(3 * t)], [1.5, -0.4]])
        robot.control_dofs_position_velocity(p, v)
        got = robot.get_dofs_control_force()
        worst_force = max(worst_force, float((got - _pd(robot, p, v)).abs().max()))
        scene.step()
        for b, d in enumerate(datas):
            d.qfrc_applied[:] = (KP[b] * (p[b] - torch.as_tensor(d.qpos)) +
                                 KV[b] * (v[b] - torch.as_tensor(d.qvel))).numpy()
            mujoco.mj_step(m, d)
        qpos = np.stack([d.qpos for d in datas])
        qvel = np.stack([d.qvel for d in datas])
        worst_state = max(worst_state, np.abs(robot.get_dofs_position().numpy() - qpos).max(),
                          np.abs(robot.get_dofs_velocity().numpy() - qvel).max())
    assert worst_force < 1e-12, worst_force
    assert worst_state < 1e-10, worst_state
    assert float(robot.get_dofs_velocity().abs().max()) > 0.1, "the controller moved the chain"


def test_gains_set_later_apply(gs64, tmp_path):
    _, robot, _ = _chain(tmp_path)
    p, v = T([[0.3, -0.2], [0.1, 0.4], [0.0, 0.25]]), T([[1.0, 0.5], [-0.8, -1.2], [1.5, -0.4]])
    robot.set_dofs_kp(KP)
    robot.set_dofs_kv(KV)
    robot.control_dofs_position_velocity(p, v)
    kp2, kv2 = 2.5 * KP, KV + 1.0
    robot.set_dofs_kp(kp2)
    robot.set_dofs_kv(kv2)
    err = (robot.get_dofs_control_force() - _pd(robot, p, v, kp2, kv2)).abs().max()
    assert float(err) < 1e-12, "the velocity target is stored, not folded into the position target at the call"
    robot.set_dofs_kp(Z(2))  # kp = 0 leaves Genesis' velocity term
    err = (robot.get_dofs_control_force() - kv2 * (v - robot.get_dofs_velocity())).abs().max()
    assert float(err) < 1e-12


def test_other_control_calls_replace_the_velocity_target(gs64, tmp_path):
    """As Genesis' kernels: control_dofs_position zeroes ctrl_vel; velocity / force mode do not read it; a dof's
    last call decides its law."""
    _, robot, _ = _chain(tmp_path)
    robot.set_dofs_kp(KP)
    robot.set_dofs_kv(KV)
    p, v = F((3, 2), 0.2), F((3, 2), -0.7)
    robot.control_dofs_position_velocity(p, v)
    robot.control_dofs_position(p[:, :1], dofs_idx_local=[0])  # dof 0: position only, dof 1 keeps its target
    want = _pd(robot, p, v)
    want[:, 0] = KP[:, 0] * (0.2 - robot.get_dofs_position()[:, 0]) - KV[:, 0] * robot.get_dofs_velocity()[:, 0]
    assert float((robot.get_dofs_control_force() - want).abs().max()) < 1e-12
    st = robot._state
    assert st.dofs_ctrl_vel[:, 0].eq(0).all() and st.dofs_ctrl_vel[:, 1].eq(-0.7).all()
    robot.control_dofs_velocity(F((3, 1), 0.9), dofs_idx_local=[1])
    robot.control_dofs_force(F((3, 1), 1.25), dofs_idx_local=[0])
    got = robot.get_dofs_control_force()
    assert float((got[:, 1] - KV[:, 1] * (0.9 - robot.get_dofs_velocity()[:, 1])).abs().max()) < 1e-12
    assert got[:, 0].eq(1.25).all()
    assert robot._state.dofs_ctrl_vel.eq(0).all()
    robot.control_dofs_position_velocity(p, v)  # back to the law on both dofs
    assert float((robot.get_dofs_control_force() - _pd(robot, p, v)).abs().max()) < 1e-12


def test_partial_envs_and_dofs(gs64, tmp_path):
    _, robot, _ = _chain(tmp_path)
    robot.set_dofs_kp(KP)
    robot.set_dofs_kv(KV)
    base = T([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    robot.control_dofs_position(base)
    robot.control_dofs_position_velocity(T([[-0.3]]), T([[2.0]]), dofs_idx_local=[1],
                                         envs_idx=[1])
    want_p, want_v = base.clone(), Z(3, 2)
    want_p[1, 1], want_v[1, 1] = -0.3, 2.0
    assert float((robot.get_dofs_control_force() - _pd(robot, want_p, want_v)).abs().max()) < 1e-12
    assert torch.equal(robot._state.dofs_ctrl_vel, want_v.to(robot._state.dofs_ctrl_vel.dtype))
    before = robot._state
    with pytest.raises(InvalidInputError, match="velocity"):  # a failed call changes nothing
        robot.control_dofs_position_velocity(Z(1, 1), Z(2, 1), dofs_idx_local=[1], envs_idx=[1])
    assert robot._state is before


def test_an_actuated_dof_takes_the_dof_controller_with_the_actuators_gains(gs64, tmp_path):
    """A position actuator on j0 (kp 80, kv 5): position_velocity runs Genesis' law with those gains (the actuator
    off in those envs); control_dofs_position hands the dof back to the actuator."""
    act = '<actuator><position joint="j0" kp="80" kv="5"/></actuator>'
    _, robot, _ = _chain(tmp_path, act)
    robot.set_dofs_kp(T([0.0, 20.0]))  # dof 0: the actuator's kp; dof 1: the dof controller's
    robot.set_dofs_kp(T([80.0, 20.0]))
    robot.set_dofs_kv(T([5.0, 1.5]))
    p, v = F((3, 2), 0.35), F((3, 2), 0.6)
    robot.control_dofs_position_velocity(p, v)
    kp, kv = T([80.0, 20.0]).expand(3, 2), T([5.0, 1.5]).expand(3, 2)
    assert float((robot.get_dofs_control_force() - _pd(robot, p, v, kp, kv)).abs().max()) < 1e-12
    robot.control_dofs_position(p[[0, 2]], envs_idx=[0, 2])
    st = robot._state
    assert (st.dofs_ctrl_mode[[0, 2], 0] == CTRL_NONE).all() and st.dofs_ctrl_vel[[0, 2]].eq(0).all()
    assert st.dofs_ctrl_vel[1].eq(0.6).all()
    want = _pd(robot, p, v, kp, kv)
    want[[0, 2]] = _pd(robot, p, Z(3, 2), kp, kv)[[0, 2]]  # the actuator's position law: kp (p - q) - kv qdot
    assert float((robot.get_dofs_control_force() - want).abs().max()) < 1e-12


def test_checkpoint_round_trip_is_bitwise(gs64, tmp_path):
    scene, robot, _ = _chain(tmp_path)
    robot.set_dofs_kp(KP)
    robot.set_dofs_kv(KV)
    robot.control_dofs_position_velocity(T([[0.3, -0.2], [0.1, 0.4], [0.0, 0.25]]),
                                         T([[1.0, 0.5], [-0.8, -1.2], [1.5, -0.4]]))
    scene.step()
    path = tmp_path / "ckpt.safetensors"
    scene.save_checkpoint(path)
    saved_vel = robot._state.dofs_ctrl_vel.clone()
    for _ in range(10):
        scene.step()
    want = scene.get_state()["RigidSolver"]
    robot.control_dofs_position(Z(3, 2))  # clears the velocity targets before the load
    scene.load_checkpoint(path)
    assert torch.equal(robot._state.dofs_ctrl_vel, saved_vel) and bool(saved_vel.ne(0).all())
    for _ in range(10):
        scene.step()
    got = scene.get_state()["RigidSolver"]
    for name in ("qpos", "dofs_vel", "dofs_ctrl_target", "dofs_ctrl_vel"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name

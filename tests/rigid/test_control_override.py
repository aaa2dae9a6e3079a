"""A control call of another kind than a dof's MJCF actuator: the dof controller takes the dof in those envs and
the actuator is off there (Genesis switches a dof's control mode per env); a call of the actuator's kind hands the
dof back. Against MuJoCo with the actuator's gains changed equivalently: force control = a motor (gain 1, no bias),
velocity control = a velocity servo (gain kv, bias -kv qvel), both keeping the actuator's forcerange and without
its ctrlrange. Env K is switched; the other envs must be bitwise those of a scene where nothing was switched.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs

pytestmark = pytest.mark.usefixtures("single_thread")

TOL = 1e-9
N_ENVS, K, STEPS = 3, 1, 40
XML = """<mujoco><default><geom contype="0" conaffinity="0"/></default><worldbody>
  <body pos="0 0 1"><joint name="j1" type="hinge" axis="0 1 0" damping="0.05"/>
    <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
    <body pos="0.3 0 0"><joint name="j2" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.03"/></body></body>
</worldbody><actuator>
  <position joint="j1" kp="40" kv="4" forcerange="-3 3" ctrlrange="-1 1"/>
  <velocity joint="j2" kv="2"/>
</actuator></mujoco>"""


def _scene(tmp_path, integ):
    path = tmp_path / "arm.xml"
    path.write_text(XML)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.004),
                     rigid_options=gs.options.RigidOptions(integrator=getattr(gs.integrator, integ)))
    arm = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=N_ENVS)
    rng = np.random.default_rng(3)
    arm.set_dofs_position(rng.uniform(-0.5, 0.5, (N_ENVS, 2)))
    arm.set_dofs_velocity(rng.uniform(-1.0, 1.0, (N_ENVS, 2)))
    arm.control_dofs_position([0.3], dofs_idx_local=[0])
    arm.control_dofs_velocity([0.5], dofs_idx_local=[1])
    return scene, arm


def _steps(scene, n):
    for _ in range(n):
        scene.step()
    st = scene.get_state().solvers["RigidSolver"]
    return st.qpos.clone(), st.dofs_vel.clone()


def _motor(m, a):
    m.actuator_gainprm[a, :3] = [1, 0, 0]
    m.actuator_biasprm[a, :3] = 0
    m.actuator_ctrllimited[a] = 0


def _velocity_servo(m, a, kv):
    m.actuator_gainprm[a, :3] = [kv, 0, 0]
    m.actuator_biasprm[a, :3] = [0, 0, -kv]
    m.actuator_ctrllimited[a] = 0


# (our calls on env K, the equivalent MuJoCo edit and ctrl)
CASES = {
    # j1's position servo → torque control (5 N m is clamped to the actuator's forcerange 3); j2 stays a servo
    "force": (lambda arm: arm.control_dofs_force([5.0], dofs_idx_local=[0], envs_idx=[K]),
              lambda m, d: (_motor(m, 0), d.ctrl.__setitem__(0, 5.0))),
    # j1 → velocity control with the servo's kv = 4
    "velocity": (lambda arm: arm.control_dofs_velocity([-0.7], dofs_idx_local=[0], envs_idx=[K]),
                 lambda m, d: (_velocity_servo(m, 0, 4.0), d.ctrl.__setitem__(0, -0.7))),
    # j2's velocity servo → torque control
    "force_on_velocity_servo": (lambda arm: arm.control_dofs_force([0.4], dofs_idx_local=[1], envs_idx=[K]),
                                lambda m, d: (_motor(m, 1), d.ctrl.__setitem__(1, 0.4))),
}


@pytest.mark.parametrize("integ", ("Euler", "implicitfast", "RK4"))
@pytest.mark.parametrize("case", CASES)
def test_switch_matches_mujoco(case, integ, tmp_path, gs64):
    ours, theirs = CASES[case]
    scene, arm = _scene(tmp_path, integ)
    ref, _ = _scene(tmp_path, integ)
    st = scene.get_state().solvers["RigidSolver"]
    m = copy.deepcopy(scene.rigid_solver.mj_model)
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:], d.ctrl[:] = st.qpos[K].numpy(), st.dofs_vel[K].numpy(), st.ctrl[K].numpy()
    ours(arm)
    theirs(m, d)
    qpos, qvel = _steps(scene, STEPS)
    rq, rv = _steps(ref, STEPS)
    for _ in range(STEPS):
        mujoco.mj_step(m, d)
    dq, dv = np.abs(qpos[K].numpy() - d.qpos).max(), np.abs(qvel[K].numpy() - d.qvel).max()
    print(f"{case} {integ}: max |qpos - MuJoCo| = {dq:.2e}, max |qvel - MuJoCo| = {dv:.2e}")
    assert dq < TOL and dv < TOL, (dq, dv)
    others = [b for b in range(N_ENVS) if b != K]
    assert torch.equal(qpos[others], rq[others]) and torch.equal(qvel[others], rv[others])


def test_switch_back_and_checkpoint(tmp_path, gs64):
    """Force control on j1, then position control again: MuJoCo with the motor, then the original servo. The
    switch is state (`dofs_ctrl_mode`): a checkpoint taken while switched repeats the same steps after loading."""
    scene, arm = _scene(tmp_path, "implicitfast")
    st = scene.get_state().solvers["RigidSolver"]
    m0 = scene.rigid_solver.mj_model
    m = copy.deepcopy(m0)
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:], d.ctrl[:] = st.qpos[K].numpy(), st.dofs_vel[K].numpy(), st.ctrl[K].numpy()
    arm.control_dofs_force([-2.0], dofs_idx_local=[0], envs_idx=[K])
    _motor(m, 0)
    d.ctrl[0] = -2.0
    scene.save_checkpoint(tmp_path / "switched.pkl")
    after_save = _steps(scene, 10)
    for _ in range(10):
        mujoco.mj_step(m, d)
    arm.control_dofs_position([0.2], dofs_idx_local=[0], envs_idx=[K])
    for name in ("actuator_gainprm", "actuator_biasprm", "actuator_ctrllimited"):
        getattr(m, name)[:] = getattr(m0, name)
    d.ctrl[0] = 0.2
    qpos, qvel = _steps(scene, 20)
    for _ in range(20):
        mujoco.mj_step(m, d)
    assert np.abs(qpos[K].numpy() - d.qpos).max() < TOL and np.abs(qvel[K].numpy() - d.qvel).max() < TOL
    scene.load_checkpoint(tmp_path / "switched.pkl")
    again = _steps(scene, 10)
    assert all(torch.equal(a, b) for a, b in zip(after_save, again))

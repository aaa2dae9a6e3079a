"""`RigidEntity.set_pos` / `set_quat` on fixed-base entities (Genesis' per-env base placement) against MuJoCo.

A base link that is not on a free joint is placed by its body frame in the world (MuJoCo's `body_pos` /
`body_quat` of the entity's root body), a per-env model parameter (`RigidParams.body_pos`, `body_quat`). The oracle
is the scene's compiled `MjModel` with only that root body's `body_pos` / `body_quat` edited to env K's values,
stepped by `mujoco.mj_step` from env K's state with env K's controls: qpos, qvel and the link poses must agree in
float64 to `TOL`. Also: every other env is bitwise the env of a scene where nothing was set; env K alone (a
one-env scene) is bitwise env K of the batch; checkpoints save and restore the frames bitwise (stepping after a
load repeats the steps after the save); `reset()` keeps them and recomputes link poses; bad input raises
`InvalidInputError` and changes nothing.

Measured max |diff| vs MuJoCo (printed with `-s`): see the `print`s; all below 1e-11 on this machine.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError

from .conftest import directional_fd_error

pytestmark = pytest.mark.usefixtures("single_thread")

TOL = 1e-9
N_ENVS, K = 3, 1  # env K is moved
# a welded base, three hinges, a motor and a position servo; env K's base is lowered and tilted so that the arm
# reaches the floor under gravity (a free sphere rests on the floor: contacts in every env)
ARM = """<mujoco><worldbody>
  <body name="base" pos="0 0 0.6" euler="0 0 20">
    <geom type="cylinder" size="0.08 0.05"/>
    <body name="l1" pos="0 0 0.06">
      <joint name="j1" type="hinge" axis="0 0 1" damping="0.2"/>
      <geom type="capsule" fromto="0 0 0.05 0 0 0.2" size="0.04"/>
      <body name="l2" pos="0 0 0.2">
        <joint name="j2" type="hinge" axis="0 1 0" damping="0.1"/>
        <geom type="capsule" fromto="0 0 0 0.35 0 0" size="0.035"/>
        <body name="l3" pos="0.35 0 0">
          <joint name="j3" type="hinge" axis="0 1 0" damping="0.05"/>
          <geom type="box" size="0.12 0.03 0.03" pos="0.12 0 0"/>
        </body>
      </body>
    </body>
  </body>
</worldbody>
<actuator><motor joint="j1"/><position joint="j2" kp="8"/></actuator></mujoco>"""
POS, QUAT = [0.1, -0.05, 0.05], [0.95, 0.1, -0.2, 0.15]  # env K's base (QUAT is normalised by set_quat)


def _scene(tmp_path, kind="arm", integ="implicitfast", n_envs=N_ENVS, requires_grad=False):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.004, requires_grad=requires_grad),
                     rigid_options=gs.options.RigidOptions(integrator=getattr(gs.integrator, integ), tolerance=1e-14))
    scene.add_entity(gs.morphs.Plane())
    if kind == "arm":
        path = tmp_path / "arm.xml"
        path.write_text(ARM)
        robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
        scene.add_entity(gs.morphs.Sphere(pos=(0.4, 0.1, 0.06), radius=0.06))
    else:
        robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    return scene, robot


def _init(scene, robot, envs=range(N_ENVS)):
    """A reproducible moving state and controls per env (rows `envs` of the same draw in every scene)."""
    rng = np.random.default_rng(3)
    envs = list(envs)
    n = robot.n_dofs
    vel = rng.uniform(-1.0, 1.0, (N_ENVS, n))[envs]
    target = rng.uniform(-0.6, 0.6, (N_ENVS, n))[envs]
    robot.set_dofs_velocity(vel)
    if n == 3:  # the arm: a torque on j1, a position target on j2 (both MJCF actuators: ctrl)
        robot.control_dofs_force(target[:, :1] * 2, dofs_idx_local=[0])
        robot.control_dofs_position(target[:, 1:2], dofs_idx_local=[1])
    else:
        robot.control_dofs_position(target)


def _move(robot, envs_idx=(K,)):
    robot.set_pos(torch.tensor([POS] * len(envs_idx)), envs_idx=list(envs_idx), zero_velocity=False)
    robot.set_quat(QUAT, envs_idx=list(envs_idx), zero_velocity=False)


def _run(scene, steps):
    for _ in range(steps):
        scene.step()
    return scene.get_state().solvers["RigidSolver"]


def _mujoco(scene, robot, env, st0, steps):
    """The compiled model with the root body's frame edited to env `env`'s, stepped from env `env` of `st0`."""
    mjm = copy.deepcopy(scene.rigid_solver.mj_model)
    root = int(robot._body_ids[0])
    p = scene.rigid_solver.params
    mjm.body_pos[root] = p.body_pos[min(env, len(p.body_pos) - 1), root].numpy()
    mjm.body_quat[root] = p.body_quat[min(env, len(p.body_quat) - 1), root].numpy()
    mjm.opt.tolerance = 1e-14
    d = mujoco.MjData(mjm)
    d.qpos[:], d.qvel[:] = st0.qpos[env].numpy(), st0.dofs_vel[env].numpy()
    d.ctrl[:], d.act[:] = st0.ctrl[env].numpy(), st0.act[env].numpy()
    mujoco.mj_forward(mjm, d)
    xpos0 = d.xpos[1:].copy()
    ncon = 0  # the most contacts of the robot's links at any step
    mine = np.isin(mjm.geom_bodyid, robot._body_ids)
    for _ in range(steps):
        mujoco.mj_step(mjm, d)
        ncon = max(ncon, sum(bool(mine[c.geom1] or mine[c.geom2]) for c in d.contact[:d.ncon]))
    mujoco.mj_kinematics(mjm, d)  # mj_step leaves the poses of the configuration before its last update
    return d, xpos0, ncon


@pytest.mark.parametrize("kind,integ,steps", [
    ("arm", "Euler", 220), ("franka", "implicitfast", 60),
    # 23 s and 77 s here (RK4: four forward passes per step): run by the slow job, which CI also runs
    pytest.param("arm", "implicitfast", 220, marks=pytest.mark.slow),
    pytest.param("arm", "RK4", 220, marks=pytest.mark.slow)])
def test_moved_base_matches_mujoco(kind, integ, steps, tmp_path, gs64):
    scene, robot = _scene(tmp_path, kind, integ)
    ref, ref_robot = _scene(tmp_path, kind, integ)
    _init(scene, robot)
    _init(ref, ref_robot)
    _move(robot)
    st0 = scene.get_state().solvers["RigidSolver"]
    root = robot.links[0].idx
    # the base link is where it was put (get_pos / get_quat, link poses of the state)
    assert torch.allclose(robot.get_pos()[K], torch.tensor(POS, dtype=torch.float64), atol=1e-15)
    q = torch.tensor(QUAT, dtype=torch.float64)
    assert torch.allclose(robot.get_quat()[K], q / q.norm(), atol=1e-15)
    d, xpos0, ncon = _mujoco(scene, robot, K, st0, steps)
    assert np.abs(st0.links_pos[K].numpy() - xpos0).max() < 1e-14
    st = _run(scene, steps)
    ref_st = _run(ref, steps)
    dq = np.abs(st.qpos[K].numpy() - d.qpos).max()
    dv = np.abs(st.dofs_vel[K].numpy() - d.qvel).max()
    dp = np.abs(st.links_pos[K].numpy() - d.xpos[1:]).max()
    ours_q = st.links_quat[K].numpy()  # (q and -q are the same rotation: compare with MuJoCo's sign)
    sign = np.where((ours_q * d.xquat[1:]).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    dquat = np.abs(ours_q - sign * d.xquat[1:]).max()
    print(f"{kind} {integ}: max |qpos - MuJoCo| = {dq:.2e}, |qvel| = {dv:.2e}, |links_pos| = {dp:.2e}, "
          f"|links_quat| = {dquat:.2e}; contacts of the robot (MuJoCo, most at one step) {ncon}")
    assert dq < TOL and dv < TOL and dp < TOL and dquat < TOL, (dq, dv, dp, dquat)
    if kind == "arm":
        assert ncon > 0  # the lowered arm reaches the floor
    assert torch.equal(st.links_pos[K, root], st0.links_pos[K, root])  # a welded base stays put
    # the move matters (env K differs from its unmoved self) and no other env notices it
    assert np.abs(ref_st.qpos[K].numpy() - d.qpos).max() > 1e3 * TOL
    others = [b for b in range(N_ENVS) if b != K]
    for f in ("qpos", "dofs_vel", "links_pos", "links_quat", "qacc_warmstart"):
        assert torch.equal(getattr(st, f)[others], getattr(ref_st, f)[others]), f


def test_batched_equals_serial(tmp_path, gs64):
    """Env K of the batch is bitwise the same scene built with one env and the same calls."""
    scene, robot = _scene(tmp_path)
    _init(scene, robot)
    _move(robot)
    st = _run(scene, 60)
    one, one_robot = _scene(tmp_path, n_envs=1)
    _init(one, one_robot, envs=[K])
    _move(one_robot, envs_idx=(0,))
    st1 = _run(one, 60)
    for f in ("qpos", "dofs_vel", "links_pos", "links_quat"):
        assert torch.equal(getattr(st1, f)[0], getattr(st, f)[K]), f


def test_zero_velocity_and_free_base(tmp_path, gs64):
    """zero_velocity=True (Genesis' default) zeroes the entity's dof velocities in the moved envs only; a free-based
    entity keeps setting its free joint's qpos."""
    scene, robot = _scene(tmp_path)
    _init(scene, robot)
    ball = scene.entities[2]
    before = scene.get_state().solvers["RigidSolver"]
    robot.set_pos(POS, envs_idx=[K])
    after = scene.get_state().solvers["RigidSolver"]
    dofs = torch.as_tensor(robot._dof_ids)
    assert bool((after.dofs_vel[K, dofs] == 0).all())
    others = [b for b in range(N_ENVS) if b != K]
    assert torch.equal(after.dofs_vel[others], before.dofs_vel[others])
    assert torch.equal(after.qpos, before.qpos)  # a fixed base moves its frame, not qpos
    ball.set_pos([0.3, 0.2, 0.5], envs_idx=[0])
    assert ball.get_qpos()[0, :3].tolist() == [0.3, 0.2, 0.5]
    assert scene.rigid_solver.params.body_pos[0, int(ball._body_ids[0])].tolist() == \
        scene.rigid_solver.mj_model.body_pos[int(ball._body_ids[0])].tolist()


def test_checkpoint_and_reset_keep_base(tmp_path, gs64):
    """The frames are saved and restored bitwise (stepping after a load repeats the steps after the save);
    `reset()` keeps them (model parameters, as the other setters) and gives the build state's link poses for them."""
    scene, robot = _scene(tmp_path)
    _init(scene, robot)
    _move(robot)
    _run(scene, 10)
    scene.save_checkpoint(tmp_path / "ck.safetensors")
    after = _run(scene, 30)
    fresh, fresh_robot = _scene(tmp_path)
    fresh.load_checkpoint(tmp_path / "ck.safetensors")
    again = _run(fresh, 30)
    for f, t in after.tensors().items():
        assert torch.equal(t, getattr(again, f)), f
    assert torch.equal(fresh_robot.get_pos(), robot.get_pos()) and torch.equal(fresh_robot.get_quat(),
                                                                               robot.get_quat())
    scene.reset()
    st = scene.get_state().solvers["RigidSolver"]
    assert torch.allclose(robot.get_pos()[K], torch.tensor(POS, dtype=torch.float64), atol=1e-15)
    assert torch.equal(st.links_pos, scene.rigid_solver.make_state(**st.integration_fields()).links_pos)
    built = _scene(tmp_path)[0].get_state().solvers["RigidSolver"]
    others = [b for b in range(N_ENVS) if b != K]
    assert torch.equal(st.links_pos[others], built.links_pos[others])


def test_ik_uses_the_moved_base(tmp_path, gs64):
    """IK targets are world positions: a target reached with the base moved is reached relative to the new base."""
    scene, robot = _scene(tmp_path, "franka")
    hand = robot.get_link("hand")
    _move(robot)
    target = robot.get_links_pos([hand.idx_local])[:, 0] + torch.tensor([0.05, 0.0, -0.05], dtype=torch.float64)
    qpos = robot.inverse_kinematics(hand, pos=target)
    robot.set_qpos(qpos)
    assert float((robot.get_links_pos([hand.idx_local])[:, 0] - target).norm(dim=-1).max()) < 5e-4


def test_invalid_input_changes_nothing(tmp_path, gs64):
    scene, robot = _scene(tmp_path)
    p0, st0 = scene.rigid_solver.params, scene.get_state().solvers["RigidSolver"]
    bad = [
        (lambda: robot.set_pos([0.1, 0.2]), "shape"),
        (lambda: robot.set_pos([[0.1, 0.2, 0.3]] * 2), "shape"),
        (lambda: robot.set_pos([0.1, float("nan"), 0.3]), "finite"),
        (lambda: robot.set_pos([0.1, 0.2, 0.3], envs_idx=[5]), "5"),
        (lambda: robot.set_quat([0.0, 0.0, 0.0, 0.0]), "non-zero"),
        (lambda: robot.set_quat([1.0, 0.0, float("inf"), 0.0]), "finite"),
        (lambda: robot.set_quat([1.0, 0.0, 0.0]), "shape"),
        (lambda: robot.set_pos([0.1, 0.2, 0.3], zero_velocity="yes"), "zero_velocity"),
    ]
    for call, words in bad:
        with pytest.raises(InvalidInputError, match=words):
            call()
    assert scene.rigid_solver.params is p0 and scene.get_state().solvers["RigidSolver"] is st0
    assert not scene.rigid_solver.frames_moved


def test_base_pose_gradient(tmp_path, gs64):
    """d(final qpos) / d(base pos, quat) by autograd equals central finite differences (float64; the base high
    enough that nothing touches: smooth dynamics)."""
    scene, robot = _scene(tmp_path, integ="Euler", n_envs=1, requires_grad=True)
    _init(scene, robot, envs=[0])
    start = scene.get_state()
    w = torch.linspace(-1.0, 1.0, scene.rigid_solver.model.nq, dtype=torch.float64)

    def loss(x):
        scene.reset(state=start)
        robot.set_pos(x[:3], zero_velocity=False)
        robot.set_quat(x[3:], zero_velocity=False)
        for _ in range(15):
            scene.step()
        return (scene.get_state().solvers["RigidSolver"].qpos[0] * w).sum()

    x = torch.tensor([0.1, -0.05, 0.5, 0.95, 0.1, -0.2, 0.15], dtype=torch.float64, requires_grad=True)
    direction = torch.tensor([0.5, -0.3, 0.8, 0.1, -0.4, 0.2, 0.3], dtype=torch.float64)
    rel = directional_fd_error(loss, x, direction)
    print(f"base pose gradient: relative error vs central differences {rel:.1e}")
    assert rel <= 1e-5, rel


"""RigidEntity's Genesis-style getters, setters and control (genesis_torch/entities/rigid_entity.py)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.rigid.dynamics import CTRL_FORCE, CTRL_NONE, CTRL_POSITION, CTRL_VELOCITY

from .conftest import cpu_runtime
from .rigid.mjcf_random import random_mjcf
from .test_state_contract import FIELDS, assert_state_bitwise, bits, rigid, run

# targets inside every franka joint range (joint4 and joint6 ranges exclude 0)
FRANKA_TARGET = [0.3, 0.3, 0.3, -1.5, 0.3, 1.5, 0.3, 0.02, 0.02]


def hinge_slide_scene(tmp_path, n_envs, seed=4, actuators=False, gravity=(0.0, 0.0, -9.81)):
    """A random tree of hinge/slide joints only (every dof has a position), without actuators by default."""
    path = tmp_path / f"hs_{seed}_{actuators}.xml"
    path.write_text(random_mjcf(seed, n_bodies=4, joint_types=("hinge", "slide"), float_base=False, limits=False,
                                actuators=actuators, tendons=False, stiffness=False))
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, gravity=gravity))
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=n_envs)
    return scene, robot


def franka(n_envs, dt=0.01):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    return scene, robot


def rand(*shape, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("which", ["franka", "hinge_slide"])
def test_position_velocity_qpos_round_trip_and_env_subsets(gs_cpu, tmp_path, which):
    scene, robot = franka(3) if which == "franka" else hinge_slide_scene(tmp_path, 3)
    n, dtype = robot.n_dofs, scene.dtype
    pos, vel = rand(3, n, seed=1).to(dtype), rand(3, n, seed=2).to(dtype)
    robot.set_dofs_position(pos)
    robot.set_dofs_velocity(vel)
    assert bits(robot.get_dofs_position()) == bits(pos)
    assert bits(robot.get_dofs_velocity()) == bits(vel)
    assert bits(robot.get_qpos()) == bits(pos), "hinge/slide only: qpos is the dof positions"
    robot.set_dofs_position(pos[0] + 1, zero_velocity=False)  # (n,) broadcasts to every env
    assert bits(robot.get_dofs_position()) == bits((pos[0] + 1).expand(3, n))
    assert bits(robot.get_dofs_velocity()) == bits(vel), "zero_velocity=False keeps velocities"
    robot.set_dofs_position(pos)  # zero_velocity=True (default) zeroes them
    assert not robot.get_dofs_velocity().any()
    robot.set_dofs_velocity(vel)

    # subsets: given rows / columns change, in the given order; everything else stays bitwise
    envs, dofs = [2, 0], [n - 1, 0]
    before = rigid(scene)
    new_pos = rand(2, 2, seed=3).to(dtype)
    robot.set_dofs_position(new_pos, dofs_idx_local=dofs, envs_idx=envs)
    assert bits(robot.get_dofs_position(dofs_idx_local=dofs, envs_idx=envs)) == bits(new_pos)
    after = rigid(scene)
    assert_state_bitwise(after, before, [1], [1], what="env 1 untouched by set_dofs_position(envs_idx=[2, 0])")
    keep = [d for d in range(n) if d not in dofs]
    assert bits(robot.get_dofs_position(dofs_idx_local=keep)[envs]) == bits(pos[envs][:, keep])
    assert not robot.get_dofs_velocity(envs_idx=envs).any(), "zero_velocity zeroes the selected envs"

    before = rigid(scene)
    new_vel = rand(1, 2, seed=4).to(dtype)
    robot.set_dofs_velocity(new_vel, dofs_idx_local=[1, 0], envs_idx=np.array([1]))
    assert bits(robot.get_dofs_velocity(dofs_idx_local=[1, 0], envs_idx=[1])) == bits(new_vel)
    assert_state_bitwise(rigid(scene), before, [0, 2], [0, 2], what="envs 0, 2 untouched by set_dofs_velocity")

    before = rigid(scene)
    q = rand(2, robot.n_qs, seed=5).to(dtype)
    robot.set_qpos(q, envs_idx=torch.tensor([True, False, True]))
    assert bits(robot.get_qpos(envs_idx=[0, 2])) == bits(q)
    assert_state_bitwise(rigid(scene), before, [1], [1], what="env 1 untouched by set_qpos(mask)")


def test_setting_one_entity_leaves_another_untouched(gs_cpu):
    """set_dofs_position(zero_velocity=True) on the franka must not zero (or renormalise) the box next to it."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    arm = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    box = scene.add_entity(gs.morphs.Box(pos=(1.0, 0.0, 1.0), size=(0.2, 0.2, 0.2)))
    scene.build(n_envs=2)
    box.set_dofs_velocity(torch.tensor([0.1, 0.2, 0.3, 1.0, 2.0, 3.0]))
    run(scene, 3)  # the box's quaternion is now (slightly) off unit length
    box_q, box_v = bits(box.get_qpos()), bits(box.get_dofs_velocity())
    arm.set_dofs_position(torch.tensor(FRANKA_TARGET))
    arm.set_qpos(torch.tensor(FRANKA_TARGET), envs_idx=[1])
    assert bits(box.get_qpos()) == box_q
    assert bits(box.get_dofs_velocity()) == box_v
    assert not arm.get_dofs_velocity().any()
    assert (arm.n_dofs, box.n_dofs, arm.n_links, box.n_links, box.n_qs) == (9, 6, 11, 1, 7)


@pytest.mark.parametrize("which", ["franka", "hinge_slide", "box"])
def test_gains_and_force_range_round_trip_with_env_subsets(gs_cpu, tmp_path, make_scene, which):
    if which == "franka":
        scene, robot = franka(3)
    elif which == "box":
        scene, robot = make_scene("box", 3)
    else:
        scene, robot = hinge_slide_scene(tmp_path, 3)
    n, dtype = robot.n_dofs, scene.dtype
    kp0, kv0, (lo0, hi0) = robot.get_dofs_kp(), robot.get_dofs_kv(), robot.get_dofs_force_range()
    assert kp0.shape == kv0.shape == lo0.shape == hi0.shape == (3, n)
    state = bits(rigid(scene).qpos)

    kp = torch.linspace(10, 20, 2 * n, dtype=dtype).reshape(2, n)
    robot.set_dofs_kp(kp, envs_idx=[2, 0])
    got = robot.get_dofs_kp()
    assert bits(got[[2, 0]]) == bits(kp) and bits(got[1]) == bits(kp0[1])

    kv = torch.tensor([3.0, 4.0], dtype=dtype)
    robot.set_dofs_kv(kv, dofs_idx_local=[1, 0], envs_idx=1)
    got = robot.get_dofs_kv()
    assert bits(got[1, [1, 0]]) == bits(kv)
    assert bits(got[[0, 2]]) == bits(kv0[[0, 2]]) and bits(got[1, 2:]) == bits(kv0[1, 2:])

    lo, hi = -torch.arange(1.0, n + 1, dtype=dtype), torch.arange(1.0, n + 1, dtype=dtype) * 2
    robot.set_dofs_force_range(lo, hi, envs_idx=[True, False, False])
    glo, ghi = robot.get_dofs_force_range()
    assert bits(glo[0]) == bits(lo) and bits(ghi[0]) == bits(hi)
    assert bits(glo[1:]) == bits(lo0[1:]) and bits(ghi[1:]) == bits(hi0[1:])
    assert bits(robot.get_dofs_kp(envs_idx=[1])) == bits(kp0[[1]]), "force range must not change kp"
    assert bits(rigid(scene).qpos) == state, "parameters are not state"


# ------------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("kind", ["franka", "random", "box"])
def test_n_envs_zero_getters_drop_the_env_dim(make_scene, gs_cpu, kind):
    scene, robot = make_scene(kind, 0, seed=3)
    n, nq, nl = robot.n_dofs, robot.n_qs, robot.n_links
    assert robot.get_qpos().shape == (nq,)
    assert robot.get_dofs_velocity().shape == (n,)
    assert robot.get_links_pos().shape == (nl, 3) and robot.get_links_quat().shape == (nl, 4)
    assert robot.get_dofs_kp().shape == robot.get_dofs_kv().shape == (n,)
    assert all(r.shape == (n,) for r in robot.get_dofs_force_range())
    assert robot.get_links_pos(links_idx_local=[0]).shape == (1, 3)
    assert robot.links[0].get_pos().shape == (3,) and robot.links[0].get_quat().shape == (4,)
    robot.set_dofs_velocity(torch.ones(n))
    assert robot.get_dofs_velocity(dofs_idx_local=[0]).shape == (1,)
    robot.set_qpos(robot.get_qpos())
    if kind != "box":
        hs = [i for i in range(n) if robot._dof_is_hs[i]]
        assert robot.get_dofs_position(dofs_idx_local=hs).shape == (len(hs),)
    # with n_envs >= 1 the env dim is kept, even for one env
    scene1, robot1 = make_scene(kind, 1, seed=3)
    assert robot1.get_qpos().shape == (1, nq) and robot1.get_links_pos().shape == (1, nl, 3)


# ------------------------------------------------------------------------------------------------ control
def test_control_dofs_position_on_franka_sets_ctrl_and_tracks(gs_cpu):
    scene, robot = franka(2)
    target = torch.tensor(FRANKA_TARGET)
    robot.control_dofs_position(target, envs_idx=[1])
    st = rigid(scene)
    torch.testing.assert_close(st.ctrl[1], target)  # position servo: ctrl = kp * q / kp
    assert not st.ctrl[0].any(), "env 0 was not addressed"
    assert (st.dofs_ctrl_mode == CTRL_NONE).all(), "actuated dofs go through ctrl, not the dof controller"
    robot.control_dofs_position(target[:2] - 0.1, dofs_idx_local=[0, 1], envs_idx=[0])
    torch.testing.assert_close(rigid(scene).ctrl[0, :2], target[:2] - 0.1)
    robot.control_dofs_position(target)
    err0 = (robot.get_dofs_position() - target).abs()
    run(scene, 50)  # the servos are force-limited (87 / 12 N m): 0.5 s brings the arm most of the way
    err = (robot.get_dofs_position() - target).abs()
    assert (err.sum(-1) < 0.2 * err0.sum(-1)).all(), f"the arm did not approach the target: {err}"
    assert (err[:, 7:] < 1e-3).all(), f"the fingers did not reach the target: {err}"


def test_control_without_actuators_uses_the_dof_controller(tmp_path, gs_cpu):
    scene, robot = hinge_slide_scene(tmp_path, 3)
    n = robot.n_dofs
    assert rigid(scene).ctrl.shape[1] == 0 and n >= 3
    target = torch.linspace(-0.3, 0.3, n)
    robot.control_dofs_position(target, envs_idx=[0, 1])
    robot.control_dofs_velocity(torch.tensor([0.5]), dofs_idx_local=[1], envs_idx=[1])
    robot.control_dofs_force(torch.tensor([2.0, -1.0]), dofs_idx_local=[0, 2], envs_idx=[2])
    st = rigid(scene)
    assert st.dofs_ctrl_mode[0].tolist() == [CTRL_POSITION] * n
    assert st.dofs_ctrl_mode[1].tolist() == [CTRL_POSITION, CTRL_VELOCITY] + [CTRL_POSITION] * (n - 2)
    assert st.dofs_ctrl_mode[2].tolist() == [CTRL_FORCE, CTRL_NONE, CTRL_FORCE] + [CTRL_NONE] * (n - 3)
    assert st.dofs_ctrl_target[0].tolist() == target.tolist()
    assert st.dofs_ctrl_target[1, 1].item() == 0.5 and st.dofs_ctrl_target[2, [0, 2]].tolist() == [2.0, -1.0]

    # a stiff PD controller (no gravity) drives every dof to its target
    scene, robot = hinge_slide_scene(tmp_path, 2, gravity=(0.0, 0.0, 0.0))
    robot.set_dofs_kp(torch.full((n,), 50.0))
    robot.set_dofs_kv(torch.full((n,), 10.0))
    robot.control_dofs_position(target, envs_idx=[0])
    run(scene, 100)
    torch.testing.assert_close(robot.get_dofs_position(envs_idx=[0])[0], target, atol=0.03, rtol=0)
    assert not robot.get_dofs_position(envs_idx=[1]).any(), "env 1 had no target and no forces"


def test_box_force_and_velocity_control(make_scene, gs_cpu):
    scene, box = make_scene("box", 2, dt=0.01)
    mass = float(scene.rigid_solver.mj_model.body_mass[1])
    box.control_dofs_force(torch.tensor([mass * 9.81]), dofs_idx_local=[2], envs_idx=[0])  # hover
    box.set_dofs_kv(torch.tensor([100.0]), dofs_idx_local=[0])
    box.control_dofs_velocity(torch.tensor([1.0]), dofs_idx_local=[0])
    assert rigid(scene).dofs_ctrl_mode.tolist() == [[3, 0, 1, 0, 0, 0], [3, 0, 0, 0, 0, 0]]
    run(scene, 20)
    v = box.get_dofs_velocity()
    assert abs(v[0, 2]) < 1e-3, "m g upward holds the box"
    assert abs(v[1, 2] + 9.81 * 0.2) < 1e-3, "env 1 falls freely"
    assert (v[:, 0] > 0.95).all() and (v[:, 0] <= 1.0 + 1e-5).all(), "x velocity tracks its target"


# ------------------------------------------------------------------------------------------------ links
def test_get_link_pos_equals_links_pos_row(gs_cpu):
    scene, robot = franka(3)
    robot.set_dofs_position(torch.tensor(FRANKA_TARGET) + rand(3, 9, seed=6).float())
    hand = robot.get_link("hand")
    assert hand.name == "hand" and robot.links[hand.idx_local].name == "hand"
    assert bits(hand.get_pos()) == bits(robot.get_links_pos()[:, hand.idx_local])
    assert bits(hand.get_quat()) == bits(robot.get_links_quat()[:, hand.idx_local])
    assert bits(hand.get_pos(envs_idx=[2])) == bits(robot.get_links_pos()[[2], hand.idx_local])
    assert bits(rigid(scene).links_pos[:, hand.idx]) == bits(hand.get_pos())
    assert (hand.get_pos()[0] != hand.get_pos()[1]).any(), "different joint angles, different hand positions"
    with pytest.raises(gs.errors.InvalidInputError, match="hand"):
        robot.get_link("no_such_link")


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_link_poses_equal_forward_kinematics_of_qpos(make_scene, seed):
    """After set_qpos and after steps, stored link poses equal MuJoCo's FK of the stored qpos."""
    with cpu_runtime("64"):
        scene, robot = make_scene("random", 2, seed=seed)
        q = robot.get_qpos() + rand(2, robot.n_qs, seed=seed, scale=0.5)
        robot.set_qpos(q)
        robot.set_dofs_velocity(rand(2, robot.n_dofs, seed=seed + 1))
        m = scene.rigid_solver.mj_model
        d = mujoco.MjData(m)
        body = [link.idx + 1 for link in robot.links]
        for k in range(2):
            st = rigid(scene)
            for i in range(2):
                d.qpos[:] = st.qpos[i].numpy()
                mujoco.mj_kinematics(m, d)
                np.testing.assert_allclose(st.links_pos[i].numpy(), d.xpos[body], atol=1e-12, rtol=0)
                quat = st.links_quat[i].numpy()
                sign = np.sign((quat * d.xquat[body]).sum(-1, keepdims=True))  # q and -q are the same rotation
                np.testing.assert_allclose(quat * sign, d.xquat[body], atol=1e-12, rtol=0)
            run(scene, 3)
        assert set(FIELDS) <= set(rigid(scene).field_names())

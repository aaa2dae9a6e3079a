"""Genesis' entity API (joint/link handles, forces, limits, masses, contacts, AABB, Jacobian, IK, base pose, friction,
asset paths), checked against MuJoCo on the same model and state, or against closed-form results."""

from __future__ import annotations

import logging

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, SceneStateError
from genesis_torch.morphs import resolve_asset

from .conftest import cpu_runtime

HOME = np.array([0, -0.785, 0, -2.356, 0, 1.571, 0.785, 0.04, 0.04])
DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # hand pointing down (Genesis' tutorials)
SHAPES_XML = """<mujoco><worldbody>
  <body pos="0 0 1" euler="20 30 40"><freejoint/><geom type="box" size="0.1 0.2 0.3"/></body>
  <body pos="1 0 1" euler="10 -50 70"><freejoint/><geom type="capsule" size="0.05 0.2"/></body>
  <body pos="2 0 1" euler="35 15 -25"><freejoint/><geom type="cylinder" size="0.1 0.25"/></body>
  <body pos="3 0 1" euler="5 60 10"><freejoint/><geom type="ellipsoid" size="0.1 0.2 0.3"/></body>
  <body pos="4 0 1"><freejoint/><geom type="sphere" size="0.15"/></body>
</worldbody></mujoco>"""


@pytest.fixture
def gs64():
    with cpu_runtime("64"):
        yield


def franka_scene(n_envs=0, plane=False, **rigid):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), rigid_options=gs.options.RigidOptions(**rigid))
    if plane:
        scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
    scene.build(n_envs=n_envs)
    return scene, franka


def oracle(path="franka.xml"):
    """MuJoCo's own compile of the bundled file (independent of the scene's)."""
    m = mujoco.MjModel.from_xml_path(resolve_asset(path))
    return m, mujoco.MjData(m)


def mj_pose(m, d, qpos, body):
    d.qpos[:] = qpos
    mujoco.mj_kinematics(m, d)
    return d.xpos[body].copy(), d.xquat[body].copy()


def quat_angle(a, b):
    return 2 * np.arccos(np.clip(abs(np.dot(a, b)), -1, 1))


# ------------------------------------------------------------------------------------------------ handles
def test_joint_and_link_handles_match_mujoco(gs64):
    scene, franka = franka_scene(n_envs=2)
    m, d = oracle()
    assert [j.name for j in franka.joints] == [m.joint(i).name for i in range(m.njnt)]
    for j in franka.joints:
        mj = m.joint(j.name)
        assert j.dofs_idx_local == [int(mj.dofadr[0])] and j.qs_idx_local == [int(mj.qposadr[0])]
        assert j.type == ("REVOLUTE" if mj.type[0] == mujoco.mjtJoint.mjJNT_HINGE else "PRISMATIC")
        assert j.link.name == m.body(int(mj.bodyid[0])).name and j in j.link.joints
    assert [franka.get_joint(n).dofs_idx_local[0] for n in ("joint1", "finger_joint2")] == [0, 8]
    q = HOME + 0.2 * np.random.default_rng(0).standard_normal(9)
    franka.set_qpos(np.stack([HOME, q]))
    d.qpos[:] = q
    mujoco.mj_kinematics(m, d)
    j4 = franka.get_joint("joint4")
    np.testing.assert_allclose(j4.get_anchor_pos()[1].numpy(), d.xanchor[3], atol=1e-12)
    np.testing.assert_allclose(j4.get_anchor_axis()[1].numpy(), d.xaxis[3], atol=1e-12)
    hand = franka.get_link("hand")
    assert hand.get_mass() == pytest.approx(m.body("hand").mass[0]) and not hand.is_fixed
    assert franka.get_link("link0").is_fixed and franka.base_link.name == "link0"
    assert hand.parent_idx == franka.get_link("link7").idx
    with pytest.raises(InvalidInputError, match="no joint 'elbow'"):
        franka.get_joint("elbow")
    with pytest.raises(InvalidInputError, match="uid"):
        franka.get_joint(uid="abc")


def test_masses_limits_and_mass_matrix_match_mujoco(gs64):
    scene, franka = franka_scene(n_envs=3)
    m, d = oracle()
    assert franka.get_mass() == pytest.approx(m.body_mass[1:].sum(), rel=1e-12)
    np.testing.assert_allclose(franka.get_links_inertial_mass()[2].numpy(), m.body_mass[1:])
    for getter, ref in ((franka.get_dofs_armature, m.dof_armature), (franka.get_dofs_damping, m.dof_damping),
                        (franka.get_dofs_frictionloss, m.dof_frictionloss), (franka.get_dofs_invweight, m.dof_invweight0),
                        (franka.get_dofs_stiffness, m.jnt_stiffness[m.dof_jntid])):
        np.testing.assert_allclose(getter()[1].numpy(), ref, rtol=1e-12)
    assert franka.get_dofs_armature(dofs_idx_local=[8], envs_idx=[2]).tolist() == [[m.dof_armature[8]]]
    assert franka.get_dofs_damping().abs().sum() > 0, "the Franka's joints are damped"
    lo, hi = franka.get_dofs_limit()
    assert lo.shape == (3, 9)
    np.testing.assert_array_equal(lo[0].numpy(), m.jnt_range[:, 0])
    np.testing.assert_array_equal(hi[1].numpy(), m.jnt_range[:, 1])
    q = HOME + 0.3 * np.random.default_rng(1).standard_normal(9)
    franka.set_qpos(q)
    d.qpos[:] = q
    mujoco.mj_forward(m, d)
    full = np.zeros((9, 9))
    mujoco.mj_fullM(m, d, full)  # MuJoCo 4 reads its CSR `d.M`
    np.testing.assert_allclose(franka.get_mass_mat()[0].numpy(), full, rtol=1e-9, atol=1e-12)
    box_scene = gs.Scene()
    box = box_scene.add_entity(gs.morphs.Box(size=(0.04, 0.05, 0.06)), material=gs.materials.Rigid(rho=700.0))
    box_scene.build()
    assert box.get_mass() == pytest.approx(700.0 * 0.04 * 0.05 * 0.06, rel=1e-12)  # rho * volume
    lo, hi = box.get_dofs_limit()
    assert lo.shape == (6,) and bool(torch.isinf(lo).all() and torch.isinf(hi).all())


def test_jacobian_matches_mujoco(gs64):
    scene, franka = franka_scene()
    m, d = oracle()
    q = HOME + 0.3 * np.random.default_rng(2).standard_normal(9)
    franka.set_qpos(q)
    d.qpos[:] = q
    mujoco.mj_forward(m, d)
    hand = m.body("hand").id
    point = np.array([0.01, -0.02, 0.1034])
    jacp, jacr = np.zeros((3, 9)), np.zeros((3, 9))
    mujoco.mj_jac(m, d, jacp, jacr, d.xpos[hand] + d.xmat[hand].reshape(3, 3) @ point, hand)
    J = franka.get_jacobian(franka.get_link("hand"), local_point=point).numpy()
    np.testing.assert_allclose(J[:3], jacp, atol=1e-12)
    np.testing.assert_allclose(J[3:], jacr, atol=1e-12)


def test_link_velocities_match_mujoco(gs64, tmp_path):
    scene, franka = franka_scene(n_envs=2)
    m, d = oracle()
    rng = np.random.default_rng(4)
    q, v = HOME + 0.3 * rng.standard_normal(9), rng.standard_normal(9)
    franka.set_qpos(q, envs_idx=[1])
    franka.set_dofs_velocity(v, envs_idx=[1])
    d.qpos[:], d.qvel[:] = q, v
    mujoco.mj_forward(m, d)
    out = np.zeros(6)
    for link in franka.links:
        for ref, obj in (("link_origin", mujoco.mjtObj.mjOBJ_XBODY), ("link_com", mujoco.mjtObj.mjOBJ_BODY)):
            mujoco.mj_objectVelocity(m, d, obj, link.idx_local + 1, out, 0)  # [ang; lin], world orientation
            np.testing.assert_allclose(franka.get_links_vel([link.idx_local], ref=ref)[1, 0].numpy(), out[3:],
                                       atol=1e-12)
        np.testing.assert_allclose(franka.get_links_ang([link.idx_local], envs_idx=[1])[0, 0].numpy(), out[:3],
                                   atol=1e-12)
    assert not franka.get_links_vel()[0].any()
    bscene = gs.Scene()
    box = bscene.add_entity(gs.morphs.Box(pos=(0, 0, 1), euler=(10, 20, 30)))
    bscene.build()
    box.set_dofs_velocity([1.0, 2, 3, 0.4, 0.5, 0.6])  # free joint: world linear, body-frame angular velocity
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, box.get_quat().numpy())
    np.testing.assert_allclose(box.get_vel().numpy(), [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(box.get_ang().numpy(), R.reshape(3, 3) @ [0.4, 0.5, 0.6], atol=1e-12)
    with pytest.raises(InvalidInputError, match="ref"):
        box.get_links_vel(ref="root_com")


# ------------------------------------------------------------------------------------------------ forces
def test_dof_forces_match_mujoco_in_a_state_mujoco_reached(gs64):
    scene, franka = franka_scene(n_envs=2)
    m, d = oracle()
    m.opt.timestep = 0.01
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    mujoco.mj_resetDataKeyframe(m, d, 0)
    d.ctrl[:] = HOME + np.array([0.9, -0.5, 0.4, 0.6, -0.7, 0.5, -0.8, -0.03, 0.0])  # joint1-4 saturate at 87 N m
    for _ in range(15):
        mujoco.mj_step(m, d)
    mujoco.mj_forward(m, d)
    assert np.abs(d.qfrc_passive).max() > 1e-3 and np.abs(d.qvel).max() > 0.1
    franka.set_qpos(d.qpos)
    franka.set_dofs_velocity(d.qvel)
    franka.control_dofs_position(d.ctrl)
    np.testing.assert_allclose(franka.get_dofs_control_force()[1].numpy(), d.qfrc_actuator, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(franka.get_dofs_force()[0].numpy(), d.qfrc_actuator + d.qfrc_passive, rtol=1e-9,
                               atol=1e-9)
    assert np.isclose(abs(d.qfrc_actuator[0]), 87.0), "the test state should exercise the force clamp"
    sub = franka.get_dofs_control_force(dofs_idx_local=[8, 2], envs_idx=[1])
    np.testing.assert_allclose(sub.numpy(), d.qfrc_actuator[[8, 2]][None], rtol=1e-9, atol=1e-9)


def test_control_force_of_dof_controller(gs64):
    scene = gs.Scene()
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 1)))
    scene.build(n_envs=2)
    box.control_dofs_force(torch.tensor([[1.0, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, -1]]))
    np.testing.assert_array_equal(box.get_dofs_control_force().numpy(), [[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, -1]])


# ------------------------------------------------------------------------------------------------ contacts
@pytest.mark.parametrize("cone", ["pyramidal", "elliptic"])
def test_contacts_match_mujoco(gs64, cone):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005), rigid_options=gs.options.RigidOptions(cone=cone))
    plane = scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.06), size=(0.2, 0.3, 0.1), euler=(0, 0, 30)))
    ball = scene.add_entity(gs.morphs.Sphere(pos=(0.5, 0, 0.2), radius=0.05))
    scene.build()
    m = scene.rigid_solver.mj_model
    d = mujoco.MjData(m)
    for _ in range(60):  # let MuJoCo settle the box and drop the ball onto the plane
        mujoco.mj_step(m, d)
    mujoco.mj_forward(m, d)
    box.set_qpos(d.qpos[:7])
    ball.set_qpos(d.qpos[7:])
    box.set_dofs_velocity(d.qvel[:6])
    ball.set_dofs_velocity(d.qvel[6:])
    c = box.get_contacts()
    body = box.base_link.idx + 1  # MuJoCo's body id (0: the world)
    mine = [i for i in range(d.ncon) if body in (m.geom_bodyid[d.contact[i].geom1], m.geom_bodyid[d.contact[i].geom2])]
    assert len(c["position"]) == len(mine) == 4
    order = np.lexsort(c["position"].numpy().T[:2])
    ref_pos = np.array([d.contact[i].pos for i in mine])
    ref_order = np.lexsort(ref_pos.T[:2])
    np.testing.assert_allclose(c["position"].numpy()[order], ref_pos[ref_order], atol=1e-9)
    np.testing.assert_allclose(c["penetration"].numpy()[order], [-d.contact[i].dist for i in np.array(mine)[ref_order]],
                               atol=1e-9)
    forces = []
    for i in mine:
        f = np.zeros(6)
        mujoco.mj_contactForce(m, d, i, f)
        forces.append(d.contact[i].frame.reshape(3, 3).T @ f[:3])  # on geom 2, world frame
    forces = np.array(forces)[ref_order]
    weight = box.get_mass() * 9.81
    np.testing.assert_allclose(c["force_b"].numpy()[order], forces, atol=1e-6 * weight)
    assert c["force_b"][:, 2].sum() == pytest.approx(weight, rel=1e-3)  # at rest: the plane carries the box
    np.testing.assert_allclose(box.get_links_net_contact_force().numpy(), forces.sum(0)[None], atol=1e-6 * weight)
    assert set(c["link_b"].tolist()) == {box.base_link.idx} and set(c["link_a"].tolist()) == {plane.base_link.idx}
    assert len(box.get_contacts(with_entity=ball)["position"]) == 0
    assert len(ball.get_contacts(with_entity=plane)["position"]) == 1
    assert len(plane.get_contacts(exclude_self_contact=True)["position"]) == 5
    for bad in (dict(with_entity="plane"), dict(exclude_self_contact=1)):
        with pytest.raises(InvalidInputError):
            box.get_contacts(**bad)


def test_batched_contacts_have_a_valid_mask(gs_cpu):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.049), size=(0.1, 0.1, 0.1)))
    scene.build(n_envs=2)
    box.set_pos(torch.tensor([[0, 0, 0.049], [0, 0, 1.0]]))
    c = box.get_contacts()
    assert c["valid_mask"].shape[0] == 2 and c["valid_mask"][0].sum() == 4 and c["valid_mask"][1].sum() == 0
    net = box.get_links_net_contact_force()
    assert net.shape == (2, 1, 3) and float(net[0, 0, 2]) > 0 and not net[1].any()
    assert box.get_links_net_contact_force(envs_idx=[1]).shape == (1, 1, 3)


# ------------------------------------------------------------------------------------------------ AABB
def test_aabb_is_the_exact_box_of_each_shape(gs64, tmp_path):
    path = tmp_path / "shapes.xml"
    path.write_text(SHAPES_XML)
    scene = gs.Scene()
    shapes = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    m = scene.rigid_solver.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    # sample each surface densely in its geom frame (MuJoCo's poses), then take the extremes
    rng = np.random.default_rng(0)
    u = rng.standard_normal((200000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pts = []
    for g in range(m.ngeom):
        s, kind = m.geom_size[g], m.geom_type[g]
        if kind == mujoco.mjtGeom.mjGEOM_BOX:
            local = np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T * s
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            local = np.concatenate([u * s[0] + [0, 0, h] for h in (-s[1], s[1])])
        elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            a = rng.uniform(0, 2 * np.pi, 200000)
            local = np.stack([s[0] * np.cos(a), s[0] * np.sin(a), np.where(a < np.pi, -s[1], s[1])], 1)
        elif kind == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
            local = u * s
        else:
            local = u * s[0]
        pts.append(d.geom_xpos[g] + local @ d.geom_xmat[g].reshape(3, 3).T)
    pts = np.concatenate(pts)
    aabb = shapes.get_AABB().numpy()
    assert np.all(aabb[0] <= pts.min(0) + 1e-12) and np.all(aabb[1] >= pts.max(0) - 1e-12), "the box must hold all"
    np.testing.assert_allclose(aabb, [pts.min(0), pts.max(0)], atol=2e-3)  # sampling resolution


# ------------------------------------------------------------------------------------------------ IK
def random_reachable_targets(n, seed):
    """Hand poses of random joint configurations (so reachable), via MuJoCo's kinematics."""
    m, d = oracle()
    rng = np.random.default_rng(seed)
    hand = m.body("hand").id
    qs = HOME + rng.uniform(-0.4, 0.4, (n, 9)) * np.r_[np.ones(7), 0, 0]
    poses = [mj_pose(m, d, q, hand) for q in qs]
    return np.array([p for p, _ in poses]), np.array([q for _, q in poses])


def test_ik_solutions_reach_the_target_by_mujoco_forward_kinematics(gs_cpu):
    scene, franka = franka_scene(n_envs=5)
    franka.set_qpos(HOME)
    pos, quat = random_reachable_targets(5, seed=3)
    before = scene.get_state()
    qpos, err = franka.inverse_kinematics(link=franka.get_link("hand"), pos=pos, quat=quat, return_error=True)
    assert qpos.shape == (5, 9) and err.shape == (5, 6)
    assert scene.get_state().solvers["RigidSolver"].qpos is before.solvers["RigidSolver"].qpos, "state unchanged"
    m, d = oracle()
    lo, hi = m.jnt_range.T
    for i in range(5):
        x, q = mj_pose(m, d, qpos[i].double().numpy(), m.body("hand").id)
        assert np.linalg.norm(x - pos[i]) <= 5e-4 + 1e-5
        assert quat_angle(q, quat[i]) <= 5e-3 + 1e-4
        assert np.all(qpos[i].numpy() >= lo - 1e-6) and np.all(qpos[i].numpy() <= hi + 1e-6)
    alone = franka.inverse_kinematics(link=franka.get_link("hand"), pos=pos[2:3], quat=quat[2:3], envs_idx=[2])
    assert torch.equal(alone[0], qpos[2]), "an env's answer does not depend on the batch"
    one_scene, one = franka_scene(n_envs=1)
    one.set_qpos(HOME)
    assert torch.equal(one.inverse_kinematics(link=one.get_link("hand"), pos=pos[2:3], quat=quat[2:3])[0], qpos[2])


def test_ik_masks_subsets_and_unbatched_shape(gs_cpu):
    scene, franka = franka_scene()
    franka.set_qpos(HOME)
    hand = franka.get_link("hand")
    m, d = oracle()
    target = np.array([0.45, 0.1, 0.35])
    q = franka.inverse_kinematics(link=hand, pos=target, quat=DOWN, rot_mask=[False, False, True],
                                  dofs_idx_local=np.arange(7))
    assert q.shape == (9,)
    np.testing.assert_array_equal(q[7:].numpy(), np.float32(HOME[7:]))  # dofs outside the selection are kept
    x, qu = mj_pose(m, d, q.double().numpy(), m.body("hand").id)
    z = np.zeros(9)
    mujoco.mju_quat2Mat(z, qu)
    assert np.linalg.norm(x - target) < 5e-4
    assert np.dot(z.reshape(3, 3)[:, 2], [0, 0, -1]) > np.cos(5e-3), "only the z axis is aligned"
    q = franka.inverse_kinematics(link=hand, pos=target, max_samples=3)
    assert np.linalg.norm(mj_pose(m, d, q.double().numpy(), m.body("hand").id)[0] - target) < 5e-4
    q_goal = HOME + np.r_[0.3, -0.2, 0.25, 0.3, -0.2, 0.2, 0.1, 0, 0]  # both targets from one configuration
    x_hand, x4 = (mj_pose(m, d, q_goal, m.body(b).id)[0] for b in ("hand", "link4"))
    links = [franka.get_link("hand"), franka.get_link("link4")]
    q, err = franka.inverse_kinematics_multilink(links, poss=[x_hand, x4], return_error=True)
    assert err.shape == (2, 6)
    assert np.linalg.norm(mj_pose(m, d, q.double().numpy(), m.body("hand").id)[0] - x_hand) < 5e-4
    assert np.linalg.norm(mj_pose(m, d, q.double().numpy(), m.body("link4").id)[0] - x4) < 5e-4


def test_ik_bad_input_raises_and_changes_nothing(gs_cpu):
    scene, franka = franka_scene(n_envs=2)
    other_scene, other = franka_scene()
    hand = franka.get_link("hand")
    before = scene.get_state().solvers["RigidSolver"].qpos
    bad = [dict(link=other.get_link("hand"), pos=[0.5, 0, 0.3]), dict(link=hand),
           dict(link=hand, pos=[0.5, 0, 0.3], damping=-1.0), dict(link=hand, pos=[0.5, 0, 0.3], damping=0.0),
           dict(link=hand, pos=[0.5, 0, 0.3], max_samples=0),
           dict(link=hand, quat=DOWN, rot_mask=[True, True, False]), dict(link=hand, pos=[[0.5, 0, 0.3]] * 3),
           dict(link=hand, pos=[float("nan"), 0, 0.3]), dict(link=hand, quat=[0, 0, 0, 0]),
           dict(link=hand, pos=[0.5, 0, 0.3], dofs_idx_local=[12])]
    for kwargs in bad:
        with pytest.raises(InvalidInputError):
            franka.inverse_kinematics(**kwargs)
    assert scene.get_state().solvers["RigidSolver"].qpos is before


# ------------------------------------------------------------------------------------------------ base pose, friction
def test_set_pos_quat_on_free_bodies(gs_cpu):
    scene = gs.Scene()
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 1)))
    scene.build(n_envs=2)
    box.set_dofs_velocity(torch.ones(2, 6))
    box.set_pos(torch.tensor([[1.0, 2, 3], [4, 5, 6]]))
    box.set_quat([0, 0, 0, 2.0], envs_idx=[1])
    assert box.get_pos().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert box.get_quat()[1].tolist() == [0, 0, 0, 1] and box.get_quat()[0].tolist() == [1, 0, 0, 0]
    assert not box.get_dofs_velocity().any()
    before = scene.get_state().solvers["RigidSolver"].qpos
    for call in (lambda: box.set_pos([1, 2]), lambda: box.set_quat([0, 0, 0, 0]), lambda: box.set_pos([1, 2, 3],
                                                                                                     envs_idx=[5])):
        with pytest.raises(InvalidInputError):
            call()
    assert scene.get_state().solvers["RigidSolver"].qpos is before
    fscene, franka = franka_scene()  # a fixed base moves its frame (tests/rigid/test_base_pose.py)
    franka.set_pos([0, 0, 1])
    assert franka.get_pos().tolist() == [0, 0, 1]


def test_set_friction_matches_mujoco_and_coulomb(gs64):
    # the elliptic cone is Coulomb's (the pyramid's edges approximate it); MuJoCo's soft contact slides at mu g
    # within 2% at its default time constant 0.02 s (at Genesis' 0.01 s, MuJoCo and this solver both give 0.90 mu g)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002), rigid_options=gs.options.RigidOptions(
        cone="elliptic", constraint_timeconst=0.02))
    plane = scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.01), size=(0.2, 0.2, 0.02)))  # flat: slides without rocking
    scene.build()
    plane.set_friction(0.3)
    box.set_friction(0.3)
    m = scene.rigid_solver.mj_model  # the scene's model, changed by set_friction
    assert np.all(m.geom_friction[:, 0] == 0.3) and box.get_friction() == 0.3
    d = mujoco.MjData(m)
    for _ in range(100):  # settle on the plane
        mujoco.mj_step(m, d)
        scene.step()
    box.set_dofs_velocity([2.0, 0, 0, 0, 0, 0])
    d.qvel[:] = [2.0, 0, 0, 0, 0, 0]
    vx = []
    for i in range(100):
        mujoco.mj_step(m, d)
        scene.step()
        vx.append(float(box.get_dofs_velocity()[0]))
        np.testing.assert_allclose(box.get_dofs_velocity().numpy(), d.qvel, atol=1e-9)
    # from the first step on: the step that starts the slide is an impact of the soft contact (MuJoCo's as well)
    decel = (vx[0] - vx[-1]) / (99 * 0.002)
    assert decel == pytest.approx(0.3 * 9.81, rel=0.02), "sliding decelerates at mu g"
    with pytest.raises(InvalidInputError):
        box.set_friction(-1.0)
    assert box.get_friction() == 0.3
    # the same coefficient given as Genesis' material friction compiles to the same model
    mscene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002), rigid_options=gs.options.RigidOptions(
        cone="elliptic", constraint_timeconst=0.02))
    mscene.add_entity(gs.morphs.Plane(), material=gs.materials.Rigid(friction=0.3))
    mbox = mscene.add_entity(gs.morphs.Box(pos=(0, 0, 0.01), size=(0.2, 0.2, 0.02)),
                             material=gs.materials.Rigid(friction=0.3))
    mscene.build()
    np.testing.assert_array_equal(mscene.rigid_solver.mj_model.geom_friction, m.geom_friction)
    assert mbox.get_friction() == 0.3 and mscene.fingerprint != scene.fingerprint  # friction is part of the config
    with pytest.raises(InvalidInputError):
        gs.materials.Rigid(friction=0.0)
    nocol = gs.Scene(rigid_options=gs.options.RigidOptions(enable_collision=False))
    b = nocol.add_entity(gs.morphs.Box())
    nocol.build()
    with pytest.raises(SceneStateError):
        b.set_friction(0.5)


# ------------------------------------------------------------------------------------------------ runtime, assets
def test_genesis_asset_paths():
    assert resolve_asset("xml/franka_emika_panda/panda.xml").endswith("franka.xml")
    assert resolve_asset("urdf/go2/urdf/go2.urdf").endswith("go2.urdf")
    assert resolve_asset("urdf/plane/plane.urdf").endswith("plane.xml")
    with pytest.raises(InvalidInputError, match="urdf/anymal_c/urdf/anymal_c.urdf.*does not bundle"):
        gs.morphs.URDF(file="urdf/anymal_c/urdf/anymal_c.urdf")
    with pytest.raises(InvalidInputError, match="xml/ant.xml"):
        gs.morphs.MJCF(file="xml/ant.xml")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_gpu_backend_falls_back_to_cpu_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="genesis_torch"):
        gs.init(backend=gs.gpu)
    try:
        assert gs.device == torch.device("cpu")
        assert any("no CUDA device" in r.message for r in caplog.records)
    finally:
        gs.destroy()


def test_viewer_and_vis_options_are_validated_then_ignored(gs_cpu):
    def fingerprint(**kwargs):
        scene = gs.Scene(**kwargs)
        scene.add_entity(gs.morphs.Box())
        scene.build()
        return scene.fingerprint

    plain = fingerprint()
    assert fingerprint(viewer_options=gs.options.ViewerOptions(camera_pos=(3, -1, 1.5), res=(960, 640)),
                       vis_options=gs.options.VisOptions(show_world_frame=False, ambient_light=(0.2, 0.2, 0.2)),
                       rigid_options=gs.options.RigidOptions(box_box_detection=False, use_contact_island=True),
                       show_FPS=True) == plain, "ignored options do not change the scene (or its checkpoints)"
    bad = [lambda: gs.options.ViewerOptions(camera_pos=(1, 2)), lambda: gs.options.ViewerOptions(camera_fov="wide"),
           lambda: gs.options.VisOptions(show_world_frame=1), lambda: gs.options.VisOptions(shadows=True),
           lambda: gs.options.RigidOptions(box_box_detection="yes"), lambda: gs.Scene(viewer_options={}),
           lambda: gs.Scene(vis_options=gs.options.ViewerOptions()), lambda: gs.Scene(renderer="rasterizer")]
    for call in bad:
        with pytest.raises(InvalidInputError):
            call()
    scene = gs.Scene()
    box = scene.add_entity(gs.morphs.Box(), visualize_contact=True)
    with pytest.raises(InvalidInputError):
        scene.add_entity(gs.morphs.Box(), visualize_contact="yes")
    with pytest.raises(InvalidInputError, match="env_spacing"):
        scene.build(n_envs=2, env_spacing=(1.0, float("nan")))
    assert not scene.is_built and len(scene.entities) == 1
    scene.build(n_envs=2, env_spacing=(1.0, 1.0))
    assert box.get_pos().shape == (2, 3)


def test_genesis_init_switches_are_validated_then_ignored():
    try:
        rt = gs.init(backend=gs.cpu, logging_level="warning", debug=True, eps=1e-10, theme="light",
                     logger_verbose_time=True, performance_mode=True)
        assert rt.device == torch.device("cpu") and rt.dtype == torch.float32
        for kwargs in (dict(logging_level="loud"), dict(eps=0.0), dict(debug="yes"), dict(theme=3),
                       dict(logging_level=True)):
            with pytest.raises(InvalidInputError):
                gs.init(backend=gs.cpu, precision="64", **kwargs)
            assert gs.get_runtime() is rt, "a failed init keeps the previous runtime"
    finally:
        gs.destroy()


def test_debug_drawing_is_validated_then_ignored(gs_cpu):
    scene, franka = franka_scene()
    handles = [scene.draw_debug_sphere([0.5, 0, 0.3], radius=0.02, color=(0, 1, 0, 0.5)),
               scene.draw_debug_spheres(torch.zeros(5, 3)), scene.draw_debug_line([0, 0, 0], [1, 1, 1]),
               scene.draw_debug_arrow([0, 0, 0], vec=[0, 0, 0.3]), scene.draw_debug_points(np.zeros((4, 3))),
               scene.draw_debug_box([[0, 0, 0], [1, 1, 1]]), scene.draw_debug_frame(np.eye(4), axis_length=0.2),
               scene.draw_debug_path(np.tile(HOME, (10, 1)), franka)]
    before = scene.get_state().solvers["RigidSolver"].qpos
    scene.clear_debug_object(handles[0])
    with pytest.raises(InvalidInputError):
        scene.clear_debug_object(handles[0])  # already cleared
    bad = [lambda: scene.draw_debug_sphere([0, 0]), lambda: scene.draw_debug_sphere([0, 0, 0], radius=-1),
           lambda: scene.draw_debug_line([0, 0, float("nan")], [1, 1, 1]), lambda: scene.draw_debug_arrow(
               [0, 0, 0], color=(1, 0)), lambda: scene.draw_debug_box([[1, 1, 1], [0, 0, 0]]),
           lambda: scene.draw_debug_frame(np.eye(3)), lambda: scene.draw_debug_path(np.zeros((3, 7)), franka)]
    for call in bad:
        with pytest.raises(InvalidInputError):
            call()
    scene.clear_debug_objects()
    with pytest.raises(InvalidInputError):
        scene.clear_debug_object(handles[1])
    assert scene.get_state().solvers["RigidSolver"].qpos is before


def test_ik_of_a_free_body_is_its_target_pose(gs64):
    scene = gs.Scene()
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 1)))
    scene.build(n_envs=2)
    pos = np.array([[0.3, -0.2, 0.5], [1.0, 2.0, 3.0]])
    quat = np.array([[0.5, 0.5, 0.5, 0.5], [np.cos(1.2), 0, np.sin(1.2), 0]])  # up to 2.4 rad away
    q, err = box.inverse_kinematics(link=box.base_link, pos=pos, quat=quat, max_step_size=10.0, return_error=True,
                                    pos_tol=1e-9, rot_tol=1e-9)
    np.testing.assert_allclose(q[:, :3].numpy(), pos, atol=1e-9)  # free joint: qpos is the pose itself
    np.testing.assert_allclose(np.abs((q[:, 3:].numpy() * quat).sum(-1)), 1.0, atol=1e-12)
    assert float(err.abs().max()) < 1e-9


def test_camera_renders_depth_and_link_segmentation(gs_cpu, caplog):
    scene = gs.Scene()
    plane = scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.1), size=(0.2, 0.2, 0.2)))
    with caplog.at_level(logging.WARNING, logger="genesis_torch"):
        cam = scene.add_camera(res=(64, 48), pos=(0, 0, 2.0), lookat=(0, 0, 0), fov=30, GUI=True)
    assert sum("GUI" in r.message for r in caplog.records) == 1
    low = scene.add_camera(res=(64, 48), pos=(0, 0, 2.0), lookat=(0, 0, 0), fov=30, env_idx=1)
    scene.build(n_envs=2)
    box.set_pos([0, 0, 0.5], envs_idx=[1])
    try:
        rgb, depth, seg, normal = cam.render(rgb=True, depth=True, segmentation=True)
    except gs.errors.UnsupportedFeatureError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8 and normal is None
    # looking straight down from 2 m: the box top (z = 0.2) at the centre, the plane (z = 0) at the corners
    assert depth[24, 32] == pytest.approx(1.8, abs=2e-3) and depth[1, 1] == pytest.approx(2.0, abs=2e-3)
    assert seg[24, 32] == box.base_link.idx and seg[1, 1] == plane.base_link.idx == 0  # Genesis: the plane's link
    assert low.render(rgb=False, depth=True)[1][24, 32] == pytest.approx(1.4, abs=2e-3)  # env 1: box top at 0.6
    cam.start_recording(fps=100)  # Genesis 1.4.5: a frame per scene step at 100 fps with dt = 0.01
    for _ in range(2):
        scene.step()
    frames = cam.stop_recording()
    assert frames.shape == (2, 48, 64, 3)
    for call in (lambda: cam.set_pose(pos=[0, 0, 0], lookat=[0, 0, 0]), lambda: cam.set_pose(up=[1, 0, 0]),
                 lambda: cam.render(normal=1), lambda: cam.stop_recording(),
                 lambda: scene.add_camera(res=(0, 10)), lambda: scene.add_camera(fov=200)):
        with pytest.raises(gs.errors.GenesisError):
            call()
    cam.set_pose(pos=[0, 0, 3.0])
    assert cam.render(rgb=False, depth=True)[1][24, 32] == pytest.approx(2.8, abs=3e-3)


def test_cpu_allocator_tuning():
    """gs.init keeps freed memory for reuse on Linux/glibc (mallopt); tune_allocator is validated."""
    import platform
    import sys

    from genesis_torch._runtime import tune_cpu_allocator
    try:
        rt = gs.init(backend=gs.cpu, tune_allocator=False)
        with pytest.raises(InvalidInputError, match="tune_allocator"):
            gs.init(backend=gs.cpu, tune_allocator="yes")
        assert gs.get_runtime() is rt, "a failed init keeps the previous runtime"
        applies = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
        assert tune_cpu_allocator() is applies
    finally:
        gs.destroy()

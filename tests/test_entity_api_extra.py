"""Genesis' API for rigid examples and RL scripts (issue 14): slices as indices, set_qpos(zero_velocity,
skip_forward), scene.sim, RigidSolver link getters (vs MuJoCo on the same state) and its Genesis internals, entity
geoms, control_dofs_position_velocity (vs the analytic PD force), add_entity(name) / get_entity."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import GenesisError, InvalidInputError
from genesis_torch.solvers.rigid.queries import SolverInternalsError
from genesis_torch.state import envs_index, envs_mask

from .conftest import cpu_runtime

# a free base with a hinge arm and a slide finger, touching the floor (contacts make qacc constrained)
ARM_XML = """<mujoco><worldbody>
  <body name="base" pos="0 0 0.095" euler="3 5 10"><freejoint/><geom type="box" size="0.2 0.15 0.1"/>
    <body name="arm" pos="0.2 0 0.1"><joint name="hinge" type="hinge" axis="0 1 0" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0.1" size="0.03"/>
      <body name="finger" pos="0.3 0 0.1" euler="0 30 0"><joint name="slide" type="slide" axis="1 0 0"/>
        <geom type="sphere" size="0.04" pos="0.05 0 0"/></body></body></body>
</worldbody></mujoco>"""


@pytest.fixture
def gs64():
    with cpu_runtime("64"):
        yield


def arm_scene(tmp_path, n_envs=2, dt=0.005):
    path = tmp_path / "arm.xml"
    path.write_text(ARM_XML)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt))
    plane = scene.add_entity(gs.morphs.Plane(), name="floor")
    arm = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=n_envs)
    return scene, plane, arm


def moving_state(arm, n_envs):
    rng = np.random.default_rng(3)
    vel = rng.standard_normal((n_envs, arm.n_dofs))
    arm.set_dofs_velocity(torch.as_tensor(vel))
    q = arm.get_qpos().clone()
    q[:, 7] = torch.as_tensor(rng.uniform(-0.5, 0.5, n_envs))
    q[:, 8] = torch.as_tensor(rng.uniform(-0.05, 0.05, n_envs))
    arm.set_qpos(q, zero_velocity=False)


# ------------------------------------------------------------------------------------------------ slices
def test_envs_idx_slice_in_the_parser():
    assert envs_index(slice(1, None, 2), 5, "cpu").tolist() == [1, 3]
    assert envs_mask(slice(None, 2), 4, "cpu").tolist() == [True, True, False, False]
    assert envs_index(slice(None), 3, "cpu").tolist() == [0, 1, 2]
    assert envs_index(slice(-1, None), 3, "cpu").tolist() == [2]
    for bad in (slice(0, 2, 0), slice(0.0, 2), slice(True, 2)):
        with pytest.raises(InvalidInputError, match="slice"):
            envs_index(bad, 3, "cpu")


def test_slices_for_every_index_argument(gs64, tmp_path):
    scene, _, arm = arm_scene(tmp_path, n_envs=4)
    moving_state(arm, 4)
    assert torch.equal(arm.get_qpos(qs_idx_local=slice(7, 9), envs_idx=slice(1, 3)), arm.get_qpos()[1:3, 7:9])
    assert torch.equal(arm.get_dofs_velocity(dofs_idx_local=slice(6, None)), arm.get_dofs_velocity()[:, 6:])
    assert torch.equal(arm.get_links_pos(links_idx_local=slice(1, None)), arm.get_links_pos()[:, 1:])
    assert torch.equal(scene.rigid_solver.get_links_quat(links_idx=slice(1, 3), envs_idx=slice(None, None, 2)),
                       arm.get_links_quat()[::2, :2])
    arm.set_dofs_position(torch.tensor([0.3, 0.01], dtype=torch.float64), dofs_idx_local=slice(6, 8), envs_idx=slice(2, None))
    assert arm.get_dofs_position(dofs_idx_local=[6, 7], envs_idx=[2, 3]).tolist() == [[0.3, 0.01]] * 2
    arm.control_dofs_position(torch.tensor([0.2]), dofs_idx_local=slice(6, 7), envs_idx=slice(0, 1))
    before = scene.get_state()
    scene.step()
    scene.reset(state=before, envs_idx=slice(0, 4, 3))
    assert torch.equal(scene.get_state()["RigidSolver"].qpos[[0, 3]], before["RigidSolver"].qpos[[0, 3]])
    assert not torch.equal(scene.get_state()["RigidSolver"].qpos[1], before["RigidSolver"].qpos[1])
    for call in (lambda: arm.get_qpos(qs_idx_local=slice(0, 2, 0)),
                 lambda: arm.get_dofs_velocity(dofs_idx_local=slice("a", 2)),
                 lambda: scene.rigid_solver.get_links_pos(links_idx=slice(0, 1, 0))):
        with pytest.raises(InvalidInputError, match="slice"):
            call()


# ------------------------------------------------------------------------------------------------ set_qpos
def test_set_qpos_zero_velocity_and_skip_forward(gs64, tmp_path):
    scene, _, arm = arm_scene(tmp_path)
    moving_state(arm, 2)
    vel = arm.get_dofs_velocity().clone()
    q = arm.get_qpos().clone()
    q[:, 7] += 0.1
    arm.set_qpos(q, zero_velocity=False, skip_forward=True)
    assert torch.equal(arm.get_dofs_velocity(), vel)
    st = scene.get_state()["RigidSolver"]
    kin = scene.rigid_solver.kinematics(st.qpos)  # link poses always follow qpos, skip_forward or not
    assert torch.equal(st.links_pos, kin.xpos[:, 1:]) and torch.equal(st.links_quat, kin.xquat[:, 1:])
    arm.set_qpos(q[1:], envs_idx=[1])  # Genesis' default zero_velocity=True: that env's dofs stop
    assert torch.equal(arm.get_dofs_velocity()[0], vel[0]) and not arm.get_dofs_velocity()[1].any()
    before = scene.get_state()
    for kw in ({"zero_velocity": 1}, {"skip_forward": "yes"}):
        with pytest.raises(InvalidInputError, match="True or False"):
            arm.set_qpos(q, **kw)
    assert scene.get_state()["RigidSolver"] is before["RigidSolver"]


# ------------------------------------------------------------------------------------------------ scene.sim
def test_scene_sim(gs64, tmp_path):
    scene, _, arm = arm_scene(tmp_path, dt=0.01)
    sim = scene.sim
    assert sim.rigid_solver is scene.rigid_solver and sim.mpm_solver is None
    assert (sim.dt, sim.substeps, sim.substep_dt, sim.requires_grad) == (0.01, 1, 0.01, False)
    assert sim.n_envs == 2 and sim.entities == scene.entities and sim.active_solvers == [scene.rigid_solver]
    scene.step()
    scene.step()
    assert sim.cur_step_global == 2 and sim.cur_t == pytest.approx(0.02)
    assert sim.fem_solver is None  # a registered solver without entities
    with pytest.raises(AttributeError, match="rigid_solver"):
        sim.unknown_solver
    with pytest.raises(InvalidInputError):
        sim.dt = 0.1


# ------------------------------------------------------------------------------------------------ solver getters
def test_rigid_solver_link_getters_match_mujoco(gs64, tmp_path):
    scene, _, arm = arm_scene(tmp_path, n_envs=3)
    moving_state(arm, 3)
    arm.control_dofs_force(torch.tensor([0.0] * 6 + [0.5, -0.2]))
    st = scene.get_state()["RigidSolver"]
    solver = scene.rigid_solver
    m = solver.mj_model
    d = mujoco.MjData(m)
    nl = m.nbody - 1
    errs = {}
    for b in range(3):
        d.qpos[:], d.qvel[:] = st.qpos[b].numpy(), st.dofs_vel[b].numpy()
        d.qfrc_applied[:] = 0
        d.qfrc_applied[6:] = [0.5, -0.2]
        mujoco.mj_forward(m, d)
        assert d.ncon > 0, "the test state should have contacts"
        errs["qacc"] = max(errs.get("qacc", 0.0), float(np.abs(solver.forward(st).qacc[b].numpy() - d.qacc).max()))
        d.qacc[:] = solver.forward(st).qacc[b].numpy()  # the same acceleration: cacc's kinematics alone compared
        mujoco.mj_rnePostConstraint(m, d)
        want = {k: np.zeros((nl, 3)) for k in ("vel", "com_vel", "ang", "acc", "acc_ang")}
        res = np.zeros(6)
        for i in range(nl):
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, i + 1, res, 0)
            want["ang"][i], want["vel"][i] = res[:3], res[3:]
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, i + 1, res, 0)
            want["com_vel"][i] = res[3:]
            mujoco.mj_objectAcceleration(m, d, mujoco.mjtObj.mjOBJ_XBODY, i + 1, res, 0)
            want["acc_ang"][i], want["acc"][i] = res[:3], res[3:]
        got = {"pos": solver.get_links_pos(envs_idx=[b])[0], "quat": solver.get_links_quat(envs_idx=[b])[0],
               "com": solver.get_links_pos(envs_idx=[b], ref="link_com")[0],
               "vel": solver.get_links_vel(envs_idx=[b])[0], "ang": solver.get_links_ang(envs_idx=[b])[0],
               "com_vel": solver.get_links_vel(envs_idx=[b], ref="link_com")[0],
               "acc": solver.get_links_acc(envs_idx=[b])[0], "acc_ang": solver.get_links_acc_ang(envs_idx=[b])[0]}
        want.update(pos=d.xpos[1:], quat=d.xquat[1:], com=d.xipos[1:])
        for k, v in got.items():
            errs[k] = max(errs.get(k, 0.0), float(np.abs(v.numpy() - want[k]).max()))
    tol = {"pos": 1e-14, "quat": 1e-14, "com": 1e-14, "vel": 1e-13, "ang": 1e-13, "com_vel": 1e-13,
           "acc": 1e-12, "acc_ang": 1e-12, "qacc": 1e-6}  # qacc: the two constraint solves' convergence
    assert all(errs[k] <= tol[k] for k in tol), str(errs)
    # the entity's getters are the same code over its local links
    own = range(1, nl)  # the arm's links (link 0: the plane's)
    assert torch.equal(arm.get_links_acc(), solver.get_links_acc(links_idx=own))
    assert torch.equal(arm.get_links_vel(ref="link_com"), solver.get_links_vel(ref="link_com", links_idx=own))
    assert torch.equal(arm.get_links_pos(ref="link_com", relative=False), solver.get_links_pos(ref="link_com",
                                                                                               links_idx=own))
    assert torch.equal(arm.get_links_quat(relative=True), solver.get_links_quat(links_idx=own))
    for call in (lambda: arm.get_links_pos(relative=1), lambda: arm.get_links_vel(relative="no"),
                 lambda: arm.get_links_acc(relative=None), lambda: arm.get_links_pos(ref="root_COM")):
        with pytest.raises(InvalidInputError, match="relative|ref"):
            call()
    assert solver.get_links_acc(links_idx=0).shape == (3, 1, 3)


def test_link_getters_shapes_and_validation(gs64, tmp_path):
    scene, _, arm = arm_scene(tmp_path, n_envs=0)
    solver = scene.rigid_solver
    assert solver.get_links_pos().shape == (4, 3) and solver.get_links_acc([1, 2]).shape == (2, 3)  # plane + arm
    for call, match in ((lambda: solver.get_links_pos(links_idx=[4]), "outside"),
                        (lambda: solver.get_links_vel(ref="root_COM"), "ref"),
                        (lambda: solver.get_links_quat(relative=None), "True or False"),
                        (lambda: solver.get_links_ang(envs_idx=[1]), "outside")):
        with pytest.raises(InvalidInputError, match=match):
            call()


@pytest.mark.parametrize("field,method", [("qpos", "get_qpos"), ("links_state", "get_links_pos"),
                                          ("dofs_state", "get_dofs_velocity"), ("links_info", "get_links_inertial_mass"),
                                          ("geoms_state", "geom.get_pos")])
def test_genesis_solver_internals_name_the_public_method(gs64, tmp_path, field, method):
    scene, _, _ = arm_scene(tmp_path)
    with pytest.raises(SolverInternalsError, match=method) as info:
        getattr(scene.rigid_solver, field)
    assert isinstance(info.value, GenesisError) and not hasattr(scene.rigid_solver, field)
    with pytest.raises(AttributeError):
        scene.rigid_solver.no_such_field


# ------------------------------------------------------------------------------------------------ handles
def test_links_joints_geoms(gs64, tmp_path):
    scene, plane, arm = arm_scene(tmp_path)
    moving_state(arm, 2)
    assert [link.name for link in arm.links] == ["base", "arm", "finger"]
    assert [j.name for j in arm.joints] == ["joint0", "hinge", "slide"]
    geoms = arm.geoms
    assert [g.type for g in geoms] == ["BOX", "CAPSULE", "SPHERE"] and arm.n_geoms == 3
    assert [g.link.name for g in geoms] == ["base", "arm", "finger"] and [g.idx_local for g in geoms] == [0, 1, 2]
    assert [g.type for g in plane.geoms] == ["PLANE"] and plane.geoms[0].link.name == "plane_baselink"
    m = scene.rigid_solver.mj_model
    d = mujoco.MjData(m)
    st = scene.get_state()["RigidSolver"]
    d.qpos[:] = st.qpos[1].numpy()
    mujoco.mj_kinematics(m, d)
    for g in geoms:
        np.testing.assert_allclose(g.get_pos()[1].numpy(), d.geom_xpos[g.idx], atol=1e-14)
        R = np.zeros(9)
        mujoco.mju_quat2Mat(R, g.get_quat(envs_idx=[1])[0].numpy())
        np.testing.assert_allclose(R, d.geom_xmat[g.idx], atol=1e-14)
    assert geoms[2].contype == 1 and geoms[2].conaffinity == 1
    np.testing.assert_allclose(geoms[2].init_pos, [0.05, 0, 0])


def test_control_dofs_position_velocity_is_the_pd_force(gs64):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, gravity=(0, 0, 0)))
    xml = """<mujoco><worldbody><body><joint name="j" type="hinge" axis="0 0 1"/>
      <geom type="box" size="0.3 0.05 0.05" mass="2"/></body></worldbody></mujoco>"""
    import tempfile, pathlib  # noqa: E401
    path = pathlib.Path(tempfile.mkdtemp()) / "hinge.xml"
    path.write_text(xml)
    hinge = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=2)
    hinge.set_dofs_kp(torch.tensor([50.0]))
    hinge.set_dofs_kv(torch.tensor([[3.0], [0.5]]))
    hinge.set_dofs_position(torch.tensor([[0.2], [-0.1]]))
    hinge.set_dofs_velocity(torch.tensor([[0.4], [-1.0]]))
    p, v = torch.tensor([[0.5], [0.3]]), torch.tensor([[1.5], [-2.0]])
    hinge.control_dofs_position_velocity(p, v)
    q, qd = hinge.get_dofs_position(), hinge.get_dofs_velocity()
    kv = torch.tensor([[3.0], [0.5]])
    want = 50.0 * (p - q) + kv * (v - qd)
    got = hinge.get_dofs_control_force()
    assert float((got - want).abs().max()) < 1e-12, (got, want)
    # velocity zero: exactly control_dofs_position
    hinge.control_dofs_position_velocity(p, torch.zeros(2, 1))
    f0 = hinge.get_dofs_control_force()
    hinge.control_dofs_position(p)
    assert torch.equal(f0, hinge.get_dofs_control_force())
    before = scene.get_state()
    with pytest.raises(InvalidInputError, match="velocity"):
        hinge.control_dofs_position_velocity(p, torch.zeros(3, 1))
    with pytest.raises(InvalidInputError, match="finite"):
        hinge.control_dofs_position_velocity(p, torch.full((2, 1), float("nan")))
    assert scene.get_state()["RigidSolver"] is before["RigidSolver"]
    hinge.set_dofs_kp(torch.tensor([0.0]), envs_idx=[1])  # kp = 0: Genesis' law leaves the velocity term
    hinge.control_dofs_position_velocity(p, v)
    want = torch.tensor([[50.0], [0.0]]) * (p - q) + kv * (v - qd)
    assert float((hinge.get_dofs_control_force() - want).abs().max()) < 1e-12


def test_add_entity_name_and_get_entity(gs64, tmp_path):
    scene = gs.Scene()
    plane = scene.add_entity(gs.morphs.Plane(), name="floor")
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5)))
    # Genesis 1.4.5's default name: morph identifier + "_" + short uid
    assert box.name == f"box_{box.uid.short()}"
    assert scene.get_entity("floor") is plane and scene.get_entity(box.name) is box
    assert scene.entity_names == ("floor", box.name)
    for kw, match in (({"name": "floor"}, "already"), ({"name": ""}, "non-empty"), ({"name": 3}, "non-empty")):
        with pytest.raises(InvalidInputError, match=match):
            scene.add_entity(gs.morphs.Sphere(), **kw)
    assert len(scene.entities) == 2
    with pytest.raises(InvalidInputError, match="floor"):
        scene.get_entity("nope")
    with pytest.raises(InvalidInputError, match="uid"):
        scene.get_entity(uid="abc1234")
    scene.build()
    # gravity's offset is in the acceleration (MuJoCo's cacc, Genesis): a body in free fall reads 0
    assert float(box.get_links_acc().abs().max()) < 1e-12
    assert torch.allclose(box.get_links_acc_ang(), torch.zeros(1, 3, dtype=torch.float64))
    scene.step()
    assert box.get_pos()[2] < 0.5 and plane.name == "floor"


def test_entity_uid_and_get_entity_by_uid(gs64):
    """Genesis' `entity.uid` (random, 32 hex digits, unique 7-digit short form in the scene) and
    `scene.get_entity(uid=short)`; the MPM handle has one too (the scene assigns it)."""
    scene = gs.Scene()
    plane = scene.add_entity(gs.morphs.Plane())
    boxes = [scene.add_entity(gs.morphs.Box(pos=(i, 0, 0.5), size=(0.1, 0.1, 0.1))) for i in range(3)]
    uids = [e.uid for e in scene.entities]
    assert len({u.short() for u in uids}) == 4 and all(len(str(u)) == 32 for u in uids)
    assert all(scene.get_entity(uid=e.uid.short()) is e for e in scene.entities)
    assert plane.uid.match(str(plane.uid)) and plane.uid.match(plane.uid.short(), short_only=True)
    assert not boxes[0].uid.match(boxes[1].uid.short(), short_only=True)
    assert f"{boxes[0].uid}" == f"<{boxes[0].uid.short()}>" and repr(plane.uid).startswith("UID('")
    # a prefix that one entity alone has also finds it (later Genesis tutorials pass str(uid)[:4])
    shorts = [e.uid.short() for e in scene.entities]
    k = next(k for k in range(1, 8) if sum(s.startswith(shorts[2][:k]) for s in shorts) == 1)
    assert scene.get_entity(uid=shorts[2][:k]) is boxes[1]
    with pytest.raises(InvalidInputError, match="no entity has"):
        scene.get_entity(uid="g")  # not hex: no uid starts so
    with pytest.raises(InvalidInputError, match="short uid"):
        scene.get_entity(uid="")
    for kw in ({}, {"name": plane.name, "uid": plane.uid.short()}):
        with pytest.raises(InvalidInputError, match="exactly one"):
            scene.get_entity(**kw)

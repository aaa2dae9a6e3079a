"""An MJCF's `<option>` is honoured or refused, never replaced silently (docs/rigid.md, "Options").

Reference: MuJoCo run at test time on the very XML the scene loads (`MjModel.from_xml_string`), so its options come
from the file and MuJoCo's defaults. Scene options left out yield to the file; the integrator is given where the file
relies on MuJoCo's default (Euler), because "not written" and "MuJoCo's default" cannot be told apart.
"""

from __future__ import annotations

import dataclasses
import warnings

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError

pytestmark = pytest.mark.usefixtures("single_thread")

B = 4
PARITY = 1e-10
BODY = """
  <worldbody>
    <geom type="plane" size="5 5 0.1"/>
    <body name="torso" pos="0 0 0.35"><freejoint/>
      <geom type="box" size="0.2 0.1 0.05" mass="2"/>
      <body pos="0.2 0 0"><joint name="h1" type="hinge" axis="0 1 0" damping="0.5" stiffness="3"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.25" size="0.04" mass="0.3"/></body>
      <body pos="-0.2 0 0"><joint name="h2" type="hinge" axis="0 1 0" damping="0.5" range="-0.5 0.5"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.25" size="0.04" mass="0.3"/></body>
    </body>
  </worldbody>
  <actuator><position joint="h1" kp="20" ctrlrange="-0.2 0.2"/><motor joint="h2" gear="1"/></actuator>
</mujoco>"""
DM_OPTION = '<option timestep="0.005" iterations="2" ls_iterations="5"><flag eulerdamp="disable"/></option>'


def xml(option: str) -> str:
    return f"<mujoco>{option}{BODY}"


def initial(m: mujoco.MjModel):
    rng = np.random.default_rng(0)
    qpos = np.tile(m.qpos0, (B, 1))
    qpos[:, 2] = 0.28 + 0.02 * rng.random(B)
    qpos[:, 7:] = 0.3 * rng.standard_normal((B, 2))
    return qpos, 0.5 * rng.standard_normal((B, m.nv)), np.zeros(m.nu)  # TODO: nonzero ctrl (see report)


def run(tmp_path, option: str, steps: int, contacts: bool = True, **rigid) -> tuple[float, float]:
    """max |dqpos|, |dqvel| between a scene and MuJoCo on `xml(option)` after `steps` steps, B envs."""
    path = tmp_path / "model.xml"
    path.write_text(xml(option))
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(**rigid))
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=B)
    m = mujoco.MjModel.from_xml_string(xml(option))
    qpos, qvel, ctrl = initial(m)
    robot.set_qpos(torch.tensor(qpos))
    robot.set_dofs_velocity(torch.tensor(qvel))
    # MJCF actuator controls (no public setter for `ctrl` yet): the state is a value, replaced as a whole
    scene._rigid_state = dataclasses.replace(scene._rigid_state, ctrl=torch.tensor(ctrl).expand(B, -1).clone())
    datas = []
    for q, v in zip(qpos, qvel):
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:], d.ctrl[:] = q, v, ctrl
        datas.append(d)
    for _ in range(steps):
        scene.step()
        for d in datas:
            mujoco.mj_step(m, d)
    dq = np.abs(robot.get_qpos().numpy() - np.stack([d.qpos for d in datas])).max()
    dv = np.abs(robot.get_dofs_velocity().numpy() - np.stack([d.qvel for d in datas])).max()
    assert not contacts or sum(d.ncon for d in datas) > 0, "the comparison must have contacts"
    return float(dq), float(dv)


def test_dm_control_options_one_step(gs64, tmp_path):
    dq, dv = run(tmp_path, DM_OPTION, 1, integrator=gs.integrator.Euler)
    print(f"1 step: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < PARITY and dv < PARITY


@pytest.mark.xfail(strict=True, reason="MuJoCo's line search stops after ls_iterations=5 evaluations on a point its "
                   "bracketing picks; ours is an exact safeguarded Newton search, so the capped iterates differ "
                   "from the second contact step on (measured 3.7e-3 in qvel after 2 steps)")
def test_dm_control_options_100_steps(gs64, tmp_path):
    dq, dv = run(tmp_path, DM_OPTION, 100, integrator=gs.integrator.Euler)
    assert dq < PARITY and dv < PARITY


@pytest.mark.parametrize("option", [
    '<option timestep="0.005" iterations="2"><flag eulerdamp="disable"/></option>',
    pytest.param('<option timestep="0.004" integrator="implicitfast" cone="elliptic" impratio="3"/>',
                 marks=pytest.mark.xfail(strict=True, reason="measured 1.2e-6 qpos / 3.9e-5 qvel after 100 steps: "
                                         "elliptic cones, not yet investigated")),
    '<option timestep="0.003" integrator="RK4" gravity="0 0.5 -7" tolerance="1e-9"/>',
])
def test_options_honoured_100_steps(gs64, tmp_path, option):
    rigid = {} if "integrator=" in option else {"integrator": gs.integrator.Euler}
    dq, dv = run(tmp_path, option, 100, **rigid)
    print(f"{option}: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < 1e-8 and dv < 1e-8


FLAGS = ("constraint", "equality", "frictionloss", "limit", "contact", "spring",
         pytest.param("damper", marks=pytest.mark.xfail(strict=True, reason="measured 9.3e-8 qpos / 1.6e-6 qvel "
                                                        "after 20 steps under implicitfast: open")),
         "gravity", "clampctrl", "warmstart",
         pytest.param("filterparent", marks=pytest.mark.xfail(strict=True, reason="measured 0.46 in qpos: parent-"
                                                              "child contacts differ from MuJoCo's, open")),
         "actuation", "eulerdamp", "sensor", "midphase", "autoreset", "island", "multiccd")


@pytest.mark.parametrize("flag", FLAGS)
def test_disable_flag_honoured(gs64, tmp_path, flag):
    option = f'<option timestep="0.005" integrator="implicitfast"><flag {flag}="disable"/></option>'
    if flag == "eulerdamp":
        option = f'<option timestep="0.005"><flag {flag}="disable"/></option>'
    rigid = {"integrator": gs.integrator.Euler} if flag == "eulerdamp" else {}
    if flag in ("constraint", "contact"):
        pytest.skip("no contact to compare with: covered by test_disable_flag_without_contacts")
    dq, dv = run(tmp_path, option, 20, contacts=flag != "gravity", **rigid)
    print(f"{flag}: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < 1e-8 and dv < 1e-8


@pytest.mark.parametrize("flag", ("constraint", "contact"))
def test_disable_flag_without_contacts(gs64, tmp_path, flag):
    option = f'<option timestep="0.005" integrator="implicitfast"><flag {flag}="disable"/></option>'
    path = tmp_path / "model.xml"
    path.write_text(xml(option))
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=B)
    m = mujoco.MjModel.from_xml_string(xml(option))
    d = mujoco.MjData(m)
    for _ in range(50):
        scene.step()
        mujoco.mj_step(m, d)
    assert d.ncon == 0
    np.testing.assert_allclose(robot.get_qpos().numpy(), np.tile(d.qpos, (B, 1)), atol=1e-8)


@pytest.mark.parametrize("option, name", [
    ('<option noslip_iterations="3"/>', "noslip_iterations"),
    ('<option density="1.2"/>', "density"),
    ('<option viscosity="0.1"/>', "viscosity"),
    ('<option wind="1 0 0"/>', "wind"),
    ('<option solver="CG"/>', "solver"),
    ('<option solver="PGS"/>', "solver"),
    ('<option integrator="implicit"/>', "integrator"),
    ('<option ls_tolerance="0.1"/>', "ls_tolerance"),
    ('<option actuatorgroupdisable="2"/>', "disableactuator"),
    ('<option><flag energy="enable"/></option>', "energy"),
    ('<option><flag override="enable"/></option>', "override"),
    ('<option><flag fwdinv="enable"/></option>', "fwdinv"),
    ('<option><flag refsafe="disable"/></option>', "refsafe"),
    ('<option><flag nativeccd="disable"/></option>', "nativeccd"),
])
def test_unsupported_option_raises(gs64, tmp_path, option, name):
    path = tmp_path / "model.xml"
    path.write_text(xml(option))
    scene = gs.Scene()
    with pytest.raises(UnsupportedFeatureError, match=name):  # fluid forces already raise in add_entity
        scene.add_entity(gs.morphs.MJCF(file=str(path)))
        scene.build()
    assert not scene.is_built


def test_explicit_option_overrides_unsupported_file_value(gs64, tmp_path):
    path = tmp_path / "model.xml"
    path.write_text(xml('<option solver="CG" ls_tolerance="0.1"/>'))
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(constraint_solver=gs.constraint_solver.Newton,
                                                           ls_tolerance=1e-10))
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    assert scene.rigid_solver.mj_model.opt.solver == int(mujoco.mjtSolver.mjSOL_NEWTON)


def test_attach_warning_not_emitted(gs64, tmp_path, capfd, monkeypatch):
    path = tmp_path / "model.xml"
    path.write_text(xml(DM_OPTION))
    monkeypatch.chdir(tmp_path)  # MuJoCo's default warning handler appends to ./MUJOCO_LOG.TXT
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = gs.Scene()
        scene.add_entity(gs.morphs.MJCF(file=str(path)))
        scene.add_entity(gs.morphs.MJCF(file="franka.xml", pos=(2, 0, 0)))
        scene.add_entity(gs.morphs.Box(pos=(0, 2, 0.5), size=(0.1, 0.1, 0.1)))
        scene.build()
    out, err = capfd.readouterr()
    assert not [w for w in caught if "Attach" in str(w.message)], [str(w.message) for w in caught]
    assert "Attach" not in out + err
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    opt = scene.rigid_solver.mj_model.opt
    assert (opt.timestep, opt.iterations, opt.ls_iterations) == (0.005, 2, 5)
    assert opt.disableflags & int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)


def test_file_values_resolved_into_scene_options(gs64, tmp_path):
    path = tmp_path / "model.xml"
    path.write_text(xml(DM_OPTION))
    scene = gs.Scene(sim_options=gs.options.SimOptions(substeps=2))
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    assert scene.sim_options.substep_dt == pytest.approx(0.005) and scene.dt == pytest.approx(0.01)
    assert scene.rigid_options.iterations == 2 and scene.rigid_options.ls_iterations == 5
    assert not scene.sim_options.is_set("dt")


def test_scene_option_overrides_file(gs64, tmp_path):
    path = tmp_path / "model.xml"
    path.write_text(xml(DM_OPTION))
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(iterations=30))
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    opt = scene.rigid_solver.mj_model.opt
    assert opt.timestep == 0.002 and opt.iterations == 30 and opt.ls_iterations == 5
    assert scene.dt == 0.002 and scene.rigid_options.iterations == 30


def test_explicit_default_value_overrides_file(gs64, tmp_path):
    path = tmp_path / "model.xml"
    path.write_text(xml(DM_OPTION))
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))  # Genesis' default, given explicitly
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    assert scene.rigid_solver.mj_model.opt.timestep == 0.01


def test_conflicting_files_raise_and_explicit_option_resolves(gs64, tmp_path):
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_text(xml('<option timestep="0.005" iterations="2"/>'))
    b.write_text(xml('<option timestep="0.004" iterations="2"/>'))
    scene = gs.Scene()
    scene.add_entity(gs.morphs.MJCF(file=str(a)))
    scene.add_entity(gs.morphs.MJCF(file=str(b), pos=(2, 0, 0)))
    with pytest.raises(InvalidInputError, match="timestep"):
        scene.build()
    assert not scene.is_built
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.003))
    scene.add_entity(gs.morphs.MJCF(file=str(a)))
    scene.add_entity(gs.morphs.MJCF(file=str(b), pos=(2, 0, 0)))
    scene.build()
    assert scene.rigid_solver.mj_model.opt.timestep == 0.003 and scene.rigid_solver.mj_model.opt.iterations == 2


def test_failed_build_can_be_retried_with_the_file_values(gs64, tmp_path):
    path = tmp_path / "model.xml"
    path.write_text(xml(DM_OPTION))
    scene = gs.Scene()
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    again = gs.Scene()
    again.add_entity(gs.morphs.MJCF(file=str(path)))
    again.build()
    assert again.rigid_solver.mj_model.opt.iterations == 2  # the entity's spec is never modified


def test_primitives_carry_no_options(gs64):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.1, 0.1, 0.1)))
    scene.build()
    assert scene.dt == 1e-2 and scene.rigid_options.iterations == 50

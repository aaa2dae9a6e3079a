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


def xml(option: str, body: str = BODY) -> str:
    return f"<mujoco>{option}{body}"


def initial(m: mujoco.MjModel):
    rng = np.random.default_rng(0)
    qpos = np.tile(m.qpos0, (B, 1))
    qpos[:, 2] = 0.28 + 0.02 * rng.random(B)
    qpos[:, 7:] = 0.3 * rng.standard_normal((B, 2))
    return qpos, 0.5 * rng.standard_normal((B, m.nv)), np.zeros(m.nu)  # TODO: nonzero ctrl (see report)


def run(tmp_path, option: str, steps: int, contacts: bool = True, body: str = BODY, **rigid) -> tuple[float, float]:
    """max |dqpos|, |dqvel| between a scene and MuJoCo on `xml(option, body)` after `steps` steps, B envs."""
    path = tmp_path / "model.xml"
    path.write_text(xml(option, body))
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(**rigid))
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=B)
    m = mujoco.MjModel.from_xml_string(xml(option, body))
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


def test_dm_control_options_100_steps(gs64, tmp_path):
    """The capped line search (ls_iterations=5) must stop where MuJoCo's does (solvers/rigid/line_search.py)."""
    dq, dv = run(tmp_path, DM_OPTION, 100, integrator=gs.integrator.Euler)
    print(f"100 steps: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < PARITY and dv < PARITY


@pytest.mark.parametrize("option", [
    '<option timestep="0.005" iterations="2"><flag eulerdamp="disable"/></option>',
    '<option timestep="0.004" integrator="implicitfast" cone="elliptic" impratio="3"/>',
    '<option timestep="0.003" integrator="RK4" gravity="0 0.5 -7" tolerance="1e-9"/>',
    '<option timestep="0.005" ls_tolerance="0.3" ls_iterations="8" tolerance="1e-6"/>',
])
def test_options_honoured_100_steps(gs64, tmp_path, option):
    rigid = {} if "integrator=" in option else {"integrator": gs.integrator.Euler}
    dq, dv = run(tmp_path, option, 100, **rigid)
    print(f"{option}: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < 1e-8 and dv < 1e-8


FLAGS = ("constraint", "equality", "frictionloss", "limit", "contact", "spring",
         "damper",
         "gravity", "clampctrl", "warmstart",
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


def test_filterparent_disable_honoured(gs64, tmp_path):
    """`filterparent` disabled keeps the torso-leg contacts. The legs are spheres here: with the capsule legs of BODY
    MuJoCo's capsule-box collider gives two contacts per leg where this solver gives one (docs/rigid.md, known
    differences), which is a collision difference, not the flag's."""
    spheres = BODY.replace('<geom type="capsule" fromto="0 0 0 0 0 -0.25" size="0.04" mass="0.3"/>',
                           '<geom type="sphere" pos="0 0 -0.02" size="0.05" mass="0.3"/>')
    option = '<option timestep="0.005" integrator="implicitfast"><flag filterparent="disable"/></option>'
    dq, dv = run(tmp_path, option, 20, body=spheres)
    print(f"filterparent: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < 1e-8 and dv < 1e-8


def test_refsafe_disable_honoured(gs64, tmp_path):
    """Without refsafe a solref time constant below 2 dt is used as given (here 0.004 s at dt = 0.005 s): MuJoCo's
    stiffer contacts (the bodies bounce off within 3 steps) must be reproduced, and differ from the refsafe ones."""
    stiff = BODY.replace("<geom ", '<geom solref="0.004 1" ')  # every geom: contacts mix both geoms' solref
    dq, dv = run(tmp_path, '<option timestep="0.005"><flag refsafe="disable"/></option>', 3, body=stiff,
                 integrator=gs.integrator.Euler)
    print(f"refsafe: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
    assert dq < 1e-8 and dv < 1e-8
    m_safe = mujoco.MjModel.from_xml_string(xml('<option timestep="0.005"/>', stiff))
    m_raw = mujoco.MjModel.from_xml_string(xml('<option timestep="0.005"><flag refsafe="disable"/></option>', stiff))
    qpos, qvel, _ = initial(m_safe)
    ends = []
    for mm in (m_safe, m_raw):
        runs = []
        for q, v in zip(qpos, qvel):
            d = mujoco.MjData(mm)
            d.qpos[:], d.qvel[:] = q, v
            for _ in range(3):
                mujoco.mj_step(mm, d)
            runs.append(d.qvel.copy())
        ends.append(np.stack(runs))
    assert np.abs(ends[0] - ends[1]).max() > 1e-3  # the flag matters in this scene


@pytest.mark.parametrize("integrator", ("Euler", "implicitfast", "RK4"))
def test_damper_disable_every_integrator(gs64, tmp_path, integrator):
    """No damping forces and no implicit damping under any integrator (MuJoCo's mj_Euler skips its implicit damping
    when the damper flag is disabled)."""
    option = f'<option timestep="0.005" integrator="{integrator}"><flag damper="disable"/></option>'
    dq, dv = run(tmp_path, option, 20, integrator=getattr(gs.integrator, integrator))
    print(f"damper/{integrator}: |dqpos| {dq:.2e}, |dqvel| {dv:.2e}")
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
    ('<option solver="PGS"/>', "solver"),
    ('<option integrator="implicit"/>', "integrator"),
    ('<option actuatorgroupdisable="2"/>', "disableactuator"),
    ('<option><flag energy="enable"/></option>', "energy"),
    ('<option><flag override="enable"/></option>', "override"),
    ('<option><flag fwdinv="enable"/></option>', "fwdinv"),
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
    path.write_text(xml('<option solver="PGS"/>'))
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(constraint_solver=gs.constraint_solver.Newton))
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

"""`RigidOptions(constraint_timeconst)` with Genesis' meaning: the time constant of the constraints whose model states
none (primitives, meshes, URDF files), raised to twice the substep; MJCF files keep their `solref`. The physics is
checked against MuJoCo running a hand-written MJCF that states the same time constants."""

from __future__ import annotations

import logging

import mujoco
import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError

URDF = """<robot name="arm">
  <link name="base"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/>
    </inertial></link>
  <link name="arm"><inertial><origin xyz="0 0 0.1"/><mass value="0.5"/>
    <inertia ixx="0.002" iyy="0.002" izz="0.001" ixy="0" ixz="0" iyz="0"/></inertial>
    <collision><origin xyz="0 0 0.1"/><geometry><box size="0.04 0.04 0.2"/></geometry></collision></link>
  <joint name="hinge" type="revolute"><parent link="base"/><child link="arm"/><axis xyz="0 1 0"/>
    <limit lower="-0.5" upper="0.5" effort="10" velocity="1"/></joint>
</robot>"""

# the Box-on-Plane scene below written as MuJoCo XML (the scene defaults: implicitfast, 50 iterations), with the solref
# that Genesis' constraint_timeconst gives
MJCF_BOX = """<mujoco><option timestep="{dt}" integrator="implicitfast" iterations="50"/>
  <worldbody><geom type="plane" size="0 0 1" solref="{tc} 1"/>
    <body pos="0 0 0.3" quat="{quat}"><freejoint/>
      <geom type="box" size="0.05 0.1 0.15" density="200" solref="{tc} 1"/></body>
  </worldbody></mujoco>"""


QUAT = tuple((np.array([1.0, 0.3, 0.2, 0.1]) / np.linalg.norm([1.0, 0.3, 0.2, 0.1])).tolist())


def box_scene(dt: float = 0.005, **rigid) -> gs.Scene:
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt), rigid_options=gs.options.RigidOptions(**rigid))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.3), size=(0.1, 0.2, 0.3), quat=QUAT))
    scene.build()
    return scene


def test_option_values_and_the_deprecated_alias(gs_cpu, caplog):
    assert gs.options.RigidOptions().constraint_timeconst == 0.01  # Genesis 1.4.5's default
    assert gs.options.RigidOptions(constraint_timeconst=None).constraint_timeconst is None
    with caplog.at_level(logging.WARNING, logger="genesis_torch"):
        o = gs.options.RigidOptions(contact_resolve_time=0.03)
    assert o.constraint_timeconst == 0.03 and any("deprecated" in r.message for r in caplog.records)
    assert o.fingerprint() != gs.options.RigidOptions().fingerprint()
    with pytest.raises(InvalidInputError, match="contact_resolve_time"):
        gs.options.RigidOptions(contact_resolve_time=0.03, constraint_timeconst=0.02)
    for bad in (0.0, -0.01, "0.01", float("nan"), True):
        with pytest.raises(InvalidInputError, match="constraint_timeconst"):
            gs.options.RigidOptions(constraint_timeconst=bad)


@pytest.mark.parametrize("given, dt, expected", [(0.01, 0.005, 0.01), (0.004, 0.005, 0.01), (None, 0.004, 0.008),
                                                 (0.05, 0.001, 0.05)])
def test_primitives_take_it_raised_to_twice_the_substep(gs_cpu, given, dt, expected):
    m = box_scene(dt=dt, constraint_timeconst=given).rigid_solver.mj_model
    np.testing.assert_allclose(m.geom_solref, [[expected, 1.0]] * m.ngeom, rtol=0, atol=1e-15)


def test_mjcf_keeps_its_solref_urdf_takes_the_scene_value(gs_cpu, tmp_path):
    (tmp_path / "arm.urdf").write_text(URDF)
    mjcf = tmp_path / "ball.xml"
    mjcf.write_text('<mujoco><worldbody><body name="b1" pos="1 0 0.2"><freejoint/><geom type="sphere" '
                    'size="0.05" solref="0.03 0.8"/></body><body name="b2" pos="2 0 0.2"><freejoint/><geom type="sphere" size="0.05"/>'
                    '</body></worldbody></mujoco>')
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005),  # floor 0.01 s
                     rigid_options=gs.options.RigidOptions(constraint_timeconst=0.015))
    scene.add_entity(gs.morphs.URDF(file=str(tmp_path / "arm.urdf"), fixed=True))
    ball = scene.add_entity(gs.morphs.MJCF(file=str(mjcf)))
    scene.build()
    m = scene.rigid_solver.mj_model
    by_body = {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, int(m.geom_bodyid[g])): m.geom_solref[g].tolist()
               for g in range(m.ngeom)}
    ball_bodies = sorted(n for n in by_body if n and n.startswith(ball._mj_prefix))
    assert [by_body[n] for n in ball_bodies] == [[0.03, 0.8], [0.02, 1.0]]  # as the file states / MuJoCo's default
    arm = [v for n, v in by_body.items() if n and n.endswith("arm") and not n.startswith(ball._mj_prefix)]
    assert arm == [[0.015, 1.0]]
    hinge = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "entity0/hinge")
    assert m.jnt_solref[hinge].tolist() == [0.015, 1.0]


@pytest.mark.parametrize("tc", [0.01, 0.004])
def test_box_on_plane_follows_mujoco_with_the_stated_time_constant(gs64, tc):
    """200 steps of a tilted box dropped on the plane: qpos equals MuJoCo's on an MJCF that states solref (tc, 1)
    for both geoms (tc below 2 dt: both floor it, Genesis per geom and MuJoCo's refsafe on the mix)."""
    dt = 0.005
    scene = box_scene(dt=dt, constraint_timeconst=tc)
    box = scene.entities[1]
    m = mujoco.MjModel.from_xml_string(MJCF_BOX.format(dt=dt, tc=max(tc, 2 * dt), quat=' '.join(map(repr, QUAT))))
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    np.testing.assert_allclose(box.get_qpos().numpy(), d.qpos, atol=1e-12)
    worst = 0.0
    for _ in range(200):
        scene.step()
        mujoco.mj_step(m, d)
        worst = max(worst, float(np.abs(box.get_qpos().numpy() - d.qpos).max()))
    assert worst < 1e-9, worst
    assert d.ncon > 0 and abs(d.qpos[2] - 0.05) < 0.01  # resting on its smallest half-size

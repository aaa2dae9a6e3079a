"""Genesis' base Morph options on every rigid morph (`genesis_torch/_morph_options.py`): visualization, collision,
deprecated flags, layout switches, pose offsets, and the MJCF/URDF file options."""

from __future__ import annotations

import logging

import mujoco
import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError

PRIMITIVES = {"Box": lambda **k: gs.morphs.Box(pos=(0, 0, 0.5), size=(0.2, 0.2, 0.2), **k),
              "Sphere": lambda **k: gs.morphs.Sphere(pos=(0, 0, 0.5), radius=0.1, **k),
              "Cylinder": lambda **k: gs.morphs.Cylinder(pos=(0, 0, 0.5), radius=0.1, height=0.2, **k),
              "Plane": lambda **k: gs.morphs.Plane(**k),
              "MJCF": lambda **k: gs.morphs.MJCF(file="franka.xml", **k)}

BALL_ON_PLANE = """<mujoco><worldbody><geom name="floor" type="plane" size="1 1 0.1"/>
  <body name="ball" pos="0 0 0.3"><freejoint/><geom type="sphere" size="0.05" density="300"/>
    <inertial pos="0 0 0" mass="7" diaginertia="1 1 1"/></body></worldbody></mujoco>"""


@pytest.mark.parametrize("kind", sorted(PRIMITIVES))
def test_every_rigid_morph_takes_genesis_base_options(gs_cpu, kind, caplog):
    make = PRIMITIVES[kind]
    default = make().fingerprint()
    with caplog.at_level(logging.WARNING, logger="genesis_torch"):
        m = make(requires_jac_and_IK=True, is_free=False, batch_fixed_verts=True, enable_custom_vverts=False,
                 offset_pos=(0, 0, 0), offset_quat=(1, 0, 0, 0), offset_euler=None)
    assert sum("deprecated" in r.message for r in caplog.records) == 2  # Genesis' warning, once per flag
    assert m.fingerprint() == default and m.visualization and m.collision
    assert "visualization" not in default and "collision" not in default  # default fingerprints as before
    assert make(collision=False).fingerprint() == {**default, "collision": False}
    with pytest.raises(InvalidInputError, match="neither seen nor"):
        make(visualization=False, collision=False)
    with pytest.raises(UnsupportedFeatureError, match="offset_pos"):
        make(offset_pos=(0, 0, 0.1))
    with pytest.raises(UnsupportedFeatureError, match="offset_euler"):
        make(offset_euler=(0, 0, 30))
    for bad in ({"visualization": 1}, {"collision": "no"}, {"batch_fixed_verts": None}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            make(**bad)


def test_collision_false_falls_through_with_the_same_mass(gs_cpu):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    ghost = scene.add_entity(PRIMITIVES["Box"](collision=False))
    solid = scene.add_entity(gs.morphs.Box(pos=(1, 0, 0.5), size=(0.2, 0.2, 0.2)))
    hidden = scene.add_entity(gs.morphs.Box(pos=(2, 0, 0.5), size=(0.2, 0.2, 0.2), visualization=False))
    scene.build()
    m = scene.rigid_solver.mj_model
    g = lambda e: m.body_geomadr[e._body_ids[0]]  # noqa: E731
    assert (m.geom_contype[g(ghost)], m.geom_conaffinity[g(ghost)]) == (0, 0)
    assert m.geom_group[g(hidden)] == 3 and m.geom_group[g(solid)] == 0 and m.geom_contype[g(hidden)] == 0xFFFF
    assert m.body_mass[ghost._body_ids[0]] == pytest.approx(m.body_mass[solid._body_ids[0]], rel=1e-12)
    for _ in range(60):
        scene.step()
    assert float(ghost.get_pos()[2]) < -0.5 < 0.09 < float(solid.get_pos()[2]) < 0.11
    assert 0.09 < float(hidden.get_pos()[2]) < 0.11  # invisible, still collides


def test_visualization_false_is_not_drawn(gs_cpu):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.1), size=(0.2, 0.2, 0.2), fixed=True, visualization=False))
    seen = scene.add_entity(gs.morphs.Sphere(pos=(0, 0.4, 0.1), radius=0.1, fixed=True))
    cam = scene.add_camera(res=(64, 64), pos=(1.5, 0.2, 0.8), lookat=(0, 0.2, 0.1), fov=40)
    scene.build()
    _, _, seg, _ = cam.render(rgb=False, depth=False, segmentation=True)
    seg = np.asarray(seg)
    labels = set(np.unique(seg).tolist())
    assert (seg >= 0).sum() > 50 and labels <= {-1, seen.base_link.idx}, labels


def test_mjcf_file_options(gs_cpu, tmp_path):
    path = tmp_path / "ball.xml"
    path.write_text(BALL_ON_PLANE)
    plain = gs.morphs.MJCF(file=str(path))
    assert [g.type for g in plain.to_spec().worldbody.geoms] == [mujoco.mjtGeom.mjGEOM_PLANE]
    no_floor = gs.morphs.MJCF(file=str(path), exclude_ground_plane=True)
    assert list(no_floor.to_spec().worldbody.geoms) == [] and no_floor.fingerprint() != plain.fingerprint()
    # recompute_inertia: MuJoCo's inertiafromgeom="true" (the sphere's 300 kg/m^3, not the stated 7 kg)
    m = gs.morphs.MJCF(file=str(path), recompute_inertia=True).to_spec().compile()
    ref = mujoco.MjModel.from_xml_string(BALL_ON_PLANE.replace("<mujoco>", '<mujoco><compiler inertiafromgeom="true"/>'))
    np.testing.assert_allclose(m.body_mass, ref.body_mass, rtol=1e-15)
    assert m.body_mass[1] == pytest.approx(300 * 4 / 3 * np.pi * 0.05 ** 3, rel=1e-12)
    assert mujoco.MjModel.from_xml_string(BALL_ON_PLANE).body_mass[1] == 7.0
    ok = dict(decimate=True, decimate_face_num=200, decimate_aggressiveness=3, watertighten=0, align=None,
              file_meshes_are_zup=False, coacd_options=None, decompose_object_error_threshold=0.2,
              decompose_robot_error_threshold=float("inf"), convexify=True)
    assert gs.morphs.MJCF(file=str(path), **ok).fingerprint() == plain.fingerprint()  # no effect here
    for bad, err in (({"decimate_face_num": 0}, InvalidInputError), ({"decimate_aggressiveness": 9}, InvalidInputError),
                     ({"align": "x"}, InvalidInputError), ({"convexify": False}, UnsupportedFeatureError),
                     ({"recompute_inertia": 1}, InvalidInputError), ({"exclude_ground_plane": None}, InvalidInputError),
                     ({"prioritize_urdf_material": True}, InvalidInputError)):  # a URDF option
        with pytest.raises(err, match=next(iter(bad))):
            gs.morphs.MJCF(file=str(path), **bad)


def test_urdf_file_options(gs_cpu):
    u = gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", prioritize_urdf_material=True, recompute_inertia=False)
    assert u.fingerprint() == gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf").fingerprint()
    with pytest.raises(UnsupportedFeatureError, match="xacro"):
        gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", xacro_args={"robot": "go2"})
    with pytest.raises(InvalidInputError, match="exclude_ground_plane"):  # an MJCF option
        gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", exclude_ground_plane=True)
    hidden = gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", visualization=False).to_spec()
    assert all(g.group == 3 for g in hidden.geoms)


def test_plane_options(gs_cpu):
    p = gs.morphs.Plane(plane_size=(20, 20), tile_size=(0.5, 0.5), fixed=True)
    assert p.fingerprint() == gs.morphs.Plane().fingerprint() == {"type": "Plane", "pos": (0.0, 0.0, 0.0),
                                                                   "normal": (0.0, 0.0, 1.0)}
    geom = gs.morphs.Plane(contype=2, conaffinity=4).to_spec().geoms[0]
    assert (geom.contype, geom.conaffinity) == (2, 4)
    for bad in ({"plane_size": (0, 1)}, {"tile_size": (1,)}, {"fixed": 1}, {"euler": (0, 0, 10)}):
        with pytest.raises(InvalidInputError):
            gs.morphs.Plane(**bad)

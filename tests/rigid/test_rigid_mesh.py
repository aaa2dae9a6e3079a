"""Rigid `gs.morphs.Mesh`: meshes written with trimesh at test time drop onto a plane and rest, in float64 parity with
MuJoCo on the same compiled model (qpos/qvel over the drop and the rest); mass = rho x the mesh volume; a non-convex
mesh is split into convex pieces by CoACD; Genesis' arguments are validated."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")

STEPS = 400  # 0.8 s: fall, touch-down and rest
PARITY = 1e-6  # qpos / qvel vs MuJoCo over a contact run, as tests/rigid/test_contact_validation.py
TOL = 1e-12  # both constraint solvers' tolerance


def l_prism(a: float = 0.1, h: float = 0.05):
    """An L-shaped prism (non-convex, volume 3 a^2 h), outward-wound, bottom face at z = 0."""
    p = np.array([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)], float) * a
    tri = [(0, 1, 2), (0, 2, 3), (0, 3, 5), (3, 4, 5)]
    v = np.concatenate([np.c_[p, np.zeros(6)], np.c_[p, np.full(6, h)]])
    f = [(i, k, j) for i, j, k in tri] + [(i + 6, j + 6, k + 6) for i, j, k in tri]
    for i in range(6):
        j = (i + 1) % 6
        f += [(i, j, j + 6), (i, j + 6, i + 6)]
    return trimesh.Trimesh(v, np.array(f), process=False)


def _drop(gs, path, **mesh_args):
    """(scene, mesh entity, max |ours - MuJoCo| of qpos and qvel, MuJoCo's final qpos) of a drop onto a plane."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(tolerance=TOL, iterations=100))
    scene.add_entity(gs.morphs.Plane())
    entity = scene.add_entity(gs.morphs.Mesh(file=str(path), **mesh_args))
    scene.build()
    m = copy.copy(scene.rigid_solver.mj_model)
    m.opt.tolerance, m.opt.iterations = TOL, 100
    d = mujoco.MjData(m)
    err = 0.0
    for _ in range(STEPS):
        scene.step()
        mujoco.mj_step(m, d)
        s = scene.get_state().solvers["RigidSolver"]
        err = max(err, np.abs(s.qpos[0].numpy() - d.qpos).max(), np.abs(s.dofs_vel[0].numpy() - d.qvel).max())
    return scene, entity, err, d.qpos.copy(), d.qvel.copy()


@pytest.mark.parametrize("ext", ["stl", "obj", "ply"])
def test_box_mesh_drops_and_rests(gs64, single_thread, tmp_path, ext):
    """A 0.2 x 0.1 x 0.05 m box mesh dropped tilted: its convex hull (the box) rests on its largest face, centre at
    half its height minus MuJoCo's soft-contact penetration; mass 200 kg/m^3 x 1e-3 m^3."""
    path = tmp_path / f"box.{ext}"
    trimesh.creation.box(extents=(0.2, 0.1, 0.05)).export(path)
    scene, _, err, qpos, qvel = _drop(gs64, path, pos=(0, 0, 0.2), euler=(10, 20, 5))
    m = scene.rigid_solver.mj_model
    assert err <= PARITY, f"qpos/qvel differ from MuJoCo by {err:.3g}"
    np.testing.assert_allclose(m.body_mass[2], 200 * 0.2 * 0.1 * 0.05, rtol=1e-6)  # body 2 (1: the plane)
    assert abs(qpos[2] - 0.025) < 5e-4 and np.abs(qvel).max() < 1e-5, (qpos, qvel)


def test_nonconvex_mesh_is_decomposed(gs64, single_thread, tmp_path):
    """The L prism's hull is 4/3 of its volume (> 0.15): CoACD pieces collide, the L itself carries the exact mass;
    it lands flat (its bottom at z = 0 up to the contact penetration)."""
    pytest.importorskip("coacd", reason="CoACD is the optional extra genesis-torch[mesh]")
    path = tmp_path / "l.obj"
    l_prism().export(path)
    scene, _, err, qpos, qvel = _drop(gs64, path, pos=(0, 0, 0.1), euler=(10, 20, 5))
    m = scene.rigid_solver.mj_model
    assert err <= PARITY, f"qpos/qvel differ from MuJoCo by {err:.3g}"
    np.testing.assert_allclose(m.body_mass[2], 200 * 3 * 0.1 ** 2 * 0.05, rtol=1e-6)
    mesh_geoms = np.flatnonzero(m.geom_bodyid == 2)  # body 1: the plane's link
    assert len(mesh_geoms) >= 3  # the L (mass, no contact) and >= 2 convex pieces (contact, no mass)
    assert m.geom_contype[mesh_geoms[0]] == 0 and np.all(m.geom_contype[mesh_geoms[1:]] == 0xFFFF)
    up = np.zeros(9)
    mujoco.mju_quat2Mat(up, qpos[3:7])
    assert up[8] > 1 - 1e-6 and abs(qpos[2]) < 5e-4 and np.abs(qvel).max() < 1e-5, (qpos, qvel)


@pytest.mark.xfail(strict=True, reason="plane vs a hull face with 5 coplanar vertices: the narrow phase keeps other "
                   "contacts than MuJoCo 4 (measured 1.6e-2 on qpos/qvel); collision/, not the Mesh morph")
def test_hull_with_pentagon_face_rests_like_mujoco(gs64, single_thread, tmp_path):
    """decompose_object_error_threshold=inf: the L collides as one convex hull (no CoACD), landing on its pentagon."""
    path = tmp_path / "l.obj"
    l_prism().export(path)
    scene, _, err, _, _ = _drop(gs64, path, pos=(0, 0, 0.1), decompose_object_error_threshold=float("inf"))
    assert np.count_nonzero(scene.rigid_solver.mj_model.geom_bodyid == 1) == 1
    assert err <= PARITY, f"qpos/qvel differ from MuJoCo by {err:.3g}"


def test_gltf_is_y_up_and_fixed_meshes(gs64, tmp_path):
    """glTF/GLB are Y-up (turned Z-up: (x, y, z) -> (x, -z, y)) unless file_meshes_are_zup=True; fixed: no joint."""
    gs = gs64
    path = tmp_path / "box.glb"
    trimesh.creation.box(extents=(0.1, 0.2, 0.3)).export(path)
    for zup, extent_z in ((None, 0.2), (True, 0.3)):
        scene = gs.Scene()
        scene.add_entity(gs.morphs.Mesh(file=str(path), fixed=True, file_meshes_are_zup=zup))
        scene.build()
        m = scene.rigid_solver.mj_model
        assert m.njnt == 0
        v = m.mesh_vert[m.mesh_vertadr[0]:m.mesh_vertadr[0] + m.mesh_vertnum[0]]
        d = mujoco.MjData(m)
        mujoco.mj_forward(m, d)
        world = v @ d.geom_xmat[0].reshape(3, 3).T + d.geom_xpos[0]
        np.testing.assert_allclose(np.ptp(world, 0)[2], extent_z, atol=1e-9)


def test_mesh_arguments_validated(gs64, tmp_path):
    gs = gs64
    errors = gs.errors
    path = tmp_path / "box.obj"
    trimesh.creation.box().export(path)
    (tmp_path / "cloud.xyz").write_text("0 0 0\n")
    bad = [
        (dict(file=str(tmp_path / "none.obj")), errors.InvalidInputError, "no such file"),
        (dict(file=str(tmp_path / "cloud.xyz")), errors.InvalidInputError, "not a mesh format"),
        (dict(file=str(path), scale=0), errors.InvalidInputError, "scale"),
        (dict(file=str(path), convexify=1), errors.InvalidInputError, "convexify"),
        (dict(file=str(path), decompose_object_error_threshold=-1), errors.InvalidInputError, "threshold"),
        (dict(file=str(path), collision=False, visualization=False), errors.InvalidInputError, "neither"),
        (dict(file=str(path), decimate=True, decimate_face_num=4), errors.UnsupportedFeatureError, "decimator"),
        (dict(file=str(path), coacd_options={"thresh": 0.1}), errors.InvalidInputError, "unknown setting"),
        (dict(file=str(path), decompose_nonconvex=True), errors.InvalidInputError, "deprecated"),
        (dict(file=str(path), watertighten=9), errors.InvalidInputError, "watertighten"),
        (dict(file=str(path), bogus=1), errors.InvalidInputError, "unknown argument"),
    ]
    for kwargs, exc, match in bad:
        with pytest.raises(exc, match=match):
            gs.morphs.Mesh(**kwargs)
    # accepted (rendering / FEM / memory arguments) and the defaults of Genesis
    mesh = gs.morphs.Mesh(file=str(path), align=True, batch_fixed_verts=True, order=1, recompute_inertia=True)
    assert mesh.convexify is True and mesh.decompose_object_error_threshold == 0.15 and mesh.contype == 0xFFFF
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Mesh(file=str(path), collision=False))
    scene.build()
    assert scene.rigid_solver.mj_model.geom_contype[0] == 0  # no contact, still its mass
    np.testing.assert_allclose(scene.rigid_solver.mj_model.body_mass[1], 200.0, rtol=1e-6)

"""Bundled mesh equivalents of Genesis' `meshes/cloth.obj`, `sphere.obj` and `axis.obj` (genesis_torch/assets/README.md),
Genesis' default entity names, and Genesis' PBD cloth tutorial scene built from the bundled cloth."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trimesh

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError
from genesis_torch.geometry.grid_mesh import square_grid
from genesis_torch.morphs import resolve_asset


# Genesis 1.4.5's meshes/cloth.obj: 6,400 vertices, 12,482 triangles, flat, x in [-0.2479004, 0.2520996],
# y in [-0.24781714, 0.25218286] (measured with trimesh); meshes/sphere.obj: 642 vertices, 1,280 triangles, radius 1
CLOTH_LOWER, CLOTH_UPPER = (-0.2479004, -0.24781714), (0.2520996, 0.25218286)


def _load(path):
    return trimesh.load(path, process=False, force="mesh")


def test_bundled_cloth_is_the_documented_grid():
    m = _load(resolve_asset("meshes/cloth.obj"))
    verts, faces = square_grid(79, CLOTH_LOWER, CLOTH_UPPER)
    assert (len(m.vertices), len(m.faces)) == (6400, 12482)
    np.testing.assert_allclose(m.vertices, verts, atol=1e-8)
    assert np.array_equal(np.asarray(m.faces), faces)
    assert (m.face_normals[:, 2] > 1 - 1e-12).all()  # every triangle counter-clockwise seen from +z


def test_bundled_sphere_is_a_unit_icosphere():
    m = _load(resolve_asset("meshes/sphere.obj"))
    ref = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    assert (len(m.vertices), len(m.faces)) == (642, 1280) and m.is_watertight
    np.testing.assert_allclose(m.vertices, ref.vertices, atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(m.vertices, axis=1), 1.0, atol=1e-7)


def test_bundled_axis_is_a_frame_triad():
    """Genesis' meshes/axis.obj spans [-0.05, 0.97]^3 (a frame marker); ours: a 0.1 m cube at the origin and three
    0.04 m square arms along +x, +y, +z to 0.97 m, touching, not overlapping: volume 1e-3 + 3 (0.92 x 0.04^2)."""
    m = _load(resolve_asset("meshes/axis.obj"))
    np.testing.assert_allclose(m.bounds, [[-0.05] * 3, [0.97] * 3], atol=1e-12)
    assert abs(m.volume - (1e-3 + 3 * 0.92 * 0.04 ** 2)) < 1e-12


def test_square_grid_shapes_and_validation():
    v, f = square_grid(3, (0.0, 0.0), (3.0, 6.0))
    assert v.shape == (16, 3) and f.shape == (18, 3) and f.max() == 15
    assert np.allclose(v[5], (1.0, 2.0, 0.0))  # vertex (i=1, j=1) is row 1 * 4 + 1
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1).sum()
    assert abs(area - 18.0) < 1e-12
    with pytest.raises(InvalidInputError, match="positive integer"):
        square_grid(0)


def test_mesh_morph_resolves_genesis_mesh_paths(tmp_path):
    cloth = gs.morphs.Mesh(file="meshes/cloth.obj", scale=2.0)
    assert os.path.samefile(cloth.file, resolve_asset("meshes/cloth.obj"))
    with pytest.raises(InvalidInputError, match="does not bundle"):
        gs.morphs.Mesh(file="meshes/duck.obj")  # a Genesis asset with no equivalent here: the error names the fix
    own = tmp_path / "meshes"
    own.mkdir()
    trimesh.creation.box().export(own / "cloth.obj")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:  # a file of that relative path that exists is the user's own, used as given
        assert os.path.samefile(gs.morphs.Mesh(file="meshes/cloth.obj").file, own / "cloth.obj")
    finally:
        os.chdir(cwd)


def test_default_names_follow_genesis(gs_cpu):
    scene = gs.Scene()
    plane = scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
    go2 = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf"))
    cloth = scene.add_entity(gs.morphs.Mesh(file="meshes/cloth.obj"), material=gs.materials.PBD.Cloth())
    named = scene.add_entity(gs.morphs.Box(pos=(0, 0, 1)), name="crate")
    model = {"mjcf": _root_attr(franka.morph.file, "model"), "urdf": _root_attr(go2.morph.file, "name")}
    assert plane.name == f"plane_{plane.uid.short()}"
    assert franka.name == f"{model['mjcf']}_{franka.uid.short()}"
    assert go2.name == f"{model['urdf']}_{go2.uid.short()}"
    assert cloth.name == f"pbd_cloth_{cloth.uid.short()}"
    assert named.name == "crate" and scene.get_entity(franka.name) is franka


def _root_attr(path, attr):
    import xml.etree.ElementTree as ET

    return ET.parse(path).getroot().get(attr)


def test_genesis_cloth_tutorial_scene(gs_cpu):
    """Genesis' PBD cloth tutorial: meshes/cloth.obj at scale 2 (a 1 m square, 80 x 80 vertices) pinned at its
    corners, found with find_closest_particle; pinned particles stay, the rest sags under gravity."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, substeps=10))
    scene.add_entity(gs.morphs.Plane())
    cloth = scene.add_entity(gs.morphs.Mesh(file="meshes/cloth.obj", scale=2.0, pos=(0, 0, 0.5)),
                             material=gs.materials.PBD.Cloth())
    scene.build()
    assert cloth.n_particles == 6400
    corners = [cloth.find_closest_particle(p) for p in ((-1, -1, 1.0), (1, 1, 1.0), (-1, 1, 1.0), (1, -1, 1.0))]
    assert len(set(corners)) == 4
    before = cloth.get_particles_pos()[corners].clone()
    assert np.allclose(before[:, :2].abs().numpy(), 0.5, atol=6e-3)  # the square's corners (1 m cloth)
    for i in corners:
        cloth.fix_particles(i)
    for _ in range(5):
        scene.step()
    after = cloth.get_particles_pos()
    assert float((after[corners] - before).abs().max()) == 0.0
    assert float(after[:, 2].mean()) < 0.5

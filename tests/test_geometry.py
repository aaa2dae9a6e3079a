"""The geometry layer (genesis_torch.geometry): Box's two forms, particle counts and spacing per morph, the mesh loader
for each file format, inside tests and signed distances against analytic spheres and boxes, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import genesis_torch as gs
from genesis_torch import geometry
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError
from genesis_torch.geometry import volume

H = 0.05  # particle spacing, m


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def _box_sdf(p: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Exact signed distance (m, < 0 inside) of points (n, 3) to the box [-half, half]."""
    q = np.abs(p) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)


# ---------------------------------------------------------------- Box: pos/size and lower/upper


def test_box_corners_give_pos_and_size():
    a = gs.morphs.Box(lower=(0.1, -0.2, 0.0), upper=(0.3, 0.2, 0.5), euler=(0, 0, 30))
    b = gs.morphs.Box(pos=(0.2, 0.0, 0.25), size=(0.2, 0.4, 0.5), euler=(0, 0, 30))
    np.testing.assert_allclose(a.pos, b.pos, atol=1e-15)
    np.testing.assert_allclose(a.size, b.size, atol=1e-15)
    np.testing.assert_allclose(a.lower, (0.1, -0.2, 0.0), atol=1e-15)
    np.testing.assert_allclose(b.upper, (0.3, 0.2, 0.5), atol=1e-15)
    assert set(a.fingerprint()) == {"type", "pos", "quat", "fixed", "size"}  # checkpoints: the same fields as before
    assert gs.morphs.Box().size == (1.0, 1.0, 1.0) and gs.morphs.Box().pos == (0.0, 0.0, 0.0)
    # both forms at once: accepted when they agree
    c = gs.morphs.Box(pos=(0.2, 0.0, 0.25), size=(0.2, 0.4, 0.5), lower=(0.1, -0.2, 0.0), upper=(0.3, 0.2, 0.5))
    assert c.pos == a.pos and c.size == a.size


@pytest.mark.parametrize("kwargs, match", [
    (dict(lower=(0, 0, 0)), "both corners"),
    (dict(upper=(1, 1, 1)), "both corners"),
    (dict(lower=(0, 0, 0), upper=(1, 0, 1)), "exceed"),
    (dict(lower=(0, 0, 0), upper=(1, 1)), "upper"),
    (dict(lower=(0, 0, float("nan")), upper=(1, 1, 1)), "lower"),
    (dict(lower=(0, 0, 0), upper=(1, 1, 1), size=(2, 1, 1)), "size"),
    (dict(lower=(0, 0, 0), upper=(1, 1, 1), pos=(0, 0, 0)), "pos"),
    (dict(size=(1, 0, 1)), "size"),
    (dict(lowr=(0, 0, 0)), "lowr"),
])
def test_box_errors(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        gs.morphs.Box(**kwargs)


def test_box_forms_sample_and_build_the_same():
    a = gs.morphs.Box(lower=(0.125, 0.25, 0.25), upper=(0.375, 0.5, 0.375))  # binary fractions: exact sizes
    b = gs.morphs.Box(pos=(0.25, 0.375, 0.3125), size=(0.25, 0.25, 0.125))
    assert (a.pos, a.size) == (b.pos, b.size)
    for sampler in geometry.SAMPLERS:
        pa = geometry.sample_particles(a, H / 2, sampler=sampler, seed=1)
        assert _bits_equal(pa, geometry.sample_particles(b, H / 2, sampler=sampler, seed=1))
    ga, gb = a.to_spec().compile(), b.to_spec().compile()
    np.testing.assert_allclose(ga.geom_size, gb.geom_size, atol=1e-15)
    np.testing.assert_allclose(ga.body_mass, gb.body_mass, rtol=1e-13)


# ---------------------------------------------------------------- particles


def test_regular_counts_and_spacing_per_morph():
    box = geometry.sample_particles(gs.morphs.Box(size=(0.2, 0.3, 0.4)), H)
    assert len(box) == 4 * 6 * 8
    axes = [np.unique(box[:, i].round(12)) for i in range(3)]
    for ax in axes:
        np.testing.assert_allclose(np.diff(ax), H, atol=1e-12)  # spacing h on every axis, centred on the box
        np.testing.assert_allclose(ax.mean(), 0.0, atol=1e-12)
    # a sphere of radius 2 h: lattice points of (-1.5..1.5)^3 h within 2 h; a cylinder of radius 2 h, height 4 h
    assert len(geometry.sample_particles(gs.morphs.Sphere(radius=2 * H), H)) == 32
    assert len(geometry.sample_particles(gs.morphs.Cylinder(radius=2 * H, height=4 * H), H)) == 12 * 4


def test_sampling_applies_the_pose():
    box = gs.morphs.Box(pos=(1.0, 2.0, 3.0), size=(0.2, 0.3, 0.4), euler=(10, 20, 30))
    p = geometry.sample_particles(box, H)
    local = (p - np.asarray(box.pos)) @ geometry.surface.pose_matrix(box)
    assert np.all(np.abs(local) <= np.asarray(box.size) / 2 + 1e-12)
    np.testing.assert_allclose(p.mean(0), box.pos, atol=1e-12)


def test_random_sampling_density_and_seed():
    sphere = gs.morphs.Sphere(radius=0.2)
    p = geometry.sample_particles(sphere, 0.01, sampler="random", seed=3)
    expected = 4 / 3 * np.pi * 0.2 ** 3 / 0.01 ** 3  # one particle per h^3 cell on average
    assert abs(len(p) - expected) < 4 * np.sqrt(expected)  # binomial: within 4 sigma
    assert np.all(np.linalg.norm(p, axis=1) <= 0.2 + 1e-12)
    assert _bits_equal(p, geometry.sample_particles(sphere, 0.01, sampler="random", seed=3))
    assert not np.array_equal(p[:10], geometry.sample_particles(sphere, 0.01, sampler="random", seed=4)[:10])


def _write(mesh: trimesh.Trimesh, path) -> str:
    mesh.export(str(path))
    return str(path)


@pytest.mark.parametrize("ext", [".obj", ".stl", ".ply", ".glb"])
def test_mesh_formats_load_and_sample_like_the_box(tmp_path, ext):
    """A (0.2, 0.3, 0.4) box mesh in each format samples as the Box morph; a GLB file (Y-up) is turned Z-up."""
    box_mesh = trimesh.creation.box(extents=(0.2, 0.3, 0.4))
    if ext == ".glb":  # store it Y-up, as glTF does: (x, y, z) -> (x, z, -y) turns back to the same box
        box_mesh = trimesh.Trimesh(box_mesh.vertices[:, [0, 2, 1]] * (1, 1, -1), box_mesh.faces[:, ::-1])
    mesh = gs.morphs.Mesh(file=_write(box_mesh, tmp_path / f"box{ext}"), pos=(0.5, 0.5, 0.5))
    box = gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.2, 0.3, 0.4))
    np.testing.assert_allclose(geometry.surface_mesh(mesh).bounds, geometry.surface_mesh(box).bounds, atol=1e-12)
    pm, pb = geometry.sample_particles(mesh, H), geometry.sample_particles(box, H)
    assert len(pm) == len(pb) == 4 * 6 * 8
    np.testing.assert_allclose(np.sort(pm, 0), np.sort(pb, 0), atol=1e-12)


def test_mesh_sphere_samples_as_the_sphere(tmp_path):
    """An icosphere mesh holds the analytic sphere's lattice points except those in the thin shell it cuts off."""
    r = 0.2
    path = _write(trimesh.creation.icosphere(subdivisions=4, radius=r), tmp_path / "sphere.stl")
    pm = geometry.sample_particles(gs.morphs.Mesh(file=path), 0.02)
    ps = geometry.sample_particles(gs.morphs.Sphere(radius=r), 0.02)
    kept = {tuple(v) for v in ps.round(9)}
    assert all(tuple(v) in kept for v in pm.round(9))  # the mesh is inscribed: no point outside the sphere
    shell = np.linalg.norm(ps, axis=1) > r * (1 - 2e-3)  # icosphere(4) lies within 0.2% of r
    assert len(pm) >= len(ps) - shell.sum()


# ---------------------------------------------------------------- surfaces, inside test, signed distance


def test_surfaces_of_primitives():
    for morph, volume_m3 in ((gs.morphs.Box(pos=(1, 0, 0), size=(0.2, 0.3, 0.4), euler=(0, 30, 0)), 0.024),
                             (gs.morphs.Sphere(pos=(0, 1, 0), radius=0.1), 4 / 3 * np.pi * 1e-3),
                             (gs.morphs.Cylinder(pos=(0, 0, 1), radius=0.1, height=0.2), np.pi * 2e-3)):
        surf = geometry.surface_mesh(morph)
        assert surf.is_watertight and surf.is_winding_consistent and surf.volume > 0  # closed, wound outwards
        np.testing.assert_allclose(surf.volume, volume_m3, rtol=2e-2)  # sphere/cylinder: polygonal, within 2%
        np.testing.assert_allclose(surf.bounds.mean(0), morph.pos, atol=1e-12)
    assert len(geometry.surface_mesh(gs.morphs.Box()).faces) == 12


def test_contains_matches_analytic_sphere_and_box():
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.6, 0.6, (20000, 3))
    r = 0.5
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=r)  # 5,120 triangles, within 0.2% of r
    far = np.abs(np.linalg.norm(p, axis=1) - r) > 2e-3 * r
    inside = geometry.contains(sphere, p)
    np.testing.assert_array_equal(inside[far], (np.linalg.norm(p, axis=1) < r)[far])
    half = np.array([0.2, 0.3, 0.4])
    box = trimesh.creation.box(extents=2 * half)
    sd = _box_sdf(p, half)
    np.testing.assert_array_equal(geometry.contains(box, p)[np.abs(sd) > 1e-9], (sd < 0)[np.abs(sd) > 1e-9])
    assert geometry.contains(box, np.zeros((0, 3))).shape == (0,)


def test_signed_distance_sign_and_magnitude():
    rng = np.random.default_rng(1)
    p = rng.uniform(-0.8, 0.8, (3000, 3))
    r = 0.5
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=r)
    exact = np.linalg.norm(p, axis=1) - r
    sd = geometry.signed_distance(sphere, p)
    np.testing.assert_allclose(sd, exact, atol=2e-3 * r)  # the faces lie within 0.2% of the sphere
    far = np.abs(exact) > 2e-3 * r
    np.testing.assert_array_equal(np.sign(sd[far]), np.sign(exact[far]))  # negative inside
    half = np.array([0.2, 0.3, 0.4])
    np.testing.assert_allclose(geometry.signed_distance(trimesh.creation.box(extents=2 * half), p), _box_sdf(p, half),
                               atol=1e-12)  # exact for a box


# ---------------------------------------------------------------- errors and the tetrahedra interface


@pytest.mark.parametrize("call, match", [
    (lambda: geometry.sample_particles(gs.morphs.Plane(), H), "Box, Sphere, Cylinder or Mesh"),
    (lambda: geometry.sample_particles(gs.morphs.Box(), 0.0), "particle_size"),
    (lambda: geometry.sample_particles(gs.morphs.Box(), True), "particle_size"),
    (lambda: geometry.sample_particles(gs.morphs.Box(), H, sampler="pbs"), "sampler"),
    (lambda: geometry.sample_particles(gs.morphs.Box(), H, seed=-1), "seed"),
    (lambda: geometry.surface_mesh(gs.morphs.Sphere(), sphere_subdivisions=-1), "sphere_subdivisions"),
    (lambda: geometry.surface_mesh(gs.morphs.Cylinder(), cylinder_sections=2), "cylinder_sections"),
    (lambda: geometry.contains(trimesh.creation.box(), np.zeros((4, 2))), "shape"),
    (lambda: geometry.contains(trimesh.creation.box(), [[0, 0, float("inf")]]), "finite"),
    (lambda: geometry.signed_distance(np.zeros((3, 3)), np.zeros((1, 3))), "trimesh.Trimesh"),
    (lambda: geometry.tetrahedralize(gs.morphs.Plane()), "Box, Sphere, Cylinder or Mesh"),
])
def test_errors(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_a_morph_without_particles_is_refused(tmp_path):
    ring = _write(trimesh.creation.annulus(r_min=0.2, r_max=0.25, height=0.02), tmp_path / "ring.ply")
    with pytest.raises(InvalidInputError, match="no particle"):  # the one lattice point, at the centre, is outside
        geometry.sample_particles(gs.morphs.Mesh(file=ring), 1.0)


def test_tetrahedralize_names_the_missing_extra(monkeypatch):
    monkeypatch.setattr(volume.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UnsupportedFeatureError, match="tetgen.*pytetwild"):
        geometry.tetrahedralize(gs.morphs.Box())
    with pytest.raises(UnsupportedFeatureError, match=r"genesis-torch\[fem\]"):
        geometry.tetrahedralize(gs.morphs.Sphere())

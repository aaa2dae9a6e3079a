"""Rigid mesh geoms as MPM colliders (solvers/mpm/colliders.py, geometry/sdf_grid.py): a mesh box acts as the
primitive box, a mesh icosphere as the sphere it approximates (deflecting a falling block), gradients through a mesh
collider match central differences (float64), and the sampled SDF itself against the analytic one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError
from genesis_torch.geometry.sdf_grid import build_sdf_grid, sdf_lookup
from genesis_torch.math.sdf import primitive_sdf

from ..conftest import cpu_runtime

trimesh = pytest.importorskip("trimesh")

DX = 1 / 40
RADIUS = 0.08
CENTRE = (0.0, 0.0, 0.16)


@pytest.fixture(scope="module")
def meshes(tmp_path_factory):
    d = tmp_path_factory.mktemp("mesh_collider")
    trimesh.creation.box(extents=(0.2, 0.2, 0.1)).export(d / "box.obj")
    ico = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    ico.export(d / "ico.obj")
    # the icosphere's largest gap to its sphere: r minus the smallest distance of a face plane from the centre
    sag = RADIUS - float(np.abs((ico.triangles_center * ico.face_normals).sum(1)).min())
    return {"box": str(d / "box.obj"), "ico": str(d / "ico.obj"), "sag": sag}


def drop(rigid, steps: int, x_off: float = 0.03, v0=None, E=None, requires_grad: bool = False):
    """An elastic 8 cm block (216 particles) dropped from 0.32 m onto a fixed rigid entity; (final positions,
    velocities) `(n, 3)` after `steps` steps of 1 ms (float64 runtime of the caller)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-3, requires_grad=requires_grad),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.3, -0.3, 0.0), upper_bound=(0.3, 0.3, 0.5),
                                                       grid_density=1 / DX, particle_size=DX / 2),
                     show_viewer=False)
    scene.add_entity(rigid)
    block = scene.add_entity(gs.morphs.Box(pos=(x_off, 0.0, 0.32), size=(0.08, 0.08, 0.08)),
                             material=gs.materials.MPM.Elastic(E=3e4, nu=0.3, rho=1000.0))
    scene.build()
    if v0 is not None:
        block.set_velocity(v0)
    if E is not None:
        block.set_material_params(E=E)
    for _ in range(steps):
        scene.step()
    return block.get_particles_pos(), block.get_particles_vel()


def test_mesh_box_acts_as_the_primitive_box(meshes):
    """Same scene with a fixed `gs.morphs.Box` and a fixed `gs.morphs.Mesh` of the same box: the block lands on the
    middle of the top face, where every SDF cell sees one face, so the trilinear SDF is the box's exactly (a linear
    field) and the positions agree to round-off (tolerance 1e-12 m; measured 1.1e-16 m)."""
    with cpu_runtime("64"):
        prim, prim_v = drop(gs.morphs.Box(pos=CENTRE, size=(0.2, 0.2, 0.1), fixed=True), 140)
        mesh, _ = drop(gs.morphs.Mesh(file=meshes["box"], pos=CENTRE, fixed=True), 140)
    # precondition: at 140 ms the block is on the top face (z = 0.21 m), rebounding (it hit it at ~1 m/s)
    assert 0.21 < float(prim[:, 2].min()) < 0.21 + DX and float(prim_v[:, 2].mean()) > 0.1
    assert (prim - mesh).abs().max() < 1e-12


def test_mesh_sphere_deflects_a_falling_block(meshes):
    """A block dropped 4 cm off the axis of a fixed icosphere (1,280 faces) slides off sideways (centre-of-mass
    velocity +x, none in free fall), no particle enters the sphere, and the outcome is the primitive sphere's to
    within the icosphere's facet sag (their SDFs differ by at most the sag; measured: 5.9e-5 m vs a sag of 3.6e-4 m,
    centres of mass 2.5e-5 m apart)."""
    with cpu_runtime("64"):
        prim_x, prim_v = drop(gs.morphs.Sphere(pos=CENTRE, radius=RADIUS, fixed=True), 250, x_off=0.04)
        x, v = drop(gs.morphs.Mesh(file=meshes["ico"], pos=CENTRE, fixed=True), 250, x_off=0.04)
    assert float(v[:, 0].mean()) > 0.3, "the block is deflected away from the sphere (+x)"
    assert float(x[:, 0].mean()) > 0.1
    r = (x - torch.tensor(CENTRE, dtype=x.dtype)).norm(dim=-1)
    assert float(r.min()) > RADIUS
    assert (x - prim_x).abs().max() < meshes["sag"]
    assert (x.mean(0) - prim_x.mean(0)).norm() < 0.2 * meshes["sag"]


def test_mjcf_mesh_geom_is_a_collider(meshes, tmp_path):
    """The icosphere as a mesh geom of an MJCF body (MuJoCo loads the file itself): the same deflection as the
    `gs.morphs.Mesh` icosphere, to within the facet sag of the primitive sphere."""
    xml = tmp_path / "ico.xml"
    xml.write_text(f"""<mujoco><asset><mesh name="ico" file="{meshes['ico']}"/></asset><worldbody>
        <body name="ball" pos="{CENTRE[0]} {CENTRE[1]} {CENTRE[2]}"><geom type="mesh" mesh="ico"/></body>
        </worldbody></mujoco>""")
    with cpu_runtime("64"):
        prim_x, _ = drop(gs.morphs.Sphere(pos=CENTRE, radius=RADIUS, fixed=True), 250, x_off=0.04)
        x, v = drop(gs.morphs.MJCF(file=str(xml)), 250, x_off=0.04)
    assert float(v[:, 0].mean()) > 0.3
    assert (x - prim_x).abs().max() < meshes["sag"]


def test_gradients_through_a_mesh_collider_match_central_differences(meshes):
    """Loss = sum w . x of a block in contact with the mesh box for 40 steps (started 1 cm above it, moving down),
    float64: d loss / d initial velocity and d loss / d E against central differences along a random direction."""
    g = torch.Generator().manual_seed(0)
    with cpu_runtime("64"):
        rigid = gs.morphs.Mesh(file=meshes["box"], pos=(0.0, 0.0, 0.22), fixed=True)  # top face at 0.27 m

        def loss(v0, E):
            x, _ = drop(rigid, 40, v0=v0, E=E, requires_grad=True)
            return (x * w).sum()

        n = 216
        w = torch.randn(n, 3, generator=g, dtype=torch.float64)
        v0 = (torch.tensor([0.0, 0.0, -1.5], dtype=torch.float64) + 0.2 * torch.randn(n, 3, generator=g,
                                                                                     dtype=torch.float64))
        v0.requires_grad_()
        E = torch.tensor(3e4, dtype=torch.float64, requires_grad=True)
        out = loss(v0, E)
        out.backward()
        with torch.no_grad():
            d = torch.randn(n, 3, generator=g, dtype=torch.float64)
            eps = 1e-6
            fd_v = (loss(v0 + eps * d, E) - loss(v0 - eps * d, E)) / (2 * eps)
            fd_E = (loss(v0, E + 1e-2) - loss(v0, E - 1e-2)) / 2e-2
    assert abs((v0.grad * d).sum() - fd_v) <= 1e-4 * abs(fd_v), ((v0.grad * d).sum().item(), fd_v.item())
    assert abs(E.grad - fd_E) <= 1e-4 * abs(fd_E), (E.grad.item(), fd_E.item())


def test_sdf_grid_matches_the_analytic_distance():
    """Sampled + trilinear SDF of a box mesh and an icosphere against `primitive_sdf`: exact (round-off) for the
    box where a whole cell sees one face, within the facet sag + O(cell^2 / r) near the icosphere's surface;
    normals there within 0.1 rad; the gradient in the query points is finite; bad meshes raise."""
    box = trimesh.creation.box(extents=(0.2, 0.2, 0.1))
    grid = build_sdf_grid(box.vertices, box.faces, 1 / 64)
    q = torch.tensor([[0.01, -0.02, 0.04], [0.03, 0.02, -0.045], [-0.02, 0.0, 0.06], [0.0, 0.01, 0.07]],
                     dtype=torch.float64, requires_grad=True)  # each a cell's width from every edge
    phi, n = sdf_lookup(grid, q)
    want, want_n = primitive_sdf("box", q.detach(), torch.tensor([0.1, 0.1, 0.05], dtype=torch.float64))
    assert (phi - want).abs().max() < 1e-12 and (n - want_n).abs().max() < 1e-9
    phi.sum().backward()
    assert torch.isfinite(q.grad).all()
    ico = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    grid = build_sdf_grid(ico.vertices, ico.faces, 1 / 64)
    q = torch.randn(2000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    q = q / q.norm(dim=-1, keepdim=True) * (RADIUS + 0.01 * (2 * torch.rand(2000, 1, dtype=torch.float64) - 1))
    phi, n = sdf_lookup(grid, q)
    want, want_n = primitive_sdf("sphere", q, torch.tensor([RADIUS], dtype=torch.float64))
    assert (phi - want).abs().max() < 1e-3  # sag 3.6e-4 m + interpolation, cells of 5.6 mm
    assert ((n * want_n).sum(-1).clamp(max=1).acos()).max() < 0.1
    with pytest.raises(InvalidInputError, match="watertight"):
        build_sdf_grid(box.vertices, box.faces[:-1], 1 / 64)
    with pytest.raises(InvalidInputError, match="cell_target"):
        build_sdf_grid(box.vertices, box.faces, 0.0)

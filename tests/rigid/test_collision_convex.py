"""Convex narrow phase (`collision/convex.py`) against MuJoCo 4.0.0's `mj_collision`.

Each test builds a small MJCF with pairs of free bodies at seeded random poses (penetrating, within the margin and
apart), runs MuJoCo's kinematics and collision, and feeds the same geom poses (`geom_xpos`, `geom_xmat`), sizes and
pair margins (MuJoCo 4 adds the two geoms' margins) to our functions.

Measured agreement (float64), see the module docstring of convex.py for why:
* plane-mesh: every slot and the slot order equal MuJoCo's to rounding (~1e-16).
* contacts found by EPA on shapes without margin (ellipsoid with ellipsoid/box/cylinder/mesh, mesh-mesh with
  MuJoCo reporting one contact): dist, normal and position to ~1e-10 (the same polytope, face by face).
* contacts from the GJK distance pass (spheres, capsules, geoms with a margin): dist to ~1e-9, normal to ~3e-5
  (median ~1e-10): near convergence on a curved surface the simplex is a tiny, badly conditioned triangle and the
  last digits of the iterates (and so where GJK stops) depend on rounding; MuJoCo's own error against the exact
  closest points is of the same size. Against flat faces (sphere/capsule-mesh) they agree to ~1e-12.
* pairs for which MuJoCo 4 reports several contacts (box/mesh face clipping, cylinder caps, capsule edges): we give
  one contact (the deepest, by EPA); for box/mesh pairs its distance agrees with MuJoCo's to ~1e-3 and its normal
  to ~10 degrees; cylinder face contacts can differ by centimetres (not asserted).
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.solvers.rigid.collision import convex as C
from genesis_torch.solvers.rigid.collision.types import GeomBatch


def _prism(k, r=0.1, h=0.05):
    ang = np.arange(k) * 2 * np.pi / k
    ring = np.stack([r * np.cos(ang), r * np.sin(ang)], 1)
    return np.concatenate([np.c_[ring, -h * np.ones(k)], np.c_[ring, h * np.ones(k)]])


MESHES = {
    "tet": np.array([[0, 0, 0], [0.12, 0, 0], [0, 0.1, 0], [0, 0, 0.11]]) - 0.03,
    "oct": np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]) * [0.08, 0.07, 0.1],
    "boxm": np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * [0.1, 0.07, 0.05],
    "cloud": np.random.default_rng(5).normal(size=(40, 3)) * 0.05,  # hull of a point cloud (interior points too)
    "p8": _prism(8),
    "p12": _prism(12),
}
ASSET = "".join(f'<mesh name="{k}" vertex="{" ".join(f"{x:.6f}" for x in v.ravel())}"/>' for k, v in MESHES.items())
GEOMS = {
    "sphere": 'type="sphere" size="0.07"', "capsule": 'type="capsule" size="0.04 0.07"',
    "ellipsoid": 'type="ellipsoid" size="0.05 0.08 0.11"', "cylinder": 'type="cylinder" size="0.06 0.08"',
    "box": 'type="box" size="0.05 0.07 0.09"', **{k: f'type="mesh" mesh="{k}"' for k in MESHES},
}
DT = torch.float64


@pytest.fixture(autouse=True)
def _threads(single_thread):
    yield


def _randquat(rng):
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def _pair_scene(n1, n2, n, seed, margin):
    """n pairs (geom 2i of kind n1, geom 2i+1 of kind n2) at random relative poses; MuJoCo's contacts by pair."""
    rng = np.random.default_rng(seed)
    bodies = "".join(f'<body pos="{2 * i} 0 0"><freejoint/><geom {GEOMS[n1]} margin="{margin}"/></body>'
                     f'<body pos="{2 * i} 1 0"><freejoint/><geom {GEOMS[n2]} margin="{margin}"/></body>'
                     for i in range(n))
    m = mujoco.MjModel.from_xml_string(f"<mujoco><asset>{ASSET}</asset><worldbody>{bodies}</worldbody></mujoco>")
    d = mujoco.MjData(m)
    for i in range(n):
        a1, a2 = m.jnt_qposadr[2 * i], m.jnt_qposadr[2 * i + 1]
        d.qpos[a1:a1 + 7] = [2 * i, 0, 0, *_randquat(rng)]
        u = rng.normal(size=3)
        d.qpos[a2:a2 + 3] = np.array([2 * i, 0, 0]) + u / np.linalg.norm(u) * rng.uniform(0.5, 1.6) * 0.15
        d.qpos[a2 + 3:a2 + 7] = _randquat(rng)
    mujoco.mj_kinematics(m, d)
    mujoco.mj_collision(m, d)
    g1, g2 = np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)
    if m.geom_type[0] > m.geom_type[1]:  # geom 1 has the lower type, as MuJoCo orders them
        g1, g2 = g2, g1
    contacts = {}
    for c in d.contact[:d.ncon]:
        contacts.setdefault(tuple(sorted(c.geom)), []).append(c)
    return m, d, g1, g2, [contacts.get(tuple(sorted((a, b))), []) for a, b in zip(g1, g2)]


def _batch(m, d, ids, dtype=DT, grad=False):
    kind = int(m.geom_type[ids[0]])
    hull = C.mesh_hull_vertices(m, ids, "cpu", dtype) if kind == C.MESH else (None, None)
    pos = torch.tensor(d.geom_xpos[ids], dtype=dtype)[None].requires_grad_(grad)
    mat = torch.tensor(d.geom_xmat[ids], dtype=dtype).reshape(1, -1, 3, 3).requires_grad_(grad)
    return GeomBatch(pos, mat, torch.tensor(m.geom_size[ids], dtype=dtype), *hull)


def _run(m, d, g1, g2, dtype=DT):
    fn = C.FUNCTIONS[(int(m.geom_type[g1[0]]), int(m.geom_type[g2[0]]))]
    margin = torch.tensor(m.geom_margin[g1] + m.geom_margin[g2], dtype=dtype)
    return fn(_batch(m, d, g1, dtype), _batch(m, d, g2, dtype), margin)


# ------------------------------------------------------------------------------------------------ mesh data

def test_mesh_hull_vertices_are_in_the_geom_frame():
    """mesh_vert (MuJoCo's compiled frame) placed with geom_xpos/xmat reproduces the hull of the input vertices
    posed by the body and geom frames; interior points of the cloud are dropped."""
    pts = MESHES["cloud"] + [0.3, -0.2, 0.1]
    xml = (f'<mujoco><asset><mesh name="m" vertex="{" ".join(f"{x:.6f}" for x in pts.ravel())}"/></asset>'
           '<worldbody><body pos="0.1 0.2 0.3" quat="0.8 0.2 0.3 0.1"><freejoint/>'
           '<geom type="mesh" mesh="m" pos="0.05 0 0" euler="10 20 30"/></body></worldbody></mujoco>')
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    verts, valid = C.mesh_hull_vertices(m, [0], "cpu", DT)
    assert valid.sum() < len(pts) and valid.sum() == m.mesh_graph[m.mesh_graphadr[0]]
    world = verts[0, valid[0]].numpy() @ d.geom_xmat[0].reshape(3, 3).T + d.geom_xpos[0]
    gq = np.zeros(4)
    mujoco.mju_euler2Quat(gq, np.radians([10, 20, 30]), "xyz")
    rg, rb = np.zeros(9), np.zeros(9)
    mujoco.mju_quat2Mat(rg, gq)
    mujoco.mju_quat2Mat(rb, d.xquat[1])
    posed = (pts @ rg.reshape(3, 3).T + [0.05, 0, 0]) @ rb.reshape(3, 3).T + d.xpos[1]
    for u in np.random.default_rng(0).normal(size=(50, 3)):
        assert abs((world @ u).max() - (posed @ u).max()) < 1e-6 * np.linalg.norm(u)  # mesh_vert is float32


def test_support_points():
    """Support points lie on the shape and are the farthest of many surface samples along their direction."""
    rng = np.random.default_rng(1)
    P, B = 4, 3
    sizes = {C.SPHERE: [0.1, 0, 0], C.CAPSULE: [0.05, 0.1, 0], C.ELLIPSOID: [0.05, 0.08, 0.12],
             C.CYLINDER: [0.06, 0.09, 0], C.BOX: [0.05, 0.07, 0.09]}
    q = torch.tensor(np.array([[_randquat(rng) for _ in range(P)] for _ in range(B)]))
    from genesis_torch.math.quat import quat_to_mat
    mat, pos = quat_to_mat(q), torch.tensor(rng.normal(size=(B, P, 3)))
    u = torch.tensor(rng.normal(size=(B, P, 3)))
    u = u / u.norm(dim=-1, keepdim=True)
    s = torch.tensor(rng.normal(size=(1500, 3)))  # surface samples in the local frame, per kind
    s = s / s.norm(dim=-1, keepdim=True)
    for kind, size in sizes.items():
        g = GeomBatch(pos, mat, torch.tensor([size] * P, dtype=DT))
        sp = C.support(kind, g, u)
        a, b, c = size
        if kind == C.SPHERE:
            local = a * s
        elif kind == C.CAPSULE:
            local = a * s + torch.tensor([0, 0, b], dtype=DT) * torch.sign(s[:, 2:3])
        elif kind == C.ELLIPSOID:
            local = s * torch.tensor([a, b, c], dtype=DT)
        elif kind == C.CYLINDER:
            r = s[:, :2] / s[:, :2].norm(dim=-1, keepdim=True) * a
            local = torch.cat((r, torch.sign(s[:, 2:3]) * b), -1)
        else:
            local = torch.sign(s) * torch.tensor([a, b, c], dtype=DT)
        world = pos[..., None, :] + (mat[..., None, :, :] * local[:, None, :]).sum(-1)  # (B, P, S, 3)
        best = (world * u[..., None, :]).sum(-1).max(-1).values
        h = (sp * u).sum(-1)
        assert (h >= best - 1e-12).all() and (h - best < 2e-3).all(), kind
    verts, valid = C.mesh_hull_vertices(*_pair_scene("cloud", "tet", 2, 0, 0.0)[:1], [0, 0, 0, 0], "cpu", DT)
    g = GeomBatch(pos, mat, torch.zeros(P, 3, dtype=DT), verts, valid)
    world = pos[..., None, :] + (mat[..., None, :, :] * verts[None, :, :, None, :]).sum(-1)
    h = (world * u[..., None, :]).sum(-1).masked_fill(~valid, -np.inf).max(-1).values
    torch.testing.assert_close((C.support(C.MESH, g, u) * u).sum(-1), h, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------------ plane - mesh

def test_plane_mesh_matches_mujoco():
    """Every slot (deepest vertex, then MuJoCo 4's quadrilateral of the support polygon) and the slot order."""
    rng = np.random.default_rng(0)
    names = ["tet", "boxm", "p8", "p12", "cloud"]
    n = 30
    bodies = "".join(f'<body pos="{i} 0 0"><freejoint/><geom type="mesh" mesh="{names[i % 5]}" '
                     f'margin="{0.01 if i % 3 == 0 else 0}"/></body>' for i in range(n))
    m = mujoco.MjModel.from_xml_string(f'<mujoco><asset>{ASSET}</asset><worldbody>'
                                       f'<geom type="plane" size="0 0 1" quat="0.99 0.05 -0.08 0.3"/>'
                                       f'{bodies}</worldbody></mujoco>')
    d = mujoco.MjData(m)
    for i in range(n):
        a = m.jnt_qposadr[i]
        q = _randquat(rng) if i % 4 else np.array([1, 0, 0, 0]) + 0.02 * rng.normal(size=4)
        d.qpos[a:a + 7] = [i, 0, rng.uniform(-0.03, 0.12), *(q / np.linalg.norm(q))]
    mujoco.mj_kinematics(m, d)
    mujoco.mj_collision(m, d)
    gids = np.arange(1, n + 1)
    plane = _batch(m, d, np.zeros(n, dtype=int))
    mesh = _batch(m, d, gids)
    mesh.polygons = C.mesh_polygons(m, gids, "cpu", DT)
    c = C.plane_mesh(plane, mesh, torch.tensor(m.geom_margin[0] + m.geom_margin[gids]))
    theirs = {}
    for con in d.contact[:d.ncon]:
        theirs.setdefault(con.geom[1], []).append(con)
    assert d.ncon > n
    for p, g in enumerate(gids):
        ours = [k for k in range(4) if c.valid[0, p, k]]
        assert len(ours) == len(theirs.get(g, [])), p
        for k, con in zip(ours, theirs.get(g, [])):
            assert abs(c.dist[0, p, k].item() - con.dist) < 1e-12
            np.testing.assert_allclose(c.pos[0, p, k].numpy(), con.pos, rtol=0, atol=1e-12)
            np.testing.assert_allclose(c.normal[0, p, k].numpy(), con.frame[:3], rtol=0, atol=1e-12)
    # without polygon data: only the deepest vertex
    c0 = C.plane_mesh(plane, _batch(m, d, gids), torch.tensor(m.geom_margin[0] + m.geom_margin[gids]))
    assert torch.equal(c0.valid[..., 0], c.valid[..., 0]) and not c0.valid[..., 1:].any()
    assert torch.equal(c0.dist[..., 0], c.dist[..., 0])


# ------------------------------------------------------------------------------------------------ convex - convex

# (kind 1, kind 2, margin, seed): dist / normal / position tolerances by the path MuJoCo takes (module docstring)
EPA_EXACT = [("ellipsoid", "ellipsoid", 0.0, 0), ("ellipsoid", "box", 0.0, 1), ("ellipsoid", "cylinder", 0.0, 2),
             ("ellipsoid", "cloud", 0.0, 3), ("ellipsoid", "tet", 0.0, 4), ("tet", "oct", 0.0, 5),
             ("cloud", "cloud", 0.0, 6)]
DISTANCE_PASS = [("sphere", "ellipsoid", 0.0, 7), ("sphere", "cloud", 0.005, 8), ("capsule", "oct", 0.0, 9),
                 ("capsule", "ellipsoid", 0.0, 10), ("ellipsoid", "ellipsoid", 0.01, 11),
                 ("ellipsoid", "box", 0.01, 12)]


def _compare(n1, n2, margin, seed, n=16):
    m, d, g1, g2, theirs = _pair_scene(n1, n2, n, seed, margin)
    c = _run(m, d, g1, g2)
    assert c.dist.shape == (1, n, 1)
    single, multi = [], []
    for p in range(n):
        assert bool(c.valid[0, p, 0]) == (len(theirs[p]) > 0), (n1, n2, p)
        if not theirs[p]:
            continue
        ours = (c.dist[0, p, 0].item(), c.normal[0, p, 0].numpy(), c.pos[0, p, 0].numpy())
        err = [(abs(ours[0] - t.dist), np.abs(ours[1] - t.frame[:3]).max(), np.abs(ours[2] - t.pos).max())
               for t in theirs[p]]
        (single if len(theirs[p]) == 1 else multi).append(min(err, key=lambda e: e[0] + e[1]))
    return np.array(single).reshape(-1, 3), np.array(multi).reshape(-1, 3)


@pytest.mark.parametrize("n1,n2,margin,seed", EPA_EXACT)
def test_convex_epa_matches_mujoco(n1, n2, margin, seed):
    single, multi = _compare(n1, n2, margin, seed)
    assert len(single) >= 3
    assert single[:, 0].max() < 1e-9 and single[:, 1].max() < 1e-8 and single[:, 2].max() < 1e-8
    if len(multi):  # MuJoCo clipped faces into several contacts; ours is its deepest point
        assert multi[:, 0].max() < 3e-3 and multi[:, 1].max() < 0.15


@pytest.mark.parametrize("n1,n2,margin,seed", DISTANCE_PASS)
def test_convex_distance_pass_matches_mujoco(n1, n2, margin, seed):
    single, multi = _compare(n1, n2, margin, seed)
    assert len(single) >= 3
    assert single[:, 0].max() < 1e-8 and single[:, 1].max() < 2e-4 and single[:, 2].max() < 1e-5
    assert np.median(single[:, 1]) < 1e-6


def test_multi_contact_pairs_give_the_deepest_contact():
    """Pairs for which MuJoCo 4 clips touching faces into up to 4 contacts (box/mesh faces, cylinder caps): the same
    pairs are detected, a pair MuJoCo gives one contact is matched exactly, and for box/mesh face clipping our single
    contact has MuJoCo's depth to ~1e-3 and its normal to ~10 degrees (MuJoCo 4 measures a depth per clipped vertex
    along a face normal; ours is the EPA depth and direction). Cylinder pairs are only checked for detection and the
    single-contact cases: MuJoCo 4's cylinder face contacts can differ from the deepest EPA point by centimetres."""
    cases = (("box", "boxm", 13), ("boxm", "cloud", 14), ("cylinder", "cylinder", 15), ("cylinder", "p8", 16))
    for n1, n2, seed in cases:
        single, multi = _compare(n1, n2, 0.0, seed)
        assert len(single) + len(multi) >= 3
        if len(single):
            assert single[:, 0].max() < 1e-9 and single[:, 1].max() < 1e-8
        if len(multi) and "cylinder" not in (n1, n2):
            assert multi[:, 0].max() < 3e-3 and multi[:, 1].max() < 0.2


# ------------------------------------------------------------------------------------------------ contract

def test_batch_position_independence_and_invalid_slots():
    """An env's contacts are bitwise the same alone and in a batch of 7; unused slots are finite placeholders."""
    for n1, n2 in (("ellipsoid", "cloud"), ("capsule", "oct")):
        m, d, g1, g2, _ = _pair_scene(n1, n2, 7, 21, 0.005)
        fn = C.FUNCTIONS[(int(m.geom_type[g1[0]]), int(m.geom_type[g2[0]]))]
        a, b = _batch(m, d, g1), _batch(m, d, g2)
        envs = torch.tensor([[e, (e + 3) % 7] for e in range(7)])  # B = 7 envs of P = 2 pairs
        side = lambda g: GeomBatch(g.pos[0][envs], g.mat[0][envs], g.size[:2],  # noqa: E731
                                   None if g.verts is None else g.verts[:2],
                                   None if g.vert_valid is None else g.vert_valid[:2])
        A, Bb = side(a), side(b)
        margin = torch.full((2,), 0.01, dtype=DT)
        full = fn(A, Bb, margin)
        assert full.valid.any() and not full.valid.all()
        for x in (full.dist, full.pos, full.normal):
            assert torch.isfinite(x).all()
        assert (full.dist[~full.valid] == 0.01).all()
        assert (full.normal[~full.valid] == torch.tensor([0.0, 0.0, 1.0], dtype=DT)).all()
        for e in range(7):
            one = fn(GeomBatch(A.pos[e:e + 1], A.mat[e:e + 1], A.size, A.verts, A.vert_valid),
                     GeomBatch(Bb.pos[e:e + 1], Bb.mat[e:e + 1], Bb.size, Bb.verts, Bb.vert_valid), margin)
            for f in ("dist", "pos", "normal", "valid"):
                assert torch.equal(getattr(full, f)[e:e + 1], getattr(one, f)), (n1, n2, e, f)


def test_gradients_finite_and_correct():
    """Gradients of dist, pos and normal w.r.t. the poses are finite; d dist / d position of geom 2 is the
    contact normal where the contact is an exact closest-point pair (sphere-mesh distance, mesh-mesh EPA)."""
    for n1, n2, margin in (("sphere", "cloud", 0.005), ("tet", "oct", 0.0), ("ellipsoid", "ellipsoid", 0.0)):
        m, d, g1, g2, _ = _pair_scene(n1, n2, 8, 31, margin)
        fn = C.FUNCTIONS[(int(m.geom_type[g1[0]]), int(m.geom_type[g2[0]]))]
        a, b = _batch(m, d, g1, grad=True), _batch(m, d, g2, grad=True)
        c = fn(a, b, torch.tensor(m.geom_margin[g1] + m.geom_margin[g2]))
        v = c.valid[..., None]
        loss = (torch.where(c.valid, c.dist, 0).sum() + torch.where(v, c.pos, 0).square().sum()
                + torch.where(v, c.normal, 0).sum())
        loss.backward()
        for t in (a.pos, a.mat, b.pos, b.mat):
            assert torch.isfinite(t.grad).all()
        b2 = _batch(m, d, g2, grad=True)
        c = fn(_batch(m, d, g1), b2, torch.tensor(m.geom_margin[g1] + m.geom_margin[g2]))
        c.dist.sum().backward()
        ok = c.valid[0, :, 0]
        assert ok.sum() >= 2
        torch.testing.assert_close(b2.pos.grad[0][ok], c.normal[0, ok, 0].detach(), rtol=0, atol=1e-7)
    # plane-mesh
    m, d, g1, g2, _ = _pair_scene("tet", "cloud", 3, 0, 0.0)
    ids = np.array([0, 1, 2])
    mesh = _batch(m, d, ids, grad=True)
    plane = GeomBatch(torch.tensor([[[0.0, 0.0, 0.02]] * 3], dtype=DT, requires_grad=True),
                      torch.eye(3, dtype=DT).expand(1, 3, 3, 3).clone().requires_grad_(True), torch.ones(3, 3))
    c = C.plane_mesh(plane, mesh, torch.zeros(3, dtype=DT))
    (torch.where(c.valid, c.dist, 0).sum() + torch.where(c.valid[..., None], c.pos, 0).sum()).backward()
    assert all(torch.isfinite(t.grad).all() for t in (mesh.pos, mesh.mat, plane.pos, plane.mat))


def test_float32_agrees_with_float64():
    """float32 against float64 on pairs placed up to 18 m from the world origin (the float32 ulp there, 1.9e-6 m, is
    above ccd_tolerance): the search runs relative to geom 1 (convex.py `_ccd_core`), so normals agree to ~2e-5
    (ellipsoids; 3.7e-3 when the Minkowski points were rounded in world coordinates) and ~1e-6 (polytopes).
    For ellipsoids the float64 normal (= MuJoCo's) is itself only tolerance-converged: it is 0.7-2.1e-3 from the
    exact normal (a float64 run with 1000 iterations / tolerance 1e-13, which matches MuJoCo so configured and an
    independent minimisation of the support function to 1e-6). Path-independently, EPA's stop guarantees
    h(n) - depth < ccd_tolerance for the support function h of the Minkowski difference; float32 is held to that too."""
    for n1, n2, margin in (("ellipsoid", "ellipsoid", 0.0), ("capsule", "cloud", 0.005), ("box", "boxm", 0.0)):
        m, d, g1, g2, _ = _pair_scene(n1, n2, 10, 41, margin)
        c64, c32 = _run(m, d, g1, g2, torch.float64), _run(m, d, g1, g2, torch.float32)
        assert c32.dist.dtype == torch.float32
        both = c64.valid & c32.valid
        assert (c64.valid == c32.valid).all() and both.sum() >= 3
        assert (c64.dist - c32.dist.double())[both].abs().max() < 1e-5
        assert (c64.normal - c32.normal.double())[both].abs().max() < 2e-3
        if n1 == "ellipsoid":
            exact = C.convex_convex(C.ELLIPSOID, C.ELLIPSOID, 1000, 1e-13)(_batch(m, d, g1), _batch(m, d, g2),
                                                                        torch.zeros(len(g1), dtype=DT))
            n = c32.normal[0, :, 0].double()
            n = n / n.norm(dim=-1, keepdim=True)
            a, b = _batch(m, d, g1), _batch(m, d, g2)
            h = ((C.support(C.ELLIPSOID, a, n[None]) - C.support(C.ELLIPSOID, b, -n[None])) * n).sum(-1)[0]
            excess = (h + exact.dist[0, :, 0])[both[0, :, 0]]
            assert (excess > -1e-9).all() and (excess < C.CCD_TOLERANCE).all(), excess


def test_functions_table():
    """Every pair MuJoCo routes to mjc_Convex (lower type first), plus plane-mesh."""
    expected = {(C.SPHERE, C.ELLIPSOID), (C.SPHERE, C.MESH), (C.CAPSULE, C.ELLIPSOID), (C.CAPSULE, C.CYLINDER),
                (C.CAPSULE, C.MESH), (C.ELLIPSOID, C.ELLIPSOID), (C.ELLIPSOID, C.CYLINDER), (C.ELLIPSOID, C.BOX),
                (C.ELLIPSOID, C.MESH), (C.CYLINDER, C.CYLINDER), (C.CYLINDER, C.BOX), (C.CYLINDER, C.MESH),
                (C.BOX, C.MESH), (C.MESH, C.MESH), (C.PLANE, C.MESH)}
    assert set(C.FUNCTIONS) == expected


CCD_OPTION_XML = """<mujoco><option ccd_iterations="{it}" ccd_tolerance="{tol}"/><worldbody>
<body><freejoint/><geom type="ellipsoid" size="0.2 0.1 0.15"/></body>
<body pos="0.25 0.05 0.1" euler="20 30 40"><freejoint/><geom type="ellipsoid" size="0.1 0.12 0.2"/></body>
</worldbody></mujoco>"""


@pytest.mark.parametrize("iterations,tolerance", [(35, 1e-6), (3, 1e-6), (35, 1e-2)])
def test_scene_uses_the_models_ccd_options(iterations, tolerance):
    """A model's ccd_iterations / ccd_tolerance reach the solver's GJK/EPA: MuJoCo finds no contact with 3
    iterations and a 5 mm shallower one with tolerance 1e-2 on this pair; the scene finds the same."""
    from .test_parity import make_solver, make_state

    m = mujoco.MjModel.from_xml_string(CCD_OPTION_XML.format(it=iterations, tol=tolerance))
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    solver = make_solver(m, torch.float64)
    contacts = solver.forward(make_state(solver, [d])).contacts
    valid = contacts.valid[0]
    assert int(valid.sum()) == d.ncon
    if d.ncon:
        np.testing.assert_allclose(contacts.dist[0][valid].numpy(), [c.dist for c in d.contact[:d.ncon]], atol=1e-9)
        np.testing.assert_allclose(contacts.pos[0][valid].numpy(), [c.pos for c in d.contact[:d.ncon]], atol=1e-9)

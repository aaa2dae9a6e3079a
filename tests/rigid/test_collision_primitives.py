"""Primitive narrow phase (collision/primitives.py) against MuJoCo 4.0.0's `mj_collision`.

Each type pair is put in a two-geom MJCF model (a plane on a static mocap body, other geoms on free bodies) and
posed at seeded random configurations: penetrating, within the margin, separated, and the degenerate ones each
algorithm special-cases (parallel and coaxial capsules, coincident centres, a sphere centre on a capsule or
cylinder axis, a cylinder upright / flat / upside down on a plane, ...). MuJoCo's contacts (dist, pos, normal =
frame[:3]) must equal the valid slots of our function as sets, fed with MuJoCo's `geom_xpos`, `geom_xmat`,
`geom_size` and the pair margin (MuJoCo 4 adds the two geoms' margins). Also: an env's bits do not depend on the
batch it is in, gradients are finite at degenerate configurations and match finite differences elsewhere.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.solvers.rigid.collision import primitives as prim
from genesis_torch.solvers.rigid.collision.types import GeomBatch

G = mujoco.mjtGeom
SIZES = {"plane": "0 0 1", "sphere": "0.3", "sphere2": "0.25", "capsule": "0.15 0.4", "capsule2": "0.2 0.3",
         "cylinder": "0.3 0.25", "ellipsoid": "0.2 0.35 0.5"}
EXTENT = {"plane": 0.0, "sphere": 0.3, "sphere2": 0.25, "capsule": 0.55, "capsule2": 0.5, "cylinder": 0.39,
          "ellipsoid": 0.5}


# ------------------------------------------------------------------------------------------------ poses

def _quat(axis, angle):
    q = np.zeros(4)
    mujoco.mju_axisAngle2Quat(q, np.asarray(axis, float) / np.linalg.norm(axis), angle)
    return q


def _qmul(a, b):
    q = np.zeros(4)
    mujoco.mju_mulQuat(q, a, b)
    return q


def _rot(q, v):
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, q)
    return m.reshape(3, 3) @ np.asarray(v, float)


def _randq(rng):
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def _generic(rng, n, reach, plane=False):
    """Random poses; geom 2 at `reach * U(0.2, 1.4)` from geom 1 (plane: height U(-0.3, 1.2) * reach)."""
    out = []
    for _ in range(n):
        p1, q1, q2 = rng.normal(size=3) * 0.3, _randq(rng), _randq(rng)
        if plane:
            p2 = p1 + _rot(q1, [*rng.normal(size=2), reach * rng.uniform(-0.3, 1.2)])
        else:
            u = rng.normal(size=3)
            p2 = p1 + u / np.linalg.norm(u) * reach * rng.uniform(0.2, 1.4)
        out.append((p1, q1, p2, q2, True))
    return out


def _on_plane(rng, n, rel, heights):
    """Geom 2 at a height above a random plane with orientation `rel()` relative to it."""
    out = []
    for _ in range(n):
        p1, q1 = rng.normal(size=3) * 0.3, (_randq(rng) if rng.uniform() < 0.7 else np.array([1.0, 0, 0, 0]))
        p2 = p1 + _rot(q1, [*rng.normal(size=2), rng.uniform(*heights)])
        out.append((p1, q1, p2, _qmul(q1, rel()), True))
    return out


def _poses(pair, rng):
    """(p1, q1, p2, q2, float32_ok) samples for one type pair: generic plus the pair's special cases."""
    t1, t2 = pair
    reach = EXTENT[t1] + EXTENT[t2 + "2" if t1 == t2 else t2]
    out = _generic(rng, 120, reach if t1 != "plane" else EXTENT[t2], plane=t1 == "plane")
    spin = lambda: _quat([0, 0, 1], rng.uniform(0, 2 * np.pi))  # noqa: E731
    if pair == ("plane", "capsule"):
        out += _on_plane(rng, 30, lambda: _qmul(_quat([1, 0, 0], np.pi / 2), spin()), (-0.1, 0.25))  # lying
        out += _on_plane(rng, 20, spin, (0.3, 0.65))  # upright
    if pair == ("plane", "cylinder"):
        upright = [(p1, q1, p2, q2, False) for p1, q1, p2, q2, _ in _on_plane(rng, 30, spin, (0.15, 0.35))]
        out += upright  # disk parallel to the plane: float32 rounding picks another rim point
        down = _on_plane(rng, 20, lambda: _qmul(_quat([1, 0, 0], np.pi), spin()), (0.15, 0.35))
        out += [(p1, q1, p2, q2, False) for p1, q1, p2, q2, _ in down]  # upside down, disk parallel too
        out += _on_plane(rng, 30, lambda: _qmul(_quat([1, 0, 0], np.pi / 2), spin()), (0.2, 0.4))  # flat
        out += _on_plane(rng, 30, lambda: _qmul(_quat(rng.normal(size=3), 0.3), spin()), (0.1, 0.45))  # tilted
    if pair == ("plane", "ellipsoid"):
        axes = [_quat([1, 0, 0], 0.0), _quat([1, 0, 0], np.pi / 2), _quat([0, 1, 0], np.pi / 2)]
        out += _on_plane(rng, 30, lambda: axes[rng.integers(3)], (0.15, 0.6))
    if pair == ("sphere", "sphere"):
        for i in range(20):  # coincident centres: normal from the z axes' cross product, or (1, 0, 0)
            p, q = rng.normal(size=3), _randq(rng)
            out.append((p, q, p.copy(), q if i % 2 else _randq(rng), True))
    if pair == ("sphere", "capsule"):
        for i in range(40):  # centre on the axis (float64 only: rounding moves it off the axis in float32)
            p2, q2 = rng.normal(size=3) * 0.3, _randq(rng)
            out.append((p2 + _rot(q2, [0, 0, rng.uniform(-0.9, 0.9)]), _randq(rng), p2, q2, False))
    if pair == ("capsule", "capsule"):
        for i in range(120):
            q1, p1 = _randq(rng), rng.normal(size=3) * 0.3
            angle = [0.0, 1e-9, 1e-6, 3e-5, np.pi, np.pi - 1e-7, 1e-3, np.pi / 2][i % 8]
            q2 = _qmul(_quat(rng.normal(size=3), angle), q1) if angle else q1
            off = _rot(q1, [*(rng.normal(size=2) * 0.2), rng.normal() * 0.5])
            if i % 3 == 0:
                off = _rot(q1, [0, 0, rng.uniform(-1.0, 1.0)])  # coaxial (overlapping or end to end)
            if i % 8 == 7:
                off = rng.normal(size=3) * 0.1  # crossing at right angles
            if i % 16 == 7:
                off = np.zeros(3)  # crossing through each other: coincident closest points
            if i % 24 == 1:
                off = np.zeros(3)  # identical axes
            # float32 skips 1e-3 rad (ill-conditioned closest points) and touching axes (normal from rounding)
            f32 = angle != 1e-3 and i % 3 != 0 and i % 16 != 7 and i % 24 != 1
            out.append((p1, q1, p1 + off, q2, f32))
    if pair == ("sphere", "cylinder"):
        r, h = 0.3, 0.25
        for i in range(150):
            q2, p2, k = _randq(rng), rng.normal(size=3) * 0.3, i % 5
            a = rng.uniform(0, 2 * np.pi)
            if k == 0:  # centre inside
                loc = [*(rng.uniform(-0.7, 0.7, 2) * r), rng.uniform(-0.95, 0.95) * h]
            elif k == 1:  # on the axis
                loc = [0, 0, rng.uniform(-0.7, 0.7)]
            elif k == 2:  # near the rim
                loc = [(r + rng.uniform(0, 0.2)) * np.cos(a), (r + rng.uniform(0, 0.2)) * np.sin(a),
                       rng.choice([-1, 1]) * (h + rng.uniform(0, 0.2))]
            elif k == 3:  # over a cap
                loc = [rng.uniform(0, 0.9) * r * np.cos(a), rng.uniform(0, 0.9) * r * np.sin(a),
                       rng.choice([-1, 1]) * rng.uniform(h, h + 0.4)]
            else:  # beside the side
                loc = [(r + rng.uniform(0, 0.4)) * np.cos(a), (r + rng.uniform(0, 0.4)) * np.sin(a),
                       rng.uniform(-0.9, 0.9) * h]
            out.append((p2 + _rot(q2, loc), _randq(rng), p2, q2, True))
    return out


# ------------------------------------------------------------------------------------------------ MuJoCo side

PAIRS = {
    ("plane", "sphere"): prim.plane_sphere,
    ("plane", "capsule"): prim.plane_capsule,
    ("plane", "cylinder"): prim.plane_cylinder,
    ("plane", "ellipsoid"): prim.plane_ellipsoid,
    ("sphere", "sphere"): prim.sphere_sphere,
    ("sphere", "capsule"): prim.sphere_capsule,
    ("capsule", "capsule"): prim.capsule_capsule,
    ("sphere", "cylinder"): prim.sphere_cylinder,
}
K = {"plane_sphere": 1, "plane_capsule": 2, "plane_cylinder": 4, "plane_ellipsoid": 1, "sphere_sphere": 1,
     "sphere_capsule": 1, "capsule_capsule": 2, "sphere_cylinder": 1}


def _model(pair, margins):
    t1, t2 = pair
    s2 = SIZES[t2 + "2"] if t1 == t2 else SIZES[t2]
    body1 = "mocap='true'" if t1 == "plane" else ""
    joint1 = "" if t1 == "plane" else "<freejoint/>"
    xml = f"""<mujoco><worldbody>
      <body {body1}>{joint1}<geom type="{t1}" size="{SIZES[t1]}" margin="{margins[0]}"/></body>
      <body><freejoint/><geom type="{t2}" size="{s2}" margin="{margins[1]}"/></body>
    </worldbody></mujoco>"""
    m = mujoco.MjModel.from_xml_string(xml)
    return m, mujoco.MjData(m)


def _mujoco_run(pair, margins, poses):
    """MuJoCo's contacts per pose, and the geom poses fed to our functions."""
    m, d = _model(pair, margins)
    contacts, xpos, xmat = [], [], []
    for p1, q1, p2, q2, _ in poses:
        if m.nmocap:
            d.mocap_pos[0], d.mocap_quat[0] = p1, q1
            d.qpos[:] = np.concatenate([p2, q2])
        else:
            d.qpos[:] = np.concatenate([p1, q1, p2, q2])
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        assert all(c.geom[0] == 0 and c.geom[1] == 1 for c in d.contact[:d.ncon])
        contacts.append([(c.dist, c.pos.copy(), c.frame[:3].copy()) for c in d.contact[:d.ncon]])
        xpos.append(d.geom_xpos.copy())
        xmat.append(d.geom_xmat.reshape(-1, 3, 3).copy())
    return m, contacts, np.array(xpos), np.array(xmat)


def _ours(fn, m, xpos, xmat, margin, dtype):
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=dtype)  # noqa: E731
    g1 = GeomBatch(t(xpos[:, 0:1]), t(xmat[:, 0:1]), t(m.geom_size[0:1]))
    g2 = GeomBatch(t(xpos[:, 1:2]), t(xmat[:, 1:2]), t(m.geom_size[1:2]))
    return fn(g1, g2, t([margin]))


def _compare(c, contacts, tol, margin, skip=None):
    """Set comparison per env; returns the counts of penetrating / within-margin contacts and of separated envs."""
    stats = np.zeros(3, int)
    for b, ref in enumerate(contacts):
        valid = c.valid[b, 0].numpy()
        ours = [(c.dist[b, 0, k].item(), c.pos[b, 0, k].numpy(), c.normal[b, 0, k].numpy())
                for k in np.nonzero(valid)[0]]
        if skip is not None and skip(b, ref, ours):
            continue
        assert len(ours) == len(ref), f"env {b}: {len(ours)} contacts, MuJoCo {len(ref)}: {ours} vs {ref}"
        free = list(range(len(ours)))
        for dist, pos, normal in ref:
            err = [max(abs(ours[j][0] - dist), np.abs(ours[j][1] - pos).max(), np.abs(ours[j][2] - normal).max())
                   for j in free]
            j = int(np.argmin(err))
            assert err[j] <= tol, f"env {b}: MuJoCo {(dist, pos, normal)}, ours {ours}"
            free.pop(j)
            stats[0 if dist < 0 else 1] += 1
        stats[2] += not ref
    return stats


@pytest.mark.parametrize("pair", list(PAIRS), ids="-".join)
def test_matches_mujoco_float64(pair, single_thread):
    rng = np.random.default_rng(list(PAIRS).index(pair))
    poses = _poses(pair, rng)
    fn = PAIRS[pair]
    total = np.zeros(3, int)
    for margins in ((0.0, 0.0), (0.02, 0.03)):
        m, contacts, xpos, xmat = _mujoco_run(pair, margins, poses)
        c = _ours(fn, m, xpos, xmat, sum(margins), torch.float64)
        assert c.dist.shape == (len(poses), 1, K[fn.__name__]) and c.pos.shape == c.normal.shape
        for x in (c.dist, c.pos, c.normal):
            assert torch.isfinite(x).all()
        stats = _compare(c, contacts, 1e-9, sum(margins))
        if margins[1]:
            assert stats[1] > 0, "no contact within the margin"
        total += stats
    assert total[0] > 10 and total[2] > 10, f"penetrating / separated coverage {total}"
    if pair == ("capsule", "capsule"):  # the parallel branch ran and gave two contacts
        assert sum(len(r) == 2 for r in contacts) > 10


@pytest.mark.parametrize("pair", list(PAIRS), ids="-".join)
def test_matches_mujoco_float32(pair, single_thread):
    rng = np.random.default_rng(100 + list(PAIRS).index(pair))
    poses = [p for p in _poses(pair, rng) if p[4]]
    margins = (0.02, 0.03)
    m, contacts, xpos, xmat = _mujoco_run(pair, margins, poses)
    c = _ours(PAIRS[pair], m, xpos, xmat, sum(margins), torch.float32)
    assert c.dist.dtype == torch.float32 and torch.isfinite(c.pos).all()

    def near_threshold(b, ref, ours):  # float32 may decide an accept test at the margin the other way
        return any(abs(x[0] - sum(margins)) < 1e-4 for x in list(ref) + ours)

    _compare(c, contacts, 1e-4, sum(margins), skip=near_threshold)


# ------------------------------------------------------------------------------------------------ torch properties

def _random_batch(B, P, dtype, seed):
    """Poses of P pairs in B envs, a few of them degenerate (coincident, parallel, upright), and sizes (P, 3)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, P, 2, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    mat = torch.stack((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                       2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                       2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)), -1).unflatten(-1, (3, 3))
    pos = torch.randn(B, P, 2, 3, generator=g, dtype=torch.float64) * 0.3
    pos[1, :, 1] = pos[1, :, 0]  # coincident centres
    mat[2, :, 1] = mat[2, :, 0]  # parallel axes
    mat[3, :, :] = torch.eye(3, dtype=torch.float64)  # axis-aligned (upright on an unrotated plane)
    size = 0.2 + 0.3 * torch.rand(P, 2, 3, generator=g, dtype=torch.float64)
    margin = 0.05 * torch.rand(P, generator=g, dtype=torch.float64)
    cast = lambda t: t.to(dtype).contiguous().clone()  # noqa: E731
    return (GeomBatch(cast(pos[:, :, 0]), cast(mat[:, :, 0]), cast(size[:, 0])),
            GeomBatch(cast(pos[:, :, 1]), cast(mat[:, :, 1]), cast(size[:, 1])), cast(margin))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_position_independent(dtype):
    g1, g2, margin = _random_batch(7, 3, dtype, seed=3)
    for fn in prim.FUNCTIONS.values():
        full = fn(g1, g2, margin)
        for b in range(7):
            one = fn(GeomBatch(g1.pos[b:b + 1], g1.mat[b:b + 1], g1.size),
                     GeomBatch(g2.pos[b:b + 1], g2.mat[b:b + 1], g2.size), margin)
            for f in ("dist", "pos", "normal", "valid"):
                assert torch.equal(getattr(full, f)[b:b + 1], getattr(one, f)), (fn.__name__, b, f)
        for p in range(3):
            one = fn(GeomBatch(g1.pos[:, p:p + 1], g1.mat[:, p:p + 1], g1.size[p:p + 1]),
                     GeomBatch(g2.pos[:, p:p + 1], g2.mat[:, p:p + 1], g2.size[p:p + 1]), margin[p:p + 1])
            for f in ("dist", "pos", "normal", "valid"):
                assert torch.equal(getattr(full, f)[:, p:p + 1], getattr(one, f)), (fn.__name__, p, f)


def test_function_table():
    assert set(prim.FUNCTIONS) == {(int(G.mjGEOM_PLANE), int(t)) for t in (
        G.mjGEOM_SPHERE, G.mjGEOM_CAPSULE, G.mjGEOM_ELLIPSOID, G.mjGEOM_CYLINDER)} | {
        (int(G.mjGEOM_SPHERE), int(G.mjGEOM_SPHERE)), (int(G.mjGEOM_SPHERE), int(G.mjGEOM_CAPSULE)),
        (int(G.mjGEOM_SPHERE), int(G.mjGEOM_CYLINDER)), (int(G.mjGEOM_CAPSULE), int(G.mjGEOM_CAPSULE))}
    g1, g2, margin = _random_batch(4, 2, torch.float64, seed=0)
    for fn in prim.FUNCTIONS.values():
        assert fn(g1, g2, margin).dist.shape == (4, 2, K[fn.__name__])


def test_gradients_finite_at_degenerate_configurations():
    g1, g2, margin = _random_batch(7, 3, torch.float64, seed=5)
    g2.pos[4] = g1.pos[4] + g1.mat[4, :, :, 2] * 0.1  # on geom 1's axis
    g2.pos[5] = g1.pos[5] + g1.mat[5, :, :, 2] * 0.3  # on the axis and beyond a capsule end / cylinder cap
    leaves = [g1.pos, g1.mat, g2.pos, g2.mat]
    for t in leaves:
        t.requires_grad_(True)
    for fn in prim.FUNCTIONS.values():
        for swap in (False, True):  # the on-axis configurations for geom 2's axis too
            a, b = (g2, g1) if swap else (g1, g2)
            c = fn(a, b, margin)
            grads = torch.autograd.grad((c.dist.sum() + c.pos.sum() + c.normal.sum()), leaves, allow_unused=True)
            for gr in grads:
                assert gr is None or torch.isfinite(gr).all(), fn.__name__


def _gradcheck(fn, p1, m1, s1, p2, m2, s2, margin=0.01):
    t = lambda x: torch.tensor(x, dtype=torch.float64)[None, None]  # noqa: E731
    inputs = [t(p1).requires_grad_(), t(m1).requires_grad_(), t(p2).requires_grad_(), t(m2).requires_grad_()]
    size1, size2 = torch.tensor([s1], dtype=torch.float64), torch.tensor([s2], dtype=torch.float64)

    def f(a, b, c, d):
        out = fn(GeomBatch(a, b, size1), GeomBatch(c, d, size2), torch.tensor([margin], dtype=torch.float64))
        assert out.valid.any()  # penetrating (all slots are checked, valid or not)
        return out.dist, out.pos

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def _mat(axis, angle):
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, _quat(axis, angle))
    return m.reshape(3, 3).tolist()


def test_gradcheck():
    tilt, other = _mat([1, 2, 0.5], 0.7), _mat([-0.3, 1, 2], 1.1)
    plane = _mat([0.2, 0.1, 1], 0.3)
    _gradcheck(prim.plane_capsule, [0, 0, 0], plane, [0, 0, 1], [0.1, 0.2, 0.05], tilt, [0.15, 0.4, 0])
    _gradcheck(prim.plane_cylinder, [0, 0, 0], plane, [0, 0, 1], [0.1, 0.2, 0.05], tilt, [0.3, 0.25, 0])
    _gradcheck(prim.plane_ellipsoid, [0, 0, 0], plane, [0, 0, 1], [0.1, 0.2, 0.05], tilt, [0.2, 0.35, 0.5])
    _gradcheck(prim.sphere_capsule, [0.1, 0.05, 0.2], other, [0.3, 0, 0], [0, 0, 0], tilt, [0.15, 0.4, 0])
    _gradcheck(prim.capsule_capsule, [0.1, 0.05, 0.2], other, [0.15, 0.4, 0], [0, 0, 0], tilt, [0.2, 0.3, 0])
    shifted = (np.array(tilt) @ [0.2, 0, 0.05]).tolist()  # parallel capsules, offset sideways and along the axis
    _gradcheck(prim.capsule_capsule, shifted, tilt, [0.15, 0.4, 0], [0, 0, 0], tilt, [0.2, 0.3, 0])
    for loc in ([0.35, 0.1, 0.05], [0.1, 0.05, 0.35], [0.3, 0.2, 0.33]):  # side, cap, rim of the cylinder
        p1 = (np.array(tilt) @ loc).tolist()
        _gradcheck(prim.sphere_cylinder, p1, other, [0.2, 0, 0], [0, 0, 0], tilt, [0.3, 0.25, 0])

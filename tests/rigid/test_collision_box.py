"""Box narrow-phase functions (genesis_torch/solvers/rigid/collision/box.py) against MuJoCo 4.0.0.

Each case is a two-geom MJCF model (plane static, other geoms on free bodies) posed by qpos; MuJoCo's
`mj_kinematics` + `mj_collision` contacts are compared, as sets, with the valid slots of our function fed with
MuJoCo's `geom_xpos`, `geom_xmat`, `geom_size` and the summed geom margins. Poses are seeded random (penetrating,
within the margin, separated) plus hand-made degenerate ones: resting and offset stacks, 45° and 90° turns,
edge-edge crossings, vertex-face, a sphere centre inside the box, a capsule lying flat on a face.

float64 must agree to 1e-9 everywhere. float32 must agree to 1e-4 on generic poses; the hand-made poses with exact
ties (a corner exactly on the margin, equidistant faces, MuJoCo's own rounding-noise clip vertices of exactly
coincident faces) are float64-only, since float32 cannot reproduce which side of an exact tie double rounding
falls on.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.solvers.rigid.collision import box as bx
from genesis_torch.solvers.rigid.collision.types import GeomBatch

pytestmark = pytest.mark.usefixtures("single_thread")

I = (1.0, 0.0, 0.0, 0.0)


def _q(axis, angle):
    """wxyz quaternion of a rotation by `angle` about `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return (math.cos(angle / 2), *(math.sin(angle / 2) * axis))


def _rquat(rng):
    q = rng.normal(size=4)
    return tuple(q / np.linalg.norm(q))


def _model(t1, s1, t2, s2, margin1, margin2):
    g1 = f'<geom type="{t1}" size="{s1}" margin="{margin1}"/>'
    if t1 != "plane":
        g1 = f"<body><freejoint/>{g1}</body>"
    xml = f"""<mujoco><option><flag gravity="disable"/></option><worldbody>{g1}
              <body><freejoint/><geom type="{t2}" size="{s2}" margin="{margin2}"/></body></worldbody></mujoco>"""
    return mujoco.MjModel.from_xml_string(xml)


# --------------------------------------------------------------------------------------------- pose sets

def _planebox_poses(rng):
    rand = [(*(rng.normal(scale=0.1, size=3) + (0, 0, 0.2)), *_rquat(rng)) for _ in range(40)]
    exact = [(0, 0, 0.0999, *I), (0.3, -0.2, 0.1, *I), (0, 0, 0.1, *_q([1, 0, 0], math.pi / 2)),
             (0, 0, 0.2, *_q([1, 0, 0], math.pi / 4)), (0, 0, 0.05, *_q([1, 1, 0], math.pi / 4)),
             (0, 0, 0.12, *I), (0, 0, 0.0, *_q([0, 0, 1], 0.7))]  # on the margin, >4 corners at ldist = 0 ...
    generic = [(0, 0, 0.099, *_q([0.2, 0.1, 1], 0.3)), (0.1, 0, 0.03, *_q([1, 0.3, 0], 0.2))]
    return rand + generic, exact


def _spherebox_poses(rng):
    box = _q([0.3, 0.2, 1], 0.4)
    rand = [(*rng.normal(scale=0.3, size=3), *_rquat(rng), 0, 0, 0, *_rquat(rng)) for _ in range(40)]
    generic = [(*p, *I, 0, 0, 0, *box) for p in ([0.1, 0.05, 0.02], [-0.29, 0.01, 0.1], [0.45, 0.3, 0.2],
                                                [0.02, -0.03, 0.01], [0.25, 0.18, -0.2])]  # centre inside
    exact = [(*p, *I, 0, 0, 0, *I) for p in ([0, 0, 0], [0.3, 0.2, 0.25], [0.29, 0, 0], [0.5, 0, 0])]
    return rand + generic, exact


def _capsulebox_poses(rng):
    rand = [(0, 0, 0, *_rquat(rng), *rng.normal(scale=0.3, size=3), *_rquat(rng)) for _ in range(60)]
    flat = _q([0, 1, 0], math.pi / 2)
    generic, exact = [], []
    for box in (I, _q([0, 0, 1], math.pi / 4)):
        for p, q in (([0.3, 0.1, 0.29], _q([0, 1, 0.05], math.pi / 2)), ([0.1, 0.1, 0.45], _q([1, 1, 0], 0.3)),
                     ([0.2, 0.1, 0.05], _q([1, 2, 3], 1.0)), ([0.55, 0.02, 0.25], _q([0, 1, 0.1], math.pi / 2)),
                     ([0.6, 0.5, 0.3], _q([1, -1, 0.02], math.pi / 2))):
            generic.append((0, 0, 0, *box, *p, *q))
        for p, q in (([0, 0, 0.299], flat), ([0.5, 0.1, 0.29], flat), ([0, 0, 0.3], _q([1, 0, 0], math.pi / 2)),
                     ([0, 0, 0.55], I), ([0, 0, 0], flat), ([0.5, 0.4, 0.3], _q([1, 1, 0], math.pi / 2)),
                     ([0.7, 0, 0], flat), ([0.5, 0.4, 0.35], _q([1, -1, 0], math.pi / 2)), ([0.3, 0.1, 0.3], flat)):
            exact.append((0, 0, 0, *box, *p, *q))
    return rand + generic, exact


def _boxbox_poses(rng):
    rand = [(0, 0, 0, *_rquat(rng), *rng.normal(scale=0.3, size=3), *_rquat(rng)) for _ in range(60)]
    # resting / offset stacks with small tilts and random yaw (generic, float32 too)
    stacks = []
    for k in range(40):
        tilt = _q(rng.normal(size=3), rng.normal(scale=1e-3))
        top = _q([0, 0, 1], rng.uniform(0, 2 * math.pi)) if k % 2 else _q(rng.normal(size=3), 1e-3)
        stacks.append((0, 0, 0, *tilt, *rng.normal(scale=0.2, size=2), 0.4 + rng.normal(scale=2e-3), *top))
    z = 0.7 / math.sqrt(2) + 0.5 / math.sqrt(2)  # top edge of box 1 turned 45° about x + lowest edge of box 2
    edges = []  # edge-edge crossings: box 2 turned ~45° about ~y above box 1 turned 45° about x
    for dz in (-0.01, 0.005):
        for off in ((0.05, 0.02), (0.3, -0.1)):
            edges.append((0, 0, 0, *_q([1, 0, 0], math.pi / 4), *off, z + dz, *_q([0, 1, 0.1], math.pi / 4 + 0.1)))
    exact = []
    yaw = lambda a: _q([0, 0, 1], a)  # noqa: E731
    roll45 = _q([1, 0, 0], math.pi / 4)
    for p, q in (([0, 0, 0.4 - 1e-4], I), ([0, 0, 0.4], I), ([0, 0, 0.401], I),  # aligned stacks
                 ([0.3, 0.3, 0.3999], yaw(math.pi / 4)), ([0.45, 0, 0.399], I), ([1.0, 0, 0.399], I),
                 ([0.8, 0.8, 0.399], I), ([0, 0, 0.3999], yaw(math.pi / 2)), ([0, 0, 0.399], yaw(math.pi)),
                 ([0, 0, 0.4 - 1e-6], yaw(1e-7)), ([0, 0, 0.39], _q([1, 0, 0], 0.02)),
                 ([0.79, 0.1, 0.05], yaw(math.pi / 4)), ([0, 0, 0.5], roll45), ([0.3, 0.2, 0.5], roll45),
                 ([0, 0, 0.55], _q([1, 1, 0], 0.9553166)),  # vertex down onto a face
                 ([0, 0, 0.2 + 0.5 / math.sqrt(2) - 0.01], _q([0, 1, 0], math.pi / 4))):  # edge down onto a face
        exact.append((0, 0, 0, *I, *p, *q))
    return rand + stacks + edges, exact


# (name, function, geom 1, size 1, geom 2, size 2, pose sets)
CASES = {
    "plane_box": (bx.plane_box, "plane", "0 0 1", "box", "0.3 0.2 0.1", _planebox_poses),
    "sphere_box": (bx.sphere_box, "sphere", "0.2", "box", "0.3 0.2 0.25", _spherebox_poses),
    "capsule_box": (bx.capsule_box, "capsule", "0.1 0.3", "box", "0.5 0.4 0.2", _capsulebox_poses),
    "box_box": (bx.box_box, "box", "0.5 0.5 0.2", "box", "0.3 0.4 0.2", _boxbox_poses),
    "box_box_same": (bx.box_box, "box", "0.5 0.5 0.2", "box", "0.5 0.5 0.2", _boxbox_poses),
}


# --------------------------------------------------------------------------------------------- comparison

def _mujoco_and_ours(name, margins, poses, dtype):
    """MuJoCo's contacts and our valid slots for each pose (lists of (dist, pos, normal) per pose)."""
    fn, t1, s1, t2, s2, _ = CASES[name]
    m = _model(t1, s1, t2, s2, *margins)
    d = mujoco.MjData(m)
    xpos, xmat, theirs = [], [], []
    for qpos in poses:
        d.qpos[:] = qpos
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        contacts = d.contact[:d.ncon]
        assert all(tuple(c.geom) == (0, 1) for c in contacts)  # geom 0 has the lower type (or index)
        theirs.append([(c.dist, c.pos.copy(), c.frame[:3].copy()) for c in contacts])
        xpos.append(d.geom_xpos.copy())
        xmat.append(d.geom_xmat.reshape(-1, 3, 3).copy())
    xpos = torch.tensor(np.array(xpos), dtype=dtype)  # (B, 2, 3)
    xmat = torch.tensor(np.array(xmat), dtype=dtype)
    size = torch.tensor(m.geom_size, dtype=dtype)
    g1 = GeomBatch(xpos[:, 0:1], xmat[:, 0:1], size[0:1])
    g2 = GeomBatch(xpos[:, 1:2], xmat[:, 1:2], size[1:2])
    out = fn(g1, g2, torch.tensor([m.geom_margin[0] + m.geom_margin[1]], dtype=dtype))
    for t in (out.dist, out.pos, out.normal):
        assert torch.isfinite(t).all()
    ours = []
    for b in range(len(poses)):
        v = out.valid[b, 0]
        ours.append([(float(out.dist[b, 0, k]), out.pos[b, 0, k].double().numpy(), out.normal[b, 0, k].double().numpy())
                     for k in range(v.shape[0]) if v[k]])
    return theirs, ours, float(m.geom_margin[0] + m.geom_margin[1])


def _assert_same_set(theirs, ours, tol, margin, context, lenient=False):
    """Each MuJoCo contact matched to its own valid slot within `tol` (dist, pos, normal), counts equal.
    `lenient`: a contact whose dist is within `tol` of the margin may be missing on either side."""
    left = list(range(len(ours)))
    for c in theirs:
        errs = [max(abs(c[0] - ours[k][0]), np.abs(c[1] - ours[k][1]).max(), np.abs(c[2] - ours[k][2]).max())
                for k in left]
        if errs and min(errs) <= tol:
            left.pop(int(np.argmin(errs)))
        else:
            assert lenient and abs(c[0] - margin) <= tol, f"{context}: MuJoCo contact {c} unmatched; ours {ours}"
    for k in left:
        assert lenient and abs(ours[k][0] - margin) <= tol, f"{context}: extra contact {ours[k]}; MuJoCo {theirs}"


@pytest.mark.parametrize("name", list(CASES))
def test_matches_mujoco_float64(name):
    rng = np.random.default_rng(7)
    generic, exact = CASES[name][-1](rng)
    ncon = 0
    for margins in ((0.0, 0.0), (0.01, 0.005), (0.05, 0.05)):
        theirs, ours, margin = _mujoco_and_ours(name, margins, generic + exact, torch.float64)
        for i, (a, b) in enumerate(zip(theirs, ours)):
            _assert_same_set(a, b, 1e-9, margin, f"{name} pose {i} margins {margins}")
            ncon += len(a)
    assert ncon > 0


@pytest.mark.parametrize("name", list(CASES))
def test_matches_mujoco_float32(name):
    rng = np.random.default_rng(7)
    generic, _ = CASES[name][-1](rng)
    for margins in ((0.0, 0.0), (0.01, 0.005)):
        theirs, ours, margin = _mujoco_and_ours(name, margins, generic, torch.float32)
        for i, (a, b) in enumerate(zip(theirs, ours)):
            _assert_same_set(a, b, 1e-4, margin, f"{name} pose {i} margins {margins}", lenient=True)


def test_contact_kinds_covered():
    """The float64 pose sets reach every branch that matters: edge-edge and 8-point face contacts for boxes, two
    contacts for capsules, 4 corners on the plane, the inside case for spheres."""
    seen = {}
    for name in CASES:
        generic, exact = CASES[name][-1](np.random.default_rng(7))
        theirs, _, _ = _mujoco_and_ours(name, (0.01, 0.005), generic + exact, torch.float64)
        seen[name] = {len(c) for c in theirs}
    assert {0, 1, 2, 3, 4} <= seen["plane_box"]
    assert {0, 1, 2} <= seen["capsule_box"]
    assert {0, 1, 4, 8} <= seen["box_box"] | seen["box_box_same"]


# --------------------------------------------------------------------------------------------- batching, gradients

def _random_batch(B, P, dtype, seed, spread):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, P, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    mat = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                       2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                       2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(B, P, 3, 3)
    pos = torch.randn(B, P, 3, generator=g, dtype=torch.float64) * spread
    size = torch.rand(P, 3, generator=g, dtype=torch.float64) * 0.3 + 0.1
    return GeomBatch(pos.to(dtype), mat.to(dtype), size.to(dtype))


@pytest.mark.parametrize("name", ["plane_box", "sphere_box", "capsule_box", "box_box"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_position_independent(name, dtype):
    """7 envs × 3 pairs computed together equal each env computed alone, bitwise; outputs are finite."""
    fn = CASES[name][0]
    g1 = _random_batch(7, 3, dtype, 1, 0.0 if name == "plane_box" else 0.3)
    g2 = _random_batch(7, 3, dtype, 2, 0.3)
    margin = torch.tensor([0.0, 0.01, 0.05], dtype=dtype)
    full = fn(g1, g2, margin)
    assert full.valid.any()
    for t in (full.dist, full.pos, full.normal):
        assert torch.isfinite(t).all()
    for b in range(7):
        one = fn(GeomBatch(g1.pos[b:b + 1], g1.mat[b:b + 1], g1.size),
                 GeomBatch(g2.pos[b:b + 1], g2.mat[b:b + 1], g2.size), margin)
        for f in ("dist", "pos", "normal", "valid"):
            assert torch.equal(getattr(full, f)[b:b + 1], getattr(one, f)), (name, b, f)


def _pose(p, q, size, dtype=torch.float64):
    w, x, y, z = q
    mat = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
           [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
           [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    return (torch.tensor(p, dtype=dtype)[None, None], torch.tensor(mat, dtype=dtype)[None, None],
            torch.tensor([size], dtype=dtype))


# generic penetrating configurations: (function, geom 1 (pos, quat, size), geom 2, expected contact count)
_TILTED_BOX = ((0, 0, 0), _q([1, 2, 3], 0.4), (0.3, 0.2, 0.25))
GRAD_CASES = {
    "plane_box": (bx.plane_box, ((0, 0, 0), I, (0, 0, 1)), ((0.1, 0, 0.08), _q([1, 0.4, 0], 0.3), (0.3, 0.2, 0.1)), 3),
    "sphere_box": (bx.sphere_box, ((0.35, 0.1, 0.2), I, (0.2, 0, 0)), _TILTED_BOX, 1),
    "sphere_box_inside": (bx.sphere_box, ((0.05, 0.02, 0.1), I, (0.2, 0, 0)), _TILTED_BOX, 1),
    "capsule_box": (bx.capsule_box, ((0.1, 0.05, 0.28), _q([0, 1, 0.1], 1.5), (0.1, 0.3, 0)),
                    ((0, 0, 0), I, (0.5, 0.4, 0.2)), 2),
    "box_box_face": (bx.box_box, ((0, 0, 0), _q([0.1, 0.2, 1], 0.05), (0.5, 0.5, 0.2)),
                     ((0.1, 0.05, 0.39), _q([0.2, 0.1, 1], 0.5), (0.3, 0.4, 0.2)), 3),
    "box_box_edge": (bx.box_box, ((0, 0, 0), _q([1, 0, 0], math.pi / 4), (0.5, 0.5, 0.5)),
                     ((0.05, 0.02, 1.05), _q([0, 1, 0.1], math.pi / 4 + 0.1), (0.3, 0.4, 0.2)), 1),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck(name):
    """float64 gradcheck of dist and pos (valid slots) w.r.t. both geom positions."""
    fn, a, b, count = GRAD_CASES[name]
    pos1, mat1, size1 = _pose(*a)
    pos2, mat2, size2 = _pose(*b)
    margin = torch.tensor([0.01], dtype=torch.float64)
    valid = fn(GeomBatch(pos1, mat1, size1), GeomBatch(pos2, mat2, size2), margin).valid
    assert int(valid.sum()) == count

    def f(p1, p2):
        c = fn(GeomBatch(p1, mat1, size1), GeomBatch(p2, mat2, size2), margin)
        assert torch.equal(c.valid, valid)
        return c.dist[valid], c.pos[valid]

    assert torch.autograd.gradcheck(f, (pos1.clone().requires_grad_(True), pos2.clone().requires_grad_(True)),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_gradients_degenerate(dtype):
    """Backward through every output (valid and invalid slots) is finite at degenerate poses: sphere centre on
    the box surface and at its centre, capsule axis along a box axis, exactly aligned and coincident boxes
    (zero edge-cross axes), corners exactly on the plane."""
    flat = _q([0, 1, 0], math.pi / 2)
    sets = [
        (bx.plane_box, [((0, 0, 0), I, (0, 0, 1))] * 3,
         [((0, 0, 0.1), I, (0.3, 0.2, 0.1)), ((0, 0, 0.2), _q([1, 0, 0], math.pi / 4), (0.3, 0.2, 0.1)),
          ((0, 0, 0), flat, (0.3, 0.2, 0.1))]),
        (bx.sphere_box, [((0, 0, 0), I, (0.2, 0, 0)), ((0.3, 0.1, 0), I, (0.2, 0, 0)),
                         ((0.3, 0.2, 0.25), I, (0.2, 0, 0))],
         [((0, 0, 0), I, (0.3, 0.2, 0.25))] * 3),
        (bx.capsule_box, [((0, 0, 0.3), flat, (0.1, 0.3, 0)), ((0, 0, 0), flat, (0.1, 0.3, 0)),
                          ((0, 0, 0.55), I, (0.1, 0.3, 0))],
         [((0, 0, 0), I, (0.5, 0.4, 0.2))] * 3),
        (bx.box_box, [((0, 0, 0), I, (0.5, 0.5, 0.2))] * 4,
         [((0, 0, 0.4), I, (0.5, 0.5, 0.2)), ((0, 0, 0), I, (0.5, 0.5, 0.2)),
          ((0.5, 0.5, 0.4), _q([0, 0, 1], math.pi / 2), (0.5, 0.5, 0.2)),
          ((0, 0, 0.5), _q([1, 0, 0], math.pi / 4), (0.5, 0.5, 0.2))]),
    ]
    for fn, side1, side2 in sets:
        for a, b in zip(side1, side2):
            pos1, mat1, size1 = _pose(*a, dtype=dtype)
            pos2, mat2, size2 = _pose(*b, dtype=dtype)
            leaves = [t.requires_grad_(True) for t in (pos1, mat1, pos2, mat2)]
            c = fn(GeomBatch(pos1, mat1, size1), GeomBatch(pos2, mat2, size2), torch.tensor([0.01], dtype=dtype))
            assert c.valid.any()
            (c.dist.sum() + c.pos.sum() + c.normal.sum()).backward()
            for t in leaves:
                assert t.grad is None or torch.isfinite(t.grad).all(), (fn.__name__, a, b)


def test_functions_table():
    G = mujoco.mjtGeom
    assert bx.FUNCTIONS == {(int(G.mjGEOM_PLANE), int(G.mjGEOM_BOX)): bx.plane_box,
                            (int(G.mjGEOM_SPHERE), int(G.mjGEOM_BOX)): bx.sphere_box,
                            (int(G.mjGEOM_CAPSULE), int(G.mjGEOM_BOX)): bx.capsule_box,
                            (int(G.mjGEOM_BOX), int(G.mjGEOM_BOX)): bx.box_box}
    g = _random_batch(2, 1, torch.float64, 0, 0.3)
    for key, fn in bx.FUNCTIONS.items():
        assert fn(g, g, torch.zeros(1, dtype=torch.float64)).dist.shape[-1] == bx.MAX_CONTACTS[key]

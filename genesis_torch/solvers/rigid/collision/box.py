"""Narrow-phase contacts of boxes against planes, spheres, capsules and boxes.

Each function takes the two sides of P geom pairs in B envs (`GeomBatch`; geom 1 has the lower MuJoCo geom type,
as in MuJoCo's `mjCOLLISIONFUNC` table) and the pair margins, and returns a fixed number K of contact slots per
pair (`Contacts`), K being MuJoCo's `mj_maxContact` for the type pair:

=============  ===  ===========================================================================
function        K   MuJoCo 4.0.0 function followed (src/engine/...)
=============  ===  ===========================================================================
plane_box       4   `mjc_PlaneBox` (engine_collision_primitive.c)
sphere_box      1   `mjraw_SphereBox` (engine_collision_box.c)
capsule_box     4   `mjraw_CapsuleBox` (engine_collision_box.c); it makes at most 2, slots 2-3 stay invalid
box_box         8   `mjc_BoxBox` / `mjraw_BoxBox` (engine_collision_box.c): separating axes, then clipping
=============  ===  ===========================================================================

The algorithms, special cases, tie-breaks and tolerances are MuJoCo's, and floating-point operations are done in
MuJoCo's order where that decides a branch, so float64 results agree with MuJoCo to rounding. `valid` applies the
C code's accept/reject tests slot by slot instead of compacting: valid contacts may sit in any slot (MuJoCo's
contacts are the valid slots, as a set). Invalid slots hold finite placeholders: dist = 1e10 (MuJoCo's mjMAXVAL),
pos = geom 2's position, normal = (0, 0, 1).

Branchy C becomes masked tensor code: every case is computed for every pair and the right one is picked with
`torch.where`; variable-size sets (box corners, clipped polygons) are fixed-size candidate sets with a mask, and
sequential "keep the best so far" scans become fixed loops of elementwise updates. Denominators and square-root
arguments are made safe before use so gradients are never NaN, and only elementwise ops, gathers and stable sorts
are used (no batched BLAS), so an env's bits do not depend on its place in the batch. Lengths are in metres.
"""

from __future__ import annotations

import mujoco
import torch

from ....math.small import dot as _dot, safe_sqrt as _safe_sqrt
from .types import Contacts, GeomBatch

MINVAL = 1e-15  # MuJoCo's mjMINVAL
MAXVAL = 1e10  # MuJoCo's mjMAXVAL, also the distance put in invalid slots

# box-box rounding scales (MuJoCo's mjBOXBOX_* for double and for single-precision builds):
# (separation slack per metre of summed half-sizes, sin^2 under which an edge-cross axis is noise,
#  axis component under which a support corner is ambiguous, squared relative radius for duplicate clip vertices)
_BOXBOX_EPS = {torch.float64: (1e-13, 1e-16, 1e-9, 1e-14), torch.float32: (1e-6, 1e-7, 1e-5, 1e-10)}
_BOXBOX_EDGEBIAS = 1e-6  # relative penalty on an edge axis tying with the best face axis
_BOXBOX_FACEDOT = 0.99  # |cos| above which a winning edge axis is taken as the best face axis ...
_BOXBOX_FACESLACK = 0.05  # ... unless it is deeper by more than this fraction of the face depth
# the 9 edge-edge axes 3i + j: rows i + 1, i + 2, j + 1, j + 2 (mod 3) and j
_EDGE_AXES = torch.tensor([[(i + 1) % 3 for i in range(3) for _ in range(3)],
                           [(i + 2) % 3 for i in range(3) for _ in range(3)],
                           [(j + 1) % 3 for _ in range(3) for j in range(3)],
                           [(j + 2) % 3 for _ in range(3) for j in range(3)],
                           [j for _ in range(3) for j in range(3)]])
_ONEHOT8 = torch.eye(8, dtype=torch.bool)
# box corner i has the sign of half-size k set by bit k of i (MuJoCo's order)
_CORNER_SIGNS = torch.tensor([[1.0 if i & (1 << k) else -1.0 for k in range(3)] for i in range(8)])


# ------------------------------------------------------------------------------------------------ helpers


def _mv(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`m @ v` for `m (..., 3, 3)`, `v (..., 3)`: `math.small.mv`'s sums (k = 0, 1, 2 in order, the same bits) as 3
    products of whole columns instead of 9 of entries (fewer ops: the narrow phase is dispatch-bound at 1 env)."""
    return m[..., :, 0] * v[..., 0:1] + m[..., :, 1] * v[..., 1:2] + m[..., :, 2] * v[..., 2:3]


def _mtv(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`m^T @ v` (`math.small.mtv`'s sums, the same bits), from 3 products of whole rows."""
    return m[..., 0, :] * v[..., 0:1] + m[..., 1, :] * v[..., 1:2] + m[..., 2, :] * v[..., 2:3]


def _mtm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a^T @ b` for `(..., 3, 3)` matrices (`math.small.mtm`'s sums, the same bits), from 3 outer products."""
    return (a[..., 0, :, None] * b[..., 0, None, :] + a[..., 1, :, None] * b[..., 1, None, :]
            + a[..., 2, :, None] * b[..., 2, None, :])



def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """`x[..., idx]` for `x (..., n)` and a per-row index `idx (...)` (int64)."""
    return torch.gather(x, -1, idx.unsqueeze(-1)).squeeze(-1)


def _take_vec(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows `x[..., idx, :]` for `x (..., n, 3)` and a per-row index `idx (..., m)` → `(..., m, 3)`."""
    return torch.gather(x, -2, idx.unsqueeze(-1).expand(*idx.shape, x.shape[-1]))


def _cols(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """`x[..., perm]` for `x (..., n)` and per-row indices `perm (..., m)`."""
    return torch.gather(x, -1, perm)


def _cyclic(i: torch.Tensor) -> torch.Tensor:
    """`(i, i+1, i+2) mod 3` for per-row axis indices `i (...)` → `(..., 3)` int64."""
    return (i.unsqueeze(-1) + torch.arange(3, device=i.device)) % 3


def _finish(dist, pos, normal, valid, fallback_pos) -> Contacts:
    """Contacts from slot tensors `(B, P, K[, 3])`, with finite placeholders in the invalid slots."""
    z = torch.zeros(3, dtype=pos.dtype, device=pos.device)
    z[2] = 1.0
    v3 = valid.unsqueeze(-1)
    return Contacts(dist=torch.where(valid, dist, torch.full_like(dist, MAXVAL)),
                    pos=torch.where(v3, pos, fallback_pos.unsqueeze(-2).expand_as(pos)),
                    normal=torch.where(v3, normal, z.expand_as(normal)),
                    valid=valid)


def _first(valid: torch.Tensor, k: int) -> torch.Tensor:
    """Indices `(..., k)` of the first k True entries of `valid (..., n)` in order, then the False ones."""
    return torch.sort((~valid).to(torch.int8), dim=-1, stable=True).indices[..., :k]


# ------------------------------------------------------------------------------------------------ plane : box

def plane_box(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Plane (geom 1, normal = its z axis) against box (geom 2); K = 4. Follows MuJoCo's `mjc_PlaneBox`.

    The 8 box corners are tested in MuJoCo's order (corner i has the sign of half-size k set by bit k of i); a
    corner makes a contact if it is within `margin` of the plane and not on the far side of the box centre; the
    first 4 such corners are kept, as in MuJoCo. dist = corner height above the plane (m), pos = corner moved
    half that height towards the plane, normal = plane normal.

    Shapes: g1/g2.pos (B, P, 3), g1/g2.mat (B, P, 3, 3), g2.size (P, 3) half-sizes, margin (P,).
    Returns dist (B, P, 4), pos (B, P, 4, 3), normal (B, P, 4, 3), valid (B, P, 4).
    """
    norm = g1.mat[..., :, 2]
    dist = _dot(g2.pos - g1.pos, norm)
    size = g2.size.to(g2.pos.dtype)
    margin = margin.to(g2.pos.dtype)
    # the 8 corners at once (B, P, 8, 3): the same operations as corner by corner
    vec = size[:, None, :] * _CORNER_SIGNS.to(device=size.device, dtype=size.dtype)  # (P, 8, 3)
    corner = _mv(g2.mat.unsqueeze(-3), vec.expand(*g2.pos.shape[:-1], 8, 3))
    ldist = _dot(norm.unsqueeze(-2), corner)
    cdist = dist.unsqueeze(-1) + ldist
    valids = ~((cdist > margin.unsqueeze(-1)) | (ldist > 0))
    poss = (corner + g2.pos.unsqueeze(-2)) + norm.unsqueeze(-2) * (-cdist / 2).unsqueeze(-1)
    order = _first(valids, 4)
    dist = torch.gather(cdist, -1, order)
    pos = _take_vec(poss, order)
    valid = torch.gather(valids, -1, order)
    return _finish(dist, pos, norm.unsqueeze(-2).expand_as(pos), valid, g2.pos)


# ------------------------------------------------------------------------------------------------ sphere : box

def _sphere_box(center, radius, box_pos, box_mat, box_size, margin):
    """Sphere (`center (..., 3)`, `radius (...)`) against box (`box_pos (..., 3)`, `box_mat (..., 3, 3)`,
    half-sizes `box_size (..., 3)`), all broadcastable; follows MuJoCo's `mjraw_SphereBox`.

    Outside the box the contact joins the nearest box point to the deepest sphere point; with the centre inside
    the box (nearest point closer than MINVAL) the normal is the nearest face's and the depth is measured to it.
    Returns dist, pos (world), normal (world, sphere → box), valid.
    """
    local = _mtv(box_mat, center - box_pos)
    clamped = torch.minimum(torch.maximum(local, -box_size), box_size)
    tmp = clamped - local
    dist = _safe_sqrt(_dot(tmp, tmp))
    valid = ~(dist - radius > margin)
    inside = dist <= MINVAL
    unit = tmp * (1.0 / torch.where(dist < MINVAL, torch.ones_like(dist), dist)).unsqueeze(-1)

    # centre outside: midpoint between the nearest box point and the deepest sphere point
    deepest = local + unit * radius.unsqueeze(-1)
    pos_out = clamped * 0.5 + deepest * 0.5

    # centre inside: the nearest of the 6 faces (face 2k+1 at +size_k, 2k at -size_k; first minimum wins)
    closest = (box_size[..., 0] + box_size[..., 1] + box_size[..., 2]) * 2
    closest = closest.expand_as(dist)
    face = torch.zeros_like(dist, dtype=torch.int64)
    for i in range(6):
        k = i // 2
        gap = torch.abs((box_size[..., k] if i % 2 else -box_size[..., k]) - local[..., k])
        better = closest > gap
        closest = torch.where(better, gap, closest)
        face = torch.where(better, i, face)
    sign = torch.where(face % 2 == 1, -1.0, 1.0).to(dist.dtype)
    nearest = torch.where(torch.arange(3, device=face.device) == (face // 2).unsqueeze(-1), sign.unsqueeze(-1),
                          torch.zeros_like(local))
    pos_in = local + nearest * ((radius - closest) / 2).unsqueeze(-1)

    i3 = inside.unsqueeze(-1)
    pos = _mv(box_mat, torch.where(i3, pos_in, pos_out)) + box_pos
    normal = _mv(box_mat, torch.where(i3, nearest, unit))
    dist = torch.where(inside, -closest, dist) - radius
    return dist, pos, normal, valid


def sphere_box(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Sphere (geom 1, radius = size[0]) against box (geom 2); K = 1. Follows MuJoCo's `mjraw_SphereBox`,
    including its sphere-centre-inside-box case (normal along the nearest face, dist = -(distance to that face
    + radius)).

    Shapes: pos (B, P, 3), mat (B, P, 3, 3), size (P, 3) m, margin (P,) m.
    Returns dist (B, P, 1), pos (B, P, 1, 3), normal (B, P, 1, 3), valid (B, P, 1).
    """
    dtype = g1.pos.dtype
    dist, pos, normal, valid = _sphere_box(g1.pos, g1.size[:, 0].to(dtype), g2.pos, g2.mat, g2.size.to(dtype),
                                           margin.to(dtype))
    return _finish(dist[..., None], pos[..., None, :], normal[..., None, :], valid[..., None], g2.pos)


# ------------------------------------------------------------------------------------------------ capsule : box

def capsule_box(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Capsule (geom 1: radius size[0], half-length size[1] along its z axis) against box (geom 2); K = 2
    (MuJoCo's `mj_maxContact` reserves 4, but its algorithm fills at most 2). Follows `mjraw_CapsuleBox`.

    In the box frame the point of the capsule segment closest to the box is found among the two segment ends
    (when each lies off at most one face) and the 12 box edges (segment-segment closest points, clamped, with
    MuJoCo's clamp bookkeeping), scanned in MuJoCo's order with its tie tolerances. Depending on whether a box
    corner, an edge interior or a face is closest and on how the capsule lies, a second segment point is placed
    along the capsule (MuJoCo's heuristics). Each point becomes a sphere of the capsule's radius collided with
    the box (`_sphere_box`): slot 0 holds the closest point's contact, slot 1 the second point's.

    Shapes: pos (B, P, 3), mat (B, P, 3, 3), size (P, 3) m, margin (P,) m.
    Returns dist (B, P, 4), pos (B, P, 4, 3), normal (B, P, 4, 3), valid (B, P, 4).
    """
    dtype = g1.pos.dtype
    radius = g1.size[:, 0].to(dtype).expand(g1.pos.shape[:-1])
    hl = g1.size[:, 1].to(dtype).expand(g1.pos.shape[:-1])
    s = g2.size.to(dtype).expand_as(g2.pos)
    margin = margin.to(dtype)
    ar3 = torch.arange(3, device=g1.pos.device)

    pos = _mtv(g2.mat, g1.pos - g2.pos)  # capsule centre in the box frame
    axis = _mtv(g2.mat, g1.mat[..., :, 2])
    ha = axis * hl.unsqueeze(-1)  # half-axis
    axisdir = (ha[..., 0] > 0).long() + 2 * (ha[..., 1] > 0).long() + 4 * (ha[..., 2] > 0).long()

    best = margin + 2 * (radius + hl + s[..., 0] + s[..., 1] + s[..., 2])
    bsp = torch.zeros_like(best)  # closest point along the segment, in half-lengths from the centre
    bbp = torch.zeros_like(best)  # closest point along the box edge, in half-sizes
    cltype = torch.full_like(best, -4, dtype=torch.int64)  # -3/-1: segment end -1/+1 by a face; 0..8 an edge
    clface = torch.full_like(cltype, -1)
    clcorner = torch.zeros_like(cltype)
    cledge = torch.zeros_like(cltype)

    # segment ends, when outside at most one pair of faces
    for i in (-1, 1):
        p = pos + ha * i
        below, above = p < -s, p > s
        out = below | above
        clamped = torch.where(below, -s, torch.where(above, s, p))
        face = torch.full_like(cltype, -1)
        for k in range(3):
            face = torch.where(out[..., k], k, face)
        d = clamped - p
        d = _dot(d, d)
        upd = (out.sum(-1) <= 1) & (d < best)
        best = torch.where(upd, d, best)
        bsp = torch.where(upd, torch.full_like(bsp, float(i)), bsp)
        cltype = torch.where(upd, -2 + i, cltype)
        clface = torch.where(upd, face, clface)

    # the 12 box edges: edge along axis j through the corner with bits i (bit j clear)
    mc = hl * hl
    inv_mc = 1 / torch.where(mc > 0, mc, torch.ones_like(mc))
    for j in range(3):
        sj, hj = s[..., j], ha[..., j]
        ma = sj * sj
        inv_ma = 1 / ma
        mb = -sj * hj
        for i in range(8):
            if i & (1 << j):
                continue
            sign = torch.tensor([0.0 if k == j else (1.0 if i & (1 << k) else -1.0) for k in range(3)],
                                dtype=dtype, device=pos.device)
            mid = sign * s  # edge midpoint
            dif = mid - pos
            u = -sj * dif[..., j]
            v = _dot(ha, dif)
            det = ma * mc - mb * mb
            ok = torch.abs(det) >= MINVAL
            idet = 1 / torch.where(ok, det, torch.ones_like(det))
            x1 = (mc * u - mb * v) * idet
            x2 = (ma * v - mb * u) * idet
            hi1, lo1 = x1 > 1, x1 < -1
            s1 = torch.where(hi1, 2, torch.where(lo1, 0, 1))
            x2 = torch.where(hi1, (v - mb) * inv_mc, torch.where(lo1, (v + mb) * inv_mc, x2))
            x1 = torch.where(hi1, torch.ones_like(x1), torch.where(lo1, -torch.ones_like(x1), x1))
            hi2, lo2 = x2 > 1, x2 < -1
            s2 = torch.where(hi2, 2, torch.where(lo2, 0, 1))
            x1b = torch.where(hi2, (u - mb) * inv_ma, (u + mb) * inv_ma)
            s1b = torch.where(x1b > 1, 2, torch.where(x1b < -1, 0, s1))
            x1b = torch.where(x1b > 1, torch.ones_like(x1b), torch.where(x1b < -1, -torch.ones_like(x1b), x1b))
            re = hi2 | lo2
            x1 = torch.where(re, x1b, x1)
            s1 = torch.where(re, s1b, s1)
            x2 = torch.where(hi2, torch.ones_like(x2), torch.where(lo2, -torch.ones_like(x2), x2))
            dif = mid - pos + ha * (-x2).unsqueeze(-1)
            dif = torch.where(ar3 == j, dif + (sj * x1).unsqueeze(-1), dif)
            d = _dot(dif, dif)
            c1 = s1 * 3 + s2
            upd = ok & (d < best - MINVAL)
            best = torch.where(upd, d, best)
            bsp = torch.where(upd, x2, bsp)
            bbp = torch.where(upd, x1, bbp)
            clcorner = torch.where(upd, i + (1 << j) * (c1 // 6), clcorner)
            cledge = torch.where(upd, j, cledge)
            cltype = torch.where(upd, c1, cltype)

    habs = torch.abs(ha)
    habs_safe = torch.where(habs > MINVAL, habs, torch.full_like(habs, MINVAL))

    def reach(k, num):  # num / |ha[k]|: how far along the segment (in half-lengths) a box extent num reaches
        return num / _take(habs_safe, k)

    # (A) a box corner is closest
    cA = torch.bitwise_xor(axisdir, clcorner)
    flip = (cA == 3) | (cA == 5) | (cA == 6)
    mulA = torch.where(flip, -1.0, 1.0).to(dtype)
    de = torch.where(flip, 1 + bsp, 1 - bsp)
    dp = torch.where(flip, 1 - bsp, 1 + bsp)
    cA = torch.where(flip, 7 - cA, cA)
    ax = torch.where(cA == 1, 0, torch.where(cA == 2, 1, 2))
    along_edge = _take(axis, ax) * _take(axis, ax) > 0.5
    e1 = reach(ax, 2 * _take(s, ax))
    sp_edge = torch.where(e1 < de, e1, de) * mulA
    e1 = reach((ax + 1) % 3, 2 * _take(s, (ax + 1) % 3))
    sp_face = torch.where(e1 < dp, e1, dp)
    e1 = reach((ax + 2) % 3, 2 * _take(s, (ax + 2) % 3))
    sp_face = torch.where(e1 < sp_face, e1, sp_face) * -mulA
    spA = torch.where(along_edge, sp_edge, sp_face)
    hasA = (cltype >= 0) & (cltype // 3 != 1) & (cA != 0) & (cA != 7)

    # (B) the interior of a box edge is closest
    cB = torch.bitwise_and(torch.bitwise_xor(axisdir, clcorner), 7 - torch.bitwise_left_shift(1, cledge))
    ax = cledge
    ax1, ax2 = (ax + 1) % 3, (ax + 2) % 3
    aabs = torch.abs(axis)
    ax1 = torch.where(_take(aabs, ax1) > _take(aabs, ax2), ax2, ax1)
    ax2 = 3 - ax - ax1
    bit = torch.bitwise_and(torch.bitwise_right_shift(cB, ax2), 1) != 0
    mulB = torch.where(bit, 1.0, -1.0).to(dtype)
    spB = torch.where(bit, 1 - bsp, 1 + bsp)
    e1 = reach(ax2, 2 * _take(s, ax2))
    spB = torch.where(e1 < spB, e1, spB)
    same = (torch.bitwise_and(torch.bitwise_right_shift(axisdir, ax), 1) != 0) == bit
    e1 = reach(ax, _take(s, ax) * torch.where(same, 1 - bbp, 1 + bbp))
    spB = torch.where(e1 < spB, e1, spB) * mulB
    hasB = (cltype >= 0) & (cltype // 3 == 1) & ((cB == 1) | (cB == 2) | (cB == 4))

    # (C) a segment end is closest, off one face: farthest point of the segment still over that face
    mulC = torch.where(cltype == -3, 1.0, -1.0).to(dtype)
    start = pos + ha * (-mulC).unsqueeze(-1)
    spC = torch.full_like(best, 2.0)
    ha_safe = torch.where(habs > MINVAL, ha, torch.ones_like(ha))
    for k in range(3):
        usable = (clface != k) & (habs[..., k] > MINVAL)
        for lim in (s[..., k], -s[..., k]):
            e1 = (lim - start[..., k]) / ha_safe[..., k] * mulC
            upd = usable & (e1 > 0) & (e1 < spC)
            spC = torch.where(upd, e1, spC)
    spC = spC * mulC
    hasC = (cltype < 0) & (cltype != -4) & (clface != -1)

    second = torch.where(hasA, spA, torch.where(hasB, spB, spC))
    has2 = (hasA | hasB | hasC) & (second > -3)
    found = cltype != -4

    t = torch.stack([bsp, torch.where(has2, second + bsp, bsp)], -1)  # (B, P, 2)
    local = pos.unsqueeze(-2) + ha.unsqueeze(-2) * t.unsqueeze(-1)
    centers = _mv(g2.mat.unsqueeze(-3), local) + g2.pos.unsqueeze(-2)
    dist, cpos, normal, valid = _sphere_box(centers, radius.unsqueeze(-1), g2.pos.unsqueeze(-2),
                                            g2.mat.unsqueeze(-3), s.unsqueeze(-2), margin.unsqueeze(-1))
    valid = valid & torch.stack([found, found & has2], -1)
    # MuJoCo's algorithm makes at most 2 contacts (mj_maxContact reserves 4): 2 slots suffice
    return _finish(dist, cpos, normal, valid, g2.pos)


# ------------------------------------------------------------------------------------------------ box : box

def _clip_half_plane(poly, valid, coord: int, sign: float, limit, cap: int):
    """Clip the convex polygons `poly (..., N, 3)` (first `valid.sum(-1)` slots, in order) to the half-plane
    `sign * v[coord] <= limit (...)`; z rides along as an attribute. Like MuJoCo's `clipHalfPlane`: a vertex on
    the inner side is kept, an edge strictly crossing the line adds its crossing point after its first vertex.
    Returns the clipped polygons compacted into `cap` slots and their mask."""
    n = poly.shape[-2]
    d = sign * poly[..., coord] - limit.unsqueeze(-1)
    count = valid.sum(-1, keepdim=True)
    nxt = torch.arange(1, n + 1, device=poly.device)
    nxt = torch.where(nxt < count, nxt, 0)
    q = _take_vec(poly, nxt)
    dq = torch.gather(d, -1, nxt)
    keep = valid & (d <= 0)
    cross = valid & (torch.sign(d) * torch.sign(dq) < 0)  # strictly opposite sides (0 and NaN: no crossing)
    t = d / torch.where(cross, d - dq, 1.0)
    inter = poly + t.unsqueeze(-1) * (q - poly)
    cand = torch.stack([poly, inter], -2).flatten(-3, -2)  # p0, x0, p1, x1, ...
    cmask = torch.stack([keep, cross], -1).flatten(-2)
    order = _first(cmask, cap)
    return _take_vec(cand, order), torch.gather(cmask, -1, order)


def box_box(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Box against box; K = 8. Follows MuJoCo 4.0.0's `mjc_BoxBox` (engine_collision_box.c).

    Stage 1, separating axes: the 3 face normals of each box and the 9 edge-edge cross products (those with
    sin^2 of the edge angle above a noise floor) are tested in MuJoCo's order; a separation beyond the margin (plus
    a rounding slack) along any means no contact, else the axis of largest separation wins, edge axes only if
    they beat the best face axis by a relative bias, and a winning edge axis within ~8 degrees of the best face
    axis and less than 5% deeper is replaced by it.
    Stage 2a, edge axis: one contact at the midpoint of the closest points of the two supporting edges (both
    candidate edges are tried where an axis component is ambiguous), dist along the axis.
    Stage 2b, face axis: the incident face of the other box (most anti-parallel to the reference normal) is
    clipped to the reference face's side planes (Sutherland-Hodgman, up to 8 vertices); each vertex within the
    margin of the reference face, minus near-duplicates, is a contact: dist = its height over the face, pos =
    midway between the face and the vertex, normal = the reference face normal (oriented geom 1 → geom 2).

    Shapes: pos (B, P, 3), mat (B, P, 3, 3), size (P, 3) half-sizes (m), margin (P,) m.
    Returns dist (B, P, 8), pos (B, P, 8, 3), normal (B, P, 8, 3), valid (B, P, 8).
    """
    dtype = g1.pos.dtype
    dev = g1.pos.device
    sepeps, pareps, sgneps, dupeps = _BOXBOX_EPS.get(dtype, _BOXBOX_EPS[torch.float32])
    pos1, pos2, mat1, mat2 = g1.pos, g2.pos, g1.mat, g2.mat
    s1 = g1.size.to(dtype).expand_as(pos1)
    s2 = g2.size.to(dtype).expand_as(pos2)
    margin = margin.to(dtype).expand(pos1.shape[:-1])
    ar3 = torch.arange(3, device=dev)

    rot = _mtm(mat1, mat2)  # rot[i, j] = box2 axis j in box1 frame, component i
    rotabs = torch.abs(rot)
    pos21 = _mtv(mat1, pos2 - pos1)
    pos12 = _mtv(mat2, pos1 - pos2)

    # ---- stage 1: separating-axis test
    septol = margin + sepeps * (s1[..., 0] + s1[..., 1] + s1[..., 2] + s2[..., 0] + s2[..., 1] + s2[..., 2])
    # axes 0-2: faces of box1, 3-5: faces of box2, 6 + 3i + j: edge i of box1 x edge j of box2; each family's
    # separations computed at once (the same operations as axis by axis), the best axis then scanned in order
    radius2 = rotabs[..., :, 0] * s2[..., 0:1] + rotabs[..., :, 1] * s2[..., 1:2] + rotabs[..., :, 2] * s2[..., 2:3]
    radius1 = rotabs[..., 0, :] * s1[..., 0:1] + rotabs[..., 1, :] * s1[..., 1:2] + rotabs[..., 2, :] * s1[..., 2:3]
    sep_f = torch.cat((torch.abs(pos21) - s1 - radius2, torch.abs(pos12) - s2 - radius1), -1)  # (B, P, 6)
    separated = (sep_f > septol.unsqueeze(-1)).any(-1)
    # the largest face separation, the first on ties (MuJoCo's scan with strict >, from -MAXVAL): every finite sep
    # beats -MAXVAL, so the start value is only kept where the poses hold NaN (a diverged env; code 0 keeps the
    # gathers below in range, that env's contacts are NaN)
    sep_best, code = torch.where(sep_f > -MAXVAL, sep_f, -MAXVAL).max(-1)
    sep_face, code_face = sep_best, code
    face_col = torch.where(code_face < 3, code_face, code_face - 3)
    i1, i2, j1, j2, jj = _EDGE_AXES.to(dev).unbind(0)  # (9,) each: i+1, i+2, j+1, j+2 (mod 3), j of axis 3i + j
    rflat = rot.flatten(-2)  # rot[r, c] at 3r + c
    pick = lambda x, idx: x.index_select(-1, idx)  # noqa: E731
    ax1, ax2 = -pick(rflat, 3 * i2 + jj), pick(rflat, 3 * i1 + jj)  # (B, P, 9)
    norm2 = ax1 * ax1 + ax2 * ax2
    ok = ~(norm2 < pareps)
    inv = 1 / torch.sqrt(torch.where(ok, norm2, torch.ones_like(norm2)))
    ax1, ax2 = ax1 * inv, ax2 * inv
    radius1 = pick(s1, i1) * torch.abs(ax1) + pick(s1, i2) * torch.abs(ax2)
    a2_1 = ax1 * pick(rflat, 3 * i1 + j1) + ax2 * pick(rflat, 3 * i2 + j1)
    a2_2 = ax1 * pick(rflat, 3 * i1 + j2) + ax2 * pick(rflat, 3 * i2 + j2)
    radius2 = pick(s2, j1) * torch.abs(a2_1) + pick(s2, j2) * torch.abs(a2_2)
    sep_e = torch.abs(ax1 * pick(pos21, i1) + ax2 * pick(pos21, i2)) - radius1 - radius2
    separated = separated | (ok & (sep_e > septol.unsqueeze(-1))).any(-1)
    beats = ok & (sep_e > sep_face.unsqueeze(-1))
    biased = sep_e - _BOXBOX_EDGEBIAS * torch.abs(sep_e)
    for k, (beat, bias_k, sep_k) in enumerate(zip(beats.unbind(-1), biased.unbind(-1), sep_e.unbind(-1))):
        upd = beat & (bias_k > sep_best)
        sep_best = torch.where(upd, sep_k, sep_best)
        code = torch.where(upd, 6 + k, code)
    is_edge = code >= 6
    ecode = torch.where(is_edge, code - 6, torch.zeros_like(code))
    # the winning edge axis, normalised (MuJoCo normalises it again for the substitution test and the contact)
    ei, ej = ecode // 3, ecode % 3
    ei1, ei2 = (ei + 1) % 3, (ei + 2) % 3
    ej1, ej2 = (ej + 1) % 3, (ej + 2) % 3
    axis = torch.where(ar3 == ei1.unsqueeze(-1), -_take(rflat, 3 * ei2 + ej).unsqueeze(-1),
                       torch.where(ar3 == ei2.unsqueeze(-1), _take(rflat, 3 * ei1 + ej).unsqueeze(-1),
                                   torch.zeros_like(pos21)))
    anorm = _safe_sqrt(_dot(axis, axis))
    aok = ~(anorm < MINVAL)
    axis = torch.where(aok.unsqueeze(-1), axis * (1 / torch.where(aok, anorm, torch.ones_like(anorm))).unsqueeze(-1),
                       (ar3 == 0).to(dtype).expand_as(axis))
    # its alignment with the best face axis: a winning edge axis close to it and not much deeper is replaced by it
    face_axis = torch.gather(rot, -1, face_col[..., None, None].expand(*face_col.shape, 3, 1)).squeeze(-1)
    fdot = torch.abs(torch.where(code_face < 3, _take(axis, face_col), _dot(axis, face_axis)))
    subst = is_edge & (fdot > _BOXBOX_FACEDOT) & (sep_best < sep_face + _BOXBOX_FACESLACK * torch.abs(sep_face)
                                                  + MINVAL)
    code = torch.where(subst, code_face, code)
    is_edge = code >= 6

    # ---- stage 2a: edge-edge contact (per-pair edge axes i of box1 and j of box2)
    axis = torch.where((_dot(axis, pos21) < 0).unsqueeze(-1), -axis, axis)
    a2 = _mtv(rot, axis)  # axis in box2 frame
    amb1 = torch.where(torch.abs(_take(axis, ei1)) < sgneps, ei1,
                       torch.where(torch.abs(_take(axis, ei2)) < sgneps, ei2, torch.full_like(ei, -1)))
    amb2 = torch.where(torch.abs(_take(a2, ej1)) < sgneps, ej1,
                       torch.where(torch.abs(_take(a2, ej2)) < sgneps, ej2, torch.full_like(ej, -1)))
    d2 = torch.gather(rot, -1, ej[..., None, None].expand(*ej.shape, 3, 1)).squeeze(-1)  # box2 edge direction
    b = _take(d2, ei)
    denom = 1 - b * b
    dok = ~(denom < MINVAL)
    denom = torch.where(dok, denom, torch.ones_like(denom))
    lim1, lim2 = _take(s1, ei).unsqueeze(-1), _take(s2, ej).unsqueeze(-1)
    on_i = ar3 == ei.unsqueeze(-1)
    base1 = torch.where(on_i, torch.zeros_like(s1), torch.where(axis >= 0, s1, -s1))
    base2 = torch.where(ar3 == ej.unsqueeze(-1), torch.zeros_like(s2), torch.where(a2 >= 0, -s2, s2))
    # the 4 candidate edge pairs (v1, v2) = (0, 0), (0, 1), (1, 0), (1, 1): v flips the ambiguous corner coordinate
    flip1 = torch.where(ar3 == amb1.unsqueeze(-1), -base1, base1)
    flip2 = torch.where(ar3 == amb2.unsqueeze(-1), -base2, base2)
    c1 = torch.stack((base1, base1, flip1, flip1), -2)  # (B, P, 4, 3)
    cc = torch.stack((base2, flip2, base2, flip2), -2)
    has1, has2 = amb1 >= 0, amb2 >= 0
    use = torch.stack((torch.ones_like(has1), has2, has1, has1 & has2), -1)  # (B, P, 4)
    c2 = _mv(rot.unsqueeze(-3), cc) + pos21.unsqueeze(-2)
    e = c2 - c1
    d1e = torch.gather(e, -1, ei[..., None, None].expand(*ei.shape, 4, 1)).squeeze(-1)
    d2e = _dot(d2.unsqueeze(-2), e)
    b4, dok4 = b.unsqueeze(-1), dok.unsqueeze(-1)
    sl = torch.where(dok4, (d1e - b4 * d2e) / denom.unsqueeze(-1), torch.zeros_like(d1e))
    sl = torch.minimum(torch.maximum(sl, -lim1), lim1)
    tl = torch.minimum(torch.maximum(b4 * sl - d2e, -lim2), lim2)
    sl = torch.minimum(torch.maximum(d1e + b4 * tl, -lim1), lim1)
    p1 = torch.where(on_i.unsqueeze(-2), c1 + sl.unsqueeze(-1), c1)
    p2 = c2 + d2.unsqueeze(-2) * tl.unsqueeze(-1)
    gap = p2 - p1
    gap2 = _dot(gap, gap)
    # the closest used candidate, the first on ties (MuJoCo's scan with strict <, from MAXVAL; none: zeros)
    best_gap2, k = torch.where(use & (gap2 < MAXVAL), gap2, MAXVAL).min(-1)
    found = (best_gap2 < MAXVAL).unsqueeze(-1)
    k3 = k[..., None, None].expand(*k.shape, 1, 3)
    w1 = torch.where(found, torch.gather(p1, -2, k3).squeeze(-2), 0.0)
    w2 = torch.where(found, torch.gather(p2, -2, k3).squeeze(-2), 0.0)
    edge_dist = _dot(w2 - w1, axis)
    edge_valid = ~(edge_dist > septol)
    mid = 0.5 * (w1 + w2)
    edge_pos = _mv(mat1, mid) + pos1
    edge_normal = _mv(mat1, axis)

    # ---- stage 2b: face contact; the reference box owns the winning face, the other one is incident
    ref1 = code < 3
    r1 = ref1.unsqueeze(-1)
    a = torch.where(ref1, code, code - 3).clamp(0, 2)
    sizeref = torch.where(r1, s1, s2)
    sizeinc = torch.where(r1, s2, s1)
    posref = torch.where(r1, pos1, pos2)
    matref = torch.where(r1.unsqueeze(-1), mat1, mat2)
    posoi = torch.where(r1, pos21, pos12)  # incident centre in the reference frame
    rinc = torch.where(r1.unsqueeze(-1), rot, rot.transpose(-1, -2))  # rinc[r, c]: incident axis c, component r
    sgn = torch.where(_take(posoi, a) >= 0, 1.0, -1.0).to(dtype)
    perm = _cyclic((a + 1) % 3)  # reference axes (x, y, z) = (a+1, a+2, a)
    rp = _take_vec(rinc, perm)  # rows permuted
    rz = torch.abs(rp[..., 2, :])
    binc = torch.where(rz[..., 1] > rz[..., 0], 1, 0)
    binc = torch.where(rz[..., 2] > _take(rz, binc), 2, binc)
    tinc = torch.where(sgn * _take(rp[..., 2, :], binc) > 0, -1.0, 1.0).to(dtype)
    bperm = _cyclic(binc)  # incident axes (normal, u, v) = (binc, binc+1, binc+2)
    rpp = torch.gather(rp, -1, bperm.unsqueeze(-2).expand_as(rp))
    si = _cols(sizeinc, bperm)
    sr = _cols(sizeref, perm)
    pp = _cols(posoi, perm)
    cx = pp + (tinc * si[..., 0]).unsqueeze(-1) * rpp[..., :, 0]
    du = si[..., 1].unsqueeze(-1) * rpp[..., :, 1]
    dv = si[..., 2].unsqueeze(-1) * rpp[..., :, 2]
    zsgn = torch.stack([torch.ones_like(sgn), torch.ones_like(sgn), sgn], -1)
    cx = torch.cat([cx[..., :2], (sgn * cx[..., 2] - sr[..., 2]).unsqueeze(-1)], -1)
    du, dv = du * zsgn, dv * zsgn
    corners = []
    for su, sv in ((1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)):
        corners.append(cx + su * du + sv * dv)
    poly = torch.stack(corners, -2)  # (B, P, 4, 3): x, y in the face plane, z height over it
    pmask = torch.ones(poly.shape[:-1], dtype=torch.bool, device=dev)
    for m, (coord, sign) in enumerate(((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0))):
        poly, pmask = _clip_half_plane(poly, pmask, coord, sign, sr[..., coord], 5 + m)

    # accept vertices within the margin, dropping near-duplicates of earlier accepted ones
    dupe2 = dupeps * (sr[..., 0] * sr[..., 0] + sr[..., 1] * sr[..., 1])
    dx = poly[..., :, None, 0] - poly[..., None, :, 0]  # (B, P, 8 q, 8 k): vertex q minus vertex k
    dy = poly[..., :, None, 1] - poly[..., None, :, 1]
    close = dx * dx + dy * dy < dupe2[..., None, None]
    within = pmask & ~(poly[..., 2] > margin.unsqueeze(-1))
    onehot = _ONEHOT8.to(dev).unbind(0)
    face_valid = within & onehot[0]  # vertex 0 has no earlier vertex
    for k, (within_k, close_k) in enumerate(zip(within.unbind(-1)[1:], close.unbind(-1)[1:]), start=1):
        ok = within_k & ~(face_valid & close_k).any(-1)  # kept unless an earlier kept one is its near-duplicate
        face_valid = face_valid | (onehot[k] & ok.unsqueeze(-1))

    nsign = torch.where(ref1, sgn, -sgn)
    face_normal = nsign.unsqueeze(-1) * _take_vec(matref.transpose(-1, -2), a.unsqueeze(-1)).squeeze(-2)
    posc_p = torch.stack([poly[..., 0], poly[..., 1],
                          sgn.unsqueeze(-1) * (sr[..., 2:3] + 0.5 * poly[..., 2])], -1)  # (B, P, 8, 3)
    inv = (ar3 - a.unsqueeze(-1) - 1) % 3  # reference-frame component k is posc_p[inv[k]]
    posc = torch.gather(posc_p, -1, inv.unsqueeze(-2).expand_as(posc_p))
    face_pos = _mv(matref.unsqueeze(-3), posc) + posref.unsqueeze(-2)
    face_dist = poly[..., 2]

    # ---- assemble: an edge contact takes slot 0
    first = torch.zeros(8, dtype=torch.bool, device=dev)
    first[0] = True
    e8 = is_edge.unsqueeze(-1) & first
    dist = torch.where(e8, edge_dist.unsqueeze(-1), face_dist)
    pos = torch.where(e8.unsqueeze(-1), edge_pos.unsqueeze(-2), face_pos)
    normal = torch.where(e8.unsqueeze(-1), edge_normal.unsqueeze(-2), face_normal.unsqueeze(-2))
    valid = torch.where(is_edge.unsqueeze(-1), first & edge_valid.unsqueeze(-1), face_valid)
    valid = valid & ~separated.unsqueeze(-1)
    return _finish(dist, pos, normal, valid, pos2)


G = mujoco.mjtGeom
FUNCTIONS = {
    (int(G.mjGEOM_PLANE), int(G.mjGEOM_BOX)): plane_box,
    (int(G.mjGEOM_SPHERE), int(G.mjGEOM_BOX)): sphere_box,
    (int(G.mjGEOM_CAPSULE), int(G.mjGEOM_BOX)): capsule_box,
    (int(G.mjGEOM_BOX), int(G.mjGEOM_BOX)): box_box,
}
MAX_CONTACTS = {(int(G.mjGEOM_PLANE), int(G.mjGEOM_BOX)): 4, (int(G.mjGEOM_SPHERE), int(G.mjGEOM_BOX)): 1,
                (int(G.mjGEOM_CAPSULE), int(G.mjGEOM_BOX)): 2, (int(G.mjGEOM_BOX), int(G.mjGEOM_BOX)): 8}

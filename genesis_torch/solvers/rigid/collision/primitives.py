"""Narrow-phase contacts between analytic primitives: plane, sphere, capsule, cylinder and ellipsoid.

Each function takes the two sides of P geom pairs in B envs (`GeomBatch`, geom 1 of the lower MuJoCo geom type)
and the pair margins, and returns MuJoCo's maximum number K of contact slots for that type pair (`Contacts`). The
algorithms, their special cases, constants and the order of their floating-point operations follow MuJoCo 4.0.0's
collision functions (`src/engine/engine_collision_primitive.c`, `mjc_PlaneConvex` in
`engine_collision_convex.c`), so float64 results agree with MuJoCo to rounding; `valid` applies the same
accept/reject tests as the C code, slot by slot, instead of compacting the contacts.

Everything is elementwise over `(B, P)`: branches become `torch.where` over values that are finite on every
branch (denominators are made safe before dividing, square roots are taken of safe arguments), so gradients are
never NaN, and an env's bits do not depend on its place in the batch. Dot and cross products are written out
component by component in MuJoCo's summation order.
"""

from __future__ import annotations

import math

import mujoco
import torch

from ....math.small import dot as _dot, cross as _cross, safe_sqrt as _safe_sqrt
from .types import Contacts, GeomBatch

MINVAL = 1e-15  # MuJoCo's mjMINVAL: smallest norm or denominator used as such
PARALLEL_TOL = 1e-8  # squared sine of the angle under which capsule axes count as parallel (mjc_segWeights)


# ------------------------------------------------------------------------------------------------ vector helpers


def _normalize(v: torch.Tensor) -> torch.Tensor:
    """Unit vectors along `v (..., 3)`; (1, 0, 0) where `|v| < MINVAL` (MuJoCo's `mju_normalize3`)."""
    norm = _safe_sqrt(_dot(v, v))
    ok = norm >= MINVAL
    inv = 1.0 / torch.where(ok, norm, torch.ones_like(norm))
    return torch.where(ok[..., None], v * inv[..., None], _unit_x(v))


def _unit_x(like: torch.Tensor) -> torch.Tensor:
    """(1, 0, 0) broadcast to the shape of `like (..., 3)`."""
    return torch.tensor((1.0, 0.0, 0.0), dtype=like.dtype, device=like.device).expand(like.shape)


def _axis(mat: torch.Tensor, i: int) -> torch.Tensor:
    """Column `i` (geom axis i in world) of rotations `mat (..., 3, 3)`."""
    return mat[..., :, i]


def _contacts(dist, pos, normal, valid) -> Contacts:
    """Stack per-slot lists (each `(B, P)` or `(B, P, 3)`) into `Contacts` with K = len(lists)."""
    return Contacts(torch.stack(dist, -1), torch.stack(pos, -2), torch.stack(normal, -2), torch.stack(valid, -1))


# ------------------------------------------------------------------------------------------------ raw kernels

def _plane_sphere(normal, plane_pos, center, radius, margin):
    """Sphere (`center`, `radius`) against the plane through `plane_pos` with unit `normal` (MuJoCo's
    `mjraw_PlaneSphere`). Returns dist, pos, valid (the contact normal is `normal`)."""
    cdist = _dot(center - plane_pos, normal)
    valid = cdist <= margin + radius
    dist = cdist - radius
    pos = center + normal * (dist * -0.5 - radius)[..., None]
    return dist, pos, valid


def _sphere_sphere(pos1, axis1, r1, pos2, axis2, r2, margin):
    """Spheres (`pos1`, `r1`) and (`pos2`, `r2`) (MuJoCo's `mjraw_SphereSphere`). Coincident centres take the
    normal along `axis1 × axis2` (the geoms' z axes), or (1, 0, 0) if those are parallel too.
    Returns dist, pos, normal, valid."""
    dif = pos1 - pos2
    bound = margin + r1 + r2
    valid = _dot(dif, dif) <= bound * bound
    dist = _safe_sqrt(_dot(dif, dif)) - r1 - r2
    frame = pos2 - pos1
    length = _safe_sqrt(_dot(frame, frame))
    normal = torch.where((length < MINVAL)[..., None], _normalize(_cross(axis1, axis2)), _normalize(frame))
    pos = pos1 + normal * (dist * 0.5 + r1)[..., None]
    return dist, pos, normal, valid


def _segment_weights(a0, a1, b0, b1):
    """Closest points between segments a0-a1 and b0-b1 as weights (s, t) along them (MuJoCo 4's
    `mjc_segWeights`): one pair in general, two when the segments are parallel (sin² of their angle at most
    PARALLEL_TOL), one from each end of segment a with t clipped. Returns ((s0, t0), (s1, t1), parallel)."""
    d1, d2, r = a1 - a0, b1 - b0, a0 - b0
    A, E = _dot(d1, d1), _dot(d2, d2)
    B, C, F = _dot(d1, d2), _dot(d1, r), _dot(d2, r)
    pointa, pointb = A <= MINVAL, E <= MINVAL
    one = torch.ones_like(A)
    zero = torch.zeros_like(A)
    A_ = torch.where(pointa, one, A)
    E_ = torch.where(pointb, one, E)
    s_t0 = (-C / A_).clamp(0.0, 1.0)  # s nearest to b0 (t = 0)
    s_t1 = ((B - C) / A_).clamp(0.0, 1.0)  # s nearest to b1 (t = 1)

    def clip_t(s, t):  # clip t to [0, 1], re-solving s against the end of b it was clipped to
        return (torch.where(t < 0, s_t0, torch.where(t > 1, s_t1, s)),
                torch.where(t < 0, zero, torch.where(t > 1, one, t)))

    # general position: unconstrained s from (d1 × d2)·(d2 × r) / |d1 × d2|², then t from s
    n = _cross(d1, d2)
    nn = _dot(n, n)
    parallel = ~(nn > A * PARALLEL_TOL * E)
    nn_ = torch.where(parallel, one, nn)
    s = (_dot(n, _cross(d2, r)) / nn_).clamp(0.0, 1.0)
    s_gen, t_gen = clip_t(s, (B * s + F) / E_)
    # parallel: from each end of segment a
    s_p0, t_p0 = clip_t(zero, F / E_)
    s_p1, t_p1 = clip_t(one, (F + B) / E_)
    s0 = torch.where(parallel, s_p0, s_gen)
    t0 = torch.where(parallel, t_p0, t_gen)
    # degenerate segments (points)
    s0 = torch.where(pointb, s_t0, s0)
    t0 = torch.where(pointb, zero, t0)
    s0 = torch.where(pointa, zero, s0)
    t0 = torch.where(pointa, torch.where(pointb, zero, (F / E_).clamp(0.0, 1.0)), t0)
    parallel = parallel & ~pointa & ~pointb
    return (s0, t0), (s_p1, t_p1), parallel


# ------------------------------------------------------------------------------------------------ pair functions

def plane_sphere(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Plane (g1) : sphere (g2), K = 1 (MuJoCo's `mjc_PlaneSphere`).

    Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m, `margin (P,)` m; returns `Contacts`
    with `dist (B, P, 1)` m, `pos`/`normal (B, P, 1, 3)`. The normal is the plane's z axis; valid where the
    distance is at most the margin.
    """
    normal = _axis(g1.mat, 2)
    dist, pos, valid = _plane_sphere(normal, g1.pos, g2.pos, g2.size[:, 0], margin)
    return _contacts([dist], [pos], [normal], [valid])


def plane_capsule(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Plane (g1) : capsule (g2), K = 2 (MuJoCo's `mjc_PlaneCapsule`): a plane-sphere test at each end of the
    capsule's segment (slot 0: +z end, slot 1: -z end).

    Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m (capsule: radius, half-length),
    `margin (P,)` m; returns `dist (B, P, 2)` m, `pos`/`normal`/`tangent (B, P, 2, 3)`: as MuJoCo, the contact
    frame's first tangent is the capsule axis.
    """
    normal = _axis(g1.mat, 2)
    segment = _axis(g2.mat, 2) * g2.size[:, 1, None]
    radius = g2.size[:, 0]
    out = [_plane_sphere(normal, g1.pos, g2.pos + segment, radius, margin),
           _plane_sphere(normal, g1.pos, g2.pos - segment, radius, margin)]
    c = _contacts([o[0] for o in out], [o[1] for o in out], [normal, normal], [o[2] for o in out])
    c.tangent = _axis(g2.mat, 2)[..., None, :].expand_as(c.pos)
    return c


def plane_cylinder(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Plane (g1) : cylinder (g2), K = 4 (MuJoCo's `mjc_PlaneCylinder`).

    Slot 0: the rim point deepest below the plane, on the cap nearer the plane; slot 1: the matching rim point on
    the far cap; slots 2-3: two more rim points of the near cap, at ±120° from slot 0 (an equilateral triangle).
    No slot is valid unless slot 0 is within the margin. Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`,
    `g.size (P, 3)` m (cylinder: radius, half-height), `margin (P,)` m; returns `dist (B, P, 4)` m,
    `pos`/`normal (B, P, 4, 3)`, normals along the plane's z axis.
    """
    normal = _axis(g1.mat, 2)
    radius, half = g2.size[:, 0], g2.size[:, 1]
    axis = _axis(g2.mat, 2)
    prjaxis = _dot(normal, axis)
    up = prjaxis > 0  # make the axis point towards the plane
    axis = torch.where(up[..., None], -axis, axis)
    prjaxis = torch.where(up, -prjaxis, prjaxis)
    dist0 = _dot(g2.pos - g1.pos, normal)

    # rim direction most opposed to the normal: -normal without its axial component, scaled to the radius
    vec = axis * prjaxis[..., None] - normal
    len_sqr = _dot(vec, vec)
    general = len_sqr >= MINVAL * MINVAL
    scl = radius / torch.sqrt(torch.where(general, len_sqr, torch.ones_like(len_sqr)))
    vec = torch.where(general[..., None], vec * scl[..., None], _axis(g2.mat, 0) * radius[:, None])  # disk || plane
    prjvec = _dot(vec, normal)
    axis = axis * half[:, None]
    prjaxis = prjaxis * half

    def contact(dist, point):
        return dist, point + normal * (dist * -0.5)[..., None]

    near = g2.pos + vec
    d_a, p_a = contact(dist0 + prjaxis + prjvec, near + axis)
    d_b, p_b = contact(dist0 - prjaxis + prjvec, near - axis)
    valid_a = d_a <= margin
    valid_b = valid_a & (d_b <= margin)

    # triangle points on the near cap
    d_c = dist0 + prjaxis + prjvec * -0.5
    valid_c = valid_a & (d_c <= margin)
    vec1 = _normalize(_cross(vec, axis)) * (radius * math.sqrt(3.0) * 0.5)[:, None]
    _, p_c = contact(d_c, g2.pos + vec1 + axis + vec * -0.5)
    _, p_d = contact(d_c, g2.pos - vec1 + axis + vec * -0.5)
    return _contacts([d_a, d_b, d_c, d_c], [p_a, p_b, p_c, p_d], [normal] * 4, [valid_a, valid_b, valid_c, valid_c])


def plane_ellipsoid(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Plane (g1) : ellipsoid (g2), K = 1 (MuJoCo routes it to `mjc_PlaneConvex`): the ellipsoid's support point
    along -normal (`mjc_ellipsoidSupport`) against the plane.

    Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m (ellipsoid half-axes), `margin (P,)` m;
    returns `dist (B, P, 1)` m, `pos`/`normal (B, P, 1, 3)`.
    """
    normal = _axis(g1.mat, 2)
    mat, size = g2.mat, g2.size
    local = _dot(mat.transpose(-1, -2), -normal[..., None, :])  # matᵀ (-normal): column i · (-normal)
    scaled = local * size
    norm2 = _dot(scaled, scaled)
    ok = norm2 >= MINVAL * MINVAL
    inv = 1.0 / torch.sqrt(torch.where(ok, norm2, torch.ones_like(norm2)))
    supp_local = scaled * (inv[..., None] * size)
    supp = _dot(mat, supp_local[..., None, :]) + g2.pos  # row i · local
    supp = torch.where(ok[..., None], supp, g2.pos + _axis(mat, 0) * size[:, 0, None])
    dist = _dot(supp - g1.pos, normal)
    pos = supp + normal * (dist * -0.5)[..., None]
    return _contacts([dist], [pos], [normal], [dist <= margin])


def sphere_sphere(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Sphere (g1) : sphere (g2), K = 1 (MuJoCo's `mjc_SphereSphere`).

    Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m (radius first), `margin (P,)` m;
    returns `dist (B, P, 1)` m, `pos`/`normal (B, P, 1, 3)`.
    """
    dist, pos, normal, valid = _sphere_sphere(g1.pos, _axis(g1.mat, 2), g1.size[:, 0],
                                              g2.pos, _axis(g2.mat, 2), g2.size[:, 0], margin)
    return _contacts([dist], [pos], [normal], [valid])


def sphere_capsule(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Sphere (g1) : capsule (g2), K = 1 (MuJoCo's `mjc_SphereCapsule`): the sphere against the nearest point of
    the capsule's segment.

    Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m, `margin (P,)` m; returns
    `dist (B, P, 1)` m, `pos`/`normal (B, P, 1, 3)`.
    """
    axis = _axis(g2.mat, 2)
    half = g2.size[:, 1]
    x = torch.minimum(torch.maximum(_dot(axis, g1.pos - g2.pos), -half), half)
    center = g2.pos + axis * x[..., None]
    dist, pos, normal, valid = _sphere_sphere(g1.pos, _axis(g1.mat, 2), g1.size[:, 0],
                                              center, axis, g2.size[:, 0], margin)
    return _contacts([dist], [pos], [normal], [valid])


def capsule_capsule(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Capsule (g1) : capsule (g2), K = 2 (MuJoCo 4's `mjraw_CapsuleCapsule` with `mjc_segWeights`).

    Sphere-sphere tests between the closest points of the two segments: one pair in general (slot 0; slot 1
    invalid), two when the axes are parallel to within sin² = 1e-8 (the contacts at both ends of the overlap).
    Shapes: `g.pos (B, P, 3)` m, `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m (radius, half-length), `margin (P,)`
    m; returns `dist (B, P, 2)` m, `pos`/`normal (B, P, 2, 3)`.
    """
    ax1, ax2 = _axis(g1.mat, 2), _axis(g2.mat, 2)
    seg1, seg2 = ax1 * g1.size[:, 1, None], ax2 * g2.size[:, 1, None]
    a0, a1, b0, b1 = g1.pos - seg1, g1.pos + seg1, g2.pos - seg2, g2.pos + seg2
    pairs = _segment_weights(a0, a1, b0, b1)
    d1, d2 = a1 - a0, b1 - b0
    out = []
    for s, t in pairs[:2]:
        out.append(_sphere_sphere(a0 + d1 * s[..., None], ax1, g1.size[:, 0],
                                  b0 + d2 * t[..., None], ax2, g2.size[:, 0], margin))
    valid = [out[0][3], out[1][3] & pairs[2]]
    return _contacts([o[0] for o in out], [o[1] for o in out], [o[2] for o in out], valid)


def sphere_cylinder(g1: GeomBatch, g2: GeomBatch, margin: torch.Tensor) -> Contacts:
    """Sphere (g1) : cylinder (g2), K = 1 (MuJoCo's `mjc_SphereCylinder`).

    The sphere centre's position relative to the cylinder picks the feature: the side (sphere-sphere against the
    axis point), a cap (plane-sphere against the cap plane) or the rim (sphere-sphere against the nearest rim
    point); a centre inside the cylinder takes the nearer of side and cap. Shapes: `g.pos (B, P, 3)` m,
    `g.mat (B, P, 3, 3)`, `g.size (P, 3)` m (cylinder: radius, half-height), `margin (P,)` m; returns
    `dist (B, P, 1)` m, `pos`/`normal (B, P, 1, 3)`.
    """
    radius, half = g2.size[:, 0], g2.size[:, 1]
    r1 = g1.size[:, 0]
    axis = _axis(g2.mat, 2)
    ax1 = _axis(g1.mat, 2)
    vec = g1.pos - g2.pos
    x = _dot(axis, vec)
    a_proj = axis * x[..., None]
    p_proj = vec - a_proj
    p_sqr = _dot(p_proj, p_proj)
    side = x.abs() < half
    cap = p_sqr < radius * radius
    deep = side & cap  # centre inside: keep the shallower way out
    cap_first = (half - x.abs()) < (radius - _safe_sqrt(p_sqr))
    side = side & ~(deep & cap_first)
    cap = cap & ~(deep & ~cap_first)

    # side: sphere against the axis point
    d_s, pos_s, n_s, v_s = _sphere_sphere(g1.pos, ax1, r1, g2.pos + a_proj, axis, radius, margin)
    # cap: plane-sphere against the cap plane (outward normal), then the normal flipped to point sphere -> cylinder
    top = x > 0
    sgn_half = torch.where(top, half, -half)
    n_cap = torch.where(top[..., None], axis, -axis)
    d_c, pos_c, v_c = _plane_sphere(n_cap, g2.pos + axis * sgn_half[..., None], g1.pos, r1, margin)
    # rim: sphere against the nearest rim point (a sphere of radius 0)
    scl = radius / torch.sqrt(torch.maximum(p_sqr, radius * radius))  # exact where the rim is picked (p_sqr >= r²)
    rim = axis * sgn_half[..., None] + p_proj * scl[..., None] + g2.pos
    d_r, pos_r, n_r, v_r = _sphere_sphere(g1.pos, ax1, r1, rim, axis, torch.zeros_like(radius), margin)

    def pick(a, b, c):
        s, k = side, cap
        if a.dim() > side.dim():
            s, k = s[..., None], k[..., None]
        return torch.where(s, a, torch.where(k, b, c))

    return _contacts([pick(d_s, d_c, d_r)], [pick(pos_s, pos_c, pos_r)], [pick(n_s, -n_cap, n_r)],
                     [pick(v_s, v_c, v_r)])


G = mujoco.mjtGeom
FUNCTIONS = {
    (int(G.mjGEOM_PLANE), int(G.mjGEOM_SPHERE)): plane_sphere,
    (int(G.mjGEOM_PLANE), int(G.mjGEOM_CAPSULE)): plane_capsule,
    (int(G.mjGEOM_PLANE), int(G.mjGEOM_ELLIPSOID)): plane_ellipsoid,
    (int(G.mjGEOM_PLANE), int(G.mjGEOM_CYLINDER)): plane_cylinder,
    (int(G.mjGEOM_SPHERE), int(G.mjGEOM_SPHERE)): sphere_sphere,
    (int(G.mjGEOM_SPHERE), int(G.mjGEOM_CAPSULE)): sphere_capsule,
    (int(G.mjGEOM_SPHERE), int(G.mjGEOM_CYLINDER)): sphere_cylinder,
    (int(G.mjGEOM_CAPSULE), int(G.mjGEOM_CAPSULE)): capsule_capsule,
}
del G

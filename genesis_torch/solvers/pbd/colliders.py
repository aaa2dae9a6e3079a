"""Contacts of PBD particles with the domain walls and the rigid geoms (one-way colliders), with friction.

A particle of radius r = particle_size / 2 touches a geom where the geom's signed distance phi(x) < r; the contact is
a position constraint phi(x) >= r projected at once (penetration d = r - phi pushed out along the outward normal
n), followed by the position-level Coulomb friction of Macklin, Mueller, Chentanez & Kim 2014 ("Unified particle
physics for real-time applications", ACM TOG 33(4), eqs. 23-24): with dx_t the tangential displacement of the
particle relative to the surface over the substep, static friction removes it when |dx_t| < mu_s d, otherwise it is
reduced by min(1, mu_k d / |dx_t|). The six walls of the domain are the same constraint on the particle centre
(Genesis' cube boundary keeps centres inside `lower_bound..upper_bound`), with friction as well.

Geoms are the collidable primitives (plane, sphere, capsule, cylinder, box) of the rigid solver's compiled MuJoCo
model (`geom_type/size/pos/quat/bodyid`); meshes, ellipsoids and height fields are skipped with a warning. Their pose
is the one after the rigid substep and their velocity field the rigid motion over it, v(x) = v_o + w x (x - p_body)
(`BodyMotion.geom_frames`).
"""

from __future__ import annotations

import dataclasses
import logging

import mujoco
import numpy as np
import torch

from ...math.sdf import primitive_sdf

__all__ = ["Colliders", "build_colliders", "contact_walls", "contact_geoms"]

logger = logging.getLogger("genesis_torch")

_KINDS = {int(mujoco.mjtGeom.mjGEOM_PLANE): "plane", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
          int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
          int(mujoco.mjtGeom.mjGEOM_BOX): "box"}


@dataclasses.dataclass
class Colliders:
    """k collidable primitive geoms: kind names, `body (k,)` long, `pos (k, 3)` m and `quat (k, 4)` wxyz in the body
    frame, `size (k, 3)` MuJoCo sizes (m)."""

    kinds: list[str]
    body: torch.Tensor
    pos: torch.Tensor
    quat: torch.Tensor
    size: torch.Tensor


def build_colliders(mj_model, device, dtype) -> Colliders | None:
    """The collidable (contype or conaffinity set) primitive geoms of `mj_model`, or None when there is none."""
    keep, skipped = [], []
    for g in range(mj_model.ngeom):
        if mj_model.geom_contype[g] == 0 and mj_model.geom_conaffinity[g] == 0:
            continue
        (keep if int(mj_model.geom_type[g]) in _KINDS else skipped).append(g)
    if skipped:
        names = [mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}" for g in skipped]
        logger.warning("PBD colliders: geoms %s are not primitives (plane, sphere, capsule, cylinder, box) and do not "
                       "act on particles.", names[:10])
    if not keep:
        return None
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return Colliders(kinds=[_KINDS[int(mj_model.geom_type[g])] for g in keep],
                     body=torch.as_tensor(mj_model.geom_bodyid[keep], dtype=torch.long, device=device),
                     pos=t(mj_model.geom_pos[keep]), quat=t(mj_model.geom_quat[keep]), size=t(mj_model.geom_size[keep]))


def _respond(x, x0, depth, n, surface_dx, mu_s, mu_k, movable):
    """Push `x (B, n, 3)` out by `depth (B, n)` (> 0 where in contact) along `n`, then position-level friction on the
    displacement since `x0` relative to `surface_dx` (the surface's displacement over the substep at x)."""
    hit = (depth > 0) & movable
    d = torch.where(hit, depth, torch.zeros_like(depth))
    x = x + d[..., None] * n
    rel = (x - x0) - surface_dx
    t = rel - (rel * n).sum(-1, keepdim=True) * n
    tn = t.norm(dim=-1)
    static = tn < mu_s * d
    scale = torch.where(static, torch.ones_like(tn), (mu_k * d / tn.clamp_min(torch.finfo(x.dtype).tiny)).clamp_max(1.0))
    return x - torch.where(hit, scale, torch.zeros_like(scale))[..., None] * t


def contact_walls(x, x0, lo, hi, mu_s, mu_k, movable):
    """Particle centres `(B, n, 3)` kept in the box `lo..hi (3,)`, with friction at each wall touched (the walls do
    not move); `mu_s, mu_k (n,)`, `movable (B, n)` bool. Axis by axis: the lower then the upper wall. Only the
    particles outside the box at the start are touched (one host sync): a wall's friction moves a particle's other
    coordinates towards x0's, inside the box, so it cannot take a particle out through another wall; the others are
    bitwise unchanged, as with every particle processed."""
    eye = _EYE.get((x.dtype, x.device))
    if eye is None:
        eye = _EYE.setdefault((x.dtype, x.device), torch.eye(3, dtype=x.dtype, device=x.device))
    b, i = (((x < lo) | (x > hi)).any(-1) & movable).nonzero(as_tuple=True)
    if b.numel() == 0:
        return x
    xs, x0s, ms, mk = x[b, i], x0[b, i], mu_s[i], mu_k[i]
    for a in range(3):
        xs = _respond(xs, x0s, lo[a] - xs[..., a], eye[a], 0.0, ms, mk, True)
        xs = _respond(xs, x0s, xs[..., a] - hi[a], -eye[a], 0.0, ms, mk, True)
    return x.index_put((b, i), xs)


_EYE: dict = {}  # the axes of the walls, per dtype and device


def contact_geoms(cm: Colliders, frames, x, x0, radius: float, dt: float, mu_s, mu_k, movable):
    """Particles `x (B, n, 3)` (radius m) pushed out of every geom (in model order), with friction relative to the
    geom's motion over the substep of `dt` s."""
    gpos, grot, v_o, w, body_pos = frames
    for k, kind in enumerate(cm.kinds):
        R = grot[:, k]
        q = (x - gpos[:, k, None]) @ R  # world -> geom frame: R^T (x - p)
        phi, n_local = primitive_sdf(kind, q, cm.size[k])
        n = n_local @ R.transpose(-1, -2)
        vcol = v_o[:, k, None] + torch.linalg.cross(w[:, k, None].expand_as(x), x - body_pos[:, k, None])
        x = _respond(x, x0, radius - phi, n, vcol * dt, mu_s, mu_k, movable)
    return x

"""Contacts of FEM vertices with the floor and with rigid geoms (one-way coupling), as velocity projections.

* Floor (Genesis' `FloorBoundary`, restitution 0): a vertex at or below z = floor_height moving down loses its
  vertical velocity.
* Rigid geoms (primitives of the rigid solver's compiled MuJoCo model: plane, sphere, capsule, cylinder, box): a
  vertex inside a geom (signed distance < 0, `math/sdf.py`) approaching it (relative normal velocity v_n < 0) loses
  v_n, and its tangential velocity is reduced by Coulomb friction, v_t <- v_t max(0, 1 + mu v_n / |v_t|)
  (Stomakhin et al. 2013, §8, the projection the MPM grid uses), mu the larger of the geom's sliding friction and the
  vertex material's `friction_mu`. The geom moves rigidly between its poses before and after the rigid substep:
  v(x) = v_o + w x (x - p_body).
"""

from __future__ import annotations

import dataclasses
import logging

import mujoco
import numpy as np
import torch

from ...math.quat import quat_to_mat
from ...math.small import dot, mm, mtv, mv
from ...math.sdf import norm3, primitive_sdf

__all__ = ["FEMColliders", "build_colliders", "collider_frames", "floor_project", "apply_colliders"]

logger = logging.getLogger("genesis_torch")

_SUPPORTED = {int(mujoco.mjtGeom.mjGEOM_PLANE): "plane", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
              int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
              int(mujoco.mjtGeom.mjGEOM_BOX): "box"}


@dataclasses.dataclass
class FEMColliders:
    """k collidable primitive geoms: kind names, `body (k,)` long, `pos (k, 3)` m / `quat (k, 4)` wxyz in the body
    frame, `size (k, 3)` MuJoCo sizes (m), `friction (k,)`."""

    kinds: list
    body: torch.Tensor
    pos: torch.Tensor
    quat: torch.Tensor
    size: torch.Tensor
    friction: torch.Tensor


def build_colliders(mj_model, device, dtype) -> FEMColliders | None:
    """The collidable primitive geoms of `mj_model` (contype or conaffinity set); other geom types are skipped with
    a warning. None when there is none."""
    keep, skipped = [], []
    for g in range(mj_model.ngeom):
        if mj_model.geom_contype[g] == 0 and mj_model.geom_conaffinity[g] == 0:
            continue
        (keep if int(mj_model.geom_type[g]) in _SUPPORTED else skipped).append(g)
    if skipped:
        names = [mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}" for g in skipped]
        logger.warning("FEM colliders: geoms %s are not primitives (plane, sphere, capsule, cylinder, box) and do not "
                       "act on FEM vertices.", names[:10])
    if not keep:
        return None
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return FEMColliders(kinds=[_SUPPORTED[int(mj_model.geom_type[g])] for g in keep],
                        body=torch.as_tensor(mj_model.geom_bodyid[keep], dtype=torch.long, device=device),
                        pos=t(mj_model.geom_pos[keep]), quat=t(mj_model.geom_quat[keep]),
                        size=t(mj_model.geom_size[keep]), friction=t(mj_model.geom_friction[keep, 0]))


def _body_frames(links_pos, links_quat):
    B = links_pos.shape[0]
    R0 = torch.eye(3, dtype=links_pos.dtype, device=links_pos.device).expand(B, 1, 3, 3)
    return torch.cat((links_pos.new_zeros(B, 1, 3), links_pos), 1), torch.cat((R0, quat_to_mat(links_quat)), 1)


def collider_frames(cm: FEMColliders, bodies):
    """Geom frames after the rigid substep and their velocity from the `BodyMotion` `bodies`: `(gpos (B,k,3),
    grot (B,k,3,3), v_o (B,k,3), w (B,k,3), body_pos (B,k,3))`."""
    p0, R0 = _body_frames(bodies.pos_before, bodies.quat_before)
    p1, R1 = _body_frames(bodies.pos_after, bodies.quat_after)
    b = cm.body
    p0, R0, p1, R1 = p0[:, b], R0[:, b], p1[:, b], R1[:, b]
    Rrel = mm(R1, R0.transpose(-1, -2))
    angle = torch.acos(((Rrel[..., 0, 0] + Rrel[..., 1, 1] + Rrel[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0))
    axis2 = torch.stack((Rrel[..., 2, 1] - Rrel[..., 1, 2], Rrel[..., 0, 2] - Rrel[..., 2, 0],
                         Rrel[..., 1, 0] - Rrel[..., 0, 1]), -1)  # 2 sin(angle) axis
    sin = torch.sin(angle)
    factor = torch.where(sin > 1e-9, angle / (2 * sin).clamp_min(1e-30), torch.full_like(sin, 0.5))
    w = axis2 * factor[..., None] / bodies.dt
    gpos = p1 + mv(R1, cm.pos[None])
    return gpos, mm(R1, quat_to_mat(cm.quat)[None].expand_as(R1)), (p1 - p0) / bodies.dt, w, p1


def floor_project(pos: torch.Tensor, vel: torch.Tensor, height: float) -> torch.Tensor:
    """Velocities `(B, nv, 3)` with v_z = 0 where z <= height and v_z <= 0 (Genesis' FloorBoundary, restitution 0)."""
    hit = (pos[..., 2] <= height) & (vel[..., 2] <= 0)
    return torch.cat((vel[..., :2], torch.where(hit, torch.zeros_like(vel[..., 2]), vel[..., 2])[..., None]), -1)


def apply_colliders(cm: FEMColliders, frames, x: torch.Tensor, v: torch.Tensor, friction: torch.Tensor,
                    free: torch.Tensor) -> torch.Tensor:
    """Velocities `v (B, nv, 3)` m/s of vertices at `x (B, nv, 3)` m projected against every geom, in model order;
    only where `free (B, nv)` (hard-constrained vertices are left alone). `friction (nv,)`: the vertices' own."""
    gpos, grot, v_o, w, body_pos = frames
    for k, kind in enumerate(cm.kinds):
        R = grot[:, k, None]  # (B, 1, 3, 3)
        q = mtv(R, x - gpos[:, k, None])  # world -> geom frame
        phi, n_local = primitive_sdf(kind, q, cm.size[k])
        n = mv(R, n_local)
        vcol = v_o[:, k, None] + torch.linalg.cross(w[:, k, None].expand_as(x), x - body_pos[:, k, None])
        rel = v - vcol
        vn = dot(rel, n)[..., None]
        vt = rel - vn * n
        mu = torch.maximum(friction, cm.friction[k])[None, :, None]
        scale = (1 + mu * vn / norm3(vt)[..., None].clamp_min(1e-30)).clamp_min(0.0)
        hit = (phi < 0)[..., None] & (vn < 0) & free[..., None]
        v = torch.where(hit, vcol + vt * scale, v)
    return v

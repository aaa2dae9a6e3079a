"""Rigid geoms as moving MPM colliders (one-way coupling): signed distance of primitives at grid nodes and the
grid-velocity projection of Stomakhin et al. 2013, §8 ("Collisions"): at a node inside a collider (phi < 0) the
velocity relative to the collider, if approaching (v_n < 0), loses its normal part and its tangential part is
reduced by Coulomb friction: v_t <- v_t max(0, 1 + mu v_n / |v_t|).

Geom data come from the compiled MuJoCo model of the rigid solver (`geom_type/size/pos/quat/bodyid/friction`) and
the body poses from `RigidState.links_pos/links_quat` (world body 0 is fixed). A geom's velocity field is the rigid
motion between the poses before and after the rigid substep: v(x) = v_o + w x (x - p_1).
"""

from __future__ import annotations

import dataclasses
import logging

import mujoco
import numpy as np
import torch

from ...math.sdf import primitive_sdf

__all__ = ["ColliderModel", "build_colliders", "apply_colliders"]

logger = logging.getLogger("genesis_torch")

_SUPPORTED = {int(mujoco.mjtGeom.mjGEOM_PLANE): "plane", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
              int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
              int(mujoco.mjtGeom.mjGEOM_BOX): "box"}


@dataclasses.dataclass
class ColliderModel:
    """Static collider data, `k` geoms: kind names, `body (k,)` long, `pos (k, 3)` m and `quat (k, 4)` wxyz in the
    body frame, `size (k, 3)` MuJoCo sizes (m), `friction (k,)` Coulomb coefficient."""

    kinds: list[str]
    body: torch.Tensor
    pos: torch.Tensor
    quat: torch.Tensor
    size: torch.Tensor
    friction: torch.Tensor


def build_colliders(mj_model, device, dtype) -> ColliderModel | None:
    """Collidable (contype or conaffinity set) primitive geoms of `mj_model`; meshes, ellipsoids and height fields
    are skipped with a warning (docs/mpm.md). None when there is none."""
    keep, skipped = [], []
    for g in range(mj_model.ngeom):
        if mj_model.geom_contype[g] == 0 and mj_model.geom_conaffinity[g] == 0:
            continue
        (keep if int(mj_model.geom_type[g]) in _SUPPORTED else skipped).append(g)
    if skipped:
        names = [mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}" for g in skipped]
        logger.warning("MPM colliders: geoms %s are not primitives (plane, sphere, capsule, cylinder, box) and do not "
                       "act on particles.", names[:10])
    if not keep:
        return None
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return ColliderModel(kinds=[_SUPPORTED[int(mj_model.geom_type[g])] for g in keep],
                         body=torch.as_tensor(mj_model.geom_bodyid[keep], dtype=torch.long, device=device),
                         pos=t(mj_model.geom_pos[keep]), quat=t(mj_model.geom_quat[keep]),
                         size=t(mj_model.geom_size[keep]), friction=t(mj_model.geom_friction[keep, 0]))


def apply_colliders(cm: ColliderModel, frames, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Project grid velocities `v (B, N, 3)` at node positions `x (N, 3)` or `(B, N, 3)` (m; per env for a sparse
    grid) against every collider; returns the new `(B, N, 3)` velocities (m/s). Geoms are applied in model order."""
    gpos, grot, v_o, w, body_pos = frames
    x = x if x.dim() == 3 else x[None]
    for k, kind in enumerate(cm.kinds):
        R = grot[:, k]  # (B, 3, 3)
        q = (x - gpos[:, k, None]) @ R  # world -> geom frame: R^T (x - p)
        phi, n_local = primitive_sdf(kind, q, cm.size[k])
        n = n_local @ R.transpose(-1, -2)
        vcol = v_o[:, k, None] + torch.linalg.cross(w[:, k, None].expand_as(q), x - body_pos[:, k, None])
        rel = v - vcol
        vn = (rel * n).sum(-1, keepdim=True)
        vt = rel - vn * n
        vt_norm = vt.norm(dim=-1, keepdim=True)
        scale = (1 + cm.friction[k] * vn / vt_norm.clamp_min(1e-30)).clamp_min(0.0)
        hit = (phi < 0)[..., None] & (vn < 0)
        v = torch.where(hit, vcol + vt * scale, v)
    return v

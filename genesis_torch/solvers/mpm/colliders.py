"""Rigid geoms as moving MPM colliders (one-way coupling): signed distance of primitives and meshes at grid nodes and
the grid-velocity projection of Stomakhin et al. 2013, §8 ("Collisions"): at a node inside a collider or on its
surface (phi <= 0) the velocity relative to the collider, if approaching (v_n < 0), loses its normal part and its
tangential part is reduced by Coulomb friction: v_t <- v_t max(0, 1 + mu v_n / |v_t|).

The surface counts as inside (phi <= 0, not phi < 0), as in Genesis 1.4.5, whose coupler
(`LegacyCoupler._func_collide_with_rigid_geom`) applies the projection with full weight min(exp(-phi / softness), 1)
= 1 at phi <= 0 (and a fading weight a few mm outside). A floor through a row of nodes (z = 0 on a grid with a node
there) then stops that row; with phi < 0 the row was free and material resting on the plane sank ~0.6 dx into it.

Mesh geoms (MuJoCo `mjGEOM_MESH`: a `gs.morphs.Mesh` rigid entity, each collision part, or an MJCF mesh geom) act
through their signed distance sampled once at build on a grid in the geom's frame (geometry/sdf_grid.py: Genesis'
SDF-grid rule with a target cell of half the MPM cell, 32..129 samples per axis, trimesh's exact signed distance at
the samples) and interpolated trilinearly at the nodes each substep; the normal is the interpolant's gradient. The
mesh is the one MuJoCo collides with (`mesh_vert/mesh_face` of the compiled model: after convexify, the hulls).

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

from ...errors import InvalidInputError
from ...geometry.sdf_grid import SDFGrid, build_sdf_grid, sdf_lookup
from ...math.sdf import primitive_sdf

__all__ = ["ColliderModel", "build_colliders", "apply_colliders"]

logger = logging.getLogger("genesis_torch")

_SUPPORTED = {int(mujoco.mjtGeom.mjGEOM_PLANE): "plane", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
              int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
              int(mujoco.mjtGeom.mjGEOM_BOX): "box", int(mujoco.mjtGeom.mjGEOM_MESH): "mesh"}
GENESIS_SDF_CELL = 0.005  #: Genesis' default `sdf_cell_size` (m): the mesh SDF cell target when no MPM cell is given


@dataclasses.dataclass
class ColliderModel:
    """Static collider data, `k` geoms: kind names, `body (k,)` long, `pos (k, 3)` m and `quat (k, 4)` wxyz in the
    body frame, `size (k, 3)` MuJoCo sizes (m), `friction (k,)` Coulomb coefficient, `sdf` the sampled signed
    distance of each mesh geom (None for primitives)."""

    kinds: list[str]
    body: torch.Tensor
    pos: torch.Tensor
    quat: torch.Tensor
    size: torch.Tensor
    friction: torch.Tensor
    sdf: list[SDFGrid | None] = dataclasses.field(default_factory=list)


def mesh_geom_sdf(mj_model, g: int, cell_target: float) -> SDFGrid:
    """The sampled signed distance (float64, CPU) of mesh geom `g` of `mj_model` in the geom's frame (MuJoCo stores
    a mesh's vertices in the frame that `geom_pos/geom_quat` place on the body). Raises `InvalidInputError` if the
    mesh is not closed."""
    d = int(mj_model.geom_dataid[g])
    va, vn = int(mj_model.mesh_vertadr[d]), int(mj_model.mesh_vertnum[d])
    fa, fn = int(mj_model.mesh_faceadr[d]), int(mj_model.mesh_facenum[d])
    return build_sdf_grid(mj_model.mesh_vert[va:va + vn], mj_model.mesh_face[fa:fa + fn], cell_target)


def build_colliders(mj_model, device, dtype, sdf_cell: float | None = None) -> ColliderModel | None:
    """Collidable (contype or conaffinity set) primitive and mesh geoms of `mj_model`; ellipsoids and height fields
    are skipped with a warning (docs/mpm.md). `sdf_cell` m: the target cell of the mesh SDF grids (the MPM solver
    passes half its grid cell; None: Genesis' 0.005 m). None when there is no collider."""
    if sdf_cell is not None and not (isinstance(sdf_cell, (int, float)) and np.isfinite(sdf_cell) and sdf_cell > 0):
        raise InvalidInputError(f"build_colliders: sdf_cell must be a positive length in m or None, got {sdf_cell!r}.")
    cell = GENESIS_SDF_CELL if sdf_cell is None else float(sdf_cell)
    name = lambda g: mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}"  # noqa: E731
    keep, sdf, skipped = [], [], []
    for g in range(mj_model.ngeom):
        if mj_model.geom_contype[g] == 0 and mj_model.geom_conaffinity[g] == 0:
            continue
        kind = _SUPPORTED.get(int(mj_model.geom_type[g]))
        if kind is None:
            skipped.append(g)
            continue
        grid = None
        if kind == "mesh":
            try:
                grid = mesh_geom_sdf(mj_model, g, cell).to(device, dtype)
            except InvalidInputError as err:  # an open mesh has no inside: it cannot hold particles out
                logger.warning("MPM colliders: mesh geom %s does not act on particles: %s", name(g), err)
                continue
        keep.append(g)
        sdf.append(grid)
    if skipped:
        logger.warning("MPM colliders: geoms %s are not primitives (plane, sphere, capsule, cylinder, box) or meshes "
                       "and do not act on particles.", [name(g) for g in skipped][:10])
    if not keep:
        return None
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    kinds = [_SUPPORTED[int(mj_model.geom_type[g])] for g in keep]
    return ColliderModel(kinds=kinds,
                         body=torch.as_tensor(mj_model.geom_bodyid[keep], dtype=torch.long, device=device),
                         pos=t(mj_model.geom_pos[keep]), quat=t(mj_model.geom_quat[keep]),
                         size=t(mj_model.geom_size[keep]), friction=t(mj_model.geom_friction[keep, 0]), sdf=sdf)


def apply_colliders(cm: ColliderModel, frames, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Project grid velocities `v (B, N, 3)` at node positions `x (N, 3)` or `(B, N, 3)` (m; per env for a sparse
    grid) against every collider; returns the new `(B, N, 3)` velocities (m/s). Geoms are applied in model order."""
    gpos, grot, v_o, w, body_pos = frames
    x = x if x.dim() == 3 else x[None]
    for k, kind in enumerate(cm.kinds):
        R = grot[:, k]  # (B, 3, 3)
        q = (x - gpos[:, k, None]) @ R  # world -> geom frame: R^T (x - p)
        phi, n_local = sdf_lookup(cm.sdf[k], q) if kind == "mesh" else primitive_sdf(kind, q, cm.size[k])
        n = n_local @ R.transpose(-1, -2)
        vcol = v_o[:, k, None] + torch.linalg.cross(w[:, k, None].expand_as(q), x - body_pos[:, k, None])
        rel = v - vcol
        vn = (rel * n).sum(-1, keepdim=True)
        vt = rel - vn * n
        vt_norm = vt.norm(dim=-1, keepdim=True)
        scale = (1 + cm.friction[k] * vn / vt_norm.clamp_min(1e-30)).clamp_min(0.0)
        hit = (phi <= 0)[..., None] & (vn < 0)
        v = torch.where(hit, vcol + vt * scale, v)
    return v

"""Boundaries of the liquid: the six domain walls and the rigid geoms (one-way colliders), as boundary volume maps.

Each boundary contributes to particle i its volume map V_b(x_i) (the kernel integrated over the solid; Bender et al.
2019, "Volume maps: an implicit boundary representation for SPH", MIG '19; the continuous form of Akinci et al.
2012's boundary particles, "Versatile rigid-fluid coupling for incompressible SPH", ACM TOG 31(4), whose volume
Psi_b = rho0 V_b they replace): density rho_i / rho0 += V_b, the pressure acceleration -rho0 (p_i / rho_i^2)
grad V_b (Akinci et al. 2012, eq. 10), and in DFSPH the term (v_i - v_b) . grad V_b of the density change.

V_b of a wall is exact (the half-space integral, kernel.halfspace_volume); boundaries combine as the union of their
solids (`_union`: an edge or corner of the tank is not counted twice, which made particles there 17 % too dense). For a
rigid geom it is the half-space integral at the geom's signed distance d(x_i) with grad V_b = dPhi/dd * n(x_i): exact on
flat faces, an approximation near edges and curved surfaces whose radius is not much larger than h (docs/sph.md). Geoms
are the collidable primitives (plane, sphere, capsule, cylinder, box) of the rigid solver's compiled MuJoCo model; a
plane that coincides with a domain wall (the usual ground plane at the floor) is left out, the wall stands for it.

Hydrostatic boundary pressure (Adami, Hu & Adams 2012, "A generalized wall boundary condition for smoothed particle
hydrodynamics", J. Comput. Phys. 231, eq. 27): mirroring p_b = p_i gives a wall no share in the pressure gradient
along it, so particles next to a wall are under-supported (the fluid sum holds only 1 - V_b of the kernel-gradient
moment) and a resting column circulates. With the wall pressure extrapolated from the particle, p_b(x') = p_i +
rho0 g . (x' - x_i), the boundary adds the acceleration -M_b g, where M_b = int_solid (x' - x_i) grad_i W dx' is the
solid's share of that moment; for a half-space at distance s with normal n, M_b = Phi(s) I - s Phi'(s) n n^T
(integration by parts; fluid and solid shares sum to I). Geom accelerations are left out of g.

After the position update, particles are kept in the domain (Genesis' `CubeBoundary.impose_pos_vel`, restitution
0) and out of the geoms: a particle inside (d < 0) moves along the normal to the surface and loses its approaching
normal velocity relative to the geom.
"""

from __future__ import annotations

import dataclasses
import logging

import mujoco
import numpy as np
import torch

from ...math.sdf import primitive_sdf
from .kernel import halfspace_volume

__all__ = ["Colliders", "build_colliders", "boundary_terms", "project"]

logger = logging.getLogger("genesis_torch")

_KINDS = {int(mujoco.mjtGeom.mjGEOM_PLANE): "plane", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
          int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
          int(mujoco.mjtGeom.mjGEOM_BOX): "box"}


@dataclasses.dataclass(frozen=True)
class Colliders:
    """k rigid geoms: `kinds` names, `body (k,)` long MuJoCo body ids, `pos (k, 3)` m and `quat (k, 4)` wxyz in the
    body frame, `size (k, 3)` MuJoCo sizes (m)."""

    kinds: list
    body: torch.Tensor
    pos: torch.Tensor
    quat: torch.Tensor
    size: torch.Tensor


def _on_wall(m, g: int, lower, upper) -> bool:
    """Whether plane geom `g` of a world-fixed body lies on a domain wall with the wall's inward normal."""
    if m.body_weldid[m.geom_bodyid[g]] != 0:  # a body that moves (a Plane's own link is welded to the world)
        return False
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, m.geom_quat[g])
    normal, p = R.reshape(3, 3)[:, 2], m.geom_pos[g]
    for a in range(3):
        for sign, bound in ((1.0, lower[a]), (-1.0, upper[a])):
            if abs(normal[a] - sign) < 1e-9 and abs(p[a] - bound) < 1e-9:
                return True
    return False


def build_colliders(mj_model, lower, upper, device, dtype) -> Colliders | None:
    """The collidable primitive geoms of `mj_model` (contype or conaffinity set), without planes on a domain wall;
    meshes, ellipsoids and height fields are skipped with a warning. None when none is left."""
    keep, skipped = [], []
    for g in range(mj_model.ngeom):
        if mj_model.geom_contype[g] == 0 and mj_model.geom_conaffinity[g] == 0:
            continue
        kind = _KINDS.get(int(mj_model.geom_type[g]))
        if kind is None:
            skipped.append(g)
        elif not (kind == "plane" and _on_wall(mj_model, g, lower, upper)):
            keep.append(g)
    if skipped:
        names = [mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}" for g in skipped]
        logger.warning("SPH boundaries: geoms %s are not primitives (plane, sphere, capsule, cylinder, box) and do not "
                       "act on the liquid.", names[:10])
    if not keep:
        return None
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return Colliders(kinds=[_KINDS[int(mj_model.geom_type[g])] for g in keep],
                     body=torch.as_tensor(mj_model.geom_bodyid[keep], dtype=torch.long, device=device),
                     pos=t(mj_model.geom_pos[keep]), quat=t(mj_model.geom_quat[keep]), size=t(mj_model.geom_size[keep]))


def geom_distances(cm: Colliders, frames, x: torch.Tensor):
    """Per geom k: signed distance `(B, n)` m, world normal `(B, n, 3)` and geom velocity at x `(B, n, 3)` m/s of
    particles `x (B, n, 3)`."""
    gpos, grot, v_o, w, origin = frames
    out = []
    for k, kind in enumerate(cm.kinds):  # a loop over the few geoms, not over particles
        R = grot[:, k, None]  # (B, 1, 3, 3)
        q = ((x - gpos[:, k, None])[..., None, :] @ R)[..., 0, :]  # R^T (x - p)
        d, n_local = primitive_sdf(kind, q, cm.size[k])
        n = (R @ n_local[..., None])[..., 0]
        v = v_o[:, k, None] + torch.linalg.cross(w[:, k, None].expand_as(x), x - origin[:, k, None])
        out.append((d, n, v))
    return out


def _union(phi: torch.Tensor):
    """Volume map `(...)` of the union of solids with maps `phi (..., K)`, V = 1 - prod_k (1 - Phi_k) (the overlap of
    two solids, e.g. the quarter space at an edge of the tank, counted once: exact where at most one boundary is near,
    and exact at an edge's line for the radial kernel's quarter space, 1/4), and the weights `(..., K)`
    prod_{m != k} (1 - Phi_m) = dV / dPhi_k of each boundary's gradient, velocity and hydrostatic terms (exclusive
    products from both ends: no division, exact where a Phi_k is 1)."""
    free = 1.0 - phi
    ones = torch.ones_like(free[..., :1])
    before = torch.cumprod(torch.cat((ones, free[..., :-1]), -1), -1)
    after = torch.cumprod(torch.cat((ones, free[..., 1:].flip(-1)), -1), -1).flip(-1)
    return 1.0 - before[..., -1] * free[..., -1], before * after


def boundary_terms(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, h: float, cm: Colliders | None,
                   frames, gravity: torch.Tensor):
    """Volume-map terms of the boundaries (the union of the six walls and the geoms, `_union`) at particles
    `x (B, n, 3)` m: `V_b (B, n)`, `grad (B, n, 3)` 1/m (grad V_b), `vgrad (B, n)` 1/s (the boundaries' velocity .
    their gradient) and `hydro (B, n, 3)` m/s^2, the acceleration of the boundaries' hydrostatic pressure,
    -M_b g with M_b = Phi I - s Phi' n n^T per boundary (module docstring; `gravity (3,)` m/s^2). The six walls
    (lower wall normal +e_a, upper wall -e_a) are evaluated together as `(B, n, 6)`."""
    s = torch.cat((x - lower, upper - x), -1)  # (B, n, 6): lower walls x, y, z, then upper walls
    if cm is not None and frames is not None:
        geoms = []
        for d, nrm, v in geom_distances(cm, frames, x):
            gphi, gdphi = halfspace_volume(d, h)
            geoms.append((gphi, gdphi, d, nrm, v))
        return _terms(s, geoms, h, gravity)
    # walls only: the terms vanish beyond h of every wall, so only the particles within h are evaluated (a liquid's
    # bulk is far from the walls); the others get exact zeros
    B, n = x.shape[:2]
    flat = s.reshape(-1, 6)
    idx = (flat.min(-1).values < h).nonzero()[:, 0]
    V, grad, vgrad, hydro = _terms(flat.index_select(0, idx), [], h, gravity)
    zero = torch.zeros(B * n, dtype=x.dtype, device=x.device)
    zero3 = torch.zeros(B * n, 3, dtype=x.dtype, device=x.device)
    return (zero.index_copy(0, idx, V).reshape(B, n), zero3.index_copy(0, idx, grad).reshape(B, n, 3),
            zero.reshape(B, n), zero3.index_copy(0, idx, hydro).reshape(B, n, 3))


def _terms(s: torch.Tensor, geoms: list, h: float, gravity: torch.Tensor):
    """`boundary_terms` of particles at wall distances `s (..., 6)` m and geoms `[(Phi, dPhi/dd, d, normal,
    velocity)]` (each `(...)` or `(..., 3)`)."""
    phi, dphi = halfspace_volume(s, h)
    if geoms:
        phi = torch.cat([phi] + [g[0][..., None] for g in geoms], -1)
    V, w = _union(phi)
    ww = w[..., :6] * dphi  # each wall's weighted dPhi/ds
    grad = ww[..., :3] - ww[..., 3:]  # sign * dPhi/ds along e_a
    hydro = ((ww * s)[..., :3] + (ww * s)[..., 3:]) * gravity - (w * phi).sum(-1, keepdim=True) * gravity
    vgrad = torch.zeros_like(V)
    for k, (gphi, gdphi, d, nrm, v) in enumerate(geoms):
        wk = w[..., 6 + k]
        g = (wk * gdphi)[..., None] * nrm
        grad = grad + g
        vgrad = vgrad + (v * g).sum(-1)
        hydro = hydro + (wk * d * gdphi * (nrm * gravity).sum(-1))[..., None] * nrm
    return V, grad, vgrad, hydro


def project(x: torch.Tensor, v: torch.Tensor, lower, upper, cm: Colliders | None, frames):
    """Positions `(B, n, 3)` m kept in the domain and out of the geoms, velocities `(B, n, 3)` m/s with the normal
    component pointing out of the domain (or into a geom, relative to it) removed where a particle was moved."""
    if cm is not None and frames is not None:
        for d, n, vg in geom_distances(cm, frames, x):
            inside = d < 0
            x = torch.where(inside[..., None], x - d[..., None] * n, x)
            vn = ((v - vg) * n).sum(-1, keepdim=True)
            v = torch.where(inside[..., None] & (vn < 0), v - vn * n, v)
    out = ((x >= upper) & (v > 0)) | ((x <= lower) & (v < 0))
    return torch.minimum(torch.maximum(x, lower), upper), torch.where(out, torch.zeros_like(v), v)

"""The static MPM model: particles (mass, volume, material groups), the grid geometry and the colliders.

Grid conventions (Genesis's): nodes run from `lower_cell = round(lower_bound * grid_density)` to `upper_cell =
round(upper_bound * grid_density)` per axis (`res = upper_cell - lower_cell + 1` nodes, spacing `dx`). Node (i, j, k)
sits at `(lower_cell + (i, j, k)) dx`. Walls: the nodes within `WALL = 3` cells of each side, the one on the plane
`lower_bound + 3 dx` (`upper_bound - 3 dx`) included: Genesis 1.4.5's `CubeBoundary` acts where `pos <= lower + 3 dx`
(`>= upper - 3 dx`), the same planes that particles are clamped to (`pos_lo/pos_hi`). Taichi's mpm88/mpm3d (`I <
bound`) leave that node free, which is only consistent there because they never clamp particles: with the clamp, a
material pressed against a wall could still flow on the free node row while its particles stayed on the plane, so
its deformation gradient (from C) expanded while its particles compacted (a sand column between slip walls sank 12-16 %
at rest; with the node in the wall 0.1 %, as Genesis).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ...materials import MPM as mats
from ...options import MPMOptions
from .colliders import ColliderModel

__all__ = ["WALL", "MaterialGroup", "MPMModel", "MPMParams", "build_mpm_model"]

WALL = 3  #: wall thickness in cells (nodes 0..WALL and res-1-WALL..res-1 are walls)


@dataclasses.dataclass(frozen=True)
class MaterialGroup:
    """Particles `start:end` (one entity) share a material: `kind` is "corotated", "neohookean", "elastoplastic",
    "snow", "sand" or "liquid"; `material` the user's material object."""

    start: int
    end: int
    kind: str
    material: object


@dataclasses.dataclass
class MPMParams:
    """Differentiable per-particle material parameters, `(P, n)` with P = 1 (shared) or B (per env):
    Young's modulus `E` (Pa) and Poisson ratio `nu`. Replace them (e.g. with tensors that require grad) through
    `MPMEntity.set_material_params`."""

    E: torch.Tensor
    nu: torch.Tensor
    #: (P, n, 3) unit muscle fibre directions (rest frame; default +z, as Genesis) when some entity is an `MPM.Muscle`
    #: (`MPMEntity.set_muscle`), else None
    muscle_dir: torch.Tensor | None = None

    def lame(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, lam) in Pa, `(P, n)` each: mu = E / (2 (1 + nu)), lam = E nu / ((1 + nu)(1 - 2 nu))."""
        return self.E / (2 * (1 + self.nu)), self.E * self.nu / ((1 + self.nu) * (1 - 2 * self.nu))


@dataclasses.dataclass
class MPMModel:
    """Static description of an MPM system with n particles and a grid of `res` nodes.

    Attributes:
        n: particle count.  mass: (n,) kg.  p_vol: particle volume (m^3), `particle_size ** 3`.
        groups: material groups (one per entity, contiguous).  init_pos: (n, 3) m, the sampled positions.
        dx, inv_dx: grid spacing (m) and its inverse.  lower_cell: (3,) long.  res: (Gx, Gy, Gz).
        node_pos: (G, 3) m, G = Gx Gy Gz.  wall_lo, wall_hi: (G, 3) bool, node in the lower/upper wall of axis d.
        wall_min, wall_max: (3, G) velocity bounds of "separate" walls (0 at a wall, -inf / +inf elsewhere).
        wall_keep: (3, G) 0/1 factors of "sticky" (all components at any wall) or "slip" (normal component) walls.
        stride: (3,) long, flat index strides.  offsets: (27, 3) float, the 3x3x3 stencil; offsets_flat: (27,) long.
        gravity: (3,) m/s^2.  dt: MPM substep (s).  boundary: "sticky" | "slip" | "separate".
        colliders: rigid geoms acting on the grid, or None.  has_lame_override: groups whose material fixes mu/lam.
        flip_ratio: FLIP share of the particle velocity update in [0, 1] (`MPMOptions.flip_ratio`; 0: pure APIC).
        pos_lo, pos_hi: (3,) m, the box particles are kept in: the domain inside its walls (as Genesis' boundary
            padding of 3 cells). A particle advected past it is put back on it with its outward velocity zeroed.
    """

    n: int
    mass: torch.Tensor
    p_vol: float
    groups: list
    init_pos: torch.Tensor
    dx: float
    inv_dx: float
    lower_cell: torch.Tensor
    res: tuple
    node_pos: torch.Tensor
    wall_lo: torch.Tensor
    wall_hi: torch.Tensor
    stride: torch.Tensor
    offsets: torch.Tensor
    offsets_flat: torch.Tensor
    gravity: torch.Tensor
    dt: float
    boundary: str
    colliders: ColliderModel | None
    wall_min: torch.Tensor
    wall_max: torch.Tensor
    wall_keep: torch.Tensor
    lame_mu: torch.Tensor
    lame_lam: torch.Tensor
    lame_given: torch.Tensor
    pos_lo: torch.Tensor
    pos_hi: torch.Tensor
    flip_ratio: float = 0.0
    has_muscle: bool = False  #: some entity is an `MPM.Muscle` (its particles add the active stress, muscle.py)

    @property
    def n_nodes(self) -> int:
        return math.prod(self.res)  # plain Python (no NumPy): torch.compile traces it as a constant


def material_kind(material) -> str:
    if isinstance(material, mats.Elastic):
        return "corotated" if material.model == "corotation" else "neohookean"
    return {mats.ElastoPlastic: "elastoplastic", mats.Snow: "snow", mats.Sand: "sand",
            mats.Liquid: "liquid"}[type(material)]


def build_mpm_model(entities, options: MPMOptions, dt: float, gravity, colliders, device, dtype):
    """The model of `entities` (each with `.material` and `.sampled_pos (n_e, 3)` NumPy, inside the walls: the scene
    checks) and the default params."""
    gd = options.grid_density
    lower = np.array([round(v * gd) for v in options.lower_bound], dtype=np.int64)
    upper = np.array([round(v * gd) for v in options.upper_bound], dtype=np.int64)
    dx = 1.0 / gd
    groups, start = [], 0
    for e in entities:
        p = e.sampled_pos
        groups.append(MaterialGroup(start, start + len(p), material_kind(e.material), e.material))
        start += len(p)
    n = start
    p_vol = options.particle_size ** 3
    t = lambda a, dt_=dtype: torch.as_tensor(np.asarray(a), dtype=dt_, device=device)  # noqa: E731
    mass = np.concatenate([np.full(g.end - g.start, g.material.rho * p_vol) for g in groups])
    res = tuple(int(v) for v in upper - lower + 1)
    idx = np.stack(np.meshgrid(*[np.arange(r) for r in res], indexing="ij"), -1).reshape(-1, 3)
    off = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    stride = np.array([res[1] * res[2], res[2], 1], dtype=np.int64)
    E = np.concatenate([np.full(g.end - g.start, g.material.E) for g in groups])
    nu = np.concatenate([np.full(g.end - g.start, g.material.nu) for g in groups])
    mu_l = np.concatenate([np.full(g.end - g.start, g.material.lame[0]) for g in groups])
    lam_l = np.concatenate([np.full(g.end - g.start, g.material.lame[1]) for g in groups])
    given = np.concatenate([np.full(g.end - g.start, g.material.mu is not None or g.material.lam is not None)
                            for g in groups])
    lo_w, hi_w = idx <= WALL, idx >= (np.array(res) - 1 - WALL)
    inf = np.inf
    keep = ~(lo_w | hi_w) if options.boundary == "slip" else np.repeat(~(lo_w | hi_w).any(1, keepdims=True), 3, 1)
    model = MPMModel(
        n=n, mass=t(mass), p_vol=p_vol, groups=groups, init_pos=t(np.concatenate([e.sampled_pos for e in entities])),
        dx=dx, inv_dx=float(gd), lower_cell=t(lower, torch.long), res=res, node_pos=t((idx + lower) * dx),
        wall_lo=t(lo_w, torch.bool), wall_hi=t(hi_w, torch.bool), wall_min=t(np.where(lo_w, 0.0, -inf).T.copy()),
        wall_max=t(np.where(hi_w, 0.0, inf).T.copy()), wall_keep=t(keep.astype(np.float64).T.copy()),
        stride=t(stride, torch.long), offsets=t(off), offsets_flat=t(off @ stride, torch.long),
        gravity=torch.tensor(gravity, dtype=dtype, device=device), dt=float(dt), boundary=options.boundary,
        colliders=colliders, lame_mu=t(mu_l)[None], lame_lam=t(lam_l)[None],
        lame_given=t(given, torch.bool)[None], pos_lo=t((lower + WALL) * dx), pos_hi=t((upper - WALL) * dx),
        flip_ratio=float(options.flip_ratio), has_muscle=any(isinstance(g.material, mats.Muscle) for g in groups))
    params = MPMParams(E=t(E)[None], nu=t(nu)[None])
    if model.has_muscle:  # every particle gets a direction (read only where a muscle group is): Genesis' default +z
        params.muscle_dir = t(np.tile([0.0, 0.0, 1.0], (n, 1)))[None]
    return model, params

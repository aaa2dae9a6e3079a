"""The static SPH model: particles (rest density, mass, material coefficients), kernel, domain, grid, colliders."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ...options import SPHOptions
from .boundary import Colliders
from .neighbors import Grid

__all__ = ["VOLUME_FACTOR", "SPHModel", "build_sph_model"]

VOLUME_FACTOR = 0.8  #: particle volume V = 0.8 particle_size^3 (Genesis' empirical value, `SPHSolver._particle_volume`)


@dataclasses.dataclass(frozen=True)
class SPHModel:
    """n particles of one or more liquids, shared by every env.

    Attributes:
        n: particle count.  init_pos: (n, 3) m, sampled positions.
        rho0, mass, stiffness, exponent, mu, gamma: (n,) per particle: rest density (kg/m^3), mass rho0 V (kg),
            Tait stiffness (Pa) and exponent, viscosity and surface tension (materials/SPH.py).
        V: particle volume (m^3).  h: support radius (m).  particle_size: m.  dt: SPH substep (s).
        gravity: (3,) m/s^2.  lower, upper: (3,) m, the domain.  grid: the neighbour search grid.
        pressure_solver: "WCSPH" | "DFSPH".  colliders: rigid geoms, or None.
        div_tol, den_tol: DFSPH tolerances (kg/m^3 / s and kg/m^3, for the env's mean rho0 of 1: scaled by it).
        div_iters, den_iters: DFSPH iteration caps.
    """

    n: int
    init_pos: torch.Tensor
    rho0: torch.Tensor
    mass: torch.Tensor
    stiffness: torch.Tensor
    exponent: torch.Tensor
    mu: torch.Tensor
    gamma: torch.Tensor
    V: float
    h: float
    particle_size: float
    dt: float
    gravity: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    grid: Grid
    pressure_solver: str
    colliders: Colliders | None
    max_divergence_error: float
    max_density_error_percent: float
    div_iters: int
    den_iters: int


def build_sph_model(entities, o: SPHOptions, dt: float, gravity, colliders, device, dtype) -> SPHModel:
    """The model of `entities` (each with `.material` and `.sampled_pos (n_e, 3)` NumPy, inside the domain)."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    V = VOLUME_FACTOR * o.particle_size ** 3
    per = lambda name: t(np.concatenate([np.full(e.n_particles, getattr(e.material, name)) for e in entities]))  # noqa
    rho0 = per("rho")
    lower, upper = np.asarray(o.lower_bound), np.asarray(o.upper_bound)
    res = tuple(int(v) for v in np.maximum(1, np.ceil((upper - lower) / o.hash_grid_cell_size)).astype(np.int64) + 1)
    grid = Grid(lower=t(lower), cell=float(o.hash_grid_cell_size), res=res, h=o.support_radius)
    return SPHModel(
        n=sum(e.n_particles for e in entities), init_pos=t(np.concatenate([e.sampled_pos for e in entities])),
        rho0=rho0, mass=rho0 * V, stiffness=per("stiffness"), exponent=per("exponent"), mu=per("mu"),
        gamma=per("gamma"), V=V, h=o.support_radius, particle_size=o.particle_size, dt=float(dt),
        gravity=torch.tensor(gravity, dtype=dtype, device=device), lower=t(lower), upper=t(upper), grid=grid,
        pressure_solver=o.pressure_solver, colliders=colliders, max_divergence_error=o.max_divergence_error,
        max_density_error_percent=o.max_density_error_percent, div_iters=o.max_divergence_solver_iterations,
        den_iters=o.max_density_solver_iterations)


def stable_dt(model: SPHModel) -> float:
    """Genesis' viscous step bound 0.01 h^2 / max(mu) (s; inf without viscosity)."""
    mu = float(model.mu.max())
    return math.inf if mu <= 0 else 0.01 * model.h ** 2 / mu

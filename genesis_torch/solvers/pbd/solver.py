"""The PBD solver: state and the XPBD substep (Macklin, Mueller & Chentanez 2016) of cloth, elastic solids,
position-based liquids (Macklin & Mueller 2013) and free particles, batched over envs.

One substep of dt (`PBDSolver.step`), in Genesis 1.4.5's order:

1. free particles: v += g dt, cloth air drag v -= dt air |v| v / m; every particle: x = x0 + v dt (a fixed particle
   keeps its velocity, zero after `fix_particles`);
2. stretch constraints (`max_stretch_solver_iterations` sweeps), then bending, then volume: XPBD projections with
   multipliers accumulated over the sweeps of this substep, colour by colour (constraints.py, colouring.py; past
   `model.MAX_COLOURS` colours, the rest as one Jacobi batch with averaging);
3. liquid density and viscosity (liquid.py), when there are liquid particles;
4. particle-particle collisions: cloth self-collision, cloth / elastic / liquid contacts (collisions.py);
5. contacts with the rigid geoms and the domain walls, with friction (colliders.py);
6. v = (x - x0) / dt.

Fixed particles (`free` False) have inverse mass 0: constraints and contacts never move them.
"""

from __future__ import annotations

import dataclasses

import torch

from ...state import SolverState
from ..base import SolverBase
from .colliders import contact_geoms, contact_walls
from .constraints import project
from .model import PBDModel

__all__ = ["PBDState", "PBDSolver"]


@dataclasses.dataclass(frozen=True)
class PBDState(SolverState):
    """Everything that determines a PBD system's future (DESIGN.md §4). n particles, B envs. The multipliers restart
    at 0 every substep, so they are not state."""

    prefix = "PBDSolver"

    pos: torch.Tensor  #: (B, n, 3) m, world
    vel: torch.Tensor  #: (B, n, 3) m/s
    free: torch.Tensor  #: (B, n) bool; False: fixed (`fix_particles`), moved only by its own velocity


class PBDSolver(SolverBase):
    """Batched, differentiable XPBD solver. References in the module docstring; limitations in docs/pbd.md."""

    name = "PBDSolver"

    def __init__(self, model: PBDModel, device, dtype):
        self.model, self.device, self.dtype = model, device, dtype

    def initial_state(self, n_envs: int) -> PBDState:
        """Particles at their rest positions, at rest, all free; B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        return PBDState(pos=m.init_pos.expand(B, m.n, 3).clone(),
                        vel=torch.zeros(B, m.n, 3, dtype=self.dtype, device=self.device),
                        free=torch.ones(B, m.n, dtype=torch.bool, device=self.device))

    def step(self, state: PBDState, collider_frames=None) -> PBDState:
        """One substep of `model.dt`; a new state. `collider_frames`: `BodyMotion.geom_frames` of this scene
        substep (None: no rigid geoms)."""
        m, dt = self.model, self.model.dt
        x0, free = state.pos, state.free
        f3 = free[..., None]
        w = torch.where(free, m.inv_mass, torch.zeros_like(m.inv_mass))
        v = torch.where(f3, state.vel + dt * m.gravity, state.vel)
        if m.has_air:
            drag = (m.air * m.inv_mass)[:, None] * v.norm(dim=-1, keepdim=True) * v
            v = torch.where(f3, v - dt * drag, v)
        x = x0 + dt * v
        for kind in ("stretch", "bending", "volume"):
            colours = m.colours[kind]
            if not colours:
                continue
            B = x.shape[0]
            lams = [torch.zeros(B, c.idx.shape[0], dtype=x.dtype, device=x.device) for c in colours]
            wcs = [w.index_select(1, c.flat).reshape(B, *c.idx.shape) for c in colours]  # fixed within the substep
            for _ in range(m.iterations[kind]):
                for i, c in enumerate(colours):
                    x, lams[i] = project(kind, x, wcs[i], c.flat, c.rest, c.alpha_t, c.relax, lams[i], c.average)
        if m.liquid is not None:
            x = m.liquid.solve(x, x0, free)
        if m.collisions is not None:
            x = m.collisions.solve(x, x0, free)
        if m.colliders is not None and collider_frames is not None:
            x = contact_geoms(m.colliders, collider_frames, x, x0, m.radius, dt, m.mu_s, m.mu_k, free)
        x = contact_walls(x, x0, m.lo, m.hi, m.mu_s, m.mu_k, free)
        return PBDState(pos=x, vel=(x - x0) / dt, free=free)

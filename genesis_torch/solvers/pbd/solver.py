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

from ...math.quat import quat_to_mat
from ...state import SolverState
from ..base import SolverBase
from .colliders import contact_geoms, contact_walls
from .constraints import project, stretch_factor
from .model import PBDModel

__all__ = ["PBDState", "PBDSolver"]


@dataclasses.dataclass(frozen=True)
class PBDState(SolverState):
    """Everything that determines a PBD system's future (DESIGN.md §4). n particles, B envs; mc of them collide
    (cloth, elastic, liquid: collisions.py), ml are liquid. The multipliers restart at 0 every substep, so they are
    not state; the Verlet references are (the neighbour lists are a function of them, solvers/pair_lists.py)."""

    prefix = "PBDSolver"

    pos: torch.Tensor  #: (B, n, 3) m, world
    vel: torch.Tensor  #: (B, n, 3) m/s
    free: torch.Tensor  #: (B, n) bool; False: fixed (`fix_particles`, `fix_particles_to_link`)
    active: torch.Tensor  #: (B, n) bool; False: out of the simulation (`set_particles_active`): frozen, no contacts
    link: torch.Tensor  #: (B, n) long; the rigid link (`RigidLink.idx`) a particle follows, -1 for none
    link_pos: torch.Tensor  #: (B, n, 3) m, a linked particle's position in its link's frame
    coll_ref: torch.Tensor  #: (B, mc, 3) m, reference positions of the collision pairs' Verlet lists
    liquid_ref: torch.Tensor  #: (B, ml, 3) m, reference positions of the liquid pairs' Verlet lists


class PBDSolver(SolverBase):
    """Batched, differentiable XPBD solver. References in the module docstring; limitations in docs/pbd.md."""

    name = "PBDSolver"

    def __init__(self, model: PBDModel, device, dtype):
        self.model, self.device, self.dtype = model, device, dtype

    def initial_state(self, n_envs: int) -> PBDState:
        """Particles at their rest positions, at rest, all free and active; B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        pos = m.init_pos.expand(B, m.n, 3).clone()
        sub = lambda part: (pos.index_select(1, part.idx) if part is not None  # noqa: E731
                            else pos.new_zeros(B, 0, 3))
        return PBDState(pos=pos, vel=torch.zeros(B, m.n, 3, dtype=self.dtype, device=self.device),
                        free=torch.ones(B, m.n, dtype=torch.bool, device=self.device),
                        active=torch.ones(B, m.n, dtype=torch.bool, device=self.device),
                        link=torch.full((B, m.n), -1, dtype=torch.long, device=self.device),
                        link_pos=torch.zeros(B, m.n, 3, dtype=self.dtype, device=self.device),
                        coll_ref=sub(m.collisions), liquid_ref=sub(m.liquid))

    def step(self, state: PBDState, collider_frames=None, bodies=None, frac: float = 1.0) -> PBDState:
        """One substep of `model.dt`; a new state. `collider_frames`: `BodyMotion.geom_frames` of this scene
        substep (None: no rigid geoms); `bodies`: its `BodyMotion` (links followed by linked particles), `frac` the
        fraction of the scene substep done at the end of this PBD substep."""
        m, dt = self.model, self.model.dt
        x0, free, active = state.pos, state.free, state.active
        all_active = bool(active.all())
        act = None if all_active else active
        mov = free if all_active else free & active  # moved by gravity, constraints and contacts
        f3 = mov[..., None]
        w = torch.where(mov, m.inv_mass, torch.zeros_like(m.inv_mass))
        v = torch.where(f3, state.vel + dt * m.gravity, state.vel)
        if m.has_air:
            drag = (m.air * m.inv_mass)[:, None] * v.norm(dim=-1, keepdim=True) * v
            v = torch.where(f3, v - dt * drag, v)
        x = x0 + dt * v
        if act is not None:
            x = torch.where(act[..., None], x, x0)  # inactive particles stay where they are
        if bodies is not None and bool((state.link >= 0).any()):
            link = state.link if act is None else torch.where(act, state.link, torch.full_like(state.link, -1))
            x = follow_links(x, link, state.link_pos, bodies, frac)  # (an inactive linked particle stays put)
        B, kinds = x.shape[0], [k for k in ("stretch", "bending", "volume") if m.colours[k]]
        X = x.permute(2, 0, 1).reshape(3 * B, m.n)  # component-first for the sweeps (constraints.project)
        for kind in kinds:
            colours = m.colours[kind]
            lams = [torch.zeros(B, c.idx.shape[0], dtype=x.dtype, device=x.device) for c in colours]
            shapes = [(B, c.idx.shape[1], c.idx.shape[0]) for c in colours]
            wcs = [w.index_select(1, c.flat_t).reshape(s) for c, s in zip(colours, shapes)]  # fixed in the substep
            if act is not None:  # a constraint on an inactive particle is off: nothing it touches moves
                wcs = [wc * act.index_select(1, c.flat_t).reshape(s).all(1, keepdim=True)
                       for wc, c, s in zip(wcs, colours, shapes)]
            fs = [stretch_factor(wc, c.alpha_t, c.relax) if kind == "stretch" else None
                  for wc, c in zip(wcs, colours)]  # (fixed over the substep)
            for _ in range(m.iterations[kind]):
                for i, c in enumerate(colours):
                    X, lams[i] = project(kind, X, wcs[i], c.flat_t, c.rest, c.alpha_t, c.relax, lams[i], c.average,
                                         fs[i])
        if kinds:
            x = X.reshape(3, B, m.n).permute(1, 2, 0).contiguous()
        liquid_ref, coll_ref = state.liquid_ref, state.coll_ref
        if m.liquid is not None:
            x, liquid_ref = m.liquid.solve(x, x0, mov, liquid_ref, act)
        if m.collisions is not None:
            x, coll_ref = m.collisions.solve(x, x0, mov, coll_ref, act)
        if m.colliders is not None and collider_frames is not None:
            x = contact_geoms(m.colliders, collider_frames, x, x0, m.radius, dt, m.mu_s, m.mu_k, mov)
        x = contact_walls(x, x0, m.lo, m.hi, m.mu_s, m.mu_k, mov)
        vel = (x - x0) / dt
        if act is not None:
            vel = torch.where(act[..., None], vel, state.vel)  # (inactive: unchanged)
        return state.replace(pos=x, vel=vel, coll_ref=coll_ref, liquid_ref=liquid_ref)


def follow_links(x: torch.Tensor, link: torch.Tensor, link_pos: torch.Tensor, bodies, frac: float) -> torch.Tensor:
    """Positions `(B, n, 3)` with every linked particle (`link (B, n)` >= 0) moved to its point `link_pos (B, n, 3)`
    of its link's frame, interpolated linearly from the link's pose before the rigid substep to the one after by
    `frac` (1: the pose after, exactly): one-way, the link does not feel the particle."""
    B, n = link.shape
    li = link.clamp_min(0)

    def world(pos, quat):
        R = quat_to_mat(quat)  # (B, nlinks, 3, 3)
        p = torch.gather(pos, 1, li[..., None].expand(B, n, 3))
        Rp = torch.gather(R, 1, li[..., None, None].expand(B, n, 3, 3))
        return p + (Rp @ link_pos[..., None])[..., 0]

    after = world(bodies.pos_after.to(x.dtype), bodies.quat_after.to(x.dtype))
    target = after if frac >= 1.0 else torch.lerp(world(bodies.pos_before.to(x.dtype),
                                                        bodies.quat_before.to(x.dtype)), after, frac)
    return torch.where((link >= 0)[..., None], target, x)

"""Particle-particle collisions of the PBD solver (Genesis' `_kernel_solve_collision`): cloth self-collision and
contacts among cloth, elastic and liquid particles, with friction.

Two particles collide when they are closer than particle_size (two radii) and were farther apart than that at rest
(so neighbours within one mesh do not), except two liquid particles (the density constraint keeps those apart) and
free particles (`PBD.Particle`, which never interact). Each pair pushes particle i out by its inverse-mass share
w_i / (w_i + w_j) of the penetration d = particle_size - |x_i - x_j| along the pair's normal, with the position-level
friction of Macklin, Mueller, Chentanez & Kim 2014 (eqs. 23-24) on the relative tangential displacement over the
substep (coefficients: the larger of the two particles'). All pairs at once (Jacobi, one pass per substep, as
Genesis), from the positions after the constraint and liquid solves. The candidate pairs are Verlet lists
(pair_lists.PairList, skin SKIN particle sizes) rebuilt only when the particles moved relative to each other.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .model import LIQUID, PARTICLE
from ..pair_lists import PairList, find_pairs

__all__ = ["CollisionModel", "build_collisions"]


#: Verlet skin of the collision pairs, in particle sizes (pair_lists.PairList)
SKIN = 0.5


@dataclasses.dataclass
class CollisionModel:
    idx: torch.Tensor  #: (m,) long, the colliding particles among all
    rest: torch.Tensor  #: (m, 3) m, rest positions
    liquid: torch.Tensor  #: (m,) bool
    inv_mass: torch.Tensor  #: (m,) 1/kg
    mu_s: torch.Tensor  #: (m,)
    mu_k: torch.Tensor  #: (m,)
    size: float  #: m, particle_size: the contact distance
    lo: torch.Tensor  #: (3,) m
    dims: tuple  #: cells of size * (1 + SKIN) per axis
    pairs: PairList = None

    def __post_init__(self):
        R = self.size * (1 + SKIN)
        self.pairs = PairList(lambda x, active: find_pairs(x, self.lo, R, self.dims, R, rest=self.rest,
                                                           rest_radius=self.size, alike=self.liquid,
                                                           active=active), SKIN * self.size)

    def solve(self, x: torch.Tensor, x0: torch.Tensor, movable: torch.Tensor, ref: torch.Tensor, active=None):
        """(positions `(B, n, 3)` after one collision pass, the new Verlet reference `(B, m, 3)`); `x0` the positions
        at the substep's start, `movable (B, n)` bool (free and active), `ref` the state's reference positions of
        the colliding particles, `active (B, n)` bool or None (all active). Every candidate pair's distance is
        evaluated; those not in contact would add exactly nothing, so only those in contact go on (one host sync). The
        corrections add up per particle in pair order (CPU `index_add`: an env's sums do not depend on the other
        envs)."""
        B = x.shape[0]
        xc = x.index_select(1, self.idx)
        m = xc.shape[1]
        ref, b, i, j = self.pairs.get(xc, ref, None if active is None else active.index_select(1, self.idx))
        if b.numel() == 0:
            return x, ref
        gi, gj = b * m + i, b * m + j
        xf = xc.reshape(B * m, 3)
        d = xf[gi] - xf[gj]
        dist = d.norm(dim=-1).clamp_min(torch.finfo(x.dtype).eps)
        depth = self.size - dist
        touch = (depth > 0).nonzero().reshape(-1)  # the pairs in contact; the others would add exactly nothing
        if touch.numel() == 0:
            return x, ref
        gi, gj, i, j, d, dist, depth = (v[touch] for v in (gi, gj, i, j, d, dist, depth))
        fc = movable.index_select(1, self.idx).reshape(-1)
        w = self.inv_mass.repeat(B)
        wi = torch.where(fc[gi], w[gi], torch.zeros_like(w[gi]))
        wj = torch.where(fc[gj], w[gj], torch.zeros_like(w[gj]))
        wsum = wi + wj
        share = torch.where(wsum > 0, wi / torch.where(wsum > 0, wsum, torch.ones_like(wsum)), torch.zeros_like(wsum))
        n = d / dist[:, None]
        disp = (xc - x0.index_select(1, self.idx)).reshape(B * m, 3)
        dv = disp[gi] - disp[gj]
        t = -(dv - (n * dv).sum(-1, keepdim=True) * n)
        tn = t.norm(dim=-1)
        mu_s, mu_k = torch.maximum(self.mu_s[i], self.mu_s[j]), torch.maximum(self.mu_k[i], self.mu_k[j])
        scale = torch.where(tn < mu_s * depth, torch.ones_like(tn),
                            (mu_k * depth / tn.clamp_min(torch.finfo(x.dtype).tiny)).clamp_max(1.0))
        dx = share[:, None] * (depth[:, None] * n + scale[:, None] * t)
        moved = xf.index_add(0, gi, dx).reshape(B, m, 3)
        return x.index_copy(1, self.idx, torch.where(fc.reshape(B, m, 1), moved, xc)), ref


def build_collisions(model, options, device, dtype) -> CollisionModel | None:
    """The collision model of every non-`PBD.Particle` particle of `model`, or None when no pair can collide."""
    keep = (model.kind != PARTICLE).nonzero().reshape(-1)
    if keep.numel() < 2 or bool((model.kind[keep] == LIQUID).all()):
        return None  # nothing can collide (liquid-liquid pairs are the density constraint's)
    lo, hi = np.asarray(options.lower_bound), np.asarray(options.upper_bound)
    ps = options.particle_size
    dims = tuple(int(v) for v in np.maximum(np.ceil((hi - lo) / (ps * (1 + SKIN))), 1))
    if np.prod(np.asarray(dims, np.float64)) >= 2.0 ** 62:
        return None  # (keys would not fit int64: the domain is over 10^6 particle sizes per axis)
    keep = keep.to(device)
    return CollisionModel(idx=keep, rest=model.init_pos[keep], liquid=model.kind[keep] == LIQUID,
                          inv_mass=model.inv_mass[keep], mu_s=model.mu_s[keep], mu_k=model.mu_k[keep], size=ps,
                          lo=torch.as_tensor(lo, dtype=dtype, device=device), dims=dims)

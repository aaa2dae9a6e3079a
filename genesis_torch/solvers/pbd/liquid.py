"""Position-based fluids (Macklin & Mueller 2013, "Position based fluids", ACM TOG 32(4)) for the PBD liquid.

Each liquid particle i has the density constraint C_i = rho_i / rho0 - 1 with the SPH estimate
rho_i = kappa sum_j m_j W(x_i - x_j) (poly6 kernel W of radius h = 2 particle_size, the particle itself included;
kappa = 1 / (particle_size^3 sum_lattice W) makes a particle inside the rest lattice exactly rho0). One density
iteration (eqs. 11-14 of the paper, all particles at once, i.e. Jacobi):

    lambda_i = -max(C_i, 0) / (sum_k |grad_k C_i|^2 + eps),
    dx_i = relax / rho0 sum_j kappa m_j (lambda_i + lambda_j + s_corr) grad W(x_i - x_j)   (spiky gradient)

with the density relaxation `relax` (Genesis' `density_relaxation`), eps = 1e-3 of sum_k |grad_k C|^2 at rest (the
paper's constraint-force mixing), and the artificial pressure s_corr = -k (W(r) / W(0.3 h))^4 (eq. 13, n = 4,
Delta q = 0.3 h) with k = 0.01 / (the same rest sum), the paper's k = 0.1 made dimensionless. The constraint is
one-sided (C_i clamped at 0, as Macklin et al. 2014, §7.1): a free surface is not pulled together. Viscosity is
XSPH on the substep's displacements d = x - x0 (eq. 17): x_i += c sum_j V_j W_ij (d_j - d_i), V_j = kappa m_j/rho0,
c = `viscosity_relaxation`.

Neighbours (liquid particles only; liquids do not collide with cloth or elastic particles here) are found once per
substep (neighbors.py, cells of edge h) into lists of `max_neighbors` = 3x the rest lattice's 26 neighbours
(particles pile up on the walls, which only clamp centres, as Genesis' boundary).
More raises `ContactOverflowError`; nothing is truncated silently.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ...errors import ContactOverflowError
from .model import LIQUID
from .neighbors import find_neighbours

__all__ = ["LiquidModel", "build_liquid", "poly6", "spiky_grad"]


def poly6(r2: torch.Tensor, h: float) -> torch.Tensor:
    """Poly6 kernel (1/m^3) of squared distances `r2` (Mueller et al. 2003), 0 beyond h."""
    return torch.where(r2 < h * h, (315.0 / (64.0 * math.pi * h ** 9)) * (h * h - r2).clamp_min(0) ** 3,
                       torch.zeros_like(r2))


def spiky_grad(d: torch.Tensor, r: torch.Tensor, h: float) -> torch.Tensor:
    """Gradient (1/m^4) of the spiky kernel w.r.t. x_i at d = x_i - x_j `(..., 3)`, r = |d| `(...)`; 0 at r = 0."""
    coef = torch.where((r < h) & (r > 0), (-45.0 / (math.pi * h ** 6)) * (h - r).clamp_min(0) ** 2
                       / r.clamp_min(torch.finfo(d.dtype).tiny), torch.zeros_like(r))
    return coef[..., None] * d


@dataclasses.dataclass
class LiquidModel:
    idx: torch.Tensor  #: (nl,) long, the liquid particles among all
    rho0: torch.Tensor  #: (nl,) kg/m^3
    mass: torch.Tensor  #: (nl,) kg
    relax: torch.Tensor  #: (nl,) density relaxation
    visc: torch.Tensor  #: (nl,) XSPH coefficient
    h: float  #: m, kernel radius and cell edge
    kappa: float  #: kernel normalisation (see the module docstring)
    eps: float  #: 1/m^2, constraint-force mixing
    k_corr: float  #: m^2, artificial pressure strength
    w_dq: float  #: W(0.3 h)
    lo: torch.Tensor  #: (3,) m
    dims: tuple  #: cells per axis
    max_neighbors: int
    density_iterations: int
    viscosity_iterations: int

    def neighbours(self, xl: torch.Tensor):
        """`(nb (B, nl, K) long, valid (B, nl, K) bool)`: liquid neighbours j != i within h (neighbors.py)."""
        return find_neighbours(xl, self.lo, self.h, self.dims, self.h, self.max_neighbors, "PBD liquid")

    # ------------------------------------------------------------ solve
    def solve(self, x: torch.Tensor, x0: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """Density then viscosity iterations on the liquid particles of positions `x (B, n, 3)`; `x0` the positions
        at the start of the substep; fixed (`free` False) particles are not moved. Returns new positions."""
        B = x.shape[0]
        xl = x.index_select(1, self.idx)
        nl = xl.shape[1]
        movable = free.index_select(1, self.idx)[..., None]
        nb, valid = self.neighbours(xl)
        K = nb.shape[-1]
        vmask = valid.to(x.dtype)
        gather = lambda t: torch.gather(t, 1, nb.reshape(B, -1, 1).expand(-1, -1, t.shape[-1])).reshape(  # noqa
            B, nl, K, t.shape[-1])
        Vj = (self.kappa * self.mass / self.rho0)[nb]  # (B, nl, K) kappa m_j / rho0 (one rho0 per material)
        Vi = self.kappa * self.mass / self.rho0
        h = self.h
        for _ in range(self.density_iterations):
            d = xl[:, :, None] - gather(xl)
            r2 = (d * d).sum(-1)
            r = r2.sqrt()
            W = poly6(r2, h) * vmask
            gW = spiky_grad(d, r, h) * vmask[..., None]
            C = (Vi * poly6(torch.zeros_like(Vi), h) + (Vj * W).sum(-1) - 1.0).clamp_min(0.0)
            gj = Vj[..., None] * gW  # grad_{x_j} C_i = -gj; grad_{x_i} C_i = sum_j gj
            gi = gj.sum(2)
            denom = (gj * gj).sum((-1, -2)) + (gi * gi).sum(-1) + self.eps
            lam = -C / denom
            lam_j = torch.gather(lam, 1, nb.reshape(B, -1)).reshape(B, nl, K)
            scorr = -self.k_corr * (W / self.w_dq) ** 4
            dx = self.relax[:, None] * (((lam[..., None] + lam_j + scorr) * vmask)[..., None] * gj).sum(2)
            xl = torch.where(movable, xl + dx, xl)
        if (self.visc > 0).any():
            dl0 = x0.index_select(1, self.idx)
            for _ in range(self.viscosity_iterations):
                disp = xl - dl0
                d = xl[:, :, None] - gather(xl)
                W = poly6((d * d).sum(-1), h) * vmask
                dx = self.visc[:, None] * ((Vj * W)[..., None] * (gather(disp) - disp[:, :, None])).sum(2)
                xl = torch.where(movable, xl + dx, xl)
        return x.index_copy(1, self.idx, xl)


def _lattice_sums(h: float, ps: float):
    """(sum_j W, sum_j |grad W|^2, |sum_j grad W|^2 is 0) over a cubic lattice of spacing ps around a particle
    (j includes the particle itself for W)."""
    n = int(math.ceil(h / ps))
    g = np.arange(-n, n + 1) * ps
    p = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    r2 = (p ** 2).sum(-1)
    keep = r2 < h * h
    p, r2 = p[keep], r2[keep]
    w = 315.0 / (64.0 * math.pi * h ** 9) * (h * h - r2) ** 3
    r = np.sqrt(r2)
    nz = r > 0
    gw = np.zeros_like(p)
    gw[nz] = (-45.0 / (math.pi * h ** 6) * (h - r[nz]) ** 2 / r[nz])[:, None] * p[nz]
    return w.sum(), (gw ** 2).sum(), int(nz.sum())


def build_liquid(model, parts, offsets, options, device, dtype) -> LiquidModel:
    """The liquid model of the LIQUID parts of `parts` (global particle offsets `offsets`)."""
    ps = options.particle_size
    h = 2.0 * ps
    idx, rho0, relax, visc, mass = [], [], [], [], []
    for p, off in zip(parts, offsets):
        if p.kind != LIQUID:
            continue
        n = len(p.pos)
        idx.append(np.arange(off, off + n))
        rho0.append(np.full(n, p.liquid[0]))
        relax.append(np.full(n, p.liquid[1]))
        visc.append(np.full(n, p.liquid[2]))
        mass.append(np.asarray(p.mass, np.float64))
    sum_w, sum_g2, n_nb = _lattice_sums(h, ps)
    kappa = 1.0 / (ps ** 3 * sum_w)
    s_rest = (kappa * ps ** 3) ** 2 * sum_g2  # sum_k |grad_k C|^2 at rest: the j terms (sum_j grad W = 0 there)
    t = lambda a: torch.as_tensor(np.concatenate(a), dtype=dtype, device=device)  # noqa: E731
    lo, hi = np.asarray(options.lower_bound), np.asarray(options.upper_bound)
    dims = tuple(int(v) for v in np.maximum(np.ceil((hi - lo) / h), 1).astype(np.int64))
    if math.prod(dims) >= 2 ** 62:
        raise ContactOverflowError(f"PBD liquid: the domain {lo.tolist()}..{hi.tolist()} m holds too many cells of "
                                   f"{h} m for int64 keys; shrink PBDOptions(lower_bound/upper_bound).")
    return LiquidModel(
        idx=torch.as_tensor(np.concatenate(idx), dtype=torch.long, device=device), rho0=t(rho0), mass=t(mass),
        relax=t(relax), visc=t(visc), h=h, kappa=kappa, eps=1e-3 * s_rest, k_corr=0.01 / s_rest,
        w_dq=315.0 / (64.0 * math.pi * h ** 9) * (h * h - (0.3 * h) ** 2) ** 3,
        lo=torch.as_tensor(lo, dtype=dtype, device=device), dims=dims, max_neighbors=3 * n_nb, density_iterations=options.max_density_solver_iterations,
        viscosity_iterations=options.max_viscosity_solver_iterations)

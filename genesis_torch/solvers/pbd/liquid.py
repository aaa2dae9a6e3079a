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

Neighbours (liquid particles only; liquid-liquid pairs are not particle collisions) are Verlet pair lists
(pair_lists.PairList: pairs within h (1 + SKIN) at reference positions kept in the state, rebuilt for an env when its
particles moved relative to each other by more than the skin allows), so every pair within h at the substep's
positions is summed; a particle's sums run over its pairs in list order (`index_add`), nothing is truncated.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ...errors import ContactOverflowError
from .model import LIQUID
from ..pair_lists import PairList, find_pairs

__all__ = ["LiquidModel", "build_liquid", "poly6", "spiky_grad"]


def poly6(r2: torch.Tensor, h: float) -> torch.Tensor:
    """Poly6 kernel (1/m^3) of squared distances `r2` (Mueller et al. 2003), 0 beyond h."""
    t = (h * h - r2).clamp_min(0)  # 0 beyond h
    return (315.0 / (64.0 * math.pi * h ** 9)) * (t * t * t)


def _spiky_coef(r: torch.Tensor, h: float) -> torch.Tensor:
    """grad W_spiky(d) / d (1/m^5) at distances `r`: 0 beyond h and at r = 0."""
    t = (h - r).clamp_min(0)
    return torch.where(r > 0, (-45.0 / (math.pi * h ** 6)) * (t * t) / r.clamp_min(torch.finfo(r.dtype).tiny),
                       torch.zeros_like(r))


def spiky_grad(d: torch.Tensor, r: torch.Tensor, h: float) -> torch.Tensor:
    """Gradient (1/m^4) of the spiky kernel w.r.t. x_i at d = x_i - x_j `(..., 3)`, r = |d| `(...)`; 0 at r = 0."""
    return _spiky_coef(r, h)[..., None] * d


#: Verlet skin of the liquid's neighbour pairs, in kernel radii (pair_lists.PairList)
SKIN = 0.1


@dataclasses.dataclass
class LiquidModel:
    idx: torch.Tensor  #: (nl,) long, the liquid particles among all
    rho0: torch.Tensor  #: (nl,) kg/m^3
    mass: torch.Tensor  #: (nl,) kg
    relax: torch.Tensor  #: (nl,) density relaxation
    visc: torch.Tensor  #: (nl,) XSPH coefficient
    h: float  #: m, kernel radius
    kappa: float  #: kernel normalisation (see the module docstring)
    eps: float  #: 1/m^2, constraint-force mixing
    k_corr: float  #: m^2, artificial pressure strength
    w_dq: float  #: W(0.3 h)
    lo: torch.Tensor  #: (3,) m
    dims: tuple  #: cells of h (1 + SKIN) per axis
    density_iterations: int
    viscosity_iterations: int
    has_visc: bool = True
    pairs: PairList = None
    far: float = 1e6  #: m, the sentinel particle's coordinates (far beyond the domain)
    _slot_cache: tuple = None

    def __post_init__(self):
        R = self.h * (1 + SKIN)
        self.pairs = PairList(lambda x, active: find_pairs(x, self.lo, R, self.dims, R, active=active),
                              SKIN * self.h)
        self.has_visc = bool((self.visc > 0).any())

    def neighbours(self, xl: torch.Tensor, active=None):
        """`(b, i, j)` long: the liquid pairs j != i within h of the liquid positions `xl (B, nl, 3)`."""
        return find_pairs(xl, self.lo, self.h * (1 + SKIN), self.dims, self.h, active=active)

    # ------------------------------------------------------------ solve
    def _slots(self, b, i, j, nl: int, N: int) -> torch.Tensor:
        """`J (K, N)` long: row k holds each particle's k-th neighbour (flat index b nl + j) in pair order, the
        sentinel N past a particle's last one; K the most pairs of a particle. Cached while the pair lists are."""
        c = self._slot_cache
        if c is not None and c[0] is b and c[1] == N:
            return c[2]
        gi = b * nl + i
        count = torch.bincount(gi, minlength=N)
        K = max(int(count.max()) if gi.numel() else 0, 1)
        start = torch.cumsum(count, 0) - count
        slot = torch.arange(gi.numel(), device=gi.device) - start[gi]
        J = torch.full((K, N), N, dtype=torch.long, device=gi.device)
        J[slot, gi] = b * nl + j
        self._slot_cache = (b, N, J)
        return J

    def solve(self, x: torch.Tensor, x0: torch.Tensor, movable: torch.Tensor, ref: torch.Tensor, active=None):
        """(positions `(B, n, 3)` after the density then viscosity iterations on the liquid particles, the new
        Verlet reference `(B, nl, 3)`); `x0` the positions at the start of the substep; `movable (B, n)` bool (free
        and active); `ref` the state's reference positions of the liquid particles; `active (B, n)` or None.

        Layout: positions component-first `(3, N)`, N = B nl; the Verlet pairs as neighbour slots `J (K, N)`
        (`_slots`), padded with a sentinel particle far outside the domain, whose kernel terms are exactly 0. A
        particle's sums over its neighbours add slot by slot, k = 0, 1, ...: its pairs in list order, so the result
        is the same whatever K (another batch composition), and the dense slot arrays need no scatter."""
        B = x.shape[0]
        xl = x.index_select(1, self.idx)
        nl = xl.shape[1]
        N = B * nl
        mov = movable.index_select(1, self.idx).reshape(1, N)
        ref, b, i, j = self.pairs.get(xl, ref, None if active is None else active.index_select(1, self.idx))
        J = self._slots(b, i, j, nl, N)
        K = J.shape[0]
        Jf = J.reshape(-1)
        V = self.kappa * self.mass / self.rho0  # (nl,) kappa m / rho0 (one rho0 per material)
        Vi = V.repeat(B)
        VJ = torch.cat((Vi, Vi.new_zeros(1))).index_select(0, Jf).reshape(K, N)
        relax = self.relax.repeat(B)
        h = self.h
        far = Vi.new_full((3, 1), self.far)
        X = xl.permute(2, 0, 1).reshape(3, N)
        self_term = Vi * poly6(torch.zeros_like(Vi), h)
        for _ in range(self.density_iterations):
            d = X[:, None, :] - torch.cat((X, far), 1).index_select(1, Jf).reshape(3, K, N)  # x_i - x_j
            r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            W = poly6(r2, h)
            a = VJ * _spiky_coef(r2.sqrt(), h)  # (K, N): grad_{x_j} C_i = -a d, grad_{x_i} C_i = sum_j a d
            C = (self_term + _slot_sum(VJ * W) - 1.0).clamp_min(0.0)
            gsum = _slot_dot(a, d)
            lam = -C / (_slot_sum(a * a * r2) + (gsum * gsum).sum(0) + self.eps)  # |a d|^2 = a^2 r2
            q = W / self.w_dq
            q = q * q
            lamJ = torch.cat((lam, lam.new_zeros(1))).index_select(0, Jf).reshape(K, N)
            dx = relax * _slot_dot((lam + lamJ - self.k_corr * (q * q)) * a, d)
            X = torch.where(mov, X + dx, X)
        if self.has_visc:
            X0 = x0.index_select(1, self.idx).permute(2, 0, 1).reshape(3, N)
            visc = self.visc.repeat(B)
            for _ in range(self.viscosity_iterations):
                disp = X - X0
                d = X[:, None, :] - torch.cat((X, far), 1).index_select(1, Jf).reshape(3, K, N)
                W = poly6(d[0] * d[0] + d[1] * d[1] + d[2] * d[2], h)
                DJ = torch.cat((disp, disp.new_zeros(3, 1)), 1).index_select(1, Jf).reshape(3, K, N)
                dx = visc * _slot_dot(VJ * W, DJ - disp[:, None, :])  # (the sentinel's W is 0)
                X = torch.where(mov, X + dx, X)
        return x.index_copy(1, self.idx, X.reshape(3, B, nl).permute(1, 2, 0)), ref


def _slot_dot(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """`(3, N)`: sum over the slots of `a (K, N)` times `d (3, K, N)`, slot by slot in order (fused multiply-adds,
    no `(3, K, N)` temporary)."""
    acc = d[:, 0] * a[0]
    for k in range(1, a.shape[0]):
        acc.addcmul_(d[:, k], a[k])  # (in place on a fresh sum: autograd keeps d and a, not acc)
    return acc


def _slot_sum(t: torch.Tensor) -> torch.Tensor:
    """`(..., N)`: the sum over the slot dim of `t (..., K, N)`, slot by slot in order (a fixed order: trailing zero
    slots change nothing, so the sums do not depend on K)."""
    acc = t[..., 0, :].clone()
    for k in range(1, t.shape[-2]):
        acc.add_(t[..., k, :])
    return acc


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
    sum_w, sum_g2, _ = _lattice_sums(h, ps)
    kappa = 1.0 / (ps ** 3 * sum_w)
    s_rest = (kappa * ps ** 3) ** 2 * sum_g2  # sum_k |grad_k C|^2 at rest: the j terms (sum_j grad W = 0 there)
    t = lambda a: torch.as_tensor(np.concatenate(a), dtype=dtype, device=device)  # noqa: E731
    lo, hi = np.asarray(options.lower_bound), np.asarray(options.upper_bound)
    dims = tuple(int(v) for v in np.maximum(np.ceil((hi - lo) / (h * (1 + SKIN))), 1).astype(np.int64))
    if math.prod(dims) >= 2 ** 62:
        raise ContactOverflowError(f"PBD liquid: the domain {lo.tolist()}..{hi.tolist()} m holds too many cells of "
                                   f"{h} m for int64 keys; shrink PBDOptions(lower_bound/upper_bound).")
    return LiquidModel(
        idx=torch.as_tensor(np.concatenate(idx), dtype=torch.long, device=device), rho0=t(rho0), mass=t(mass),
        relax=t(relax), visc=t(visc), h=h, kappa=kappa, eps=1e-3 * s_rest, k_corr=0.01 / s_rest,
        w_dq=315.0 / (64.0 * math.pi * h ** 9) * (h * h - (0.3 * h) ** 2) ** 3,
        lo=torch.as_tensor(lo, dtype=dtype, device=device), dims=dims,
        far=10.0 * float(np.abs(np.concatenate((lo, hi))).max()) + 1e3 + 100.0 * h,
        density_iterations=options.max_density_solver_iterations,
        viscosity_iterations=options.max_viscosity_solver_iterations)

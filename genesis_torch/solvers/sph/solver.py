"""The SPH solver: state and substeps of weakly compressible (WCSPH) and divergence-free (DFSPH) liquids.

n particles in B envs, flattened to P = B n rows for the pair sums (neighbors.py: CSR pairs i, j; a sum over the
neighbours of i is a `segment_reduce` over its contiguous pairs: deterministic on CPU and CUDA, in a fixed order).
Notation: x_ij = x_i - x_j, W_ij, grad W_ij (kernel.py), V the particle volume, rho0 the rest density, V_b, grad V_b
the boundaries' volume map (boundary.py).

Density (Genesis' `_kernel_compute_rho`, plus the boundary): rho_i = rho0_i (V sum_{j incl. i} W_ij + V_b(x_i)).

Non-pressure accelerations (Genesis' `_task_compute_non_pressure_forces`): gravity, the boundaries' hydrostatic
pressure (boundary.py; Adami et al. 2012), the cohesion term
-gamma_i / m_i sum_j m_j x_ij W(max(|x_ij|, d)) (Becker & Teschner 2007, eq. 9) and the viscosity
2 (3 + 2) mu_i sum_j (m_j / rho_j) (v_ij . x_ij) / (|x_ij|^2 + 0.01 h^2) grad W_ij (Koschier et al. 2019, eq. 20).

WCSPH substep (Becker & Teschner 2007, "Weakly compressible SPH for free surface flows", SCA): rho~ = max(rho,
rho0); Tait p_i = B ((rho~_i / rho0)^gamma - 1) (eq. 7, B = `stiffness`, gamma = `exponent`); symmetric pressure
acceleration -sum_j rho0_j V (p_i / rho~_i^2 + p_j / rho~_j^2) grad W_ij (eq. 6) - 2 rho0_i (p_i / rho~_i^2) grad
V_b (the boundary with pressure mirroring p_b = p_i, rho_b = rho~_i: Koschier et al. 2019, §5.1, eq. 51, with Akinci
et al. 2012's boundary volume); symplectic Euler v += dt a, x += dt v; boundary projection.

DFSPH substep (Bender & Koschier 2015, "Divergence-free SPH for incompressible and viscous fluids", SCA; 2017, IEEE
TVCG 23(3); Koschier et al. 2019, §4.4, Algorithms 2-4), in Genesis' order and dimensionless form (densities in
units of rho0, so the stiffness kappa_i carries 1/rho):
  1. rho_i and the factor alpha_i = -1 / (|G_i|^2 + sum_j |V grad W_ij|^2), G_i = sum_j V grad W_ij + grad V_b (0
     when the denominator is <= 1e-6; TVCG eq. 11, the diagonal of the solves below, whose kicks have Akinci et
     al. 2012's boundary share k_i grad V_b (SPlisHSPlasH): their operator is then B B^T, symmetric and definite);
  2. divergence solve (TVCG Alg. 2): Drho_i = max(0, sum_j V v_ij . grad W_ij + (v_i - v_b) . grad V_b), set to 0
     for particles with fewer than 20 neighbours (counting a full wall contact V_b = 1/2 as 26); Jacobi iterations
     k_i = Drho_i alpha_i, v_i += sum_j V (k_i + k_j) grad W_ij + k_i grad V_b, until the env's mean rho0 Drho is at
     most `max_divergence_error` 0.01 rho0 / dt (at least one iteration, at most the cap);
  3. non-pressure accelerations and the walls' mirrored share, v* = v + dt (a + (c - 1) kappa^{n-1}_i grad V_b)
     (c = `SPHSolver.boundary_share`, default 2): pressure mirroring p_b = p_i as WCSPH (Koschier et al. 2019
     §5.1) gives a wall particle the kick 2 k_i grad V_b, which the hydrostatic wall term assumes (with 1 a uniform
     pressure pushes a wall particle into the wall: a resting column's floor layer carries 1.9 x its pressure and
     the interior reads 13 % low). The share beyond Akinci's is taken from the last substep's density stiffness
     kappa^{n-1} (state `kappa`), explicitly: inside the solves it would make their operator non-symmetric, and
     the Jacobi iterations then diverge in a column at rest at low viscosity (docs/sph.md, "DFSPH's wall share");
     at rest kappa^{n-1} = kappa, so the column sees full mirroring; c = 1 leaves it out (Akinci);
  4. density solve (TVCG Alg. 3), warm-started (TVCG §4.3) with half (`WARM_START`; all of it overshoots and
     diverges in a resting column) of the last substep's total stiffness kappa_i (state `kappa`): v_i += dt (sum_j V
     (kappa_i + kappa_j) grad W_ij + kappa_i grad V_b); then rho*_i = max(1, rho_i / rho0 + dt (sum_j V v_ij . grad
     W_ij + (v_i - v_b) . grad V_b)); iterations k_i = (rho*_i - 1) alpha_i / dt^2, v_i += dt (sum_j V (k_i + k_j)
     grad W_ij + k_i grad V_b), kappa_i += k_i, until the env's mean rho0 (rho* - 1) is at most
     `max_density_error_percent` 0.01 rho0;
  5. x += dt v; boundary projection.
The pressure reported is that of both solves' impulses, p_i = -rho0 (kappa_i + kappa^v_i / dt) with kappa^v_i the
sum of the divergence solve's k_i (Genesis reports the density solve's part alone, which in a resting column is
short of rho0 g (H - z) by the share the divergence solve carries).
Each env iterates until its own error meets the tolerance (converged envs are left unchanged by further iterations,
so a batched run equals the serial runs). Genesis' DFSPH also adds the previous substep's non-pressure acceleration
before step 3 (`_kernel_advect_velocity`); that is not part of the published algorithm and is not done here.

Inactive particles have no neighbours, are nobody's neighbour and keep every field.
"""

from __future__ import annotations

import dataclasses

import torch

from ...errors import InvalidInputError
from ...state import SolverState
from ..base import SolverBase
from ..pair_lists import PairList
from .boundary import boundary_terms, project
from .kernel import kernel_w, kernel_w0, kernel_w_f
from .model import SPHModel
from .neighbors import Grid, Pairs, find_pairs

__all__ = ["SPHState", "SPHSolver"]

MIN_NEIGHBORS_DIVERGENCE = 20  #: Genesis' particle-deficiency threshold of the divergence solve
WARM_START = 0.5  #: share of the last substep's stiffness the density solve starts from
WALL_NEIGHBORS = 52.0  #: neighbours a unit of boundary volume stands for (V_b = 1/2, a flat wall, ~ 26 neighbours)
SKIN = 0.1  #: Verlet skin of the neighbour lists, in support radii (lists of pairs within (1 + SKIN) h)


@dataclasses.dataclass(frozen=True)
class SPHState(SolverState):
    """Everything that determines an SPH system's future (DESIGN.md §4), plus the last substep's outputs.

    `rho` and `p` are what the last substep computed (the density at its start and its pressure); the next substep
    recomputes them from `pos`/`vel`, so they never change the future. DFSPH warm-starts its density solve from
    `kappa` (Bender & Koschier 2017, §4.3), part of its future."""

    prefix = "SPHSolver"

    pos: torch.Tensor  #: (B, n, 3) m, world
    vel: torch.Tensor  #: (B, n, 3) m/s
    active: torch.Tensor  #: (B, n) bool; inactive particles neither move nor interact
    rho: torch.Tensor  #: (B, n) kg/m^3, density (output)
    p: torch.Tensor  #: (B, n) Pa, pressure (output)
    kappa: torch.Tensor  #: (B, n) m^2/s^2, DFSPH: the density solve's stiffness, the next one's warm start (WCSPH: 0)
    ref: torch.Tensor  #: (B, n, 3) m, reference positions of the Verlet neighbour lists (a function of them)


@dataclasses.dataclass
class Hood:
    """Per-substep neighbourhood data, component-major (vectors `(3, .)`): the pairs (the Verlet lists: every pair
    within h, and pairs up to (1 + SKIN) h whose kernel terms are 0), kernel values and boundary volume-map terms over
    the P flattened particles."""

    pairs: Pairs
    lengths3: torch.Tensor  #: (3, P) long, the pair counts for component-wise sums
    xij: torch.Tensor  #: (3, E) m
    r2: torch.Tensor  #: (E,) m^2, |x_ij|^2
    r: torch.Tensor  #: (E,) m
    W: torch.Tensor  #: (E,) 1/m^3
    F: torch.Tensor  #: (E,) 1/m^5, the kernel gradient's scale: grad W_ij = F_ij x_ij
    gradW: torch.Tensor | None  #: (3, E) 1/m^4 (DFSPH only: its solves reuse it every iteration; WCSPH uses F)
    G: torch.Tensor | None  #: (3, P) 1/m^4, sum_j grad W_ij (DFSPH only)
    Vb: torch.Tensor  #: (P,) boundary volume
    gradb: torch.Tensor  #: (3, P) 1/m
    vgradb: torch.Tensor  #: (P,) 1/s, boundary velocity . grad V_b
    hydro: torch.Tensor  #: (3, P) m/s^2, the boundaries' hydrostatic pressure acceleration


def gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows `idx` of `t (P,)` or columns of `t (3, P)` (one 1-D `index_select` per component: the fast CPU path)."""
    if t.dim() == 1:
        return t.index_select(0, idx)
    return torch.stack([t[k].index_select(0, idx) for k in range(t.shape[0])])


def gather3(t: torch.Tensor, idx: torch.Tensor) -> tuple:
    """Columns `idx` of `t (3, P)` as three `(E,)` tensors (no stacked copy: for terms that are summed at once)."""
    return tuple(t[k].index_select(0, idx) for k in range(3))


def dot(a, b) -> torch.Tensor:
    """Component-major dot product `(3, N), (3, N) -> (N,)`."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


class SPHSolver(SolverBase):
    """Batched, differentiable WCSPH / DFSPH liquids with wall and rigid-geom boundaries (see the module docstring).
    `last_stats` holds the last substep's DFSPH iteration counts and errors (diagnostics, not state).

    Neighbours are Verlet lists (`solvers.pair_lists.PairList`: pairs within (1 + SKIN) h of the reference positions
    `ref` of the state, rebuilt for an env only when its particles moved by SKIN h / 2 relative to each other), so
    the lists, hence the sums' order, are a function of the state: checkpoints, resets and batches stay bitwise."""

    name = "SPHSolver"

    def __init__(self, model: SPHModel, device, dtype):
        self.model, self.device, self.dtype = model, device, dtype
        self.last_stats: dict = {}
        g, radius = model.grid, model.h * (1.0 + SKIN)
        cell = max(g.cell, radius)
        span = (model.upper - model.lower).detach().cpu()
        res = tuple(int(v) for v in (torch.ceil(span / cell).clamp_min(1) + 1).long())
        self._grid = Grid(lower=g.lower, cell=cell, res=res, h=radius)
        self._lists = PairList(self._search, SKIN * model.h)
        self._csr = None  # (b, i, j) of the lists -> their flattened CSR Pairs and component lengths
        self._boundary_share = 2.0
        m = model
        self._uniform_rho0 = bool((m.rho0 == m.rho0[0]).all())
        self._uniform_mass = bool((m.mass == m.mass[0]).all())
        #: one mass, viscosity and cohesion for all particles: their per-particle factors are scalars
        self._uniform_coeffs = (self._uniform_mass and bool((m.mu == m.mu[0]).all())
                                and bool((m.gamma == m.gamma[0]).all()))

    @property
    def boundary_share(self) -> float:
        """DFSPH's wall share c of the pressure kicks c k_i grad V_b (module docstring, step 3; docs/sph.md): 2
        (default; pressure mirroring p_b = p_i as WCSPH, which the hydrostatic wall term assumes, the share beyond
        Akinci's from the last substep's stiffness) or 1 (Akinci et al. 2012, SPlisHSPlasH: a resting column reads
        13 % low). WCSPH always mirrors (2)."""
        return self._boundary_share

    @boundary_share.setter
    def boundary_share(self, c: float) -> None:
        if c not in (1, 2, 1.0, 2.0):
            raise InvalidInputError(f"SPHSolver.boundary_share must be 1 (Akinci et al. 2012) or 2 (pressure "
                                    f"mirroring), got {c!r}: set one of them.")
        self._boundary_share = float(c)

    def _search(self, x: torch.Tensor, active: torch.Tensor):
        """`(b, i, j)` long: the pairs within (1 + SKIN) h of positions `x (E, n, 3)` (`active (E, n)`), env-major,
        CSR order within each env (PairList's search)."""
        n = x.shape[1]
        p = find_pairs(x.reshape(-1, 3).T.contiguous(), active.reshape(-1), n, self._grid)
        b = torch.div(p.i, n, rounding_mode="floor")
        return b, p.i - b * n, p.j - b * n

    def _pairs(self, pos: torch.Tensor, active: torch.Tensor, ref: torch.Tensor):
        """(CSR `Pairs` over the flattened particles, `(3, P)` lengths, the new reference positions `(B, n, 3)`)."""
        ref, b, i, j = self._lists.get(pos, ref, active)
        c = self._csr
        if c is None or c[0] is not b or c[1] is not i or c[2] is not j:
            B, n = active.shape
            I, J = b * n + i, b * n + j
            counts = torch.bincount(I, minlength=B * n)
            if B * n < 2 ** 31:  # int32 rows: the pair gathers (index_select) read half the index bytes
                I, J = I.to(torch.int32), J.to(torch.int32)
            c = self._csr = (b, i, j, Pairs(i=I, j=J, counts=counts), counts.expand(3, -1).contiguous())
        return c[3], c[4], ref

    # ------------------------------------------------------------------ state
    def initial_state(self, n_envs: int) -> SPHState:
        """Particles at their sampled positions, at rest, all active, with their density (walls only) and pressure
        (WCSPH: the equation of state; DFSPH: 0); B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        pos = m.init_pos.expand(B, m.n, 3).clone()
        active = torch.ones(B, m.n, dtype=torch.bool, device=self.device)
        hood, ref = self.neighbourhood(pos, active, pos.clone(), None)
        rho = self.density(hood, B)
        p = self.tait(rho) if m.pressure_solver == "WCSPH" else torch.zeros_like(rho)
        return SPHState(pos=pos, vel=torch.zeros_like(pos), active=active, rho=rho.reshape(B, m.n),
                        p=p.reshape(B, m.n), kappa=torch.zeros_like(p).reshape(B, m.n), ref=ref)

    # --------------------------------------------------------------- stages
    def _rep(self, t: torch.Tensor, B: int) -> torch.Tensor:
        """A per-particle model array `(n,)` repeated over B envs: `(B n,)`."""
        return t.repeat(B)

    def neighbourhood(self, pos: torch.Tensor, active: torch.Tensor, ref: torch.Tensor, frames):
        """(Pairs, kernel values and boundary terms of positions `pos (B, n, 3)`, the Verlet lists' new reference
        positions `(B, n, 3)`); `ref` the state's, `frames` the rigid geom frames."""
        m = self.model
        x = pos.reshape(-1, 3).T.contiguous()
        pairs, lengths3, ref = self._pairs(pos, active, ref)
        xi, xj = gather3(x, pairs.i), gather3(x, pairs.j)
        xij = torch.stack([xi[k] - xj[k] for k in range(3)])
        r2 = dot(xij, xij)
        r = torch.sqrt(r2.clamp_min(1e-20))
        W, F = kernel_w_f(r, m.h)
        gradW = F * xij if m.pressure_solver == "DFSPH" else None
        Vb, gradb, vgradb, hydro = boundary_terms(pos, m.lower, m.upper, m.h, m.colliders, frames, m.gravity)
        a = active[..., None]
        return Hood(pairs=pairs, lengths3=lengths3, xij=xij, r2=r2, r=r, W=W, F=F, gradW=gradW,
                    G=None if gradW is None else torch.segment_reduce(gradW, "sum", lengths=lengths3, axis=1),
                    Vb=torch.where(active, Vb, 0).reshape(-1),
                    gradb=torch.where(a, gradb, 0).reshape(-1, 3).T.contiguous(),
                    vgradb=torch.where(active, vgradb, 0).reshape(-1),
                    hydro=torch.where(a, hydro, 0).reshape(-1, 3).T.contiguous()), ref

    @staticmethod
    def pair_sum(hood: Hood, values: torch.Tensor) -> torch.Tensor:
        """sum_j values_ij for every particle i: `(E,)` -> `(P,)` or `(3, E)` -> `(3, P)`, in CSR order
        (deterministic)."""
        if values.dim() == 1:
            return torch.segment_reduce(values, "sum", lengths=hood.pairs.counts, axis=0)
        return torch.segment_reduce(values, "sum", lengths=hood.lengths3, axis=1)

    def density(self, hood: Hood, B: int) -> torch.Tensor:
        """rho `(P,)` kg/m^3 (module docstring)."""
        m = self.model
        rel = m.V * (kernel_w0(m.h) + self.pair_sum(hood, hood.W)) + hood.Vb
        return self._rep(m.rho0, B) * rel

    def tait(self, rho: torch.Tensor) -> torch.Tensor:
        """Tait pressure `(P,)` Pa of densities `rho (P,)` (clamped below at rho0)."""
        m, B = self.model, rho.shape[0] // self.model.n
        rho0 = self._rep(m.rho0, B)
        return self._rep(m.stiffness, B) * ((torch.maximum(rho, rho0) / rho0) ** self._rep(m.exponent, B) - 1.0)

    def _np_pairs(self, hood: Hood, v: torch.Tensor, rho: torch.Tensor, B: int) -> torch.Tensor | None:
        """The per-pair scalar s_ij `(E,)` 1/s^2 of the cohesion and viscosity accelerations sum_j s_ij x_ij (module
        docstring: both act along x_ij, grad W_ij = F_ij x_ij), or None without either; the particle-i factors 10 mu_i
        and gamma_i / m_i are scalars for a uniform material, else gathered per pair."""
        m = self.model
        i, j = hood.pairs.i, hood.pairs.j
        s = None
        if bool((m.gamma > 0).any()):
            d = m.particle_size  # W(max(r, d)): W(r) beyond d, W(d) within
            wd = float(kernel_w(torch.tensor(d, dtype=torch.float64), m.h))
            wc = torch.where(hood.r < d, wd, hood.W)
            if self._uniform_coeffs:
                s = wc * -float(m.gamma[0])  # gamma / m_i m_j = gamma for one mass
            else:
                mass = self._rep(m.mass, B)
                s = -(gather(self._rep(m.gamma, B) / mass, i) * gather(mass, j)) * wc
        if bool((m.mu > 0).any()):
            xij = hood.xij
            vij = (gather(v[0], i) - gather(v[0], j)) * xij[0]
            vij = vij + (gather(v[1], i) - gather(v[1], j)) * xij[1]
            vij = vij + (gather(v[2], i) - gather(v[2], j)) * xij[2]
            mr = self._rep(m.mass, B) / rho
            if self._uniform_coeffs:
                visc = (10.0 * float(m.mu[0])) * gather(mr, j)
            else:
                visc = gather(10.0 * self._rep(m.mu, B), i) * gather(mr, j)
            visc = visc * vij * hood.F / (hood.r2 + 0.01 * m.h ** 2)
            s = visc if s is None else s + visc
        return s

    def _pair_acc(self, hood: Hood, s: torch.Tensor | None) -> torch.Tensor | float:
        """sum_j s_ij x_ij `(3, P)` of a per-pair scalar `s (E,)` (0.0 for None): one pass over the pairs."""
        if s is None:
            return 0.0
        return self.pair_sum(hood, s * hood.xij)

    def non_pressure(self, hood: Hood, v: torch.Tensor, rho: torch.Tensor, B: int,
                     pair_extra: torch.Tensor | None = None) -> torch.Tensor:
        """Gravity, the boundaries' hydrostatic pressure, cohesion and viscosity accelerations `(3, P)` m/s^2 of
        velocities `v (3, P)` (module docstring); `pair_extra (E,)`: another per-pair scalar along x_ij (WCSPH's
        pressure), summed in the same pass."""
        s = self._np_pairs(hood, v, rho, B)
        if pair_extra is not None:
            s = pair_extra if s is None else pair_extra + s
        return self.model.gravity[:, None] + hood.hydro + self._pair_acc(hood, s)

    # ------------------------------------------------------------------- step
    def step(self, state: SPHState, frames=None) -> SPHState:
        """One substep of `model.dt`; returns a new state. `frames`: rigid geom frames and velocities from
        `BodyMotion.geom_frames` (None: no rigid colliders this substep)."""
        m, (B, n) = self.model, state.active.shape
        hood, ref = self.neighbourhood(state.pos, state.active, state.ref, frames)
        rho = self.density(hood, B)
        v = state.vel.reshape(-1, 3).T.contiguous()
        kappa = state.kappa.reshape(-1)
        if m.pressure_solver == "WCSPH":
            v_new, p = self._wcsph(hood, v, rho, B)
        else:
            v_new, p, kappa = self._dfsph(hood, v, rho, kappa, state.active, B)
        v_new = v_new.T.reshape(B, n, 3)
        x_new, v_new = project(state.pos + m.dt * v_new, v_new, m.lower, m.upper, m.colliders, frames)
        act, a3 = state.active.reshape(-1), state.active[..., None]
        return SPHState(pos=torch.where(a3, x_new, state.pos), vel=torch.where(a3, v_new, state.vel),
                        active=state.active, rho=torch.where(act, rho, state.rho.reshape(-1)).reshape(B, n),
                        p=torch.where(act, p, state.p.reshape(-1)).reshape(B, n),
                        kappa=torch.where(act, kappa, state.kappa.reshape(-1)).reshape(B, n), ref=ref)

    def _wcsph(self, hood: Hood, v: torch.Tensor, rho: torch.Tensor, B: int):
        """(new velocity `(3, P)`, pressure `(P,)`) of a WCSPH substep (module docstring). The pressure, cohesion and
        viscosity pair terms all act along x_ij: one per-pair scalar, one pass over the pairs."""
        m = self.model
        i, j = hood.pairs.i, hood.pairs.j
        rho0 = self._rep(m.rho0, B)
        p = self.tait(rho)
        pr = p / torch.maximum(rho, rho0) ** 2
        if self._uniform_rho0:  # -rho0 V (pr_i + pr_j) F_ij
            sp = (gather(pr, i) + gather(pr, j)) * (hood.F * (-float(m.rho0[0]) * m.V))
        else:
            sp = (gather(rho0, j) * (-m.V)) * (gather(pr, i) + gather(pr, j)) * hood.F
        acc = self.non_pressure(hood, v, rho, B, pair_extra=sp) - (2.0 * rho0 * pr) * hood.gradb
        return v + m.dt * acc, p

    # ------------------------------------------------------------------ DFSPH
    def _rate(self, hood: Hood, v: torch.Tensor) -> torch.Tensor:
        """D(rho / rho0)/Dt `(P,)` 1/s of velocities `v (3, P)`: sum_j V v_ij . grad W_ij + (v_i - v_b) . grad V_b."""
        j = hood.pairs.j
        fluid = self.model.V * (dot(v, hood.G) - self.pair_sum(hood, dot(gather3(v, j), hood.gradW)))
        return fluid + dot(v, hood.gradb) - hood.vgradb

    def _kick(self, hood: Hood, k: torch.Tensor) -> torch.Tensor:
        """Velocity change `(3, P)` of stiffnesses `k (P,)`: sum_j V (k_i + k_j) grad W_ij + k_i grad V_b (Akinci's
        boundary share; alpha is the diagonal of this operator)."""
        j = hood.pairs.j
        return self.model.V * (k * hood.G + self.pair_sum(hood, gather(k, j) * hood.gradW)) \
            + k * hood.gradb

    def _env_mean(self, values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Mean `(B,)` of `values (P,)` over each env's active particles."""
        B = active.shape[0]
        a = active.to(values.dtype)
        return (values.reshape(B, -1) * a).sum(1) / a.sum(1).clamp_min(1.0)

    def _dfsph(self, hood: Hood, v: torch.Tensor, rho: torch.Tensor, kappa_prev: torch.Tensor, active: torch.Tensor,
               B: int):
        """(new velocity `(3, P)`, pressure `(P,)`, density-solve stiffness `(P,)`) of a DFSPH substep (module
        docstring, steps 1-4) warm-started from the last substep's stiffness `kappa_prev (P,)`."""
        m = self.model
        n = m.n
        rho0 = self._rep(m.rho0, B)
        ref = float(m.rho0[0])  # Genesis' tolerances use the rest density of the first particle
        act = active.reshape(-1)
        V = m.V
        G = V * hood.G + hood.gradb
        S = (V * V) * self.pair_sum(hood, dot(hood.gradW, hood.gradW))
        den = dot(G, G) + S
        alpha = torch.where(act & (den > 1e-6), -1.0 / den.clamp_min(1e-6), torch.zeros_like(den))
        within = self.pair_sum(hood, (hood.r < m.h).to(rho.dtype))  # the Verlet lists' neighbours within h
        enough = act & ((within + WALL_NEIGHBORS * hood.Vb) >= MIN_NEIGHBORS_DIVERGENCE)

        def divergence(v):
            return torch.where(enough, self._rate(hood, v).clamp_min(0.0), torch.zeros_like(rho))

        # 2. divergence solve
        eta = m.max_divergence_error * 0.01 * ref / m.dt
        drho = divergence(v)
        running = torch.ones(B, dtype=torch.bool, device=v.device)
        div_iters = 0
        kappa_v = torch.zeros_like(rho)
        while div_iters < m.div_iters:
            run_p = running.repeat_interleave(n)
            k = drho * alpha
            v = torch.where(run_p, v + self._kick(hood, k), v)
            kappa_v = torch.where(run_p, kappa_v + k, kappa_v)
            drho = divergence(v)
            err_div = self._env_mean(ref * drho, active)
            running = running & (err_div > eta)
            div_iters += 1
            if not bool(running.any()):
                break
        # 3. non-pressure accelerations and the walls' mirrored share of the last substep's stiffness
        kappa_prev = torch.where(act, kappa_prev, torch.zeros_like(kappa_prev))
        v = v + m.dt * self.non_pressure(hood, v, rho, B)
        if self._boundary_share != 1.0:
            v = v + ((self._boundary_share - 1.0) * m.dt * kappa_prev) * hood.gradb
        # 4. density solve
        rel = rho / rho0

        def predicted(v):
            return torch.where(act, (rel + m.dt * self._rate(hood, v)).clamp_min(1.0), torch.ones_like(rel))

        eta = m.max_density_error_percent * 0.01 * ref
        alpha2 = alpha / m.dt ** 2
        # warm start (Bender & Koschier 2017, §4.3): a share of the last substep's density-solve stiffness first
        kappa = WARM_START * kappa_prev
        v = v + m.dt * self._kick(hood, kappa)
        rs = predicted(v)
        running = torch.ones(B, dtype=torch.bool, device=v.device)
        den_iters = 0
        while den_iters < m.den_iters:
            run_p = running.repeat_interleave(n)
            k = (rs - 1.0) * alpha2
            v = torch.where(run_p, v + m.dt * self._kick(hood, k), v)
            kappa = torch.where(run_p, kappa + k, kappa)
            rs = predicted(v)
            err_den = self._env_mean(ref * (rs - 1.0), active)
            running = running & (err_den > eta)
            den_iters += 1
            if not bool(running.any()):
                break
        self.last_stats = {"divergence_iterations": div_iters, "density_iterations": den_iters,
                           "divergence_error": err_div.detach(), "density_error": err_den.detach()}
        return v, -rho0 * (kappa + kappa_v / m.dt), kappa

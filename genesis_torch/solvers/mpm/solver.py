"""The MPM solver: state, and the substep driver P2G -> grid -> G2P -> deformation update (MLS-MPM, Hu et al. 2018).

One substep (`MPMSolver.step`), with n particles in B envs:

1. Kirchhoff stress of every particle from its state `F, Jp` (constitutive.py, per material group);
2. P2G: scatter mass and APIC/MLS momentum to the grid of each env (transfer.py);
3. grid update: velocities, gravity, rigid colliders (colliders.py), walls;
4. G2P: gather v and C, advect x += dt v. With `MPMOptions.flip_ratio` r > 0 the particle velocity is the PIC/FLIP
   blend v_p <- r (v_p + sum_i w_ip (v_i' - v_i)) + (1 - r) sum_i w_ip v_i' (r = 1: the original MPM update of
   Sulsky et al. 1994; the blend: Zhu & Bridson 2005), with APIC's C (Jiang et al. 2016 course notes); positions
   and C still come from the new grid velocity v_i';
5. F <- (I + dt C) F (Hu et al. 2018, §4: the MLS-MPM deformation update), then the material's return mapping
   (plasticity) or the liquid's reset F = J^(1/3) I. Inactive particles keep every field unchanged.
"""

from __future__ import annotations

import dataclasses

import torch

from ...state import SolverState
from ..base import SolverBase
from ...math.small import det, mm
from . import constitutive as cm
from .model import MPMModel, MPMParams
from .grid import choose_layout
from .transfer import (Stencil, g2p, gather, grid_update, grid_update_flip, p2g_sources, scatter, stencil,
                       stencil_base)

__all__ = ["MPMState", "MPMSolver", "component_major"]


@dataclasses.dataclass(frozen=True)
class MPMState(SolverState):
    """Everything that determines an MPM system's future (DESIGN.md §4). n particles, B envs."""

    prefix = "MPMSolver"

    pos: torch.Tensor  #: (B, n, 3) m, world
    vel: torch.Tensor  #: (B, n, 3) m/s
    C: torch.Tensor  #: (B, n, 3, 3) 1/s, APIC affine velocity (approximates the velocity gradient)
    F: torch.Tensor  #: (B, n, 3, 3) elastic deformation gradient (dimensionless)
    Jp: torch.Tensor  #: (B, n) plastic volume ratio det(F_P) (1 for elastic and liquid particles)
    active: torch.Tensor  #: (B, n) bool; inactive particles neither move nor touch the grid


def component_major(t: torch.Tensor) -> torch.Tensor:
    """`t (B, n, *c)` with the same shape and values, stored component-major: each component's B n values contiguous.
    The transfers read particle fields one component at a time over all particles, and elementwise ops keep this
    layout, so the states a step returns are stored this way too and the copy happens only on the first step (or
    after a reset/load). Compiled kernels vectorize only over contiguous loads: with (..., 3, 3) rows they run scalar,
    ~5x slower (measured on the polar iteration)."""
    P = t.shape[0] * t.shape[1]
    return t.reshape(P, -1).T.contiguous().T.reshape(t.shape)


def keep_in_domain(pos: torch.Tensor, vel: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Positions `(B, n, 3)` clamped to the box `lo..hi (3,)` m, and velocities with the component that points out
    of the box zeroed where a particle sits on it (Genesis' boundary with restitution 0). Identity for particles
    inside; a diverging particle stays on the grid (NaN stays NaN and is reported by the scene)."""
    out = ((pos >= hi) & (vel > 0)) | ((pos <= lo) & (vel < 0))
    return torch.minimum(torch.maximum(pos, lo), hi), torch.where(out, torch.zeros_like(vel), vel)


class MPMSolver(SolverBase):
    """Batched, differentiable MLS-MPM with elastic, elasto-plastic, snow, sand and liquid materials.

    References: Hu et al. 2018 (MLS-MPM); Jiang et al. 2016 (MPM course notes); constitutive models in
    constitutive.py. Limitations: docs/mpm.md ("Sharp bits").
    """

    name = "MPMSolver"

    #: grid layout of each substep (grid.py): "auto" (the module's rule), "dense", "box" (each env's box around its
    #: particles) or "sparse" (the touched 4^3 blocks); all give the same results bitwise
    grid_mode = "auto"

    def __init__(self, model: MPMModel, params: MPMParams, device, dtype, deterministic: bool = False,
                 compile: bool = False):
        self.model, self.params = model, params
        self.device, self.dtype = device, dtype
        self.deterministic = deterministic
        self._layout_cache: dict = {}  #: the last box layout's node tables (grid.box_layout), reused while it stays
        self.last_grid_rows = model.n_nodes  #: grid rows per env of the last substep (dense: all nodes; diagnostics)
        self._pre, self._grid, self._post = self._particles_to_grid, self._grid_update, self._grid_to_particles
        self._grid_dense = self._grid_update
        self._compiled = compile
        if compile:  # each stage fused by inductor; the scatter (index_add, in index order) stays eager
            self._pre = torch.compile(self._particles_to_grid, dynamic=False)
            # the dense grid update has fixed shapes; a sparse grid's row count changes from step to step, so its
            # update runs eager (it is small: that is why it was chosen)
            self._grid_dense = torch.compile(self._grid_update, dynamic=False)
            self._post = torch.compile(self._grid_to_particles, dynamic=False)

    def initial_state(self, n_envs: int) -> MPMState:
        """Particles at their sampled positions, at rest, undeformed, all active; B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        eye = torch.eye(3, dtype=self.dtype, device=self.device).expand(B, m.n, 3, 3)
        state = MPMState(pos=m.init_pos.expand(B, m.n, 3).clone(), vel=torch.zeros(B, m.n, 3, dtype=self.dtype,
                         device=self.device), C=torch.zeros(B, m.n, 3, 3, dtype=self.dtype, device=self.device),
                         F=eye.clone(), Jp=torch.ones(B, m.n, dtype=self.dtype, device=self.device),
                         active=torch.ones(B, m.n, dtype=torch.bool, device=self.device))
        if m.has_muscle:  # muscles: the activations are state too (muscle.MPMMuscleState), 0 (passive) at first
            from .muscle import MPMMuscleState
            state = MPMMuscleState.extend(state, torch.zeros(B, m.n, dtype=self.dtype, device=self.device))
        return state

    # ----------------------------------------------------------- constitutive
    def lame(self, E=None, nu=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, lam) `(P, n)` Pa: from E and nu (default: the params'), or the materials' explicit Lamé values."""
        m = self.model
        mu, lam = MPMParams(E=self.params.E if E is None else E, nu=self.params.nu if nu is None else nu).lame()
        return torch.where(m.lame_given, m.lame_mu, mu), torch.where(m.lame_given, m.lame_lam, lam)

    #: material kinds whose stress uses only +, -, *, / and sqrt (correctly rounded in a SIMD lane and in a scalar
    #: tail alike), so that computing it env chunk by env chunk gives the same bits (the corotated polar iteration,
    #: the liquid's pressure); the others call exp / log / SVD
    CHUNK_SAFE_STRESS = frozenset({"corotated", "elastoplastic", "liquid"})

    def stress(self, F: torch.Tensor, Jp: torch.Tensor, E=None, nu=None, lame=None, actu=None,
               muscle_dir=None) -> torch.Tensor:
        """Kirchhoff stress `(B, n, 3, 3)` Pa of every particle, group by group (E, nu: `(P, n)`, default params;
        `lame`: their `(mu, lam)` `(1 or B, n)` if already computed), plus the muscles' active stress for activations
        `actu (B, n)` (muscle.py; fibres `muscle_dir (P, n, 3)`, default the params'; None: passive)."""
        mu_all, lam_all = self.lame(E, nu) if lame is None else lame
        if actu is not None:
            from .muscle import active_tau
            from ...materials.MPM import Muscle
            E_all = self.params.E if E is None else E
            fibre = self.params.muscle_dir if muscle_dir is None else muscle_dir
        B = F.shape[0]
        out = []
        for g in self.model.groups:
            Fg = F[:, g.start:g.end]
            mu = mu_all[:, g.start:g.end].expand(B, -1)
            lam = lam_all[:, g.start:g.end].expand(B, -1)
            if g.kind == "snow":  # hardening [S13 §5]: both Lamé parameters scale with exp(xi (1 - Jp))
                h = torch.exp(g.material.hardening * (1 - Jp[:, g.start:g.end]))
                mu, lam = mu * h, lam * h
            if g.kind in ("corotated", "elastoplastic", "snow"):
                out.append(cm.corotated_tau(Fg, mu, lam))
            elif g.kind == "neohookean":
                out.append(cm.neohookean_tau(Fg, mu, lam))
            elif g.kind == "sand":
                out.append(cm.hencky_tau(Fg, mu, lam))
            else:
                out.append(cm.liquid_tau(Fg, lam))
            if actu is not None and isinstance(g.material, Muscle):
                out[-1] = out[-1] + active_tau(Fg, fibre[:, g.start:g.end], E_all[:, g.start:g.end],
                                               actu[:, g.start:g.end])
        return out[0] if len(out) == 1 else torch.cat(out, 1)

    def project(self, F: torch.Tensor, Jp: torch.Tensor, E=None, nu=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return mappings of the trial gradients `F (B, n, 3, 3)`: the elastic F and plastic Jp `(B, n)`."""
        mu_all, lam_all = self.lame(E, nu)
        B = F.shape[0]
        Fs, Js = [], []
        for g in self.model.groups:
            Fg, Jg = F[:, g.start:g.end], Jp[:, g.start:g.end]
            mat = g.material
            mu = mu_all[:, g.start:g.end].expand(B, -1)
            if g.kind == "snow" or (g.kind == "elastoplastic" and not mat.use_von_mises):
                Fg, Jg = cm.clamp_singular_values(Fg, Jg, mat.yield_lower, mat.yield_higher)
            elif g.kind == "elastoplastic":
                Fg, Jg = cm.von_mises_project(Fg, Jg, mu, mat.von_mises_yield_stress)
            elif g.kind == "sand":
                lam = lam_all[:, g.start:g.end].expand(B, -1)
                Fg, Jg = cm.drucker_prager_project(Fg, Jg, mu, lam, cm.sand_alpha(mat.friction_angle),
                                                    dilatancy=mat.dilatancy)
            elif g.kind == "liquid":  # keep only the volume change: F = J^(1/3) I
                J = det(Fg)
                Fg = (J.abs().pow(1.0 / 3.0) * torch.sign(J))[..., None, None] * torch.eye(3, dtype=F.dtype,
                                                                                           device=F.device)
            Fs.append(Fg)
            Js.append(Jg)
        if len(Fs) == 1:
            return Fs[0], Js[0]
        return torch.cat(Fs, 1), torch.cat(Js, 1)

    # -------------------------------------------------------------------- step
    def step(self, state: MPMState, collider_frames=None) -> MPMState:
        """One MPM substep of `model.dt`; returns a new state. `collider_frames`: rigid geom frames and velocities
        from `BodyMotion.geom_frames` (solvers/base.py) (None: no rigid colliders this substep)."""
        m, B = self.model, state.pos.shape[0]
        p = self.params
        pos, vel, C, F = (component_major(t) for t in (state.pos, state.vel, state.C, state.F))
        chunks = self._env_chunks(B, m.n, pos.device)
        actu = getattr(state, "actu", None)  # muscles (muscle.MPMMuscleState): held over the substep
        if len(chunks) > 1:
            out = self._step_chunked(state, chunks, pos, vel, C, F, collider_frames)
        else:
            src, base, w, fx = self._pre(pos, vel, C, F, state.Jp, state.active, p.E, p.nu, actu)
            layout = choose_layout(m, base, state.active, B, self.grid_mode, self._layout_cache)
            self.last_grid_rows = layout.n_nodes
            update = self._grid if layout.sparse else self._grid_dense
            grid_v = update(layout, scatter(layout, src, B, self.deterministic), collider_frames)
            out = self._post(gather(grid_v, layout.node), w, fx, pos, vel, C, F, state.Jp, state.active, p.E, p.nu)
        if actu is None:
            return out
        from .muscle import MPMMuscleState
        return MPMMuscleState.extend(out, actu)

    #: particles per chunk of envs in an eager CPU substep: the 27-wide transfer stages (stencil, P2G sources and
    #: scatter; gather and G2P sums) run env chunk by env chunk so that their temporaries (~0.5 kB per particle) stay
    #: in cache (measured ~15 % on 16 envs x 10k particles). Only those stages: they are +, -, *, / per particle (the
    #: same bits in a vector lane or a scalar tail) and the scatter adds in the same index order, so the results are
    #: the unchunked ones bitwise (tested). Stress and the deformation update run on all particles at once: their
    #: pow/exp/log round differently in a SIMD body and its scalar tail, and a chunk moves the tail.
    chunk_particles = 22000

    def _env_chunks(self, B: int, n: int, device) -> list[tuple[int, int]]:
        """Env ranges `[(b0, b1), ...]` of about `chunk_particles` particles (one range on CUDA, compiled or small)."""
        if device.type != "cpu" or self._compiled or B * n <= self.chunk_particles or B == 1:
            return [(0, B)]
        k = max(self.chunk_particles // max(n, 1), 1)
        return [(b, min(b + k, B)) for b in range(0, B, k)]

    def _step_chunked(self, state: MPMState, chunks, pos, vel, C, F, collider_frames) -> MPMState:
        """`step` with the transfer stages over the env `chunks`; stress, grid update and deformation update once on
        all envs."""
        m, B, n = self.model, pos.shape[0], self.model.n
        p, active = self.params, state.active
        layout = choose_layout(m, stencil_base(m, pos), active, B, self.grid_mode, self._layout_cache)
        self.last_grid_rows = layout.n_nodes
        # stress chunk by chunk too where that keeps the bits (CHUNK_SAFE_STRESS): the polar iteration's ~150 ops
        # over 9 components then run on cache-sized rows (16 envs x 10k particles: measured in benchmarks/RESULTS.md)
        per_chunk = all(g.kind in self.CHUNK_SAFE_STRESS for g in m.groups)
        actu = getattr(state, "actu", None)  # muscles: their active stress is + and * only (chunk safe)
        if per_chunk:
            mu, lam = self.lame(p.E, p.nu)
            rows = lambda t, b0, b1: t if t.shape[0] == 1 else t[b0:b1]  # noqa: E731
        else:
            tau = self.stress(F, state.Jp, p.E, p.nu, actu=actu)
        grid, kept = None, []
        for b0, b1 in chunks:
            st = stencil(m, pos[b0:b1])
            tau_c = (self.stress(F[b0:b1], state.Jp[b0:b1], rows(p.E, b0, b1), lame=(rows(mu, b0, b1),
                                 rows(lam, b0, b1)), actu=None if actu is None else actu[b0:b1],
                                 muscle_dir=None if p.muscle_dir is None else rows(p.muscle_dir, b0, b1))
                     if per_chunk else tau[b0:b1])
            src = p2g_sources(m, st, vel[b0:b1], C[b0:b1], tau_c, active[b0:b1], split=m.flip_ratio > 0)
            if grid is None:
                grid = [src[0].new_zeros(B, layout.n_nodes) for _ in src]
            node = layout.node[:, b0 * n:b1 * n]
            scatter(layout, src, B, node=node, out=grid)
            kept.append((node, st))
        update = self._grid if layout.sparse else self._grid_dense
        grid_v = update(layout, grid, collider_frames)
        parts = []
        for (b0, b1), (node, st) in zip(chunks, kept):
            gv = gather(grid_v, node)
            v_grid, C_new = g2p(m, st, gv[:3], b1 - b0)
            dv = g2p(m, st, gv[3:], b1 - b0)[0] if len(gv) == 6 else None
            parts.append((v_grid, C_new, dv))

        def join(ts):  # concatenated component-major (each component's B n values contiguous), as `step` returns
            shape = (B,) + ts[0].shape[1:]
            return torch.cat([t.reshape(t.shape[0] * n, -1).T for t in ts], 1).T.reshape(shape)

        v_grid, C_new = join([q[0] for q in parts]), join([q[1] for q in parts])
        dv = join([q[2] for q in parts]) if parts[0][2] is not None else None
        return self._finish(v_grid, C_new, dv, pos, vel, C, F, state.Jp, active, p.E, p.nu)

    def _particles_to_grid(self, pos, vel, C, F, Jp, active, E, nu, actu=None):
        """Stress, stencil and P2G sources: `(src (k channels (27, P)), base (3, P), w (27, P), fx (3, P))`,
        k = 4 (APIC) or 7 (FLIP blend: APIC momentum and stress impulse apart, see `p2g_sources`); `actu (B, n)`:
        muscle activations (None: passive)."""
        tau = self.stress(F, Jp, E, nu, actu=actu)
        st = stencil(self.model, pos)
        src = p2g_sources(self.model, st, vel, C, tau, active, split=self.model.flip_ratio > 0)
        return src, st.base, st.w, st.fx

    def _grid_update(self, layout, grid: list[torch.Tensor], collider_frames) -> torch.Tensor:
        """Node velocities `(3, B, N)` (FLIP blend: `(6, B, N)`, v_i' and v_i' - v_i) from the scattered channels
        on the rows of `layout` (grid.py)."""
        B = grid[0].shape[0]
        update = grid_update_flip if self.model.flip_ratio > 0 else grid_update
        return update(self.model, layout, grid, B, collider_frames)

    def _grid_to_particles(self, gv, w, fx, pos, vel, C_old, F_old, Jp_old, active, E, nu) -> MPMState:
        """G2P from the gathered node velocities, 3 channels `gv[c] (27, P)` (new v_i'; FLIP blend: 6 channels, v_i'
        and v_i' - v_i), advection, deformation update, return mapping. (The gather stays eager: inductor's
        indirect loads measured slower than `index_select`.)"""
        m, B = self.model, pos.shape[0]
        st = Stencil(base=None, w=w, fx=fx)
        v_grid, C = g2p(m, st, gv[:3], B)
        dv = g2p(m, st, gv[3:], B)[0] if len(gv) == 6 else None
        return self._finish(v_grid, C, dv, pos, vel, C_old, F_old, Jp_old, active, E, nu)

    def _finish(self, v_grid, C, dv, pos, vel, C_old, F_old, Jp_old, active, E, nu) -> MPMState:
        """The new state from the G2P velocity `v_grid (B, n, 3)`, affine velocity `C (B, n, 3, 3)` and (FLIP blend)
        the interpolated grid velocity change `dv (B, n, 3)` or None: velocity blend, advection, deformation
        update, return mapping; inactive particles keep every field."""
        m = self.model
        v_new = v_grid
        if dv is not None:  # FLIP share: the old particle velocity plus the interpolated grid velocity change
            r = m.flip_ratio
            v_new = r * (vel + dv) + (1 - r) * v_grid
        eye = torch.eye(3, dtype=pos.dtype, device=pos.device)
        F, Jp = self.project(mm(eye + m.dt * C, F_old), Jp_old, E, nu)
        a3, a33 = active[..., None], active[..., None, None]
        pos_new, v_new = keep_in_domain(pos + m.dt * v_grid, v_new, m.pos_lo, m.pos_hi)
        return MPMState(pos=torch.where(a3, pos_new, pos), vel=torch.where(a3, v_new, vel),
                        C=torch.where(a33, C, C_old), F=torch.where(a33, F, F_old),
                        Jp=torch.where(active, Jp, Jp_old), active=active)

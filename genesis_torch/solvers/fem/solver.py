"""The FEM solver: state, elastic forces of linear tetrahedra, and the explicit substep (implicit: implicit.py).

Forces (Sifakis & Barbic 2012, §4.2): with F = D_s D_m^-1 and P = dpsi/dF (constitutive.py), the elastic forces on
the element's vertices 0..2 are the columns of H = -V P D_m^-T and vertex 3 gets -(f0 + f1 + f2); each vertex sums
the contributions of its elements through a fixed gather table (model.py), so sums are deterministic and batched ==
serial bitwise.

Explicit substep (Genesis 1.4.5's order; symplectic Euler), B envs:
1. v <- v + dt f(x) / m  (inactive elements exert no force);
2. v <- v exp(-dt damping), then v <- v + dt g (gravity is not damped);
3. soft vertex constraints: v <- v + dt (-k (x - target) - 2 sqrt(k) v) (a critically damped spring per unit mass);
4. contacts: floor, then rigid geoms (colliders.py), on the velocities;
5. x <- x + dt v; hard vertex constraints: x <- target, v <- 0.

Stable for dt below 2 / omega_max, bounded at build by the largest element eigenfrequency (`stable_dt`).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ...math.quat import quat_to_mat
from ...math.small import mv, ordered_sum
from ...state import SolverState
from ..base import SolverBase
from . import constitutive as cm
from . import muscle
from .constitutive import mm
from .colliders import apply_colliders, floor_project
from .model import FEMModel, FEMParams, lame

__all__ = ["FEMState", "FEMSolver", "FREE", "HARD", "SOFT", "tree_sum"]

FREE, HARD, SOFT = 0, 1, 2  #: `FEMState.vc_mode` values


def tree_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum `(B,)` over all but the first dim by pairwise halving (elementwise adds): the same bits for an env
    whatever the batch (`Tensor.sum` picks its order by memory layout, which differs between B = 1 and B > 1)."""
    x = x.reshape(x.shape[0], -1)
    n = x.shape[1]
    size = 1 << max(n - 1, 0).bit_length()
    if size != n:
        x = torch.cat((x, x.new_zeros(x.shape[0], size - n)), 1)
    while x.shape[1] > 1:
        h = x.shape[1] // 2
        x = x[:, :h] + x[:, h:]
    return x[:, 0]


@dataclasses.dataclass(frozen=True)
class FEMState(SolverState):
    """Everything that determines an FEM system's future (DESIGN.md §4). nv vertices, ne elements, B envs."""

    prefix = "FEMSolver"

    pos: torch.Tensor  #: (B, nv, 3) m, world
    vel: torch.Tensor  #: (B, nv, 3) m/s
    active: torch.Tensor  #: (B, ne) bool; inactive elements exert no force
    vc_mode: torch.Tensor  #: (B, nv) int8 vertex constraint: 0 free, 1 hard (pinned to target), 2 soft (spring)
    vc_target: torch.Tensor  #: (B, nv, 3) m, constraint targets (meaningful where vc_mode > 0)
    vc_stiffness: torch.Tensor  #: (B, nv) 1/s^2, soft-constraint stiffness per unit mass
    vc_link: torch.Tensor  #: (B, nv) long: the rigid link (scene-global index) a constraint target follows, or -1
    vc_offset: torch.Tensor  #: (B, nv, 3) m, the target in that link's frame (meaningful where vc_link >= 0)
    actu: torch.Tensor  #: (B, ne) muscle activation of every element (`FEMEntity.set_actuation`; 0: passive)


class FEMSolver(SolverBase):
    """Batched, differentiable FEM of linear tetrahedra with Genesis' elastic models, explicit (symplectic Euler) or
    implicit (backward Euler, Newton + PCG, implicit.py). References: constitutive.py; docs/fem.md."""

    name = "FEMSolver"

    def __init__(self, model: FEMModel, params: FEMParams, device, dtype):
        self.model, self.params = model, params
        self.device, self.dtype = device, dtype

    def initial_state(self, n_envs: int) -> FEMState:
        """Vertices at rest, all elements active, no vertex constraints; B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        z = lambda *s: torch.zeros(B, *s, dtype=self.dtype, device=self.device)  # noqa: E731
        return FEMState(pos=m.init_pos.expand(B, -1, -1).clone(), vel=z(m.n_vertices, 3),
                        active=torch.ones(B, m.n_elements, dtype=torch.bool, device=self.device),
                        vc_mode=torch.zeros(B, m.n_vertices, dtype=torch.int8, device=self.device),
                        vc_target=m.init_pos.expand(B, -1, -1).clone(), vc_stiffness=z(m.n_vertices),
                        vc_link=torch.full((B, m.n_vertices), -1, dtype=torch.long, device=self.device),
                        vc_offset=z(m.n_vertices, 3), actu=z(m.n_elements))

    # ------------------------------------------------------------------ elements
    def lame(self, E=None, nu=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, lam) `(P, ne)` Pa from `E`, `nu` (default: the params')."""
        return lame(self.params.E if E is None else E, self.params.nu if nu is None else nu)

    def deformation(self, pos: torch.Tensor) -> torch.Tensor:
        """F `(B, ne, 3, 3)` of every element at vertex positions `pos (B, nv, 3)`, stored component-major
        (`model.soa`: the 3x3 arithmetic downstream runs on contiguous `(B, ne)` planes)."""
        B, nv = pos.shape[:2]
        xe = pos.permute(2, 0, 1).reshape(3 * B, nv).index_select(1, self.model.elems_t.reshape(-1))
        xe = xe.view(3, B, 4, -1)  # (3, B, 4, ne): index_select on rows, ~3x faster than advanced indexing
        Ds = (xe[:, :, :3] - xe[:, :, 3:]).permute(1, 3, 0, 2)  # (B, ne, i, j) = (x_j - x_3)_i
        return mm(Ds, self.model.Dm_inv)

    def _grouped(self, fn, B: int, mu, lam, *tensors):
        """`fn(kind, *slices, mu, lam)` per constitutive group, concatenated along elements (component-major)."""
        out = []
        for g in self.model.groups:
            s = slice(g.start, g.end)
            out.append(fn(g.kind, *(t[:, s] if t is not None else None for t in tensors),
                          mu[:, s].expand(B, -1), lam[:, s].expand(B, -1)))
        if len(out) == 1:
            return out[0]
        if out[0].dim() == 2:
            return torch.cat(out, 1)
        return torch.cat([o.permute(2, 3, 0, 1) for o in out], -1).permute(2, 3, 0, 1)

    def stress(self, F: torch.Tensor, mu, lam, R=None, actu=None, E=None) -> torch.Tensor:
        """First Piola-Kirchhoff stress `(B, ne, 3, 3)` Pa (R: fixed corotation rotations `(B, ne, 3, 3)` or None),
        plus the muscles' active stress for activations `actu (B, ne)` (`muscle.py`; E: the params' by default)."""
        P = self._grouped(lambda k, f, r, m, l: cm.first_piola(k, f, m, l, r), F.shape[0], mu, lam, F, R)
        if self.model.has_muscle and actu is not None:
            P = P + muscle.active_stress(F, self.params.muscle_dir, self._E(E), actu)
        return P

    def _E(self, E):
        return self.params.E if E is None else E

    def dstress(self, F, dF, mu, lam, R=None) -> torch.Tensor:
        """dP `(B, ne, 3, 3)` for element deformation increments `dF` (see `constitutive.dfirst_piola`)."""
        return self._grouped(lambda k, f, d, r, m, l: cm.dfirst_piola(k, f, d, m, l, r), F.shape[0], mu, lam, F, dF,
                             R)

    def rotations(self, pos: torch.Tensor) -> torch.Tensor | None:
        """Polar rotations `(B, ne, 3, 3)` of every element at `pos` (None without corotated elements)."""
        if not any(g.kind == "linear_corotated" for g in self.model.groups):
            return None
        return cm.polar_rotation(self.deformation(pos))

    def gather_sum(self, c: torch.Tensor) -> torch.Tensor:
        """Vertex sums `(B, nv, 3)` of element-vertex contributions `c (3, B, 4 ne + 1)` (slot `j ne + e`: vertex j of
        element e; the last slot 0): the gather table's K rows added in order k = 0, 1, ... (deterministic, batched ==
        serial bitwise, no atomics)."""
        nv = self.model.n_vertices
        g = c.reshape(-1, c.shape[-1]).index_select(1, self.model.gather).view(3, c.shape[1], -1)  # (3, B, K nv)
        out = g[..., :nv].clone()
        for k in range(1, g.shape[-1] // nv):
            out += g[..., k * nv:(k + 1) * nv]
        return out.permute(1, 2, 0).contiguous()

    def to_vertices(self, H: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Vertex sums `(B, nv, 3)` of element matrices `H (B, ne, 3, 3)` whose columns act on vertices 0..2 (vertex 3
        gets minus their sum); inactive elements contribute nothing. Fixed summation order (the gather table)."""
        return self._to_vertices(H.masked_fill(~active[..., None, None], 0.0))

    def _to_vertices(self, H: torch.Tensor) -> torch.Tensor:
        B, ne = H.shape[0], self.model.n_elements
        c = H.new_zeros(3, B, 4 * ne + 1)
        c4 = c[:, :, :4 * ne].view(3, B, 4, ne)
        c4[:, :, :3] = H.permute(2, 0, 3, 1)
        c4[:, :, 3] = -ordered_sum(H, -1).permute(2, 0, 1)
        return self.gather_sum(c)

    def elastic_forces(self, pos: torch.Tensor, active: torch.Tensor, E=None, nu=None, R=None,
                       actu=None) -> torch.Tensor:
        """Elastic forces `(B, nv, 3)` N at `pos (B, nv, 3)`, f = -dU/dx (R: fixed corotation rotations or None;
        `actu (B, ne)`: muscle activations, None: passive)."""
        mu, lam = self.lame(E, nu)
        P = self.stress(self.deformation(pos), mu, lam, R, actu, E)
        return -self._to_vertices(mm(P, self.model.vdmt).masked_fill_(~active[..., None, None], 0.0))

    def stiffness_product(self, pos, dx, active, E=None, nu=None, R=None, actu=None, F=None) -> torch.Tensor:
        """K dx `(B, nv, 3)` N: the stiffness matrix K = d^2U/dx^2 at `pos` times displacements `dx (B, nv, 3)`
        (matrix-free; corotated elements with `R` held fixed; muscles' active term for activations `actu (B, ne)`
        with its positive semi-definite part, `muscle.active_dstress`). `F`: `deformation(pos)` when known."""
        mu, lam = self.lame(E, nu)
        # F is linear in x, so dF = dD_s D_m^-1 = deformation(dx); F itself only matters where dP depends on it
        dF = self.deformation(dx)
        muscles = self.model.has_muscle and actu is not None
        needs_F = muscles or any(g.kind == "stable_neohookean" or (g.kind == "linear_corotated" and R is None)
                                 for g in self.model.groups)
        if needs_F and F is None:
            F = self.deformation(pos)
        dP = self.dstress(F if needs_F else dF, dF, mu, lam, R)
        if muscles:
            dP = dP + muscle.active_dstress(F, dF, self.params.muscle_dir, self._E(E), actu)
        return self._to_vertices(mm(dP, self.model.vdmt).masked_fill_(~active[..., None, None], 0.0))

    def elastic_energy(self, pos: torch.Tensor, active: torch.Tensor, E=None, nu=None, R=None,
                       actu=None) -> torch.Tensor:
        """Elastic energy `(B,)` J: sum over active elements of V psi(F) (with the muscles' active energy for
        activations `actu (B, ne)`)."""
        mu, lam = self.lame(E, nu)
        F = self.deformation(pos)
        psi = self._grouped(lambda k, f, r, m, l: cm.energy_density(k, f, m, l, r), F.shape[0], mu, lam, F, R)
        if self.model.has_muscle and actu is not None:
            psi = psi + muscle.active_energy(F, self.params.muscle_dir, self._E(E), actu)
        return tree_sum(torch.where(active, psi, torch.zeros_like(psi)) * self.model.vol)

    def kinetic_energy(self, vel: torch.Tensor) -> torch.Tensor:
        """Kinetic energy `(B,)` J, sum of m v^2 / 2 over vertices (lumped masses)."""
        return 0.5 * tree_sum(self.model.mass[:, None] * vel * vel)

    def shape_gradients(self) -> torch.Tensor:
        """Gradients `(ne, 4, 3)` 1/m of the four barycentric shape functions of every element (rows of D_m^-1,
        and minus their sum for vertex 3)."""
        G = self.model.Dm_inv
        return torch.cat((G, -G.sum(1, keepdim=True)), 1)

    # ---------------------------------------------------------------- stability
    def stable_dt(self, chunk: int = 16384) -> float:
        """2 / omega_max (s), omega_max^2 the largest eigenvalue over elements of M_e^-1 K_e at rest (element mass
        rho V / 4 per vertex): a lower bound of the symplectic-Euler stability limit of the undamped mesh, since the
        assembled system's largest eigenvalue never exceeds its elements' largest (Irons 1970; Hughes, "The Finite
        Element Method", 1987, §9.3 "the element eigenvalue inequality")."""
        m, G = self.model, self.shape_gradients()
        mu, lam = self.lame()
        mu, lam = mu.max(0).values, lam.max(0).values  # the stiffest env
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        omega2 = []
        for s in range(0, m.n_elements, chunk):
            e = slice(s, min(s + chunk, m.n_elements))
            g = G[e]  # (c, 4, 3)
            dF = (eye[None, None, :, :, None] * g[:, :, None, None, :])  # (c, a=4, k=3, 3, 3): e_k (x) g_a
            c = g.shape[0]
            F = eye.expand(c * 12, 3, 3)
            kinds = [(gr.kind, max(gr.start, s) - s, min(gr.end, e.stop) - s) for gr in m.groups
                     if gr.start < e.stop and gr.end > s]
            dP = torch.empty(c, 4, 3, 3, 3, dtype=self.dtype, device=self.device)
            for kind, a, b in kinds:
                n = b - a
                mm, ll = mu[s + a:s + b].repeat_interleave(12), lam[s + a:s + b].repeat_interleave(12)
                dP[a:b] = cm.dfirst_piola(kind, F[:n * 12], dF[a:b].reshape(-1, 3, 3), mm, ll,
                                          eye.expand(n * 12, 3, 3)).reshape(n, 4, 3, 3, 3)
            K = m.vol[e, None, None, None, None] * torch.einsum("cakij,cbj->cbiak", dP, g)  # (c, 4, 3, 4, 3)
            mass = (m.vol[e] * m.rho[e] / 4.0)[:, None]
            K = K.reshape(c, 12, 12) / mass[..., None]
            omega2.append(torch.linalg.eigvalsh(0.5 * (K + K.transpose(-1, -2)))[:, -1].max())
        return 2.0 / math.sqrt(float(torch.stack(omega2).max()))

    # ---------------------------------------------------------------------- step
    @staticmethod
    def follow_links(state: FEMState, bodies) -> FEMState:
        """`state` with the targets of link-following constraints moved with their links: target = p + R offset,
        (p, R) the link's pose after the rigid substep (`BodyMotion.pos_after/quat_after`). Unchanged without any."""
        linked = state.vc_link >= 0
        if bodies is None or not bool(linked.any()):
            return state
        idx = state.vc_link.clamp_min(0)
        p = torch.gather(bodies.pos_after, 1, idx[..., None].expand(-1, -1, 3))
        q = torch.gather(bodies.quat_after, 1, idx[..., None].expand(-1, -1, 4))
        target = p + mv(quat_to_mat(q), state.vc_offset)
        return state.replace(vc_target=torch.where(linked[..., None], target.to(state.vc_target.dtype),
                                                   state.vc_target))

    def step(self, state: FEMState, frames=None) -> FEMState:
        """One FEM substep of `model.dt`; a new state. `frames`: rigid geom frames (`colliders.collider_frames`)."""
        if self.model.implicit:
            from .implicit import implicit_step

            return implicit_step(self, state, frames)
        return self.explicit_step(state, frames)

    def contacts(self, pos, vel, free, frames) -> torch.Tensor:
        """Velocities after the floor and rigid-geom projections (colliders.py) at positions `pos`."""
        m = self.model
        v = torch.where(free[..., None], floor_project(pos, vel, m.floor_height), vel)
        if m.colliders is not None and frames is not None:
            v = apply_colliders(m.colliders, frames, pos, v, m.friction, free)
        return v

    def explicit_step(self, state: FEMState, frames=None) -> FEMState:
        m, dt = self.model, self.model.dt
        x, v0 = state.pos, state.vel
        v = v0 + dt * self.elastic_forces(x, state.active, actu=state.actu) / m.mass[:, None]
        if m.damping > 0:
            v = v * math.exp(-dt * m.damping)
        v = v + dt * m.gravity
        soft = (state.vc_mode == SOFT)[..., None]
        k = state.vc_stiffness[..., None]
        v = torch.where(soft, v + dt * (-k * (x - state.vc_target) - 2.0 * torch.sqrt(k) * v0), v)
        hard = (state.vc_mode == HARD)[..., None]
        v = self.contacts(x, v, ~hard[..., 0], frames)
        x_new = x + dt * v
        x_new = torch.where(hard, state.vc_target, x_new)
        v = torch.where(hard, torch.zeros_like(v), v)
        return state.replace(pos=x_new, vel=v)

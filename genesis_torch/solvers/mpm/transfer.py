"""MLS-MPM transfers on a dense grid per env: particle-to-grid (P2G), grid update, grid-to-particle (G2P).

Follows Hu et al. 2018, "A Moving Least Squares Material Point Method with Displacement Discontinuity and Two-Way
Rigid Body Coupling", §4-5 (the fused MLS-MPM/APIC transfer, as in Taichi's mpm88):

    w_ip   quadratic B-spline weights of particle p at its 3x3x3 stencil (Jiang et al. 2016, "The Material Point
           Method for Simulating Continuum Materials", SIGGRAPH course, §5: N(x) = 3/4 - x^2 for |x| < 1/2,
           (3/2 - |x|)^2 / 2 for 1/2 <= |x| < 3/2);
    P2G    m_i = sum_p w_ip m_p,  (m v)_i = sum_p w_ip [m_p v_p + A_p (x_i - x_p)],
           A_p = -dt V_p (4 / dx^2) tau_p + m_p C_p   (tau = P F^T the Kirchhoff stress; 4/dx^2 = D_p^-1);
    grid   v_i = (m v)_i / m_i + dt g, then colliders and walls;
    G2P    v_p = sum_i w_ip v_i,  C_p = (4 / dx^2) sum_i w_ip v_i (x_i - x_p)^T,  x_p += dt v_p.

Scatter is `index_add` over a flat `(B * G, 4)` grid (env-major), so env b only touches its own rows. On CPU
`index_add` adds sources in index order: bitwise deterministic, the same batched or serial. On CUDA it uses atomics
(not bitwise reproducible); `deterministic=True` sorts the contributions by node and sums each node's run in
particle order (`segment_sum`), which is reproducible on every device.
"""

from __future__ import annotations

import dataclasses

import torch

from .colliders import apply_colliders

__all__ = ["Stencil", "stencil", "p2g", "grid_update", "g2p"]


@dataclasses.dataclass
class Stencil:
    """Interpolation data of B x n particles: `node (B, n, 27)` flat grid rows (env offset included), `w (B, n, 27)`
    weights, `dpos (B, n, 27, 3)` node minus particle position (m)."""

    node: torch.Tensor
    w: torch.Tensor
    dpos: torch.Tensor


def stencil(model, pos: torch.Tensor) -> Stencil:
    """Quadratic B-spline stencil of particles at `pos (B, n, 3)` (m)."""
    B, n, _ = pos.shape
    X = pos * model.inv_dx - model.lower_cell.to(pos.dtype)  # grid coordinates, cells
    res = torch.tensor(model.res, device=pos.device)
    base = torch.floor(X - 0.5).long()
    base = torch.minimum(base.clamp_min(0), res - 3)  # particles that escaped the walls stay on the grid
    fx = X - base.to(pos.dtype)
    w3 = torch.stack((0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2), -1)  # (B, n, 3, 3)
    w = (w3[..., 0, :, None, None] * w3[..., 1, None, :, None] * w3[..., 2, None, None, :]).reshape(B, n, 27)
    dpos = (model.offsets - fx[..., None, :]) * model.dx
    env = torch.arange(B, device=pos.device)[:, None, None] * model.n_nodes
    node = env + (base * model.stride).sum(-1, keepdim=True) + model.offsets_flat
    return Stencil(node=node, w=w, dpos=dpos)


def segment_sum(index: torch.Tensor, src: torch.Tensor, rows: int) -> torch.Tensor:
    """`zeros(rows, C).index_add(0, index, src)` with a fixed summation order on every device: contributions are
    stably sorted by row and each row's run is summed left to right by a cumulative sum (differentiable)."""
    order = torch.sort(index, stable=True).indices
    idx, vals = index[order], src[order]
    csum = torch.cumsum(vals, 0)
    last = torch.ones_like(idx, dtype=torch.bool)
    last[:-1] = idx[1:] != idx[:-1]
    ends = csum[last]
    starts = torch.cat((torch.zeros_like(ends[:1]), ends[:-1]))
    out = src.new_zeros(rows, src.shape[1])
    return out.index_copy(0, idx[last], ends - starts)


def p2g(model, st: Stencil, vel, C, tau, active, deterministic: bool = False) -> torch.Tensor:
    """Grid momentum and mass `(B * G, 4)` (kg m/s, kg) from particles: `vel (B, n, 3)` m/s, `C (B, n, 3, 3)` 1/s,
    `tau (B, n, 3, 3)` Pa, `active (B, n)` bool (inactive particles contribute nothing)."""
    dt = model.dt
    m = model.mass[:, None, None]
    affine = (-dt * model.p_vol * 4 * model.inv_dx ** 2) * tau + m * C  # (B, n, 3, 3)
    # A (x_i - x_p) = A o dx - A fx dx, written as broadcast products and short sums (no BLAS: its rounding could
    # depend on a particle's position in the batch, breaking bitwise batched == serial)
    o = model.offsets * model.dx  # (27, 3)
    Ao = affine[..., None, :, 0] * o[:, 0, None] + affine[..., None, :, 1] * o[:, 1, None] \
        + affine[..., None, :, 2] * o[:, 2, None]  # (B, n, 27, 3)
    q = model.mass[:, None] * vel + (affine * st.dpos[..., 0, None, :]).sum(-1)  # offset 0: dpos = -fx dx
    w = st.w * active[..., None].to(st.w.dtype)
    src = torch.cat((w[..., None] * (q[..., None, :] + Ao), (w * model.mass[:, None])[..., None]), -1).reshape(-1, 4)
    rows = vel.shape[0] * model.n_nodes
    if deterministic and src.is_cuda:
        return segment_sum(st.node.reshape(-1), src, rows)
    return src.new_zeros(rows, 4).index_add(0, st.node.reshape(-1), src)


def grid_update(model, grid: torch.Tensor, B: int, collider_frames=None) -> torch.Tensor:
    """Grid velocities `(B, G, 3)` m/s: momentum / mass (0 where empty), gravity, colliders, then walls."""
    grid = grid.reshape(B, model.n_nodes, 4)
    mv, mass = grid[..., :3], grid[..., 3:]
    has = mass > 0
    v = torch.where(has, mv / torch.where(has, mass, torch.ones_like(mass)), torch.zeros_like(mv))
    v = v + model.dt * model.gravity
    if model.colliders is not None and collider_frames is not None:
        v = apply_colliders(model.colliders, collider_frames, model.node_pos, v)
    lo, hi = model.wall_lo, model.wall_hi
    if model.boundary == "sticky":
        wall = (lo | hi).any(-1, keepdim=True)
        return torch.where(wall, torch.zeros_like(v), v)
    if model.boundary == "slip":
        return torch.where(lo | hi, torch.zeros_like(v), v)
    into = (lo & (v < 0)) | (hi & (v > 0))  # "separate": only motion into a wall is removed
    return torch.where(into, torch.zeros_like(v), v)


def g2p(model, st: Stencil, grid_v: torch.Tensor):
    """Particle velocity `(B, n, 3)` m/s and affine velocity `C (B, n, 3, 3)` 1/s gathered from `grid_v (B, G, 3)`."""
    gv = grid_v.reshape(-1, 3)[st.node.reshape(-1)].reshape(*st.node.shape, 3)  # (B, n, 27, 3)
    wv = st.w[..., None] * gv
    v = wv.sum(-2)
    C = (4 * model.inv_dx ** 2) * (wv[..., :, None] * st.dpos[..., None, :]).sum(-3)
    return v, C

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
    weights (offsets ordered x-major: o = 9 ox + 3 oy + oz), `fx (B, n, 3)` particle position minus the stencil base
    node, in cells (so node o minus particle is `(o - fx) dx`)."""

    node: torch.Tensor
    w: torch.Tensor
    fx: torch.Tensor


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
    env = torch.arange(B, device=pos.device)[:, None, None] * model.n_nodes
    node = env + (base * model.stride).sum(-1, keepdim=True) + model.offsets_flat
    return Stencil(node=node, w=w, fx=fx)


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
    dt, dx = model.dt, model.dx
    B, n = vel.shape[:2]
    mass = model.mass[:, None]
    affine = (-dt * model.p_vol * 4 * model.inv_dx ** 2) * tau + mass[..., None] * C  # (B, n, 3, 3)
    # m v + A (o - fx) dx is separable in the offset o = (ox, oy, oz): a[ox] + b[oy] + c[oz] with
    # a[k] = m v - A fx dx + k dx A[:, 0], b[k] = k dx A[:, 1], c[k] = k dx A[:, 2]; the mass rides as a 4th channel.
    # Broadcast products and short sums only (no BLAS: its rounding could depend on a particle's batch position).
    k = torch.arange(3, dtype=vel.dtype, device=vel.device)[:, None] * dx  # (3, 1)
    q = mass * vel - (affine * st.fx[..., None, :]).sum(-1) * dx
    zero = vel.new_zeros(1, 1, 1, 1).expand(B, n, 3, 1)
    a = torch.cat((q[..., None, :] + k * affine[..., None, :, 0], model.mass.reshape(1, n, 1, 1).expand(B, n, 3, 1)),
                  -1)
    b = torch.cat((k * affine[..., None, :, 1], zero), -1)
    c = torch.cat((k * affine[..., None, :, 2], zero), -1)
    mom = a[..., :, None, None, :] + b[..., None, :, None, :] + c[..., None, None, :, :]  # (B, n, 3, 3, 3, 4)
    w = st.w * active[..., None].to(st.w.dtype)
    src = (w.reshape(B, n, 3, 3, 3, 1) * mom).reshape(-1, 4)
    rows = vel.shape[0] * model.n_nodes
    if deterministic and src.is_cuda:
        return segment_sum(st.node.reshape(-1), src, rows)
    return src.new_zeros(rows, 4).index_add(0, st.node.reshape(-1), src)


def grid_update(model, grid: torch.Tensor, B: int, collider_frames=None) -> torch.Tensor:
    """Grid velocities `(B, G, 3)` m/s: momentum / mass (0 where empty), gravity, colliders, then walls
    (`model.wall_min/wall_max`: per-node velocity bounds, 0 or -/+inf, for "separate"; `wall_keep` factors for
    "sticky"/"slip")."""
    grid = grid.reshape(B, model.n_nodes, 4)
    v = grid[..., :3] / grid[..., 3:].clamp_min(1e-30)  # empty nodes hold zero momentum: v = 0 there
    v = v + model.dt * model.gravity
    if model.colliders is not None and collider_frames is not None:
        v = apply_colliders(model.colliders, collider_frames, model.node_pos, v)
    if model.boundary == "separate":  # only motion into a wall is removed
        return torch.clamp(v, min=model.wall_min, max=model.wall_max)
    return v * model.wall_keep


def g2p(model, st: Stencil, grid_v: torch.Tensor):
    """Particle velocity `(B, n, 3)` m/s and affine velocity `C (B, n, 3, 3)` 1/s gathered from `grid_v (B, G, 3)`."""
    B, n = st.w.shape[:2]
    gv = grid_v.reshape(-1, 3).index_select(0, st.node.reshape(-1)).reshape(B, n, 3, 3, 3, 3)
    wv = st.w.reshape(B, n, 3, 3, 3, 1) * gv
    # sum_o w v_o (o - fx)^T dx, separably: sum_o w v_o o_x = S_x[1] + 2 S_x[2], S_x[k] = sum over oy, oz at ox = k
    sx, sy, sz = wv.sum((3, 4)), wv.sum((2, 4)), wv.sum((2, 3))  # (B, n, 3 (k), 3)
    v = sx.sum(2)
    wvo = torch.stack([s[..., 1, :] + 2 * s[..., 2, :] for s in (sx, sy, sz)], -1)  # (B, n, 3, 3): [i, axis]
    C = (4 * model.inv_dx) * (wvo - v[..., :, None] * st.fx[..., None, :])
    return v, C

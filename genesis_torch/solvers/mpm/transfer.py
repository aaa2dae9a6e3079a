"""MLS-MPM transfers on the grid of each env (dense, or its touched blocks: grid.py): particle-to-grid (P2G), grid
update, grid-to-particle (G2P).

Follows Hu et al. 2018, "A Moving Least Squares Material Point Method with Displacement Discontinuity and Two-Way
Rigid Body Coupling", §4-5 (the fused MLS-MPM/APIC transfer, as in Taichi's mpm88):

    w_ip   quadratic B-spline weights of particle p at its 3x3x3 stencil (Jiang et al. 2016, "The Material Point
           Method for Simulating Continuum Materials", SIGGRAPH course, §5: N(x) = 3/4 - x^2 for |x| < 1/2,
           (3/2 - |x|)^2 / 2 for 1/2 <= |x| < 3/2);
    P2G    m_i = sum_p w_ip m_p,  (m v)_i = sum_p w_ip [m_p v_p + A_p (x_i - x_p)],
           A_p = -dt V_p (4 / dx^2) tau_p + m_p C_p   (tau = P F^T the Kirchhoff stress; 4/dx^2 = D_p^-1);
    grid   v_i = (m v)_i / m_i + dt g, then colliders and walls;
    G2P    v_p = sum_i w_ip v_i,  C_p = (4 / dx^2) sum_i w_ip v_i (x_i - x_p)^T,  x_p += dt v_p.

Layout: inside the transfers particle quantities are component-major, `(k, P)` with P = B n particles (env-major)
last, so every elementwise op and stencil broadcast runs over long contiguous rows (a (P, 27, 4) layout spends most
of its time in 3- and 4-long inner loops). The grid is one flat `(B N,)` tensor per channel (momentum x, y, z and
mass; N rows per env, N = G dense or 64 K sparse, grid.py); env b only touches its own rows. No BLAS is used: its rounding could depend on a particle's batch position.

Scatter is `index_add` per channel. On CPU
`index_add` adds sources in index order: bitwise deterministic, the same batched or serial. On CUDA it uses atomics
(not bitwise reproducible); `deterministic=True` sorts the contributions by node and sums each node's run in
particle order (`segment_sum`), which is reproducible on every device.
"""

from __future__ import annotations

import dataclasses

import torch

from .colliders import apply_colliders

__all__ = ["Stencil", "stencil", "stencil_base", "segment_sum", "p2g_sources", "scatter", "grid_update", "grid_update_flip", "gather",
           "g2p"]


@dataclasses.dataclass
class Stencil:
    """Interpolation data of P = B n particles: `base (3, P)` int32, the stencil's first node per axis (cells from the
    grid's first node; the flat rows come from the grid layout, grid.py), `w (27, P)` weights (offsets x-major:
    o = 9 ox + 3 oy + oz), `fx (3, P)` particle minus stencil base node, in cells (node o minus particle is
    `(o - fx) dx`)."""

    base: torch.Tensor
    w: torch.Tensor
    fx: torch.Tensor


def _cells(model, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Particle positions in cells from the grid's first node, `X (3, P)`, and the stencil corners `base (3, P)`
    int32, from `pos (B, n, 3)` m."""
    B, n, _ = pos.shape
    X = pos.reshape(B * n, 3).T * model.inv_dx - model.lower_cell.to(pos.dtype)[:, None]  # (3, P) cells
    res = torch.tensor(model.res, device=pos.device, dtype=torch.int32)[:, None]
    # particles stay on the grid (the solver clamps them to the domain; a NaN one indexes node 0 of its own env)
    corner = torch.nan_to_num(X - 0.5, nan=0.0, posinf=0.0, neginf=0.0)
    return X, torch.minimum(torch.floor(corner).to(torch.int32).clamp_min(0), res - 3)  # int32: grid.py


def stencil_base(model, pos: torch.Tensor) -> torch.Tensor:
    """`Stencil.base (3, P)` alone (what the grid layout needs), for `pos (B, n, 3)` m."""
    return _cells(model, pos)[1]


def stencil(model, pos: torch.Tensor) -> Stencil:
    """Quadratic B-spline stencil of particles at `pos (B, n, 3)` (m)."""
    B, n, _ = pos.shape
    X, base = _cells(model, pos)
    fx = X - base.to(pos.dtype)
    w3 = torch.stack((0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2), 1)  # (3 axes, 3 k, P)
    w = (w3[0, :, None, None] * w3[1, None, :, None] * w3[2, None, None, :]).reshape(27, B * n)
    return Stencil(base=base, w=w, fx=fx)


def segment_sum(index: torch.Tensor, src: torch.Tensor, rows: int) -> torch.Tensor:
    """`zeros(rows).index_add(0, index, src)` for 1-D `index`/`src`, with a fixed summation order on every device:
    contributions are stably sorted by row and each row's run is reduced by `torch.segment_reduce` (no atomics)."""
    index = index.long()
    order = torch.sort(index, stable=True).indices
    idx, counts = torch.unique_consecutive(index[order], return_counts=True)
    sums = torch.segment_reduce(src[order], "sum", lengths=counts)
    return src.new_zeros(rows).index_copy(0, idx, sums)


def _affine_sources(q, A, fx, dx):
    """`(3 channels, 27, P)` values q + A (o - fx) dx at the 27 stencil offsets o, from `q (3, P)`, `A (3, 3, P)`.
    Separable in o = (ox, oy, oz): a[ox] + b[oy] + c[oz] with a[k] = q - A fx dx + k dx A[:, 0], b[k] = k dx A[:, 1],
    c[k] = k dx A[:, 2]. Built channel-major, so each channel's source is contiguous."""
    P = q.shape[-1]
    q = q - dx * (A * fx[None]).sum(1)  # (3, P)
    k = torch.arange(3, dtype=q.dtype, device=q.device)[:, None] * dx  # (3 k, 1)
    a = q[:, None] + k * A[:, 0, None]  # (3 channels, 3 k, P)
    b, c = k * A[:, 1, None], k * A[:, 2, None]
    return (a[:, :, None, None] + b[:, None, :, None] + c[:, None, None, :]).reshape(3, 27, P)


def p2g_sources(model, st: Stencil, vel, C, tau, active, split: bool = False) -> list[torch.Tensor]:
    """What each particle adds to its 27 nodes, 4 channels `(27, P)` each: momentum x, y, z (kg m/s) and mass (kg),
    from `vel (B, n, 3)` m/s, `C (B, n, 3, 3)` 1/s, `tau (B, n, 3, 3)` Pa, `active (B, n)` bool (inactive: zeros).
    A list, not one tensor: `scatter` takes the channels one by one, so concatenating them would only copy.

    `split=True` (for a FLIP update) keeps the APIC momentum and the stress impulse apart, 7 channels: APIC momentum
    w (m v + m C (x_i - x_p)) x, y, z; stress impulse -w dt V (4 / dx^2) tau (x_i - x_p) x, y, z; mass."""
    dt, dx = model.dt, model.dx
    B, n = vel.shape[:2]
    P = B * n
    mass = model.mass.repeat(B)  # (P,)
    stress = (-dt * model.p_vol * 4 * model.inv_dx ** 2) * tau
    mv = mass * vel.reshape(P, 3).T  # (3, P)
    # A[i, j, p], component-major: stacked (not a transposed view) so that under torch.compile inductor stores tau
    # this way and the source loops below read contiguous rows (vectorized); eager, it copies 9 P values
    def cols(M):
        return torch.stack([M[..., i, j].reshape(P) for i in range(3) for j in range(3)]).reshape(3, 3, P)

    w = st.w * active.reshape(1, P).to(st.w.dtype)  # (27, P)
    if not split:
        mom = _affine_sources(mv, cols(stress + model.mass[:, None, None] * C), st.fx, dx)
        return [*(mom * w).unbind(0), w * mass]
    apic = _affine_sources(mv, cols(model.mass[:, None, None] * C), st.fx, dx)
    force = _affine_sources(torch.zeros_like(mv), cols(stress), st.fx, dx)
    return [*(apic * w).unbind(0), *(force * w).unbind(0), w * mass]


def scatter(layout, src: list[torch.Tensor], B: int, deterministic: bool = False, node: torch.Tensor | None = None,
            out: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Grid channels, k of `(B, N)` (k = 4: momentum x, y, z in kg m/s and mass in kg; k = 7 for `split` sources;
    N = `layout.n_nodes`): the k sources `src[c] (27, P)` added at the rows `layout.node (27, P)`.
    `node`, `out`: the rows of a run of particles (columns of `layout.node`) and the channels to add them into (the
    solver's particle chunks, CPU: adding chunk after chunk in particle order is the same index order, same bits)."""
    idx = (layout.node if node is None else node).reshape(-1)
    rows = B * layout.n_nodes
    if out is not None:
        for o, s in zip(out, src):
            o.reshape(-1).index_add_(0, idx, s.reshape(-1))
        return out
    return [(segment_sum(idx, s, rows) if deterministic and s.is_cuda else s.new_zeros(rows).index_add_(0, idx, s))
            .reshape(B, layout.n_nodes) for s in (c.reshape(-1) for c in src)]


def _velocity(momentum: list[torch.Tensor], mass: torch.Tensor) -> torch.Tensor:
    """Node velocities `(3, B, N)` m/s = momentum / mass from 3 channels and the mass `(B, G)`; 0 at empty nodes
    (they hold zero momentum)."""
    return torch.stack(momentum) / mass.clamp_min(1e-30)


def grid_update(model, layout, grid: list[torch.Tensor], B: int, collider_frames=None) -> torch.Tensor:
    """Grid velocities `(3, B, N)` m/s from the channels `grid` (4 of `(B, N)`, the rows of `layout`): momentum /
    mass (0 where empty), gravity, colliders, then walls (`layout.wall_min/wall_max (3, 1 or B, N)`: velocity
    bounds, 0 or -/+inf, for "separate"; `wall_keep` 0/1 factors for "sticky"/"slip")."""
    v = _velocity(grid[:3], grid[3])
    v = v + model.dt * model.gravity[:, None, None]
    if model.colliders is not None and collider_frames is not None:
        v = apply_colliders(model.colliders, collider_frames, layout.node_pos, v.permute(1, 2, 0)).permute(2, 0, 1)
    if model.boundary == "separate":  # only motion into a wall is removed
        return torch.clamp(v, min=layout.wall_min, max=layout.wall_max)
    return v * layout.wall_keep


def grid_update_flip(model, layout, grid: list[torch.Tensor], B: int, collider_frames=None) -> torch.Tensor:
    """New grid velocities and their change over the grid update, `(6, B, N)` m/s: v_i' (as `grid_update`) and v_i'
    - v_i, from the 7 split channels `grid` (`(B, N)` each). v_i = (APIC momentum) / m_i is the velocity transferred
    from the particles, before stress, gravity, colliders and walls: the FLIP increment must see all of them (Sulsky
    et al. 1994: the particle velocity is updated by the interpolated grid acceleration, boundary conditions
    included; Zhu & Bridson 2005, "Animating sand as a fluid": the PIC/FLIP blend)."""
    v_old = _velocity(grid[:3], grid[6])
    v_new = grid_update(model, layout, [grid[c] + grid[c + 3] for c in range(3)] + [grid[6]], B, collider_frames)
    return torch.cat((v_new, v_new - v_old))


def gather(grid_v: torch.Tensor, node: torch.Tensor) -> list[torch.Tensor]:
    """Grid values at each particle's stencil nodes `node (27, P)`: k channels `(27, P)` (velocities, m/s), from
    `grid_v (k, B, N)`. One 1-D `index_select` per channel (a 2-D one along dim 1 measured 4x slower)."""
    idx = node.reshape(-1)
    return [c.reshape(-1).index_select(0, idx).reshape(node.shape) for c in grid_v]


def g2p(model, st: Stencil, gv: list[torch.Tensor], B: int):
    """Particle velocity `(B, n, 3)` m/s and affine velocity `C (B, n, 3, 3)` 1/s from the gathered node velocities,
    3 channels `gv[c] (27, P)`."""
    P = st.w.shape[1]
    w = st.w.reshape(3, 3, 3, P)
    # sum_o w v_o (o - fx)^T dx, separably: sum_o w v_o o_x = S_x[1] + 2 S_x[2], S_x[k] = sum over oy, oz at ox = k
    s3 = lambda t, d: t.select(d, 0) + t.select(d, 1) + t.select(d, 2)  # noqa: E731 (fixed order, contiguous rows)
    v, wvo = [], []
    for g in gv:
        wv = w * g.reshape(3, 3, 3, P)  # (ox, oy, oz, P)
        sxy, syz = s3(wv, 2), s3(wv, 0)  # (3, 3, P): summed over oz, over ox
        sx, sy, sz = s3(sxy, 1), s3(sxy, 0), s3(syz, 0)  # (3 k, P)
        v.append(s3(sx, 0))
        wvo.append(torch.stack([s[1] + 2 * s[2] for s in (sx, sy, sz)]))  # (3 axes, P)
    v, wvo = torch.stack(v), torch.stack(wvo)  # (3, P), (3 channels, 3 axes, P)
    C = (4 * model.inv_dx) * (wvo - v[:, None] * st.fx[None])
    n = P // B
    return v.T.reshape(B, n, 3), C.reshape(9, P).T.reshape(B, n, 3, 3)

"""Implicit FEM substep: backward Euler as the minimisation of the incremental potential (Genesis 1.4.5's
formulation; e.g. Gast et al. 2015, "Optimization integrator for large time steps", IEEE TVCG 21(10)):

    x_{n+1} = argmin_x  sum_i m_i / (2 dt^2) |x_i - xhat_i|^2 + U(x) + D(x),   xhat = x_n + dt v_n + dt^2 g,

with U the elastic energy (corotated elements use the rotations of x_n, as Genesis), D Rayleigh damping
(alpha / (2 dt)) sum_i m_i |x_i - x_n,i|^2 + (beta / (2 dt)) (x - x_n)^T K (x - x_n), and soft vertex constraints as
springs m_i (k / 2 |x_i - target_i|^2 + sqrt(k) / dt |x_i - x_n,i|^2) (the implicit form of the explicit solver's
critically damped spring). Hard-constrained vertices are fixed at their targets (removed from the solve).

Solved with a fixed number of Newton iterations (`n_newton_iterations`), each a Jacobi-preconditioned conjugate
gradient solve of H dx = -grad with a fixed number of iterations (`n_pcg_iterations`) and matrix-free products
H p = m (1 + alpha dt) / dt^2 p + (1 + beta / dt) K p (+ springs), K p from `FEMSolver.stiffness_product`; an env stops
updating once its residual r^T r <= `pcg_threshold` (N^2) or its Newton step max |dx| <= `newton_dx_threshold` (m),
through masks, so the work per substep is fixed, envs stay batched and the result is differentiable by autograd.
`n_linesearch_iterations` > 0 adds Armijo backtracking (c = `linesearch_c`, step x `linesearch_tau`). Then
v = (x_{n+1} - x_n) / dt; contacts project v and x_{n+1} = x_n + dt v (Genesis' order).
"""

from __future__ import annotations

import torch

from .solver import HARD, SOFT, FEMState, tree_sum

__all__ = ["implicit_step"]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-env inner products `(B,)` of `(B, nv, 3)` fields (batch-independent order, `tree_sum`)."""
    return tree_sum(a * b)


def implicit_step(solver, state: FEMState, frames=None) -> FEMState:
    m, dt = solver.model, solver.model.dt
    x_n, v_n, active = state.pos, state.vel, state.active
    B = x_n.shape[0]
    mass = m.mass[:, None]
    hard = (state.vc_mode == HARD)[..., None]
    free = (~hard).to(x_n.dtype)
    soft = (state.vc_mode == SOFT).to(x_n.dtype)[..., None]
    k = state.vc_stiffness[..., None] * soft
    c_spring = mass * (k + 2.0 * torch.sqrt(k) / dt)  # spring + damper curvature per vertex (kg/s^2)
    a_dt = m.damping_alpha * dt
    inertia = mass * (1.0 + a_dt) / dt ** 2 + c_spring  # (1 or B, nv, 1) diagonal of H without K
    beta = m.damping_beta / dt
    R = solver.rotations(x_n)  # corotated elements: rotations of x_n, fixed during the substep
    xhat = x_n + dt * v_n + dt ** 2 * m.gravity

    actu = state.actu if m.has_muscle else None
    F_n = solver.deformation(x_n) if actu is not None else None

    def K(p):
        return solver.stiffness_product(x_n, p, active, R=R, actu=actu, F=F_n)

    def grad(x):
        g = mass / dt ** 2 * (x - xhat) + mass * m.damping_alpha / dt * (x - x_n) \
            - solver.elastic_forces(x, active, R=R, actu=actu)
        g = g + mass * (k * (x - state.vc_target) + 2.0 * torch.sqrt(k) / dt * (x - x_n))
        if beta > 0:
            g = g + beta * K(x - x_n)
        return g * free

    def energy(x):
        d = x - x_n
        e = 0.5 * _dot(mass / dt ** 2, (x - xhat) ** 2) + 0.5 * m.damping_alpha / dt * _dot(mass, d * d) \
            + solver.elastic_energy(x, active, R=R, actu=actu) \
            + _dot(mass * k, 0.5 * (x - state.vc_target) ** 2) + _dot(mass * torch.sqrt(k) / dt, d * d)
        if beta > 0:
            e = e + 0.5 * beta * _dot(d, K(d))
        return e

    def H(p):
        return (inertia * p + (1.0 + beta) * K(p)) * free

    # Jacobi preconditioner: the inertia diagonal plus (1 + beta) V (mu |g_a|^2 + (mu + lam) g_ak^2) of every element
    mu, lam = solver.lame()
    G = solver.shape_gradients()  # (ne, 4, 3)
    diagK = m.vol[None, :, None, None] * (mu[..., None, None] * (G * G).sum(-1, keepdim=True)
                                           + (mu + lam)[..., None, None] * G * G)  # (P, ne, 4, 3)
    Hd = _diag_at_vertices(solver, diagK.expand(B, -1, -1, -1), active)
    prec = 1.0 / (inertia + (1.0 + beta) * Hd)

    x = torch.where(hard, state.vc_target, x_n)
    running = torch.ones(B, dtype=torch.bool, device=x_n.device)
    for _ in range(m.n_newton):
        g = grad(x)
        dx = _pcg(H, -g, prec * free, m.n_pcg, m.pcg_threshold)
        if m.n_linesearch > 0:
            dx = _line_search(energy, x, dx, g, m.n_linesearch, m.linesearch_c, m.linesearch_tau)
        x = torch.where(running[:, None, None], x + dx, x)
        running = running & (dx.abs().amax((-1, -2)) > m.newton_dx_threshold)
    v = (x - x_n) / dt
    v = solver.contacts(x_n, v, ~hard[..., 0], frames)
    x_new = torch.where(hard, state.vc_target, x_n + dt * v)
    return state.replace(pos=x_new, vel=v)


def _diag_at_vertices(solver, diag: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Vertex sums `(B, nv, 3)` of per-element, per-vertex entries `diag (B, ne, 4, 3)` (active elements only)."""
    c = torch.where(active[..., None, None], diag, torch.zeros_like(diag)).permute(3, 0, 2, 1)  # (3, B, 4, ne)
    c = c.reshape(3, diag.shape[0], -1)
    return solver.gather_sum(torch.cat((c, c.new_zeros(*c.shape[:2], 1)), -1))


def _pcg(H, b: torch.Tensor, prec: torch.Tensor, iterations: int, threshold: float) -> torch.Tensor:
    """`iterations` steps of Jacobi-preconditioned CG for H x = b from x = 0, per env; an env whose r^T r falls to
    `threshold` or below stops changing (masks; the count of operations is fixed)."""
    x = torch.zeros_like(b)
    r = b
    z = prec * r
    p = z
    rz = _dot(r, z)
    live = _dot(r, r) > threshold
    for _ in range(iterations):
        Hp = H(p)
        pHp = _dot(p, Hp)
        ok = live & (pHp > 0)
        alpha = torch.where(ok, rz / torch.where(ok, pHp, torch.ones_like(pHp)), torch.zeros_like(pHp))[:, None, None]
        x = x + alpha * p
        r = r - alpha * Hp
        z = prec * r
        rz_new = _dot(r, z)
        nxt = ok & (_dot(r, r) > threshold) & (rz > 0)
        beta = torch.where(nxt, rz_new / torch.where(nxt, rz, torch.ones_like(rz)), torch.zeros_like(rz))[:, None, None]
        p = torch.where(nxt[:, None, None], z + beta * p, p)
        rz = torch.where(nxt, rz_new, rz)
        live = nxt
    return x


def _line_search(energy, x, dx, g, iterations: int, c: float, tau: float) -> torch.Tensor:
    """Armijo backtracking with a fixed number of trials: the step s dx with s = tau^j for the first j whose energy
    satisfies E(x + s dx) <= E(x) + c s g.dx (the last trial's s if none does)."""
    e0, slope = energy(x), _dot(g, dx)
    s = torch.ones_like(e0)
    done = torch.zeros_like(e0, dtype=torch.bool)
    for _ in range(iterations):
        ok = energy(x + s[:, None, None] * dx) <= e0 + c * s * slope
        done = done | ok
        s = torch.where(done, s, s * tau)
    return s[:, None, None] * dx

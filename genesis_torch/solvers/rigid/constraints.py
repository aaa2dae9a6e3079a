"""Soft constraints with MuJoCo's formulation, and the batched Newton solver of its convex primal problem.

A constraint row i has Jacobian J_i (nv,), position r_i (distance, < 0 when violated), velocity J_i qd. MuJoCo
("Computation" chapter of its documentation; Todorov 2014, "Convex and analytically-invertible dynamics with
contacts and constraints") turns `solref`/`solimp` into a reference acceleration and a regulariser:

    d(r) = impedance from solimp,            R_i = (1 - d) / d * A_ii (A_ii ~ diag of J M^-1 J^T)
    aref_i = -b (J_i qd) - k d (r_i - margin_i),  b = 2 / (dmax tc),  k = 1 / (dmax^2 tc^2 zeta^2)

and the constrained acceleration minimises the convex cost

    f(a) = 1/2 (a - a0)^T M (a - a0) + sum_i s_i(J_i a - aref_i),   s_i(x) = 1/2 x^2 / R_i when active,

active meaning always for equality rows and x < 0 for inequality rows (limits, frictionless contacts).
The solver runs Newton iterations with an exact line search (the cost is piecewise quadratic along a line);
each env freezes once its relative improvement falls below `tolerance`, so an env's result does not depend on
the others. The starting point is the better of the warm start (state) and the unconstrained `a0`, as MuJoCo.
"""

from __future__ import annotations

import dataclasses

import torch

from .linalg import matmul, matvec, solve_spd, vecmat
from .model import RigidModel

MJ_MINIMP, MJ_MAXIMP = 0.0001, 0.9999  # MuJoCo's impedance clamp (mjMINIMP, mjMAXIMP)
MJ_MINVAL = 1e-15


@dataclasses.dataclass
class ConstraintRows:
    """Constraint rows of a batch; fixed count nr per model, `valid` marks rows that exist in an env."""

    J: torch.Tensor  # (B, nr, nv)
    aref: torch.Tensor  # (B, nr) reference acceleration
    D: torch.Tensor  # (B, nr) 1 / R, stiffness of the quadratic penalty
    valid: torch.Tensor  # (B, nr) bool, row present (e.g. limit within margin)
    equality: torch.Tensor  # (nr,) bool, always active when valid


def impedance(solimp: torch.Tensor, pos: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """MuJoCo's impedance d(r) in [mjMINIMP, mjMAXIMP]; solimp (..., 5) = (dmin, dmax, width, mid, power)."""
    dmin, dmax, width, mid, power = solimp.unbind(-1)
    x = ((pos - margin) / width.clamp(min=MJ_MINVAL)).abs()
    a = 1.0 / mid.pow(power - 1).clamp(min=MJ_MINVAL)
    b = 1.0 / (1 - mid).pow(power - 1).clamp(min=MJ_MINVAL)
    xc = x.clamp(0.0, 1.0)
    y = torch.where(xc <= mid, a * xc.pow(power), 1 - b * (1 - xc).pow(power))
    y = torch.where(power == 1, xc, y)
    imp = dmin + y * (dmax - dmin)
    imp = torch.where(x >= 1, dmax, torch.where(x <= 0, dmin, imp))
    flat = (dmin == dmax) | (width <= MJ_MINVAL)
    imp = torch.where(flat, 0.5 * (dmin + dmax), imp)
    return imp.clamp(MJ_MINIMP, MJ_MAXIMP)


def reference(solref, solimp, pos, margin, vel, diag_approx, dt: float):
    """(aref, D) of rows from solref (..., 2), solimp (..., 5), position, margin, velocity, diag of A."""
    imp = impedance(solimp, pos, margin)
    dmax = solimp[..., 1].clamp(MJ_MINIMP, MJ_MAXIMP)
    timeconst = torch.maximum(solref[..., 0], torch.full_like(solref[..., 0], 2 * dt))  # MuJoCo's refsafe
    dampratio = solref[..., 1]
    standard = solref[..., 0] > 0
    k = torch.where(standard, 1.0 / (dmax * dmax * timeconst * timeconst * dampratio * dampratio),
                    -solref[..., 0] / (dmax * dmax))
    b = torch.where(standard, 2.0 / (dmax * timeconst), -solref[..., 1] / dmax)
    aref = -b * vel - k * imp * (pos - margin)
    R = ((1 - imp) / imp * diag_approx).clamp(min=MJ_MINVAL)
    return aref, 1.0 / R


def joint_limit_rows(model: RigidModel, qpos, qvel, dt: float) -> ConstraintRows:
    """Two rows per limited hinge/slide joint: lower (q - lo) and upper (hi - q), present within `margin`."""
    B, nl = qpos.shape[0], model.nlimit
    sign = model.lim_sign
    pos = sign * (qpos[:, model.lim_qadr] - model.lim_value)
    vel = sign * qvel[:, model.lim_dof]
    J = torch.zeros(B, nl, model.nv, dtype=qpos.dtype, device=qpos.device)
    J[:, torch.arange(nl, device=qpos.device), model.lim_dof] = sign
    aref, D = reference(model.lim_solref, model.lim_solimp, pos, model.lim_margin, vel,
                        model.dof_invweight0[model.lim_dof], dt)
    valid = pos < model.lim_margin
    equality = torch.zeros(nl, dtype=torch.bool, device=qpos.device)
    return ConstraintRows(J, aref, D, valid, equality)


def _active(rows: ConstraintRows, jar: torch.Tensor) -> torch.Tensor:
    return rows.valid & (rows.equality | (jar < 0))


def constraint_cost(rows: ConstraintRows, M, qacc, qacc_smooth) -> torch.Tensor:
    """The convex cost f(qacc), `(B,)`."""
    jar = matvec(rows.J, qacc) - rows.aref
    diff = qacc - qacc_smooth
    gauss = 0.5 * (diff * matvec(M, diff)).sum(-1)
    return gauss + 0.5 * torch.where(_active(rows, jar), rows.D * jar * jar, 0.0).sum(-1)


def _exact_line_search(rows: ConstraintRows, Mdir, direction, grad_gauss_dot, jar, Jdir):
    """Minimiser alpha >= 0 of f(qacc + alpha p), where f is piecewise quadratic in alpha.

    Between breakpoints (rows changing activity) f' is linear; the breakpoints are sorted and f' evaluated at
    each to find the piece where it crosses zero. Args are (B, ...) tensors: Mdir = M p, grad_gauss_dot =
    p^T M (qacc - a0), jar = J qacc - aref, Jdir = J p.
    """
    quad = (direction * Mdir).sum(-1)  # p^T M p
    D = torch.where(rows.valid, rows.D, 0.0)
    eq = rows.equality.expand_as(jar)
    # activity for small alpha > 0
    act0 = eq | (jar < 0) | ((jar == 0) & (Jdir < 0))
    act0 = act0 & rows.valid
    slope0 = quad + torch.where(act0, D * Jdir * Jdir, 0.0).sum(-1)
    icept0 = grad_gauss_dot + torch.where(act0, D * Jdir * jar, 0.0).sum(-1)
    # breakpoints: inequality rows whose sign of jar + alpha Jdir flips at alpha > 0
    safe_jdir = torch.where(Jdir == 0, torch.ones_like(Jdir), Jdir)
    alpha_b = -jar / safe_jdir
    flips = rows.valid & ~eq & (Jdir != 0) & (alpha_b > 0)
    alpha_b = torch.where(flips, alpha_b, torch.full_like(alpha_b, float("inf")))
    # crossing the breakpoint toggles activity: sign +1 if it becomes active (Jdir < 0), -1 otherwise
    toggle = torch.where(Jdir < 0, 1.0, -1.0) * flips
    d_slope = toggle * D * Jdir * Jdir
    d_icept = toggle * D * Jdir * jar
    order = torch.argsort(alpha_b, dim=-1)
    a_sorted = alpha_b.gather(-1, order)
    slopes = slope0[:, None] + torch.cumsum(d_slope.gather(-1, order), -1)  # slope after each breakpoint
    icepts = icept0[:, None] + torch.cumsum(d_icept.gather(-1, order), -1)
    # derivative at each breakpoint, evaluated with the piece before it
    prev_slope = torch.cat((slope0[:, None], slopes[:, :-1]), -1)
    prev_icept = torch.cat((icept0[:, None], icepts[:, :-1]), -1)
    a_fin = torch.where(torch.isfinite(a_sorted), a_sorted, 0.0)
    deriv = prev_slope * a_fin + prev_icept
    crossed = (deriv >= 0) & torch.isfinite(a_sorted)
    # first piece whose right end has f' >= 0; piece k spans (a_sorted[k-1], a_sorted[k])
    n = a_sorted.shape[-1]
    first = torch.where(crossed.any(-1), crossed.float().argmax(-1), torch.full_like(slope0, n, dtype=torch.long))
    all_slopes = torch.cat((slope0[:, None], slopes), -1)
    all_icepts = torch.cat((icept0[:, None], icepts), -1)
    s = all_slopes.gather(-1, first[:, None]).squeeze(-1)
    c = all_icepts.gather(-1, first[:, None]).squeeze(-1)
    alpha = -c / torch.where(s > MJ_MINVAL, s, torch.ones_like(s))
    return torch.where(s > MJ_MINVAL, alpha, torch.zeros_like(alpha)).clamp(min=0.0)


def newton_iteration(J, aref, D, valid, equality, M, qacc_smooth, qacc, cost, done, scale: float, tolerance: float):
    """One Newton step with exact line search for the envs not `done`; returns (qacc, cost, done).

    An env is done once its scaled cost improvement falls below `tolerance` (MuJoCo's criterion); done envs are
    frozen, so further iterations leave them bitwise unchanged.
    """
    rows = ConstraintRows(J, aref, D, valid, equality)
    jar = matvec(J, qacc) - aref
    Dact = torch.where(_active(rows, jar), D, 0.0)
    Mdiff = matvec(M, qacc - qacc_smooth)
    grad = Mdiff + vecmat(Dact * jar, J)
    H = M + matmul(J.transpose(-1, -2), Dact[..., None] * J)
    direction = -solve_spd(H, grad)
    Jdir = matvec(J, direction)
    alpha = _exact_line_search(rows, matvec(M, direction), direction, (direction * Mdiff).sum(-1), jar, Jdir)
    new_qacc = qacc + alpha[:, None] * direction
    new_cost = constraint_cost(rows, M, new_qacc, qacc_smooth)
    improved = (new_cost < cost) & ~done  # False for NaN (a failed factorisation)
    small = ((cost - new_cost) * scale < tolerance) | ~improved
    return (torch.where(improved[:, None], new_qacc, qacc), torch.where(improved, new_cost, cost), done | small)


def solve(rows: ConstraintRows, M, qacc_smooth, qacc_warm, iterations: int, tolerance: float, meaninertia: float,
          iteration=newton_iteration):
    """Newton's method on the constraint cost. Returns (qacc (B, nv), efc_force (B, nr)).

    `iteration` is `newton_iteration` or a compiled version of it; the loop stops once every env is done.
    """
    B, nv = qacc_smooth.shape
    cost_warm = constraint_cost(rows, M, qacc_warm, qacc_smooth)
    cost_smooth = constraint_cost(rows, M, qacc_smooth, qacc_smooth)
    qacc = torch.where((cost_warm < cost_smooth)[:, None], qacc_warm, qacc_smooth)
    cost = torch.minimum(cost_warm, cost_smooth)
    done = torch.zeros(B, dtype=torch.bool, device=qacc.device)
    scale = 1.0 / (meaninertia * max(1, nv))
    for _ in range(iterations):
        qacc, cost, done = iteration(rows.J, rows.aref, rows.D, rows.valid, rows.equality, M, qacc_smooth, qacc,
                                     cost, done, scale, tolerance)
        if bool(done.all()):  # frozen envs no longer change, so stopping early changes no result
            break
    jar = matvec(rows.J, qacc) - rows.aref
    force = torch.where(_active(rows, jar), -rows.D * jar, 0.0)
    return qacc, force

"""Soft constraints with MuJoCo's formulation, and the batched Newton solver of its convex primal problem.

A constraint row i has Jacobian J_i (nv,), position r_i (distance, < 0 when violated), velocity J_i qd. MuJoCo
("Computation" chapter of its documentation; Todorov 2014, "Convex and analytically-invertible dynamics with
contacts and constraints") turns `solref`/`solimp` into a reference acceleration and a regulariser:

    d(r) = impedance from solimp,            R_i = (1 - d) / d * A_ii (A_ii ~ diag of J M^-1 J^T)
    aref_i = -b (J_i qd) - k d (r_i - margin_i),  b = 2 / (dmax tc),  k = 1 / (dmax^2 tc^2 zeta^2)

and the constrained acceleration minimises the convex cost f(a) = 1/2 (a - a0)^T M (a - a0) + sum s(J a - aref).
Rows come in four kinds, stored in this order (`ConstraintRows`):

    equality  (connect, weld, joint, tendon)      s(x) = 1/2 D x^2
    friction  (dof / tendon frictionloss f)       s(x) = 1/2 D x^2 for |x| < R f, else f |x| - 1/2 R f^2 (Huber)
    inequality (limits, frictionless and pyramidal contact rows)   s(x) = 1/2 D x^2 for x < 0, else 0
    cone      (elliptic contacts, 3 rows: normal, 2 tangents)      MuJoCo's three zones of the regularised cone

The solver runs Newton iterations (MuJoCo's cone Hessian for elliptic contacts) with a safeguarded 1-D Newton line
search (exact to `ls_tolerance`: on piecewise-quadratic costs it lands on the minimiser of the piece); each env
freezes once its relative improvement falls below `tolerance`, so an env's result does not depend on the others.
The starting point is the better of the warm start (state) and the unconstrained `a0`, as MuJoCo.
"""

from __future__ import annotations

import dataclasses

import torch

from .linalg import gram, matmul, matvec, row_sum, solve_spd

MJ_MINIMP, MJ_MAXIMP = 0.0001, 0.9999  # MuJoCo's impedance clamp (mjMINIMP, mjMAXIMP)
MJ_MINVAL = 1e-15
# A line search or Newton iteration stops when the change it measures is within this many machine epsilons of
# the magnitude of the terms it sums: the rounding error of evaluating them (sums of up to ~100 terms, each
# rounded once, stay well inside it).
ROUNDING_FACTOR = 16.0


@dataclasses.dataclass
class ConstraintRows:
    """The rows of a batch, ordered [equality | friction | inequality | cone]; fixed count nr per model, `valid`
    marks rows that exist in an env (e.g. a limit within its margin, a contact slot holding a contact)."""

    J: torch.Tensor  # (B, nr, nv)
    aref: torch.Tensor  # (B, nr) reference acceleration
    D: torch.Tensor  # (B, nr) 1 / R, stiffness of the quadratic penalty
    valid: torch.Tensor  # (B, nr) bool
    ne: int = 0  # equality rows
    nf: int = 0  # friction rows, with `floss`
    nc: int = 0  # elliptic cones (the last 3 nc rows), with `mu` and `friction`
    floss: torch.Tensor | None = None  # (B, nf) frictionloss, N or N m
    mu: torch.Tensor | None = None  # (B, nc) MuJoCo's regularised-cone friction `contact.mu`
    friction: torch.Tensor | None = None  # (B, nc, 2) tangential friction coefficients

    @staticmethod
    def cat(parts: list["ConstraintRows"]) -> "ConstraintRows":
        """Rows of several groups in one set; the groups must be given in kind order."""
        parts = [p for p in parts if p is not None]
        first = lambda name: next((getattr(p, name) for p in parts if getattr(p, name) is not None), None)  # noqa: E731
        return ConstraintRows(torch.cat([p.J for p in parts], 1), torch.cat([p.aref for p in parts], 1),
                              torch.cat([p.D for p in parts], 1), torch.cat([p.valid for p in parts], 1),
                              ne=sum(p.ne for p in parts), nf=sum(p.nf for p in parts), nc=sum(p.nc for p in parts),
                              floss=first("floss"), mu=first("mu"), friction=first("friction"))

    def take(self, idx: torch.Tensor) -> "ConstraintRows":
        """The rows of envs `idx` (a gather along the env dim; each env's values are copied unchanged)."""
        pick = lambda x: None if x is None else x.index_select(0, idx)  # noqa: E731
        return dataclasses.replace(self, J=pick(self.J), aref=pick(self.aref), D=pick(self.D), valid=pick(self.valid),
                                   floss=pick(self.floss), mu=pick(self.mu), friction=pick(self.friction))

    def joint_force(self, force: torch.Tensor) -> torch.Tensor:
        """`J^T force`: row forces `(B, nr)` as generalized forces `(B, nv)` (summed with `row_sum`)."""
        return row_sum(force[..., None] * self.J)

    @property
    def nr(self) -> int:
        return self.J.shape[1]


def impedance(solimp: torch.Tensor, pos: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """MuJoCo's impedance d(r) in [mjMINIMP, mjMAXIMP]; solimp (..., 5) = (dmin, dmax, width, mid, power)."""
    solimp = clamp_solimp(solimp)
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
    return torch.where(flat, 0.5 * (dmin + dmax), imp)


def clamp_solimp(solimp: torch.Tensor) -> torch.Tensor:
    """MuJoCo's bounds on solimp (`getsolparam`): dmin, dmax, mid in [mjMINIMP, mjMAXIMP], width >= 0, power >= 1."""
    dmin, dmax, width, mid, power = solimp.unbind(-1)
    return torch.stack((dmin.clamp(MJ_MINIMP, MJ_MAXIMP), dmax.clamp(MJ_MINIMP, MJ_MAXIMP), width.clamp(min=0.0),
                        mid.clamp(MJ_MINIMP, MJ_MAXIMP), power.clamp(min=1.0)), -1)


def spring_damper(solref: torch.Tensor, dmax: torch.Tensor, dt: float):
    """(k, b) of MuJoCo's reference acceleration from solref (..., 2): standard (timeconst, dampratio) with
    timeconst >= 2 dt (MuJoCo's refsafe), or direct (-stiffness, -damping)."""
    timeconst = torch.maximum(solref[..., 0], torch.full_like(solref[..., 0], 2 * dt))
    standard = solref[..., 0] > 0
    k = torch.where(standard, 1.0 / (dmax * dmax * timeconst * timeconst * solref[..., 1] * solref[..., 1]
                                     ).clamp(min=MJ_MINVAL), -solref[..., 0] / (dmax * dmax).clamp(min=MJ_MINVAL))
    b = torch.where(solref[..., 1] > 0, 2.0 / (dmax * timeconst).clamp(min=MJ_MINVAL),
                    -solref[..., 1] / dmax.clamp(min=MJ_MINVAL))
    return k, b


def regulariser(imp: torch.Tensor, diag_approx: torch.Tensor) -> torch.Tensor:
    """MuJoCo's R = (1 - d) / d * A_ii, at least mjMINVAL."""
    return ((1 - imp) / imp * diag_approx).clamp(min=MJ_MINVAL)


def reference(solref, solimp, pos, margin, vel, diag_approx, dt: float):
    """(aref, D) of rows from solref (..., 2), solimp (..., 5), position, margin, velocity, diag of A."""
    imp = impedance(solimp, pos, margin)
    k, b = spring_damper(solref, clamp_solimp(solimp)[..., 1], dt)
    aref = -b * vel - k * imp * (pos - margin)
    return aref, 1.0 / regulariser(imp, diag_approx)


def _cone_terms(rows: ConstraintRows, jar_c: torch.Tensor, D_c: torch.Tensor, valid_c: torch.Tensor):
    """Elliptic-cone zones (MuJoCo's `mj_constraintUpdate`): jar_c, D_c (B, nc, 3) → cost (B, nc), force (B, nc, 3),
    diagonal Hessian of the bottom zone (B, nc, 3), and the middle zone's 3x3 Hessian (B, nc, 3, 3) in jar space."""
    mu, fr = rows.mu, rows.friction
    scale = torch.cat((mu[..., None], fr), -1)  # dU / djar
    U = jar_c * scale
    N = U[..., 0]
    T2 = U[..., 1] * U[..., 1] + U[..., 2] * U[..., 2]
    T = torch.sqrt(T2.clamp(min=MJ_MINVAL * MJ_MINVAL))
    positive_T = T2 > 0
    top = (N >= mu * T) | (~positive_T & (N >= 0))
    bottom = ~top & ((mu * N + T <= 0) | (~positive_T & (N < 0)))
    middle = valid_c & ~top & ~bottom
    bottom = valid_c & bottom
    Dm = D_c[..., 0] / (mu * mu * (1 + mu * mu))
    NmT = N - mu * T
    quad_cost = 0.5 * (D_c * jar_c * jar_c)
    cost = torch.where(bottom, quad_cost[..., 0] + quad_cost[..., 1] + quad_cost[..., 2],
                       torch.where(middle, 0.5 * Dm * NmT * NmT, 0.0))
    f0 = -Dm * NmT * mu
    f_mid = torch.stack((f0, -f0 / T * U[..., 1] * fr[..., 0], -f0 / T * U[..., 2] * fr[..., 1]), -1)
    force = torch.where(bottom[..., None], -D_c * jar_c, torch.where(middle[..., None], f_mid, 0.0))
    hdiag = torch.where(bottom[..., None], D_c, 0.0)
    # middle zone: Hessian of 1/2 Dm (N - mu T)^2 w.r.t. U, mapped to jar by diag(scale)
    ut = U[..., 1:] / T[..., None]  # unit tangent direction
    eye2 = torch.eye(2, dtype=U.dtype, device=U.device)
    outer = ut[..., :, None] * ut[..., None, :]
    Htt = (mu * mu)[..., None, None] * outer - (mu * NmT / T)[..., None, None] * (eye2 - outer)
    Hnt = -mu[..., None] * ut
    top_row = torch.cat((torch.ones_like(N)[..., None], Hnt), -1)  # (B, nc, 3)
    lower = torch.cat((Hnt[..., :, None], Htt), -1)  # (B, nc, 2, 3)
    Hu = torch.cat((top_row[..., None, :], lower), -2)
    Hc = Dm[..., None, None] * scale[..., :, None] * Hu * scale[..., None, :]
    Hc = torch.where(middle[..., None, None], Hc, 0.0)
    return cost, force, hdiag, Hc


def row_terms(rows: ConstraintRows, jar: torch.Tensor):
    """s(jar) per env (B,), the row forces -ds/djar (B, nr), the diagonal Hessian d2s/djar2 of scalar rows (B, nr)
    and the cones' 3x3 Hessians (B, nc, 3, 3) or None."""
    D = torch.where(rows.valid, rows.D, 0.0)
    ne, nf, nc, nr = rows.ne, rows.nf, rows.nc, rows.nr
    quad = 0.5 * D * jar * jar
    force = -D * jar
    idx = torch.arange(nr, device=jar.device)
    inequality = (idx >= ne + nf) & (idx < nr - 3 * nc)
    active = rows.valid & ((idx < ne + nf) | (inequality & (jar < 0)))  # friction rows: quadratic zone, see below
    cost_rows = torch.where(active, quad, 0.0)
    force = torch.where(active, force, 0.0)
    hdiag = torch.where(active, D, 0.0)
    if nf:
        sl = slice(ne, ne + nf)
        f, x, d = rows.floss, jar[:, sl], D[:, sl]
        R = 1.0 / torch.where(d > 0, d, 1.0)
        neg, pos = (x <= -R * f) & rows.valid[:, sl], (x >= R * f) & rows.valid[:, sl]
        lin_cost = -0.5 * R * f * f + f * x.abs()
        cost_rows = torch.cat((cost_rows[:, :ne], torch.where(neg | pos, lin_cost, cost_rows[:, sl]),
                               cost_rows[:, ne + nf:]), 1)
        fz = torch.where(neg, f, torch.where(pos, -f, force[:, sl]))
        force = torch.cat((force[:, :ne], fz, force[:, ne + nf:]), 1)
        hdiag = torch.cat((hdiag[:, :ne], torch.where(neg | pos, 0.0, hdiag[:, sl]), hdiag[:, ne + nf:]), 1)
    cost = row_sum(cost_rows)
    Hc = None
    if nc:
        B = jar.shape[0]
        c_sl = slice(nr - 3 * nc, nr)
        shape = (B, nc, 3)
        c_cost, c_force, c_h, Hc = _cone_terms(rows, jar[:, c_sl].reshape(shape), D[:, c_sl].reshape(shape),
                                               rows.valid[:, c_sl].reshape(shape)[..., 0])
        cost = cost + row_sum(c_cost)
        force = torch.cat((force[:, :nr - 3 * nc], c_force.reshape(B, -1)), 1)
        hdiag = torch.cat((hdiag[:, :nr - 3 * nc], c_h.reshape(B, -1)), 1)
    return cost, force, hdiag, Hc


def _curvature(rows: ConstraintRows, hdiag, Hc, Jp):
    """sum_i h_i (J_i p)^2 + sum_cones (J_c p)^T H_c (J_c p): the constraint part of p^T Hess p, (B,)."""
    out = row_sum(hdiag * Jp * Jp)
    if Hc is not None:
        v = Jp[:, rows.nr - 3 * rows.nc:].reshape(Jp.shape[0], rows.nc, 3)
        out = out + row_sum((v * matvec(Hc, v)).sum(-1))
    return out


def line_search(rows: ConstraintRows, jar, Jp, gauss_slope, pMp, iterations: int, tolerance: float):
    """Minimiser alpha >= 0 of f(qacc + alpha p) by safeguarded 1-D Newton (the cost is convex and C^1 along the
    line; its curvature is piecewise smooth). Args (B, ...): jar = J qacc - aref, Jp = J p, gauss_slope =
    p^T M (qacc - a0), pMp = p^T M p. Returns (B,).

    An env stops once |f'| <= tolerance |f'(0)|, or once |f'| is within the rounding error of its own evaluation
    (`ROUNDING_FACTOR` eps times the sum of the magnitudes of its terms), or when a Newton step leaves alpha
    unchanged: below that, f' is noise and further steps cannot improve alpha (in float32 a relative tolerance of
    1e-10 is never reached).
    """
    eps = torch.finfo(jar.dtype).eps

    def derivs(alpha):
        _, force, hdiag, Hc = row_terms(rows, jar + alpha[:, None] * Jp)
        fJp = force * Jp
        d1 = gauss_slope + alpha * pMp - row_sum(fJp)
        noise = ROUNDING_FACTOR * eps * (gauss_slope.abs() + alpha * pMp + row_sum(fJp.abs()))
        return d1, pMp + _curvature(rows, hdiag, Hc, Jp), noise

    zero = torch.zeros_like(pMp)
    d1_0, d2_0, _ = derivs(zero)
    done = d1_0 >= 0  # not a descent direction (converged): stay
    alpha = torch.where(done, zero, -d1_0 / torch.where(d2_0 > 0, d2_0, 1.0))  # safe: no 0/0 in backward
    lo, hi = zero, torch.full_like(zero, float("inf"))
    for _ in range(iterations):
        d1, d2, noise = derivs(alpha)
        conv = done | (d1.abs() <= torch.maximum(tolerance * d1_0.abs(), noise))
        lo = torch.where(~conv & (d1 < 0), alpha, lo)
        hi = torch.where(~conv & (d1 >= 0), alpha, hi)
        step = alpha - d1 / torch.where(d2 > 0, d2, 1.0)
        inside = (step > lo) & (step < hi)
        fallback = torch.where(torch.isfinite(hi), 0.5 * (lo + hi), 2 * alpha)
        new_alpha = torch.where(inside, step, fallback)
        conv = conv | (new_alpha == alpha)  # a fixed point: rounding decides from here on
        alpha = torch.where(conv, alpha, new_alpha)
        done = conv
        if bool(done.all()):
            break
    return alpha


@dataclasses.dataclass
class _Point:
    """The cost and its gradient terms at one qacc of each env (B, ...): what a Newton iteration starts from."""

    qacc: torch.Tensor  # (B, nv)
    cost: torch.Tensor  # (B,)
    jar: torch.Tensor  # (B, nr) J qacc - aref
    force: torch.Tensor  # (B, nr) -ds/djar
    hdiag: torch.Tensor  # (B, nr)
    Hc: torch.Tensor | None  # (B, nc, 3, 3)
    Mdiff: torch.Tensor  # (B, nv) M (qacc - qacc_smooth)
    grad: torch.Tensor  # (B, nv)

    @staticmethod
    def at(rows: ConstraintRows, M, qacc_smooth, qacc) -> "_Point":
        jar = matvec(rows.J, qacc) - rows.aref
        s, force, hdiag, Hc = row_terms(rows, jar)
        Mdiff = matvec(M, qacc - qacc_smooth)
        cost = 0.5 * ((qacc - qacc_smooth) * Mdiff).sum(-1) + s
        return _Point(qacc, cost, jar, force, hdiag, Hc, Mdiff, Mdiff - rows.joint_force(force))

    def where(self, keep: torch.Tensor, other: "_Point") -> "_Point":
        """Per env (B,): self where `keep`, else `other`."""
        pick = lambda a, b: None if a is None else torch.where(keep.view(-1, *[1] * (a.dim() - 1)), a, b)  # noqa: E731
        return _Point(*(pick(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)))

    def take(self, idx: torch.Tensor) -> "_Point":
        return _Point(*(None if (v := getattr(self, f.name)) is None else v.index_select(0, idx)
                        for f in dataclasses.fields(self)))

    def put(self, idx: torch.Tensor, part: "_Point") -> "_Point":
        """A copy with envs `idx` replaced by `part` (out of place, differentiable)."""
        return _Point(*(None if (v := getattr(self, f.name)) is None else v.index_copy(0, idx, getattr(part, f.name))
                        for f in dataclasses.fields(self)))


def newton_iteration(rows: ConstraintRows, M, qacc_smooth, point: _Point, done, scale: float, tolerance: float,
                     ls_iterations: int = 50, ls_tolerance: float = 1e-10):
    """One Newton step with line search from `point` for the envs not `done`; returns (point, done).

    An env is done (MuJoCo's criteria) once its scaled cost improvement or the scaled norm of its new gradient falls
    below `tolerance`, or once either is within its rounding error (float32 rarely reaches 1e-8 relative); done
    envs are frozen, so further iterations leave them bitwise unchanged. The gradient test stops an env whose step
    landed on the minimum (exact line search on a piecewise-quadratic cost) without one more iteration.
    """
    p = point
    H = M + gram(rows.J, p.hdiag)
    if p.Hc is not None:
        Jc = rows.J[:, rows.nr - 3 * rows.nc:].unflatten(1, (rows.nc, 3))  # (B, nc, 3, nv)
        H = H + row_sum(matmul(Jc.transpose(-1, -2), matmul(p.Hc, Jc)))
    direction = -solve_spd(H, p.grad)
    Jp = matvec(rows.J, direction)
    alpha = line_search(rows, p.jar, Jp, (direction * p.Mdiff).sum(-1), (direction * matvec(M, direction)).sum(-1),
                        ls_iterations, ls_tolerance)
    new = _Point.at(rows, M, qacc_smooth, p.qacc + alpha[:, None] * direction)
    improved = (new.cost < p.cost) & ~done  # False for NaN (a failed factorisation)
    eps = torch.finfo(p.cost.dtype).eps
    gain = p.cost - new.cost  # the cost is a sum of non-negative terms: its rounding error is ~eps |cost|
    small = (gain * scale < tolerance) | (gain <= ROUNDING_FACTOR * eps * p.cost.abs()) | ~improved
    gnorm = torch.sqrt((new.grad * new.grad).sum(-1))
    mag = torch.sqrt((new.Mdiff * new.Mdiff).sum(-1)) + torch.sqrt(((new.Mdiff - new.grad) ** 2).sum(-1))
    flat = (gnorm * scale < tolerance) | (gnorm <= ROUNDING_FACTOR * eps * mag)
    return new.where(improved, p), done | small | (improved & flat)


def solve(rows: ConstraintRows, M, qacc_smooth, qacc_warm, iterations: int, tolerance: float, meaninertia: float,
          ls_iterations: int = 50, ls_tolerance: float = 1e-10):
    """Newton's method on the constraint cost. Returns (qacc (B, nv), efc_force (B, nr)).

    Each iteration runs on the envs not yet done only (frozen envs would not change; an env's iteration depends on
    its own rows only), and the loop stops once every env is done.
    """
    B, nv = qacc_smooth.shape
    warm = _Point.at(rows, M, qacc_smooth, qacc_warm)
    smooth = _Point.at(rows, M, qacc_smooth, qacc_smooth)
    point = warm.where(warm.cost < smooth.cost, smooth)
    done = torch.zeros(B, dtype=torch.bool, device=qacc_smooth.device)
    scale = 1.0 / (meaninertia * max(1, nv))
    for _ in range(iterations):
        idx = torch.nonzero(~done).flatten()  # iterate the envs still running only (one host sync)
        if idx.numel() == 0:
            break
        if idx.numel() == B:
            point, done = newton_iteration(rows, M, qacc_smooth, point, done, scale, tolerance, ls_iterations,
                                           ls_tolerance)
            continue
        pick = lambda x: x.index_select(0, idx)  # noqa: E731
        part, d = newton_iteration(rows.take(idx), pick(M), pick(qacc_smooth), point.take(idx), pick(done), scale,
                                   tolerance, ls_iterations, ls_tolerance)
        point, done = point.put(idx, part), done.index_copy(0, idx, d)
    return point.qacc, point.force

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

The solver of this cost (Newton iterations with MuJoCo's line search) is in newton.py and line_search.py.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from ...errors import InvalidInputError
from .linalg import const, matvec, row_sum, slot_scatter, weighted_row_sum

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
    # Column structure of the last S * per rows (contacts, on models of `linalg.SPARSE_MIN_DOFS` dofs or more): S
    # slots of `per` consecutive rows whose J entries are zero outside the slot's columns (dofs of the two bodies'
    # chains), `nv` padding, and those entries; J x, J^T f and J^T D J use them (`linalg.slot_gram`). None: J is
    # dense.
    cols: torch.Tensor | None = None  # (B, S, K) int64
    Jc: torch.Tensor | None = None  # (B, S, per, K) J at cols (0 at padding)
    per: int = 0

    @staticmethod
    def cat(parts: list["ConstraintRows"]) -> "ConstraintRows":
        """Rows of several groups in one set; the groups must be given in kind order."""
        parts = [p for p in parts if p is not None]
        if any(p.cols is not None for p in parts[:-1]):
            raise InvalidInputError("only the last group of constraint rows (the contacts) may carry column "
                                    "structure; pass the groups in kind order with the contacts last")
        first = lambda name: next((getattr(p, name) for p in parts if getattr(p, name) is not None), None)  # noqa: E731
        return ConstraintRows(torch.cat([p.J for p in parts], 1), torch.cat([p.aref for p in parts], 1),
                              torch.cat([p.D for p in parts], 1), torch.cat([p.valid for p in parts], 1),
                              ne=sum(p.ne for p in parts), nf=sum(p.nf for p in parts), nc=sum(p.nc for p in parts),
                              floss=first("floss"), mu=first("mu"), friction=first("friction"),
                              cols=parts[-1].cols, Jc=parts[-1].Jc, per=parts[-1].per)

    def take(self, idx: torch.Tensor) -> "ConstraintRows":
        """The rows of envs `idx` (a gather along the env dim; each env's values are copied unchanged)."""
        pick = lambda x: None if x is None else x.index_select(0, idx)  # noqa: E731
        return dataclasses.replace(self, J=pick(self.J), aref=pick(self.aref), D=pick(self.D), valid=pick(self.valid),
                                   floss=pick(self.floss), mu=pick(self.mu), friction=pick(self.friction),
                                   cols=pick(self.cols), Jc=pick(self.Jc))

    @property
    def nhead(self) -> int:
        """Rows before the structured ones (all rows when there are none)."""
        return self.nr if self.cols is None else self.nr - self.cols.shape[1] * self.per

    def mv(self, x: torch.Tensor) -> torch.Tensor:
        """`J x` for `x (B, nv)` → `(B, nr)`; structured rows from their columns only."""
        if self.cols is None:
            return matvec(self.J, x)
        head = self.nhead
        xs = torch.cat((x, x.new_zeros(x.shape[0], 1)), 1).gather(1, self.cols.flatten(1)).view(self.cols.shape)
        tail = (self.Jc * xs[:, :, None, :]).sum(-1).flatten(1)  # (B, S per)
        return torch.cat((matvec(self.J[:, :head], x), tail), 1) if head else tail

    def joint_force(self, force: torch.Tensor) -> torch.Tensor:
        """`J^T force`: row forces `(B, nr)` as generalized forces `(B, nv)` (summed as `row_sum`, rows of zero force
        left out: `linalg.weighted_row_sum`; structured rows
        slot by slot with `linalg.slot_scatter`)."""
        if self.cols is None:
            return weighted_row_sum(self.J, force)
        head, (B, S, per, K) = self.nhead, self.Jc.shape
        fs = force[:, head:].unflatten(1, (S, per))
        per_slot = fs[..., 0, None] * self.Jc[:, :, 0]
        for r in range(1, per):
            per_slot = per_slot + fs[..., r, None] * self.Jc[:, :, r]
        tail = slot_scatter(per_slot, self.cols, self.valid[:, head:].unflatten(1, (S, per)).any(-1), self.J.shape[2])
        return weighted_row_sum(self.J[:, :head], force[:, :head]) + tail if head else tail

    @property
    def nr(self) -> int:
        return self.J.shape[1]

    @property
    def inequality_span(self) -> tuple[int, int]:
        """(first, end) row index of the inequality rows (limits, pyramidal / frictionless contacts): after the
        equality and friction rows, before the elliptic cones' 3-row blocks."""
        return self.ne + self.nf, self.nr - 3 * self.nc

    def packed(self, truncate: bool | None = None) -> tuple["ConstraintRows", torch.Tensor | None]:
        """(rows, perm (B, n) int64): each env's inequality rows (limits, pyramidal / frictionless contacts) in a
        stable valid-first order, the other kinds where they are; row j of the result is row perm[:, j] of `self`.
        Run eagerly (`truncate` None: unless traced), the inequality rows past the most any env has valid are left
        out, so the solve's row terms, J x and J p run over the rows in use, not over every slot (humanoid at 4096
        envs: a max of ~44 of 82). Where no env needs it, or with column structure (`cols`), `(self, None)`.

        An env's order follows its own `valid` only, and the rows left out are invalid in every env (exact zeros in
        every sum over rows, `linalg.row_sum`), so an env's solve does not depend on its batch, traced or eager.
        `unpack` returns row values `(B, n)` to the slots of `self`."""
        lo, hi = self.inequality_span
        if self.cols is not None or hi - lo < 1:
            return self, None
        truncate = not torch.compiler.is_compiling() if truncate is None else truncate
        seg = self.valid[:, lo:hi]
        order = torch.argsort((~seg).to(torch.int8), dim=1, stable=True) + lo  # (B, hi - lo), valid first
        keep = max(1, int(seg.sum(1).max())) if truncate and seg.shape[0] else hi - lo
        B, dev = seg.shape[0], seg.device
        parts = [torch.arange(lo, device=dev).expand(B, lo)] if lo else []
        parts.append(order[:, :keep])
        if hi < self.nr:
            parts.append(torch.arange(hi, self.nr, device=dev).expand(B, self.nr - hi))
        perm = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        pick = lambda x: x.gather(1, perm)  # noqa: E731
        J = self.J.gather(1, perm[..., None].expand(-1, -1, self.J.shape[2]))
        return dataclasses.replace(self, J=J, aref=pick(self.aref), D=pick(self.D), valid=pick(self.valid)), perm

    def unpack(self, x: torch.Tensor, perm: torch.Tensor | None) -> torch.Tensor:
        """Row values `x (B, n)` of `packed()`'s rows at the slots of `self` `(B, nr)` (0 at the rows left out)."""
        if perm is None:
            return x
        return x.new_zeros(x.shape[0], self.nr).scatter(1, perm, x)


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


@functools.lru_cache(maxsize=64)
def _row_kinds(ne: int, nf: int, nc: int, nr: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(nr,) bool masks of the rows that act whatever their sign (equality, friction) and of the inequality rows
    (limits, pyramidal and frictionless contacts), for rows ordered [equality | friction | inequality | cone]."""
    idx = torch.arange(nr, device=device)
    return idx < ne + nf, (idx >= ne + nf) & (idx < nr - 3 * nc)


def row_terms(rows: ConstraintRows, jar: torch.Tensor):
    """s(jar) per env (B,), the row forces -ds/djar (B, nr), the diagonal Hessian d2s/djar2 of scalar rows (B, nr)
    and the cones' 3x3 Hessians (B, nc, 3, 3) or None."""
    zero = const(0.0, jar)
    D = torch.where(rows.valid, rows.D, zero)
    ne, nf, nc, nr = rows.ne, rows.nf, rows.nc, rows.nr
    quad = const(0.5, jar) * D * jar * jar
    force = -D * jar
    always, inequality = _row_kinds(ne, nf, nc, nr, jar.device)
    active = rows.valid & (always | (inequality & (jar < 0)))  # friction rows: quadratic zone, see below
    cost_rows = torch.where(active, quad, zero)
    force = torch.where(active, force, zero)
    hdiag = torch.where(active, D, zero)
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


def curvature(rows: ConstraintRows, hdiag, Hc, Jp):
    """sum_i h_i (J_i p)^2 + sum_cones (J_c p)^T H_c (J_c p): the constraint part of p^T Hess p, (B,)."""
    out = row_sum(hdiag * Jp * Jp)
    if Hc is not None:
        v = Jp[:, rows.nr - 3 * rows.nc:].reshape(Jp.shape[0], rows.nc, 3)
        out = out + row_sum((v * matvec(Hc, v)).sum(-1))
    return out

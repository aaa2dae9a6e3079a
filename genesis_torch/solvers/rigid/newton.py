"""The batched Newton solver of MuJoCo's convex primal constraint problem (constraints.py has the cost).

Newton iterations with MuJoCo's cone Hessian for elliptic contacts and MuJoCo's line search (line_search.py); each env
freezes once its scaled improvement or gradient falls below `tolerance` (MuJoCo's criteria), so an env's result does
not depend on the others. The starting point is the better of the warm start (state) and the unconstrained `a0`, as
MuJoCo.
"""

from __future__ import annotations

import dataclasses

import torch

from .constraints import ROUNDING_FACTOR, ConstraintRows, row_terms
from .line_search import line_search
from .linalg import ROW_BLOCK, const, gram, matmul, matvec, row_sum, slot_gram, solve_spd

__all__ = ["solve", "solve_fixed", "newton_iteration", "hessian", "step_done"]


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
        jar = rows.mv(qacc) - rows.aref
        s, force, hdiag, Hc = row_terms(rows, jar)
        Mdiff = matvec(M, qacc - qacc_smooth)
        cost = const(0.5, qacc) * ((qacc - qacc_smooth) * Mdiff).sum(-1) + s
        return _Point(qacc, cost, jar, force, hdiag, Hc, Mdiff, Mdiff - rows.joint_force(force))

    def where(self, keep: torch.Tensor, other: "_Point") -> "_Point":
        """Per env (B,): self where `keep`, else `other`."""
        pick = lambda a, b: None if a is None else torch.where(keep.view(-1, *[1] * (a.dim() - 1)), a, b)  # noqa: E731
        return type(self)(*(pick(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)))

    def take(self, idx: torch.Tensor) -> "_Point":
        return type(self)(*(None if (v := getattr(self, f.name)) is None else v.index_select(0, idx)
                            for f in dataclasses.fields(self)))

    def put(self, idx: torch.Tensor, part: "_Point") -> "_Point":
        """A copy with envs `idx` replaced by `part` (out of place, differentiable)."""
        return type(self)(*(None if (v := getattr(self, f.name)) is None else
                            v.index_copy(0, idx, getattr(part, f.name)) for f in dataclasses.fields(self)))


def newton_iteration(rows: ConstraintRows, M, qacc_smooth, point: _Point, done, scale, tolerance: float,
                     ls_iterations: int = 50, ls_tolerance: float = 0.01, first: bool = True, ls_budget=None):
    """One Newton step with line search from `point` for the envs not `done`; returns (point, done). `scale` (B,) is
    1 / sum_i M_ii (MuJoCo's improvement and gradient scaling).

    MuJoCo 4's criteria, measured on MuJoCo 4.0.1: after a step, an env is done when the scaled improvement or the
    scaled gradient norm falls below `tolerance`, and - from the second iteration on - when the improvement the next
    Newton step predicts, scale g^T H^-1 g / 2, does (with tolerance 1e-8 or 1e-9 MuJoCo stops before a third
    iteration that would gain 8.4e-10, with 1e-10 it takes it; a first iteration gaining 8.9e-10 is always taken).
    A gain within its rounding error (float32 rarely reaches 1e-8 relative) counts as none. Done envs are frozen, so
    further iterations leave them bitwise unchanged.

    `ls_budget`: the line search's traceable form (`line_search.line_search(budget=...)`); then returns (point,
    done, incomplete (B,) bool: envs not done whose line search needed more rounds than the budget).
    """
    p = point
    H = hessian(rows, M, p.hdiag, p.Hc)
    direction = -solve_spd(H, p.grad)
    if not first:  # the Newton decrement: the improvement this step would bring
        done = done | (const(-0.5, scale) * (direction * p.grad).sum(-1) * scale < tolerance)
    Jp = rows.mv(direction)
    pnorm = torch.sqrt((direction.detach() ** 2).sum(-1))  # compared only: no gradient through sqrt at 0
    alpha = line_search(rows, p.jar, Jp, (direction * p.Mdiff).sum(-1), (direction * matvec(M, direction)).sum(-1),
                        pnorm, scale, ls_iterations, tolerance, ls_tolerance, ls_budget)
    if ls_budget is not None:
        alpha, incomplete = alpha
    new = _Point.at(rows, M, qacc_smooth, p.qacc + alpha[:, None] * direction)
    improved = (new.cost < p.cost) & ~done  # False for NaN (a failed factorisation)
    out = new.where(improved, p), done | step_done(p, new, improved, scale, tolerance)
    return out if ls_budget is None else (*out, incomplete & ~done)


def hessian(rows: ConstraintRows, M, hdiag, Hc):
    """The cost's Hessian M + J^T diag(hdiag) J (+ the elliptic cones' J_c^T Hc J_c), `(B, nv, nv)`: dense sums
    over rows, or for rows with column structure (`rows.cols`) the dense rows' sums plus `linalg.slot_gram` of the
    structured ones (MuJoCo likewise forms H from its sparse J, engine_solver.c)."""
    if rows.cols is None:
        H = M + gram(rows.J, hdiag)
        if Hc is not None:
            Jc = rows.J[:, rows.nr - 3 * rows.nc:].unflatten(1, (rows.nc, 3))  # (B, nc, 3, nv)
            H = H + row_sum(matmul(Jc.transpose(-1, -2), matmul(Hc, Jc)))
        return H
    head = rows.nhead  # the structured rows are at the end
    H = M + gram(rows.J[:, :head], hdiag[:, :head]) if head else M
    return H + slot_gram(rows.Jc, hdiag[:, head:], rows.cols, rows.valid[:, head:], rows.J.shape[2], Hc)


def step_done(p: _Point, new: _Point, improved, scale, tolerance: float) -> torch.Tensor:
    """(B,) bool: the envs whose solve ends after the step from `p` to `new` (`improved` where it was taken): no
    improvement, or MuJoCo's scaled improvement or gradient norm below `tolerance`, or either within its own rounding
    error (float32 rarely reaches MuJoCo's absolute tolerances)."""
    noise = const(ROUNDING_FACTOR * torch.finfo(p.cost.dtype).eps, p.cost)
    gain = p.cost - new.cost  # the cost is a sum of non-negative terms: its rounding error is ~eps |cost|
    small = (gain * scale < tolerance) | (gain <= noise * p.cost.abs()) | ~improved
    gnorm = torch.sqrt((new.grad * new.grad).sum(-1))
    mag = torch.sqrt((new.Mdiff * new.Mdiff).sum(-1)) + torch.sqrt(((new.Mdiff - new.grad) ** 2).sum(-1))
    flat = (gnorm * scale < tolerance) | (gnorm <= noise * mag)
    return small | (improved & flat)


def _start(rows: ConstraintRows, M, qacc_smooth, qacc_warm, start=None):
    """(starting point, scale (B,)) of a solve: the better of the warm start and the unconstrained `qacc_smooth`, as
    MuJoCo (then `start(point, M)` when given), and MuJoCo 4's scaling by the inertia of the solved dofs,
    1 / sum_i M_ii (measured: its improvement statistics equal (cost decrease) / trace(M) of the current
    configuration, not / (meaninertia nv))."""
    warm = _Point.at(rows, M, qacc_smooth, qacc_warm)
    smooth = _Point.at(rows, M, qacc_smooth, qacc_smooth)
    point = warm.where(warm.cost < smooth.cost, smooth)
    point = point if start is None else start(point, M)
    return point, 1.0 / torch.diagonal(M, dim1=-2, dim2=-1).sum(-1).detach()


def solve(rows: ConstraintRows, M, qacc_smooth, qacc_warm, iterations: int, tolerance: float,
          ls_iterations: int = 50, ls_tolerance: float = 0.01, iteration=None, start=None):
    """Newton's method (or `iteration`, e.g. `cg.cg_iteration` from `start(point, M)`) on the constraint cost.
    Returns (qacc (B, nv), efc_force (B, nr)).

    Each iteration runs on the envs not yet done only (frozen envs would not change; an env's iteration depends on
    its own rows only), and the loop stops once every env is done. Each env's rows in use come first
    (`ConstraintRows.packed`), and from `BUCKET_MIN_ENVS` envs on, the envs are solved in groups of like row counts
    (`_buckets`), each over the rows its envs use: an env's solve does not depend on the others, so grouping
    changes no bit.
    """
    args = (iterations, tolerance, ls_iterations, ls_tolerance, iteration, start)
    groups = _buckets(rows)
    if groups is None:
        return _solve(rows, M, qacc_smooth, qacc_warm, *args)
    qacc, force = torch.empty_like(qacc_smooth), rows.aref.new_empty(rows.aref.shape)
    for idx in groups:
        pick = lambda x: x.index_select(0, idx)  # noqa: E731
        q, f = _solve(rows.take(idx), pick(M), pick(qacc_smooth), pick(qacc_warm), *args)
        qacc, force = qacc.index_copy(0, idx, q), force.index_copy(0, idx, f)
    return qacc, force


# From this many envs on, `solve` groups envs by their number of inequality rows in use, in widths of ROW_BLOCK
# rows; a group of fewer than BUCKET_MIN_GROUP envs joins the next wider one (below, its ops' dispatch outweighs the
# rows it saves).
BUCKET_MIN_ENVS = 256
BUCKET_MIN_GROUP = 128


def _buckets(rows: ConstraintRows) -> list[torch.Tensor] | None:
    """The env indices of each group of `solve` (None: one group), eager only."""
    B = rows.valid.shape[0]
    lo, hi = rows.inequality_span
    if B < BUCKET_MIN_ENVS or rows.cols is not None or hi - lo <= ROW_BLOCK or torch.compiler.is_compiling():
        return None
    width = (rows.valid[:, lo:hi].sum(1) + (ROW_BLOCK - 1)) // ROW_BLOCK  # (B,) blocks of rows in use
    sizes = torch.bincount(width, minlength=1).tolist()
    groups, pending = [], 0
    for w, n in enumerate(sizes):
        pending += n
        if pending >= BUCKET_MIN_GROUP or (w == len(sizes) - 1 and pending):
            groups.append(w)
            pending = 0
    if len(groups) < 2:
        return None
    bounds = torch.as_tensor(groups, device=width.device)
    which = torch.bucketize(width, bounds)  # the group of each env: the first bound >= its width
    return [torch.nonzero(which == g).flatten() for g in range(len(groups))]


def _solve(rows: ConstraintRows, M, qacc_smooth, qacc_warm, iterations: int, tolerance: float,
           ls_iterations: int = 50, ls_tolerance: float = 0.01, iteration=None, start=None):
    """`solve` on one group of envs."""
    iteration = newton_iteration if iteration is None else iteration
    B = qacc_smooth.shape[0]
    slots, (rows, perm) = rows, rows.packed()
    point, scale = _start(rows, M, qacc_smooth, qacc_warm, start)
    done = torch.zeros(B, dtype=torch.bool, device=qacc_smooth.device)
    for k in range(iterations):
        idx = torch.nonzero(~done).flatten()  # iterate the envs still running only (one host sync)
        if idx.numel() == 0:
            break
        if idx.numel() == B:
            point, done = iteration(rows, M, qacc_smooth, point, done, scale, tolerance, ls_iterations,
                                    ls_tolerance, first=k == 0)
            continue
        pick = lambda x: x.index_select(0, idx)  # noqa: E731
        part, d = iteration(rows.take(idx), pick(M), pick(qacc_smooth), point.take(idx), pick(done),
                            pick(scale), tolerance, ls_iterations, ls_tolerance, first=k == 0)
        point, done = point.put(idx, part), done.index_copy(0, idx, d)
    return point.qacc, slots.unpack(point.force, perm)


def solve_fixed(rows: ConstraintRows, M, qacc_smooth, qacc_warm, iterations: int, tolerance: float,
                ls_iterations: int = 50, ls_tolerance: float = 0.01, iteration=None, start=None, *, max_iterations: int,
                ls_budget: tuple[int, int]):
    """`solve` in a traceable form (for `torch.compile`: no host sync, no data-dependent control flow, static
    shapes): exactly `iterations` iterations on all envs, each env frozen once done (`torch.where`, as `solve`'s
    full-batch iterations), line searches of at most `ls_budget` rounds (`line_search.line_search`).

    Returns (qacc (B, nv), efc_force (B, nr), complete () bool). `complete` is True when every env ended as the
    data-dependent `solve` would end it (done within `iterations`, or `iterations` is the option's cap
    `max_iterations`, and no line search ran out of its budget): then the result is `solve`'s, env by env (to
    rounding between compiled and eager kernels). Otherwise the caller must redo the solve with `solve`.
    """
    iteration = newton_iteration if iteration is None else iteration
    B = qacc_smooth.shape[0]
    slots, (rows, perm) = rows, rows.packed()
    point, scale = _start(rows, M, qacc_smooth, qacc_warm, start)
    done = torch.zeros(B, dtype=torch.bool, device=qacc_smooth.device)
    incomplete = torch.zeros_like(done)
    n = min(iterations, max_iterations)
    for k in range(n):
        point, done, inc = iteration(rows, M, qacc_smooth, point, done, scale, tolerance, ls_iterations,
                                     ls_tolerance, first=k == 0, ls_budget=ls_budget)
        incomplete = incomplete | inc
    finished = done if n < max_iterations else torch.ones_like(done)
    return point.qacc, slots.unpack(point.force, perm), (finished & ~incomplete).all()

"""MuJoCo's line search of the Newton constraint solver, batched over envs.

The search minimises the constraint cost f(qacc + alpha p) along a Newton direction p with the algorithm of MuJoCo's
`CGsearch` (engine_solver.c): a Newton step from alpha = 0, a one-sided run of Newton steps until the derivative
changes sign, then a bracketed search that tries the two bracket points' Newton steps and the midpoint. Every cost
evaluation counts towards `ls_iterations`, so a capped search stops where MuJoCo's does (the DM-control suite runs
with ls_iterations = 5). A point is converged when |f'(alpha)| < gtol = tolerance * ls_tolerance * |p| / scale
(scale = 1 / sum_i M_ii, MuJoCo 4.0.1's, see newton.py), or when |f'| is within the rounding error of its own
evaluation (float32 rarely reaches MuJoCo's absolute gtol).

MuJoCo 4.0.1 keeps the first Newton point even when its cost exceeds that of alpha = 0 (measured: with that
fallback the DM-control example of tests/rigid/test_mjcf_options.py takes 6 evaluations where MuJoCo takes 5 and
ends elsewhere; without it, the same 5 evaluations and qacc within 4e-14 of MuJoCo's).

Each env runs its own search (a state machine over `(B,)` tensors); envs that finish keep their result, so an
env's alpha does not depend on the others.
"""

from __future__ import annotations

import dataclasses

import torch

from .constraints import ROUNDING_FACTOR, ConstraintRows, curvature, row_terms
from .linalg import const, row_sum

MJ_MINVAL = 1e-15  # MuJoCo's mjMINVAL


@dataclasses.dataclass
class _Pnt:
    """Evaluation points of each env (B,): step, cost (up to a per-env constant), f', f'', converged."""

    alpha: torch.Tensor
    cost: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor
    conv: torch.Tensor

    def where(self, mask: torch.Tensor, other: "_Pnt") -> "_Pnt":
        """Per env: self where `mask`, else `other`."""
        return _Pnt(*(torch.where(mask, getattr(self, f.name), getattr(other, f.name))
                      for f in dataclasses.fields(self)))

    def newton(self) -> torch.Tensor:
        """The Newton step from this point: alpha - f' / f''."""
        return self.alpha - self.d1 / self.d2


def line_search(rows: ConstraintRows, jar, Jp, gauss_slope, pMp, pnorm, scale: float, iterations: int,
                tolerance: float, ls_tolerance: float, budget: tuple[int, int] | None = None):
    """Step alpha (B,) along p (MuJoCo's `CGsearch`). Args (B, ...): jar = J qacc - aref, Jp = J p,
    gauss_slope = p^T M (qacc - a0), pMp = p^T M p, pnorm = |p|. Returns alpha (B,); 0 where p is too small or no
    point improved on alpha = 0.

    `budget=(n_one_sided, n_bracket)`: the traceable form (no host sync, no data-dependent loop; for
    `torch.compile`): at most that many rounds of the one-sided and of the bracketed search, every round masked
    per env exactly as the eager loop's (an env that finished is frozen). Returns (alpha, incomplete (B,) bool):
    `incomplete` marks the envs that needed more rounds (their alpha is not the eager search's; the caller
    must redo them), elsewhere alpha is the eager search's."""
    incomplete = torch.zeros_like(pnorm, dtype=torch.bool)
    eps = torch.finfo(jar.dtype).eps
    gtol = tolerance * ls_tolerance * pnorm / scale
    count = torch.zeros_like(pMp, dtype=torch.long)
    # the Python scalars of `evaluate` as tensors of the dtype (the same numbers, without a conversion per use)
    minval, noise_factor, half = const(MJ_MINVAL, jar), const(ROUNDING_FACTOR * eps, jar), const(0.5, jar)

    def evaluate(alpha, mask) -> _Pnt:
        """The point at `alpha`; counts one evaluation for the envs in `mask`."""
        nonlocal count
        cost, force, hdiag, Hc = row_terms(rows, jar + alpha[:, None] * Jp)
        fJp = force * Jp
        d1 = gauss_slope + alpha * pMp - row_sum(fJp)
        d2 = pMp + curvature(rows, hdiag, Hc, Jp)
        d2 = torch.where(d2 > 0, d2, minval)  # convex: only rounding can make it vanish (MuJoCo's guard)
        noise = noise_factor * (gauss_slope.abs() + alpha * pMp + row_sum(fJp.abs()))
        count = count + mask.long()
        return _Pnt(alpha, alpha * gauss_slope + half * alpha * alpha * pMp + cost, d1, d2,
                    d1.abs() < torch.maximum(gtol, noise))

    zero = torch.zeros_like(pMp)
    done = pnorm < MJ_MINVAL  # search vector too small: alpha = 0
    out = zero
    running = ~done
    p0 = evaluate(zero, running)
    p1 = evaluate(p0.newton(), running)

    def finish(mask, alpha):
        nonlocal done, out
        out = torch.where(mask & ~done, alpha, out)
        done = done | mask

    finish(p1.conv, p1.alpha)  # initial convergence
    if budget is None and bool(done.all()):  # every env has its alpha: what follows would change no env's result
        return out
    descend = p1.d1 < 0  # search direction along alpha (MuJoCo's dir = +1)

    # one-sided search: Newton steps while the derivative keeps its sign
    p2, p2_set = p1, torch.zeros_like(done)
    rounds = 0
    while True:
        more = ~done & ~p1.conv & torch.where(descend, p1.d1 < 0, p1.d1 > 0) & (count < iterations)
        if budget is None and not bool(more.any()):
            break
        if budget is not None and rounds == budget[0]:
            incomplete = incomplete | more
            break
        rounds += 1
        p2, p2_set = p1.where(more, p2), p2_set | more
        p1 = evaluate(p1.newton(), more).where(more, p1)
        finish(more & p1.conv, p1.alpha)
    finish(count >= iterations, p1.alpha)  # could not bracket
    finish(~p2_set, p1.alpha)  # no bracket (MuJoCo: should not occur)
    if budget is None and bool(done.all()):
        return out

    # bracketed search between p1 and p2
    p2_next = p1
    p1_next = evaluate(p1.newton(), ~done)
    rounds = 0
    while True:
        active = ~done & (count < iterations)
        if budget is None and not bool(active.any()):
            break
        if budget is not None and rounds == budget[1]:
            incomplete = incomplete | active
            break
        rounds += 1
        mid = evaluate(0.5 * (p1.alpha + p2.alpha), active)
        candidates = (p1_next, p2_next, mid)
        best, best_set = mid, torch.zeros_like(done)
        for c in candidates:  # the converged candidate of least cost
            take = c.conv & (~best_set | (c.cost < best.cost))
            best, best_set = c.where(take, best), best_set | take
        finish(active & best_set, best.alpha)
        active = active & ~best_set
        p1, moved1 = _update_bracket(p1, candidates, active)
        p1_next = evaluate(p1.newton(), moved1).where(moved1, p1_next)
        p2, moved2 = _update_bracket(p2, candidates, active)
        p2_next = evaluate(p2.newton(), moved2).where(moved2, p2_next)
        finish(active & ~moved1 & ~moved2, mid.alpha)  # no update possible: numerical accuracy reached

    # out of evaluations: the better bracket point if it improved on alpha = 0
    best = torch.where((p1.cost <= p2.cost) & (p1.cost < p0.cost), p1.alpha,
                       torch.where((p2.cost <= p1.cost) & (p2.cost < p0.cost), p2.alpha, zero))
    finish(torch.ones_like(done), best)
    return out if budget is None else (out, incomplete)


def _update_bracket(p: _Pnt, candidates, active):
    """MuJoCo's `updateBracket`: move bracket point `p` to each candidate (in order) whose derivative has p's sign and
    a smaller magnitude. Returns (p, moved (B,))."""
    moved = torch.zeros_like(active)
    for c in candidates:
        take = active & (((p.d1 < 0) & (c.d1 < 0) & (p.d1 < c.d1)) | ((p.d1 > 0) & (c.d1 > 0) & (p.d1 > c.d1)))
        p, moved = c.where(take, p), moved | take
    return p, moved

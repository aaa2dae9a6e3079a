"""MuJoCo's conjugate-gradient solver of the convex primal constraint problem (`RigidOptions(constraint_solver=
gs.constraint_solver.CG)`, MuJoCo's `mjSOL_CG`), batched over envs.

MuJoCo's `mj_solPrimal` with `flg_Newton = 0` (engine_solver.c): the search direction starts at -M^-1 g (the gradient
preconditioned by the mass matrix) and is updated by Polak-Ribiere, beta = max(0, g^T (M^-1 g - M^-1 g_old) /
g_old^T M^-1 g_old); each step is MuJoCo's line search along it (line_search.py, the same as Newton's). An env stops
when its line search finds no improvement, or when the scaled improvement or gradient norm falls below `tolerance`
(scale = 1 / sum_i M_ii, as `newton.py`). The cost, its gradient and the warm start are Newton's (`newton.solve`
drives both); CG needs no constraint Hessian, only M's factorisation.
"""

from __future__ import annotations

import dataclasses

import torch

from .constraints import ConstraintRows
from .line_search import MJ_MINVAL, line_search
from .linalg import matvec, solve_spd
from .newton import _Point, step_done

__all__ = ["cg_start", "cg_iteration"]


@dataclasses.dataclass
class _CGPoint(_Point):
    """A `_Point` with CG's preconditioned gradient and search direction."""

    Mgrad: torch.Tensor = None  # (B, nv) M^-1 grad
    search: torch.Tensor = None  # (B, nv) the next line search's direction


def cg_start(point: _Point, M: torch.Tensor) -> _CGPoint:
    """CG's first point: the search direction -M^-1 grad (MuJoCo: "start both with preconditioned gradient")."""
    Mgrad = solve_spd(M, point.grad)
    fields = {f.name: getattr(point, f.name) for f in dataclasses.fields(_Point)}
    return _CGPoint(**fields, Mgrad=Mgrad, search=-Mgrad)


def cg_iteration(rows: ConstraintRows, M, qacc_smooth, p: _CGPoint, done, scale, tolerance: float,
                 ls_iterations: int = 50, ls_tolerance: float = 0.01, first: bool = True, ls_budget=None):
    """One CG step with MuJoCo's line search from `p` for the envs not `done`; returns (point, done) as
    `newton.newton_iteration` (`first` is unused: CG has no first-iteration rule; with `ls_budget`, also the
    envs whose line search ran out of it, as `newton_iteration`)."""
    d = p.search
    Jp = rows.mv(d)
    pnorm = torch.sqrt((d.detach() ** 2).sum(-1))  # compared only: no gradient through sqrt at 0
    alpha = line_search(rows, p.jar, Jp, (d * p.Mdiff).sum(-1), (d * matvec(M, d)).sum(-1), pnorm, scale,
                        ls_iterations, tolerance, ls_tolerance, ls_budget)
    if ls_budget is not None:
        alpha, incomplete = alpha
    new = _Point.at(rows, M, qacc_smooth, p.qacc + alpha[:, None] * d)
    Mgrad = solve_spd(M, new.grad)
    improved = (new.cost < p.cost) & (alpha != 0) & ~done  # MuJoCo: alpha = 0 (no improvement) ends the solve
    # Polak-Ribiere, reset to steepest (preconditioned) descent when negative
    beta = (new.grad * (Mgrad - p.Mgrad)).sum(-1) / torch.clamp((p.grad * p.Mgrad).sum(-1), min=MJ_MINVAL)
    search = -Mgrad + torch.clamp(beta, min=0.0)[:, None] * d
    fields = {f.name: getattr(new, f.name) for f in dataclasses.fields(_Point)}
    moved = _CGPoint(**fields, Mgrad=Mgrad, search=search)
    out = moved.where(improved, p), done | step_done(p, new, improved, scale, tolerance)
    return out if ls_budget is None else (*out, incomplete & ~done)

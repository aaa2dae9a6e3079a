"""Joint-space motion planning of a rigid entity: Genesis 1.4.5's `RigidEntity.plan_path` (docs/rigid.md, "Motion
planning"). The planners are in `rrt.py`, the collision test in `collision.py`."""
from __future__ import annotations

import math
import numbers

import torch

from ..errors import InvalidInputError, SceneStateError, UnsupportedFeatureError
from ..solvers.rigid.model import BALL, FREE
from . import rrt as _rrt
from .collision import CollisionChecker

PLANNERS = ("RRT", "RRTConnect")


def _int(what, v, lo):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise InvalidInputError(f"plan_path({what}={v!r}): expected an integer >= {lo}.")
    return int(v)


def _flag(what, v):
    if not isinstance(v, bool):
        raise InvalidInputError(f"plan_path({what}={v!r}): expected True or False.")
    return v


def _qpos(entity, value, n_sel, what):
    """`value` as `(n_sel, n_qs)` of the scene dtype: `(n_qs,)` applies to every selected env."""
    scene = entity._scene
    try:
        t = torch.as_tensor(value, dtype=scene.dtype, device=scene.device)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidInputError(f"plan_path({what}): expected numbers shaped ({entity.n_qs},), got {value!r}.") \
            from None
    n = entity.n_qs
    if tuple(t.shape) == (n,):
        t = t.expand(n_sel, n)
    if tuple(t.shape) != (n_sel, n):
        raise InvalidInputError(f"plan_path({what}): expected shape ({n},) or ({n_sel}, {n}) (one row per planned "
                                f"env), got {tuple(t.shape)}.")
    if not bool(torch.isfinite(t).all()):
        raise InvalidInputError(f"plan_path({what}): values must be finite (no NaN or inf).")
    return t.clone()


def _validate(entity, planner, max_nodes, resolution, timeout, max_retry, num_waypoints, flags, ee_link_name,
              with_entity):
    if planner not in PLANNERS:
        raise InvalidInputError(f"plan_path(planner={planner!r}): unknown planner; use one of {PLANNERS}.")
    _int("max_nodes", max_nodes, 3)
    _int("max_retry", max_retry, 0)
    _int("num_waypoints", num_waypoints, 2)
    for name, v in flags.items():
        _flag(name, v)
    for what, v in (("resolution", resolution), ("timeout", timeout)):
        if v is None and what == "timeout":
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
            raise InvalidInputError(f"plan_path({what}={v!r}): expected a positive finite number (seconds for "
                                    f"timeout, rad or m for resolution), or None for no timeout.")
    m = entity._solver.mj_model
    jt = m.jnt_type[entity._jnt_ids] if len(entity._jnt_ids) else []
    if any(t in (FREE, BALL) for t in jt):
        raise UnsupportedFeatureError(f"plan_path: {entity.name} has a free or ball joint; planning supports hinge "
                                      "and slide joints only (as Genesis). Fix the base (fixed=True) or plan another "
                                      "entity.")
    if (ee_link_name is None) != (with_entity is None):
        raise InvalidInputError("plan_path: ee_link_name and with_entity go together (the link that carries the "
                                "object, and the object); pass both or neither.")
    if with_entity is None:
        return None
    link = entity.get_link(ee_link_name)
    if getattr(with_entity, "_scene", None) is not entity._scene or not hasattr(with_entity, "_free_base_qs"):
        raise InvalidInputError("plan_path(with_entity=...): expected a rigid entity of the same scene.")
    if with_entity.n_links != 1 or with_entity._free_base_qs("plan_path") is None:
        raise UnsupportedFeatureError(f"plan_path(with_entity={with_entity.name}): only a single-link object with a "
                                      "free base can be carried (as Genesis: non-articulated objects).")
    return int(entity._body_ids[link.idx_local])


def plan_path(entity, qpos_goal, qpos_start=None, max_nodes=2000, resolution=0.05, timeout=None, max_retry=1,
              smooth_path=True, num_waypoints=300, ignore_collision=False, planner="RRTConnect", envs_idx=None,
              return_valid_mask=False, *, ee_link_name=None, with_entity=None):
    """Genesis' `RigidEntity.plan_path`: a collision-free joint-space path from `qpos_start` (the current qpos when
    None) to `qpos_goal`, `(n_qs,)` or `(n_envs_sel, n_qs)` (rad / m).

    Returns the path `(num_waypoints, n_envs_sel, n_qs)` (`(num_waypoints, n_qs)` with `n_envs=0`), first waypoint
    `qpos_start`, last `qpos_goal`, and with `return_valid_mask` the `(n_envs_sel,)` bool mask of the envs planned
    (a 0-dim tensor with `n_envs=0`). A failed env (no path within `max_nodes` nodes / `timeout` s after `1 +
    max_retry` tries, a goal outside the joint limits, or a final path with a colliding waypoint) gets a zero path
    and False. The geom pairs in contact at the start or at the goal are not collisions (Genesis' exclusion), so a
    goal in collision with an obstacle is planned to, as in Genesis. The scene state is not changed.
    """
    scene = entity._scene
    entity._require_built("plan_path")
    body = _validate(entity, planner, max_nodes, resolution, timeout, max_retry, num_waypoints,
                     {"smooth_path": smooth_path, "ignore_collision": ignore_collision,
                      "return_valid_mask": return_valid_mask}, ee_link_name, with_entity)
    if scene.n_envs == 0 and envs_idx is not None:
        raise InvalidInputError("plan_path(envs_idx=...): the scene has no batch (n_envs=0); leave envs_idx None.")
    envs = entity._envs(envs_idx)
    n_sel = len(envs)
    goal = _qpos(entity, qpos_goal, n_sel, "qpos_goal")
    start = entity.get_qpos(envs_idx=None)
    start = (start[None] if scene.n_envs == 0 else start)[envs].clone() if qpos_start is None else \
        _qpos(entity, qpos_start, n_sel, "qpos_start")
    lower, upper = entity.get_dofs_limit()
    lower, upper = (x[None] if scene.n_envs == 0 else x for x in (lower, upper))
    lower, upper = lower[envs], upper[envs]
    if not bool((torch.isfinite(lower) & torch.isfinite(upper)).all()):
        raise InvalidInputError(f"plan_path: {entity.name} has unlimited joints; the planner samples within the joint "
                                "limits, so give every joint a range (MJCF <joint range=... limited='true'>).")
    check_contacts = not ignore_collision and entity._solver.contact_model is not None
    eps = 1e-5 if scene.dtype == torch.float32 else 0.0  # Genesis' PENETRATION_EPS

    path = goal.new_zeros(num_waypoints, n_sel, entity.n_qs)
    valid = torch.zeros(n_sel, dtype=torch.bool, device=goal.device)
    in_limits = ((goal >= lower) & (goal <= upper)).all(-1)
    todo = in_limits.clone()
    with torch.no_grad():
        for _ in range(1 + max_retry):
            if not bool(todo.any()):
                break
            rows = todo.nonzero().reshape(-1)
            p, ok = _plan_once(entity, envs[rows], start[rows], goal[rows], lower[rows], upper[rows], planner,
                               max_nodes, resolution, timeout, smooth_path, num_waypoints, check_contacts, eps, body,
                               with_entity)
            path[:, rows] = torch.where(ok[None, :, None], p, path[:, rows])
            valid[rows] = ok
            todo[rows] = ~ok
    if scene.n_envs == 0:
        path, valid = path[:, 0], valid[0]
    return (path, valid) if return_valid_mask else path


def _plan_once(entity, envs, start, goal, lower, upper, planner, max_nodes, resolution, timeout, smooth_path,
               num_waypoints, check_contacts, eps, body, with_entity):
    """One try for the envs `envs`: ((num_waypoints, Bs, n_qs) path, (Bs,) planned)."""
    Bs = len(envs)
    if check_contacts:
        checker = CollisionChecker(entity, envs, eps, None if with_entity is None else (body, with_entity))
        checker.set_attachment(start)
        checker.exclude_contacts_at(goal, start)
    else:
        def checker(q):
            return torch.zeros(q.shape[:2], dtype=torch.bool, device=q.device)
    active = torch.ones(Bs, dtype=torch.bool, device=start.device)
    if not check_contacts:  # no obstacle: the straight segment is the shortest path
        line = torch.stack((start, goal), 1)
        out = _rrt.interpolate(line, torch.full((Bs,), 2, device=start.device), num_waypoints)
        return out.transpose(0, 1), active
    fn = _rrt.rrt if planner == "RRT" else _rrt.rrt_connect
    seq, length, failed = fn(checker, start, goal, lower, upper, active, max_nodes, resolution, timeout)
    ok = ~failed
    if smooth_path:
        seq = _rrt.shortcut(checker, seq, length, ok, resolution)
    out = _rrt.interpolate(seq, length, num_waypoints)  # (Bs, N, n)
    ok &= ~checker(out.transpose(0, 1)).any(0)
    out = torch.where(ok[:, None, None], out, 0.0)
    return out.transpose(0, 1), ok

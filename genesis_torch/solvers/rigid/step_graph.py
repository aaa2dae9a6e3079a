"""The whole rigid step (no contacts in the step) as one `torch.compile` graph: smooth stage, constraint rows, the
constraint solve in its traceable form (`newton.solve_fixed`) and the finish stage with the kinematics of the new
configuration. `RigidSolver.step` runs it, then checks one flag on the host: when some env needed more Newton
iterations or line-search rounds than the graph holds, that step is redone by the eager reference step (the graph's
result is dropped), so every step is the eager step's to rounding.

Collision detection's narrow phase stays eager (its broad phase keeps the pairs near in some env, a data-dependent
shape). The graph runs the broad phase only (`_near` of every candidate-pair group: bounding spheres / planes, then
bounding boxes where the group uses them, as `detect`) and reports whether any pair is near in any env; if one is,
the step is redone on the two-graph path (`RigidSolver._smooth` compiled, detection, rows and solve eager), and
the next step runs eager detection before deciding (`RigidSolver._graph_step`). A step without a near pair has
no contact, so leaving the contact rows out is `detect`'s own result (`empty_contact_set`).
"""

from __future__ import annotations

import dataclasses
import types

import torch

from ...options import constraint_solver
from . import cg, newton
from .kinematics import Kinematics
from .params import RigidParams
from .pipeline import constraint_stage, finish_stage, smooth_stage


def any_pair_near(cm, kin: Kinematics, groups=None, poses=None) -> torch.Tensor:
    """() bool: some candidate pair of `groups` (default: all of `cm`'s) passes the broad phase of
    `collision.detect.detect` in some env (traceable). `poses`: `geom_poses(cm, kin)` when known."""
    from .collision.detect import _near, geom_poses

    groups = cm.groups if groups is None else groups
    if not groups:
        return torch.zeros((), dtype=torch.bool, device=kin.xpos.device)
    gpos, gmat = geom_poses(cm, kin) if poses is None else poses
    return torch.cat([_near(cm, grp, gpos, gmat).flatten() for grp in groups]).any()


def contacts_in_graph(cm) -> bool:
    """Whether the graph detects `cm`'s contacts itself (`detect.detect_static`): some group has a static narrow
    phase and their slots per env are at most `GRAPH_MAX_SLOTS` (the rows and the solve over all of them run in every
    step). The other groups keep the broad-phase check and the redo."""
    from .collision.detect import static_plan

    if not CONTACTS_IN_GRAPH:
        return False
    plan = static_plan(cm)
    return bool(plan.static) and plan.slots <= GRAPH_MAX_SLOTS

#: Newton (or CG) iterations inside the graph. Franka holding a pose converges in 1 (measured, 1 and 4 envs, 50
#: steps: 46 solves, 46 iterations); a step needing more is redone eagerly.
GRAPH_ITERATIONS = 2
#: (one-sided, bracketed) line-search rounds inside the graph, after its first two evaluations.
GRAPH_LS_BUDGET = (1, 1)
#: whether graphs built from now on detect contacts themselves (`contacts_in_graph`). Off: measured on the 2-core CPU
#: (loaded), the ant graph with its 12 unrolled Newton iterations took 1,102 s to compile cold (413 s with a warm
#: cache) and stepped 1 env at 147 env-steps/s against eager's 185 (docs/rigid.md, "torch.compile"); a step with a
#: near pair then takes the redo
#: path as before. Set before building a scene.
CONTACTS_IN_GRAPH = False
#: with contacts in the graph (`contacts_in_graph`): the static groups' slots per env at most this (ant 17, humanoid
#: 35, go2.urdf without self-collision 93: 17 plane-cylinder pairs of 4; franka_cube's 282, capsule and box pairs of
#: the arm and the cube, and go2 with self-collision, 271 and GJK pairs, stay out: 1,128 rows in every step)
GRAPH_MAX_SLOTS = 96
#: Newton iterations and line-search rounds inside a graph with contact rows (`contacts_in_graph`); an env needing
#: more is redone eagerly (humanoid / ant, 8 envs x 60 steps: 0 redone; with 14 iterations and (3, 3) rounds 7 of
#: 60 humanoid steps, the line search the limit)
GRAPH_CONTACT_ITERATIONS = 12
GRAPH_CONTACT_LS_BUDGET = (4, 4)


def build_step_graph(solver, static_params: tuple[str, ...]):
    """The compiled step of `solver` (a `RigidSolver`): a function of (state tensors, params) returning (qpos, qvel,
    act, qacc, complete, near, link positions (B, nlinks, 3), link quaternions (B, nlinks, 4) of the new qpos,
    overflow (B,) int64): `complete` as `newton.solve_fixed`'s, `near` from `any_pair_near` (False without a contact
    model): with `contacts_in_graph`, the graph's contacts are `detect.detect_static`'s and `near` concerns only the
    other groups; `overflow`: contacts beyond `max_contacts` (0 without contacts in the graph).

    The graph computes the kinematics of its own qpos (forward kinematics twice per step, both fused): a step is then
    a function of the state alone, so a run continued from a checkpoint, a reset or another process is bitwise the
    uninterrupted one (kinematics carried over from the previous graph would be compiled FK's bits, while a loaded
    state's are eager FK's)."""
    m, o, dt, g, flags = solver.model, solver.options, solver.dt, solver.gravity, solver.flags
    names = [f.name for f in dataclasses.fields(RigidParams) if f.name not in static_params]
    cg_solve = o.constraint_solver == constraint_solver.CG
    iteration, start = (cg.cg_iteration, cg.cg_start) if cg_solve else (None, None)
    warmstart = solver.warmstart
    cm = solver.contact_model if flags.contact else None
    in_graph = cm is not None and contacts_in_graph(cm)
    if in_graph:
        from .collision.detect import detect_static, geom_poses, static_plan

        others = static_plan(cm).other
    iterations, ls_budget = (GRAPH_CONTACT_ITERATIONS, GRAPH_CONTACT_LS_BUDGET) if in_graph else \
        (GRAPH_ITERATIONS, GRAPH_LS_BUDGET)
    no_overflow = lambda q: torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # noqa: E731

    def step_fn(qpos, qvel, ctrl, act, mode, target, target_vel, xfrc, warm, any_damping, tensors):
        p = RigidParams(**dict(zip(names, tensors)), any_damping=any_damping)
        s = smooth_stage(m, p, g, dt, o.integrator, qpos, qvel, ctrl, act, mode, target, target_vel, xfrc=xfrc)
        kin = s.kin
        contacts, overflow = None, no_overflow(qpos)
        if in_graph:  # the static groups' contacts; the others' none unless `near`
            poses = geom_poses(cm, kin)
            near = any_pair_near(cm, kin, others, poses)
            contacts = detect_static(cm, kin, *poses)
            overflow = contacts.overflow
        elif cm is not None:
            near = any_pair_near(cm, kin)
        else:
            near = torch.zeros((), dtype=torch.bool, device=qpos.device)
        rows, _ = constraint_stage(m, cm if in_graph else None, flags, kin, qpos, qvel, dt, p, contacts)
        qacc, complete = s.qacc_smooth, torch.ones((), dtype=torch.bool, device=qpos.device)
        qfrc_total = s.qfrc_smooth
        if rows is not None:
            any_row = rows.valid.any(-1)
            solved, force, complete = newton.solve_fixed(
                rows, s.qM, s.qacc_smooth, warm if warmstart else s.qacc_smooth, iterations, o.tolerance,
                o.ls_iterations, o.ls_tolerance, iteration, start, max_iterations=o.iterations, ls_budget=ls_budget)
            qacc = torch.where(any_row[:, None], solved, s.qacc_smooth)
            qfrc_total = s.qfrc_smooth + rows.joint_force(force)
        qpos2, qvel2, act2, kin2 = finish_stage(m, dt, qpos, qvel, act, s.actuation.act_dot, qacc, qfrc_total, s.H,
                                                s.gyro, p.body_ipos, s.implicit_envs, p.body_pos, p.body_quat,
                                                p.body_iquat)
        return (qpos2, qvel2, act2, qacc, complete, near, kin2.xpos[:, 1:].contiguous(),
                kin2.xquat[:, 1:].contiguous(), overflow)

    # a code object of its own per solver: dynamo keeps its compiled graphs per code object and guards them on the
    # closure (this model and options), so solvers sharing one would recompile in turn and, past dynamo's
    # recompile limit (8), fail under fullgraph=True (measured on a toy closure: the 9th raised
    # FailOnRecompileLimitHit; with copies, 12 independent graphs)
    return own_code(step_fn)


def quiet_compile_warnings() -> None:
    """Silence two notes torch prints while compiling this solver's code, which say nothing a user can act on:
    dynamo tracing through `functools.lru_cache`d helpers (`constraints._row_kinds`, a function of Python ints:
    tracing it is exact) and inductor's own use of a deprecated torch function (FutureWarning from
    torch._inductor). Process-wide, for these messages only."""
    import warnings

    warnings.filterwarnings("ignore", message=r"Dynamo detected a call to a `functools\.lru_cache`",
                            category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\._inductor")


def own_code(fn):
    """`fn` with a copy of its code object (the same function; dynamo's graph cache of its own)."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def params_tensors(params: RigidParams, static_params: tuple[str, ...]) -> list:
    """The tensor fields of `params` in the order `build_step_graph`'s function takes them."""
    return [getattr(params, f.name) for f in dataclasses.fields(params) if f.name not in static_params]

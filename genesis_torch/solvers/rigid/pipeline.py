"""The stages of a rigid step as pure functions of tensors, so they can run eagerly or under `torch.compile`.

    smooth_stage: kinematics → inertias → M, bias, passive, actuation → qacc_smooth, implicit matrix
    constraint_stage: collision detection and the rows of equalities, frictionloss, limits and contacts
    (constraint solve: constraints.solve, data-dependent, runs only when some env has a row)
    finish_stage: implicit velocity update → integrate activations, velocities, positions → link poses
"""

from __future__ import annotations

import dataclasses

import torch

from ...options import integrator
from . import constraints
from .collision.contact_rows import contact_rows
from .collision.detect import ContactModel, ContactSet, detect
from .constraint_rows import equality_rows, friction_rows, joint_limit_rows, tendon_limit_rows
from .dynamics import (Actuation, actuation, applied_wrench_forces, bias_forces, body_inertias,
                       lone_free_bias_derivative, mass_matrix, passive_forces)
from .integrators import integrate_act, integrate_pos
from .kinematics import Kinematics, forward_kinematics
from .linalg import lu_solve, solve_spd
from .sparse_products import sparse_outer_sum
from .model import RigidModel
from .params import RigidParams


@dataclasses.dataclass
class Smooth:
    """Quantities of a configuration and velocity before constraints (MuJoCo's mjData fields of the same names)."""

    kin: Kinematics
    qM: torch.Tensor  # (B, nv, nv)
    qfrc_bias: torch.Tensor  # (B, nv)
    qfrc_passive: torch.Tensor  # (B, nv)
    actuation: Actuation
    qfrc_smooth: torch.Tensor  # (B, nv) passive + actuator - bias
    qacc_smooth: torch.Tensor  # (B, nv)
    H: torch.Tensor | None  # (B, nv, nv) matrix of the implicit velocity update, None when explicit
    gyro: torch.Tensor | None  # (B, nlf, 6, 6) extra implicit blocks of standalone free bodies (implicitfast)
    implicit_envs: torch.Tensor | None = None  # (1|B,) bool, envs that use H (Euler: those with damping); None: all


def implicit_matrix(model: RigidModel, params: RigidParams, kind: integrator, dt: float, qM, actn: Actuation):
    """H of the implicit velocity update H qacc = f, or None for explicit integration.

    Euler: M + dt diag(damping) (MuJoCo's implicit joint damping; None without damping in any env; an env without
    damping integrates explicitly, `params.euler_damped`, as MuJoCo decides per model). implicitfast:
    M - dt d(qfrc_passive + qfrc_actuator)/d(qvel), kept on MuJoCo's sparsity pattern of M (dofs on one chain):
    couplings between branches (e.g. through a fixed tendon) are dropped there, and so are they here.
    """
    if kind == integrator.Euler:
        if not params.any_damping:
            return None
        return qM + dt * torch.diag_embed(params.dof_damping)
    if kind == integrator.implicitfast:
        moment = model.act_moment  # (nu, nv): sum_a moment[a, i] dforce[a] moment[a, j]
        deriv = params.passive_dvel + sparse_outer_sum(actn.dforce_dvel, moment)  # nonzero terms only, same bits
        deriv = deriv + torch.diag_embed(actn.dctrl_dvel)
        return qM - dt * torch.where(model.deriv_mask, deriv, 0.0)
    return None


@dataclasses.dataclass(frozen=True)
class ConstraintFlags:
    """Which constraint kinds a model instantiates (MuJoCo's disable flags and the scene's options)."""

    equality: bool
    frictionloss: bool
    limit: bool
    contact: bool


def constraint_stage(model: RigidModel, cm: ContactModel | None, flags: ConstraintFlags, kin: Kinematics, qpos, qvel,
                     dt: float, params: RigidParams | None = None, contacts: ContactSet | None = None
                     ) -> tuple[constraints.ConstraintRows | None, ContactSet | None]:
    """All constraint rows of a configuration and velocity (None when the model has none) and its contacts.
    `params`: per-env frictionloss and contact friction (the model's when None). The rows use `dt` only for MuJoCo's
    refsafe floor on solref time constants (2 dt), which `<flag refsafe="disable"/>` removes. `contacts`: `detect`'s
    result for `kin` when already known (then not detected again)."""
    dt = 0.0 if "refsafe" in model.disabled else dt
    parts = []
    if flags.equality and model.eq.nrows:
        parts.append(equality_rows(model, kin, qpos, qvel, dt, None if params is None else params.link_invweight))
    if flags.frictionloss and model.fric_loss.numel():
        parts.append(friction_rows(model, qvel, dt, *((None, None) if params is None else
                                                      (params.dof_frictionloss, params.dof_invweight))))
    if flags.limit and model.nlimit:
        parts.append(joint_limit_rows(model, qpos, qvel, dt, params))
    if flags.limit and model.tlim_value.numel():
        parts.append(tendon_limit_rows(model, qpos, qvel, dt))
    if not (flags.contact and cm is not None and model.nv):
        contacts = None
    else:
        contacts = detect(cm, kin) if contacts is None else contacts
        if contacts.dist.shape[1]:  # no slot: no pair is near in any env, no contact rows
            parts.append(contact_rows(cm, model, kin, contacts, qvel, dt, *(() if params is None else
                                                                            (params.pair_friction,
                                                                             params.link_invweight))))
    return (constraints.ConstraintRows.cat(parts) if parts else None), contacts


def smooth_stage(model: RigidModel, params: RigidParams, gravity, dt: float, kind: integrator,
                 qpos, qvel, ctrl, act, mode, target, target_vel, kin: Kinematics | None = None,
                 xfrc: torch.Tensor | None = None) -> Smooth:
    """Everything of a step that does not depend on the constraint solution. `mode`, `target`, `target_vel`
    (B, nv): the dof controller's (`dynamics.dof_controller`). `kin` may be passed when known (it
    must come from `params.body_ipos`, `body_pos` and `body_quat`). `xfrc (B, nlinks, 6)`: external wrenches at the
    link COMs (MuJoCo's `xfrc_applied`, `applied_wrench_forces`), None for none."""
    kin = forward_kinematics(model, qpos, params.body_ipos, params.body_pos, params.body_quat,
                             params.body_iquat) if kin is None else kin
    inertia = body_inertias(model, kin, params)
    qM = mass_matrix(model, kin, inertia, params.dof_armature)
    bias = bias_forces(model, kin, inertia, qvel, gravity)
    passive = passive_forces(model, params, qpos, qvel, kin, gravity)
    actn = actuation(model, params, qpos, qvel, ctrl, act, mode, target, target_vel)
    qfrc_smooth = passive + actn.qfrc - bias
    if xfrc is not None:
        qfrc_smooth = qfrc_smooth + applied_wrench_forces(model, kin, xfrc)
    qacc_smooth = solve_spd(qM, qfrc_smooth)
    H = implicit_matrix(model, params, kind, dt, qM, actn)
    gyro = None
    if kind == integrator.implicitfast and model.lone_free_body.numel():
        gyro = dt * lone_free_bias_derivative(model, kin, inertia, qvel)
    implicit_envs = params.euler_damped if kind == integrator.Euler and H is not None else None
    return Smooth(kin, qM, bias, passive, actn, qfrc_smooth, qacc_smooth, H, gyro, implicit_envs)


def implicit_acceleration(model: RigidModel, H, gyro, qacc, qfrc_total, implicit_envs=None):
    """The acceleration that advances the velocity: `qacc` when explicit, else `H^-1 (qfrc_smooth + constraint)`.

    Standalone free bodies under implicitfast re-solve their decoupled 6x6 blocks with H + dt d(qfrc_bias)/d(qvel)
    (LU; the block is not symmetric), as MuJoCo >= 3.11 does.
    """
    if H is None:
        return qacc
    out = solve_spd(H, qfrc_total)
    if gyro is not None:
        idx = model.lone_free_dofadr[:, None] + torch.arange(6, device=out.device)  # (nlf, 6)
        block = H[:, idx[:, :, None], idx[:, None, :]] + gyro
        sol = lu_solve(block, qfrc_total[:, idx])
        out = out.index_copy(1, idx.reshape(-1), sol.reshape(out.shape[0], -1))
    if implicit_envs is not None:  # Euler: envs without damping integrate explicitly
        out = torch.where(implicit_envs[:, None], out, qacc)
    return out


def finish_stage(model: RigidModel, dt: float, qpos, qvel, act, act_dot, qacc, qfrc_total, H, gyro, ipos=None,
                 implicit_envs=None, body_pos=None, body_quat=None, body_iquat=None):
    """Semi-implicit Euler update (MuJoCo's `mj_advance`) and the link poses of the new configuration.

    Returns (qpos, qvel, act, kinematics of the new qpos with COMs `ipos` and body frames `body_pos`, `body_quat`).
    """
    acc = implicit_acceleration(model, H, gyro, qacc, qfrc_total, implicit_envs)
    act = integrate_act(model, act, act_dot, dt)
    qvel = qvel + dt * acc
    qpos = integrate_pos(model, qpos, qvel, dt)
    return qpos, qvel, act, forward_kinematics(model, qpos, ipos, body_pos, body_quat, body_iquat)

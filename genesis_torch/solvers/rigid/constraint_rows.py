"""Constraint rows other than contacts, as MuJoCo instantiates them (`mj_instantiateEquality`, `..Friction`,
`..Limit` and `mj_diagApprox` in its engine_core_constraint.c): equality constraints, dof and tendon frictionloss,
joint and tendon limits. Each builder returns a `ConstraintRows` of one kind, batched over envs (B)."""

from __future__ import annotations

import torch

from .dynamics import velocity_products
from .constraints import ConstraintRows, clamp_solimp, impedance, reference, regulariser, spring_damper
from .jacobians import point_jacobian_difference, rotation_jacobian_difference
from .kinematics import Kinematics
from .linalg import matvec
from .model import RigidModel
from ...math.quat import quat_mul


def _inequality_rows(J, pos, vel, margin, solref, solimp, invweight, dt: float) -> ConstraintRows:
    aref, D = reference(solref, solimp, pos, margin, vel, invweight, dt)
    return ConstraintRows(J, aref, D, pos < margin)


def joint_limit_rows(model: RigidModel, qpos, qvel, dt: float, params=None) -> ConstraintRows:
    """Two rows per limited hinge/slide joint: lower (q - lo) and upper (hi - q), present within `margin`.
    `params` (`RigidParams`): per-env bounds, margins, solimp and `dof_invweight0` where set (a heterogeneous
    entity's variants), else the model's."""
    B, nl = qpos.shape[0], model.nlimit
    sign = model.lim_sign
    J = torch.zeros(B, nl, model.nv, dtype=qpos.dtype, device=qpos.device)
    J[:, torch.arange(nl, device=qpos.device), model.lim_dof] = sign
    own = lambda name: None if params is None else getattr(params, name)  # noqa: E731
    pick = lambda name, default: default if own(name) is None else own(name)  # noqa: E731
    iw = model.dof_invweight0[model.lim_dof] if own("dof_invweight") is None else own("dof_invweight")[:, model.lim_dof]
    return _inequality_rows(J, sign * (qpos[:, model.lim_qadr] - pick("lim_value", model.lim_value)),
                            sign * qvel[:, model.lim_dof], pick("lim_margin", model.lim_margin), model.lim_solref,
                            pick("lim_solimp", model.lim_solimp), iw, dt)


def tendon_limit_rows(model: RigidModel, qpos, qvel, dt: float) -> ConstraintRows:
    """Two rows per limited (fixed) tendon, lower and upper, present within the tendon's `margin`."""
    B = qpos.shape[0]
    J = model.tlim_J.expand(B, -1, -1)
    return _inequality_rows(J, matvec(model.tlim_len_q, qpos) - model.tlim_value, matvec(model.tlim_J, qvel),
                            model.tlim_margin, model.tlim_solref, model.tlim_solimp, model.tlim_invweight, dt)


def friction_rows(model: RigidModel, qvel, dt: float, dof_frictionloss=None, dof_invweight=None) -> ConstraintRows:
    """One row per dof and tendon with `frictionloss` in the MJCF; no position term (MuJoCo sets k = 0 for friction
    rows). `dof_frictionloss (1|B, nv)` gives per-env losses of the dofs (a row whose loss is 0 in an env is absent
    there, as MuJoCo does not instantiate it). `dof_invweight (B, nv)`: per-env `dof_invweight0` of the dof rows."""
    B, n = qvel.shape[0], model.fric_loss.shape[0]
    J = model.fric_J.expand(B, -1, -1)
    zero = torch.zeros_like(model.fric_loss)
    imp = impedance(model.fric_solimp, zero, zero)
    _, b = spring_damper(model.fric_solref, clamp_solimp(model.fric_solimp)[..., 1], dt)
    aref = -b * matvec(model.fric_J, qvel)
    invweight = model.fric_invweight
    if dof_invweight is not None:
        nd = model.fric_dof.shape[0]
        invweight = torch.cat((dof_invweight[:, model.fric_dof], model.fric_invweight[nd:].expand(B, n - nd)), 1)
    D = (1.0 / regulariser(imp, invweight)).expand(B, n)
    floss = model.fric_loss.expand(B, n)
    valid = torch.ones(B, n, dtype=torch.bool, device=qvel.device)
    if dof_frictionloss is not None:
        nd = model.fric_dof.shape[0]
        floss = torch.cat((dof_frictionloss[:, model.fric_dof].expand(B, nd), floss[:, nd:]), 1)
        valid = floss > 0
    return ConstraintRows(J, aref, D, valid, nf=n, floss=floss)


def point_bias_acceleration(cvel, cacc, body, point):
    """dJ/dt qd of body-fixed points `point (B, n, 3)` on `body (n,)`: the acceleration they have when qacc = 0,
    a = a_lin + a_ang x p + w x (v_lin + w x p), from `velocity_products` (spatial, at the world origin)."""
    v, a = cvel[:, body], cacc[:, body]
    w = v[..., :3]
    vp = v[..., 3:] + torch.linalg.cross(w, point)
    return a[..., 3:] + torch.linalg.cross(a[..., :3], point) + torch.linalg.cross(w, vp)


def _weld_rotation_bias(cvel, cacc, body, q1, q2c):
    """d/dt of imag(conj(q2) (0, w1 - w2) q1) at qacc = 0 (the weld rotation rows' dJ/dt qd before the factor
    torquescale / 2), with dq/dt = 1/2 (0, w) q for world angular velocities w."""
    pure = lambda v: torch.cat((torch.zeros_like(v[..., :1]), v), -1)  # noqa: E731
    w1, w2 = cvel[:, body[:, 0], :3], cvel[:, body[:, 1], :3]
    dw, da = pure(w1 - w2), pure(cacc[:, body[:, 0], :3] - cacc[:, body[:, 1], :3])
    inner = da + 0.5 * quat_mul(dw, pure(w1)) - 0.5 * quat_mul(pure(w2), dw)
    return quat_mul(quat_mul(q2c, inner), q1)[..., 1:]


def _rows_from_error(J, err, norm, vel, solref, solimp, invweight, dt: float, jdot_qd=None):
    """Equality rows with position error `err (B, n, k)` whose impedance uses `norm (B, n)` (MuJoCo's getposdim)."""
    imp = impedance(solimp, norm, torch.zeros_like(norm))
    k, b = spring_damper(solref, clamp_solimp(solimp)[..., 1], dt)
    aref = -b[..., None] * vel - (k * imp)[..., None] * err
    if jdot_qd is not None:
        aref = aref - jdot_qd
    D = 1.0 / regulariser(imp[..., None], invweight)
    return J.flatten(1, 2), aref.flatten(1), D.expand_as(aref).flatten(1)


def equality_rows(model: RigidModel, kin: Kinematics, qpos, qvel, dt: float, body_invweight=None) -> ConstraintRows:
    """Rows of the active equality constraints: 3 per connect, 6 per weld, 1 per joint/tendon coupling.
    `body_invweight (1|B, nb, 2)`: per-env `body_invweight0` (the model's when None)."""
    eq, B = model.eq, qpos.shape[0]
    Js, arefs, Ds = [], [], []
    cvel, cacc = velocity_products(model, kin, qvel)
    iw = model.body_invweight0 if body_invweight is None else body_invweight  # ([1|B,] nb, 2)
    for kind in ("connect", "weld"):
        body, anchor = getattr(eq, f"{kind}_body"), getattr(eq, f"{kind}_anchor")
        if not body.shape[0]:
            continue
        pos = [kin.xpos[:, body[:, j]] + matvec(kin.xmat[:, body[:, j]], anchor[:, j]) for j in (0, 1)]
        err = pos[0] - pos[1]  # (B, n, 3)
        J = -point_jacobian_difference(model, kin, body[:, 0], body[:, 1], pos[0], pos[1])  # (B, n, 3, nv)
        # MuJoCo >= 4 also removes the velocity-product acceleration dJ/dt qd of the anchors from aref
        jdot_qd = point_bias_acceleration(cvel, cacc, body[:, 0], pos[0]) \
            - point_bias_acceleration(cvel, cacc, body[:, 1], pos[1])
        invw = (iw[..., body[:, 0], 0] + iw[..., body[:, 1], 0])[..., None].expand(*iw.shape[:-2], -1, 3)
        if kind == "weld":  # orientation error: imaginary part of conj(q2) q1, scaled by torquescale
            scale = eq.weld_torquescale[:, None]
            q1 = quat_mul(kin.xquat[:, body[:, 0]], eq.weld_quat[:, 0].expand(B, -1, -1))
            q2c = quat_mul(kin.xquat[:, body[:, 1]], eq.weld_quat[:, 1].expand(B, -1, -1))
            q2c = q2c * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q2c.dtype, device=q2c.device)
            err = torch.cat((err, quat_mul(q2c, q1)[..., 1:] * scale), -1)
            jr = -rotation_jacobian_difference(model, kin, body[:, 0], body[:, 1])  # (B, n, 3, nv)
            axis_q = torch.cat((torch.zeros_like(jr[..., :1, :]), jr), -2).transpose(-1, -2)  # (B, n, nv, 4)
            rot = quat_mul(quat_mul(q2c[:, :, None].expand_as(axis_q), axis_q), q1[:, :, None].expand_as(axis_q))
            J = torch.cat((J, 0.5 * scale[..., None] * rot[..., 1:].transpose(-1, -2)), -2)
            invw = torch.cat((invw, (iw[..., body[:, 0], 1] + iw[..., body[:, 1], 1])[..., None]
                              .expand(*iw.shape[:-2], -1, 3)), -1)
            jdot_qd = torch.cat((jdot_qd, 0.5 * scale * _weld_rotation_bias(cvel, cacc, body, q1, q2c)), -1)
        vel = matvec(J, qvel[:, None])
        norm = torch.sqrt((err * err).sum(-1))
        out = _rows_from_error(J, err, norm, vel, getattr(eq, f"{kind}_solref"), getattr(eq, f"{kind}_solimp"),
                               invw, dt, jdot_qd)
        for lst, x in zip((Js, arefs, Ds), out):
            lst.append(x)
    if eq.scalar_ref.shape[0]:
        value = matvec(eq.scalar_len_q, qpos[:, None])  # (B, n, 2)
        x = value[..., 1] - eq.scalar_ref[:, 1]
        p = eq.scalar_poly
        err = value[..., 0] - eq.scalar_ref[:, 0] - p[:, 0] - x * (p[:, 1] + x * (p[:, 2] + x * (p[:, 3] + x * p[:, 4])))
        deriv = p[:, 1] + x * (2 * p[:, 2] + x * (3 * p[:, 3] + x * 4 * p[:, 4]))
        deriv = torch.where(eq.scalar_has2, deriv, 0.0)
        J = eq.scalar_J[:, 0] - deriv[..., None] * eq.scalar_J[:, 1]  # (B, n, nv)
        vel = (J * qvel[:, None]).sum(-1)
        out = _rows_from_error(J[:, :, None], err[..., None], err.abs(), vel[..., None], eq.scalar_solref,
                               eq.scalar_solimp, eq.scalar_invweight[:, None], dt)
        for lst, x in zip((Js, arefs, Ds), out):
            lst.append(x)
    J, aref, D = torch.cat(Js, 1), torch.cat(arefs, 1), torch.cat(Ds, 1)
    return ConstraintRows(J, aref, D, torch.ones_like(aref, dtype=torch.bool), ne=aref.shape[1])

"""Smooth dynamics: mass matrix, bias forces, passive, actuator and dof-controller forces.

Every quantity is computed for all bodies and dofs at once from ancestry matrices (no loop over the tree):
- mass matrix by the composite-rigid-body algorithm (Featherstone 2008, §6.2): M[i, j] = S_i · Ic(body j) S_j
  for dof i an ancestor-or-self of dof j, with composite inertias Ic summed over subtrees;
- bias forces by recursive Newton-Euler (Featherstone 2008, §5.3) with base acceleration -g, which is what
  MuJoCo's `qfrc_bias` holds (Coriolis, centrifugal and gravity);
- actuators with MuJoCo's `general` model: force = gain(l, v) * input + bias(l, v), gain and bias affine.
"""

from __future__ import annotations

import dataclasses

import torch

from ...math.small import ordered_sum
from .kinematics import Kinematics
from .model import BIAS_AFFINE, DYN_INTEGRATOR, DYN_NONE, GAIN_AFFINE, RigidModel
from .params import RigidParams
from .linalg import ancestor_sum, gather_sum, matmul, matvec, subtree_sum, vecmat
from .sparse_products import sparse_vecmat
from .spatial import cross, cross_force, cross_motion, skew

MJ_MINVAL = 1e-15  # MuJoCo's mjMINVAL

# dof controller modes (per env, per dof), the Genesis PD controller for dofs without an MJCF actuator
CTRL_NONE, CTRL_FORCE, CTRL_POSITION, CTRL_VELOCITY = 0, 1, 2, 3


ActuatorParams = RigidParams  # the former name (actuator and dof-controller fields only)


def batch_last(x: torch.Tensor) -> torch.Tensor:
    """`(B, ...)` → contiguous `(..., B)`: elementwise kernels then vectorise over envs (7-8x faster on CPU for the
    inertia arithmetic than batch-first with trailing dims of 3 or 6, eager and compiled alike)."""
    return x.movedim(0, -1).contiguous()


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return cross(a, b, 1)


@dataclasses.dataclass
class BodyInertia:
    """Spatial inertias at the world origin in compact form (Featherstone 2008, §2.13), batch-last: for a body of
    mass m with COM c and rotational inertia Ic about it, first moment h = m c and rotational inertia about the
    origin Io = Ic + m (|c|^2 1 - c c^T); then I [w; v] = [Io w + h x v; m v - h x w]."""

    mass: torch.Tensor  # (n, 1|B) kg
    h: torch.Tensor  # (n, 3, B) kg m
    rot: torch.Tensor  # (n, 3, 3, B) kg m^2
    subtree_mass: torch.Tensor | None = None  # (n, 1|B) kg, masses of the bodies' subtrees (for composites)

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """I v for spatial motion vectors `v (n, 6, B)` → spatial forces `(n, 6, B)`."""
        w, u = v[:, :3], v[:, 3:]
        top = ordered_sum(self.rot * w[:, None], 2) + _cross(self.h, u)
        bottom = self.mass[:, None, :] * u - _cross(self.h, w)
        return torch.cat((top, bottom), 1)

    def select(self, idx: torch.Tensor) -> "BodyInertia":
        return BodyInertia(self.mass[idx], self.h[idx], self.rot[idx])


def body_inertias(model: RigidModel, kin: Kinematics, params: RigidParams) -> BodyInertia:
    """Spatial inertias of the bodies at the world origin, from the (per-env) masses and principal inertias of
    `params`; `kin.xipos` must come from `params.body_ipos`."""
    R = kin.batch_last("ximat")  # (nb, 3, 3, B)
    c = kin.batch_last("xipos")  # (nb, 3, B)
    inertia = batch_last(params.link_inertia)  # (nb, 3, 1|B)
    rot_c = ordered_sum((R * inertia[:, None])[:, :, None] * R[:, None], 3)  # R diag(I) R^T
    m = batch_last(params.body_mass)  # (nb, 1|B)
    eye = torch.eye(3, dtype=c.dtype, device=c.device)[..., None]
    shift = ordered_sum(c * c, 1)[:, None, None] * eye - c[:, :, None] * c[:, None]
    return BodyInertia(m, m[:, None, :] * c, rot_c + m[:, None, None, :] * shift, batch_last(params.subtree_mass))


def composite_inertias(model: RigidModel, inertia: BodyInertia) -> BodyInertia:
    """Inertias of whole subtrees (composite rigid bodies), summed in the same frame: first moments and rotational
    inertias in one tree sum (elementwise: the same additions as two)."""
    n, B = inertia.h.shape[0], inertia.h.shape[-1]
    both = subtree_sum(model, torch.cat((inertia.h, inertia.rot.reshape(n, 9, B)), 1), dim=0)
    return BodyInertia(inertia.subtree_mass, both.narrow(1, 0, 3), both.narrow(1, 3, 9).unflatten(1, (3, 3)))


def mass_matrix(model: RigidModel, kin: Kinematics, inertia: BodyInertia, armature: torch.Tensor) -> torch.Tensor:
    """Joint-space inertia `M (B, nv, nv)` including `armature (1|B, nv)` (MuJoCo's `qM`, dense)."""
    cdof = kin.batch_last("cdof")  # (nv, 6, B)
    force = composite_inertias(model, inertia).select(model.dof_body).apply(cdof)  # Ic(body j) S_j
    cross = ordered_sum(cdof[:, None] * force[None], 2)  # (nv, nv, B): [i, j] = S_i . Ic(j) S_j
    anc = model.dof_anc[..., None]
    lower = (model.dof_anc.T & ~torch.eye(model.nv, dtype=torch.bool, device=anc.device))[..., None]
    mass = torch.where(anc, cross, 0.0) + torch.where(lower, cross.transpose(0, 1), 0.0)
    # back to batch-first, contiguous: later reductions pick their summation order by the memory layout
    return mass.movedim(-1, 0).contiguous() + torch.diag_embed(armature)


def _velocity_products(model: RigidModel, cdof: torch.Tensor, qd: torch.Tensor):
    """Batch-last body velocities `cvel (nb, 6, B)` and velocity-product accelerations `sum_j cdof_dot_j qd_j`
    over each body's dofs and their ancestors `(nb, 6, B)`, from `cdof (nv, 6, B)` and `qd (nv, 1, B)`."""
    cdq = cdof * qd
    cvel = ancestor_sum(model, gather_sum(cdq, model.body_own_dofs, dim=0), dim=0)
    # velocity of the frame each dof's axis is fixed in: the parent body's, plus earlier dofs of the same body
    before = cvel[model.body_parent[model.dof_body]] + gather_sum(cdq, model.dof_same_body_before, dim=0)
    cdof_dot = cross_motion(before, cdof, dim=1)
    return cvel, ancestor_sum(model, gather_sum(cdof_dot * qd, model.body_own_dofs, dim=0), dim=0)


def velocity_products(model: RigidModel, kin: Kinematics, qvel: torch.Tensor):
    """Body spatial velocities `cvel (B, nb, 6)` and velocity-product accelerations `cacc_qd (B, nb, 6)` (the
    acceleration of each body when qacc = 0, gravity excluded), [angular; linear] at the world origin."""
    cvel, cacc = _velocity_products(model, kin.batch_last("cdof"), batch_last(qvel)[:, None])
    return cvel.movedim(-1, 0).contiguous(), cacc.movedim(-1, 0).contiguous()


def bias_forces(model: RigidModel, kin: Kinematics, inertia: BodyInertia, qvel: torch.Tensor,
                gravity: torch.Tensor) -> torch.Tensor:
    """`qfrc_bias (B, nv)` = C(q, qd) qd + g(q), by vectorised recursive Newton-Euler.

    Args:
        inertia: from `body_inertias`; qvel: (B, nv); gravity: (3,) m/s^2.
    """
    cdof = kin.batch_last("cdof")  # (nv, 6, B)
    cvel, cacc_qd = _velocity_products(model, cdof, batch_last(qvel)[:, None])
    cacc = torch.cat((torch.zeros_like(gravity), -gravity))[:, None] + cacc_qd
    force = inertia.apply(cacc) + cross_force(cvel, inertia.apply(cvel), dim=1)
    subtree_force = subtree_sum(model, force, dim=0)
    return ordered_sum(cdof * subtree_force[model.dof_body], 1).T.contiguous()


def lone_free_bias_derivative(model: RigidModel, kin: Kinematics, inertia: BodyInertia,
                              qvel: torch.Tensor) -> torch.Tensor:
    """d qfrc_bias / d qvel on the 6x6 blocks of standalone free bodies, `(B, nlf, 6, 6)`.

    A free body with only welded descendants is one rigid body of mass m, COM offset c (world) from its origin p
    and rotational inertia I_p about p (I in body axes). With qvel = (v, w) (v world velocity of p, w body-frame
    angular velocity, W = R w) the velocity-dependent bias is m W x (W x c) on v and w x (I w) on w; neither
    depends on v. MuJoCo's implicitfast (>= 3.11) adds these derivatives to the block ("Gyroscopic derivatives for
    free bodies", MuJoCo documentation, Computation chapter).
    """
    bodies = model.lone_free_body
    comp = composite_inertias(model, inertia).select(bodies)
    mass = comp.mass.movedim(-1, 0)  # (1|B, nlf)
    x = comp.h.movedim(-1, 0).contiguous() / mass[..., None]  # composite COM, world, (B, nlf, 3)
    p = kin.xpos[:, bodies]
    R = kin.xmat[:, bodies]
    c = x - p
    eye = torch.eye(3, dtype=qvel.dtype, device=qvel.device)
    outer = lambda a, b: a[..., :, None] * b[..., None, :]  # noqa: E731
    m33 = mass[..., None, None]
    # rotational inertia about the origin shifted to the COM (-m(|x|^2 1 - x x^T)) and then to p (+m(|c|^2 1 - c c^T))
    shift = lambda v: (v * v).sum(-1)[..., None, None] * eye - outer(v, v)  # noqa: E731
    inertia_p = comp.rot.movedim(-1, 0).contiguous() - m33 * shift(x) + m33 * shift(c)
    Rt = R.transpose(-1, -2)
    inertia_b = matmul(matmul(Rt, inertia_p), R)
    adr = model.lone_free_dofadr[:, None] + torch.arange(3, 6, device=qvel.device)
    w = qvel[:, adr]  # (B, nlf, 3)
    W = matvec(R, w)
    d_lin = matmul(m33 * (outer(W, c) + (W * c).sum(-1)[..., None, None] * eye - 2 * outer(c, W)), R)
    d_ang = matmul(skew(w), inertia_b) - skew(matvec(inertia_b, w))
    zero = torch.zeros_like(d_lin)
    return torch.cat((torch.cat((zero, d_lin), -1), torch.cat((zero, d_ang), -1)), -2)


def applied_wrench_forces(model: RigidModel, kin: Kinematics, xfrc: torch.Tensor) -> torch.Tensor:
    """MuJoCo's `xfrc_applied` mapped to joint space, `(B, nv)`: `xfrc (B, nlinks, 6)` holds per link (bodies
    1..nb-1) a force and a torque [f; t] (N, N m, world frame) acting at the link's COM (`kin.xipos`); the
    generalised force is J^T of each body's COM Jacobian (`mj_xfrcAccumulate`), computed as in `gravcomp_forces`."""
    p = kin.xipos[:, 1:]
    f, t = xfrc[..., :3], xfrc[..., 3:]
    spatial = torch.cat((t + torch.linalg.cross(p, f, dim=-1), f), -1)  # at the world origin, (B, nlinks, 6)
    spatial = batch_last(torch.cat((torch.zeros_like(spatial[:, :1]), spatial), 1))  # world body: none
    subtree_force = subtree_sum(model, spatial, dim=0)
    return ordered_sum(kin.batch_last("cdof") * subtree_force[model.dof_body], 1).T.contiguous()


def gravcomp_forces(model: RigidModel, kin: Kinematics, params: RigidParams, gravity: torch.Tensor) -> torch.Tensor:
    """MuJoCo's `qfrc_gravcomp (B, nv)`: the force -gravcomp * m * g at each body's COM (`kin.xipos`), mapped by the
    body Jacobians (`mj_gravcomp`, `mj_applyFT`); `params.body_mass` per env, `gravity (3,)` (zero when disabled).

    As a spatial force at the world origin each body contributes [p x f; f]; a dof's generalised force is its motion
    axis `cdof` dotted with the sum over the subtree of its body (as `bias_forces`)."""
    force = -(params.body_mass * model.body_gravcomp)[..., None] * gravity  # (1|B, nb, 3)
    force = force.expand_as(kin.xipos)
    spatial = batch_last(torch.cat((torch.linalg.cross(kin.xipos, force, dim=-1), force), -1))  # (nb, 6, B)
    subtree_force = subtree_sum(model, spatial, dim=0)
    return ordered_sum(kin.batch_last("cdof") * subtree_force[model.dof_body], 1).T.contiguous()


def passive_forces(model: RigidModel, params: RigidParams, qpos: torch.Tensor, qvel: torch.Tensor,
                   kin: Kinematics | None = None, gravity: torch.Tensor | None = None) -> torch.Tensor:
    """`qfrc_passive (B, nv)`: joint springs and damping (per-env `params`), fixed-tendon springs (with dead band)
    and damping; springs are off under MuJoCo's `spring` disable flag, damping under `damper`. With bodies of nonzero
    gravcomp, `kin` and `gravity` given, MuJoCo's gravity compensation (`gravcomp_forces`) is added; MuJoCo skips the
    whole passive stage, gravcomp included, when both `spring` and `damper` are disabled."""
    spring, damper = "spring" not in model.disabled, "damper" not in model.disabled
    if model.any_gravcomp and kin is not None and (spring or damper):
        return _passive(model, params, qpos, qvel, spring, damper) + gravcomp_forces(model, kin, params, gravity)
    return _passive(model, params, qpos, qvel, spring, damper)


def _passive(model: RigidModel, params: RigidParams, qpos, qvel, spring: bool, damper: bool) -> torch.Tensor:
    frc = -params.dof_damping * qvel if damper else torch.zeros_like(qvel)
    if spring and model.hinge_slide_dofs.numel():
        disp = qpos[:, model.hinge_slide_qadr] - model.qpos_spring[model.hinge_slide_qadr]
        frc = frc.index_add(1, model.hinge_slide_dofs, -params.dof_stiffness[:, model.hinge_slide_dofs] * disp)
    if model.ntendon and (spring or damper):
        length = vecmat(qpos, model.ten_Jq.T)
        lo, hi = model.ten_lengthspring.unbind(-1)
        stretch = torch.where(length > hi, length - hi, torch.where(length < lo, length - lo, 0.0))
        ten_force = (-model.ten_stiffness * stretch if spring else 0.0) - \
            (model.ten_damping * vecmat(qvel, model.ten_J.T) if damper else 0.0)
        frc = frc + vecmat(ten_force, model.ten_J)
    return frc


@dataclasses.dataclass
class Actuation:
    qfrc: torch.Tensor  # (B, nv) generalised actuator + dof-controller force
    force: torch.Tensor  # (B, nu) actuator forces after clamping
    act_dot: torch.Tensor  # (B, na) activation time derivatives
    dforce_dvel: torch.Tensor  # (B, nu) d force / d actuator velocity (0 where clamped)
    dctrl_dvel: torch.Tensor  # (B, nv) d dof-controller force / d qvel (diagonal, 0 where clamped)


def actuation(model: RigidModel, params: ActuatorParams, qpos, qvel, ctrl, act, ctrl_mode, ctrl_target,
              ctrl_vel) -> Actuation:
    """Actuator forces (MuJoCo `mj_fwdActuation` for joint/fixed-tendon transmissions) and the dof controller.

    Args:
        qpos (B, nq), qvel (B, nv), ctrl (B, nu), act (B, na), ctrl_mode (B, nv) int8, ctrl_target (B, nv),
        ctrl_vel (B, nv) the velocity target of position control (`dof_controller`).
    """
    length = sparse_vecmat(qpos, model.act_len_q.T)
    velocity = sparse_vecmat(qvel, model.act_moment.T)
    lo, hi = model.act_ctrlrange.unbind(-1)
    ctrl_c = torch.where(model.act_ctrllimited, torch.minimum(torch.maximum(ctrl, lo), hi), ctrl)
    actadr = model.act_actadr.clamp(min=0)
    stateful = model.act_dyntype != DYN_NONE
    act_u = act[:, actadr] if model.na else ctrl_c
    inp = torch.where(stateful, act_u, ctrl_c)
    g0, g1, g2 = params.gainprm.unbind(-1)
    b0, b1, b2 = params.biasprm.unbind(-1)
    gain_affine = model.act_gaintype == GAIN_AFFINE
    bias_affine = model.act_biastype == BIAS_AFFINE
    gain = g0 + torch.where(gain_affine, g1 * length + g2 * velocity, 0.0)
    bias = torch.where(bias_affine, b0 + b1 * length + b2 * velocity, 0.0)
    force = gain * inp + bias
    flo, fhi = params.forcerange.unbind(-1)  # (-inf, inf) for actuators without forcerange
    clamped = (force <= flo) | (force >= fhi)
    force = torch.minimum(torch.maximum(force, flo), fhi)
    dforce = torch.where(gain_affine, g2 * inp, 0.0) + torch.where(bias_affine, b2, 0.0)
    dforce = torch.where(clamped, 0.0, dforce)
    if model.any_act_dof:  # an actuator whose dof takes a dof-controller target in an env is off there
        off = (ctrl_mode[:, model.act_dof.clamp(min=0)] != CTRL_NONE) & (model.act_dof >= 0)
        force = torch.where(off, 0.0, force)
        dforce = torch.where(off, 0.0, dforce)
    if "actuation" in model.disabled:  # MuJoCo's actuation disable flag: no actuator forces
        force, dforce = torch.zeros_like(force), torch.zeros_like(dforce)
    qfrc = sparse_vecmat(force, model.act_moment)
    alo, ahi = model.dof_actfrcrange.unbind(-1)
    qfrc = torch.where(model.dof_actfrclimited, torch.minimum(torch.maximum(qfrc, alo), ahi), qfrc)

    act_dot = act.new_zeros(act.shape)
    if model.na:
        tau = model.act_dynprm[:, 0].clamp(min=MJ_MINVAL)
        # filter and filterexact share act_dot = (ctrl - act) / tau; they differ only in integration
        rate = torch.where(model.act_dyntype == DYN_INTEGRATOR, ctrl_c, (ctrl_c - act_u) / tau)
        has = model.act_dyntype != DYN_NONE
        act_dot = act_dot.index_copy(1, model.act_actadr[has], rate[:, has])

    ctrl_frc, dctrl = dof_controller(model, params, qpos, qvel, ctrl_mode, ctrl_target, ctrl_vel)
    return Actuation(qfrc + ctrl_frc, force, act_dot, dforce, dctrl)


def dof_positions(model: RigidModel, qpos: torch.Tensor) -> torch.Tensor:
    """Hinge/slide joint positions scattered onto their dofs, `(B, nv)` (0 on ball/free dofs)."""
    out = qpos.new_zeros(qpos.shape[0], model.nv)
    return out.index_copy(1, model.hinge_slide_dofs, qpos[:, model.hinge_slide_qadr])


def dof_controller(model: RigidModel, params: ActuatorParams, qpos, qvel, mode, target, target_vel):
    """Genesis' per-dof PD controller: force, position (kp, kv) or velocity (kv) targets, clamped to force range.
    Position mode gives `kp (target - q) - kv (qdot - target_vel)` with `target_vel (B, nv)` the stored velocity
    target (0 after `control_dofs_position`; Genesis 1.4.5's `ctrl_vel`, rigid_solver.py / forward_dynamics.py);
    velocity mode `kv (target - qdot)`; force mode `target`.
    On a dof driven by an MJCF actuator (which `actuation` then turns off in that env) the gains and force range
    are the actuator's (`RigidParams.ctrl_*`).

    Returns (force (B, nv), d force / d qvel (B, nv)).
    """
    kp, kv = params.ctrl_kp, params.ctrl_kv
    pos_frc = kp * (target - dof_positions(model, qpos)) - kv * (qvel - target_vel)
    vel_frc = kv * (target - qvel)
    frc = torch.where(mode == CTRL_POSITION, pos_frc, torch.where(mode == CTRL_VELOCITY, vel_frc, target))
    lo, hi = params.ctrl_force_range.unbind(-1)
    clamped = (frc <= lo) | (frc >= hi)
    frc = torch.where(mode == CTRL_NONE, 0.0, torch.minimum(torch.maximum(frc, lo), hi))
    damped = (mode == CTRL_POSITION) | (mode == CTRL_VELOCITY)
    dfrc = torch.where(damped & ~clamped, -kv, 0.0).expand_as(frc)
    return frc, dfrc

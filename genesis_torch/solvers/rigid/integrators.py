"""Time integration of the rigid state, with MuJoCo's semantics (`mj_Euler`, `mj_implicit`, `mj_RungeKutta`)."""

from __future__ import annotations

import torch

from .model import DYN_FILTEREXACT, DYN_NONE, RigidModel
from ...math.quat import quat_integrate

# classic RK4 Butcher tableau (MuJoCo's RK4_A, RK4_C)
RK4_A = ((0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 1.0))
RK4_C = (1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0)


def integrate_pos(model: RigidModel, qpos: torch.Tensor, qvel: torch.Tensor, dt: float) -> torch.Tensor:
    """`qpos (B, nq)` advanced by `qvel (B, nv)` over `dt` (MuJoCo's `mj_integratePos`).

    Hinge/slide: q + v dt. Ball: quaternion integrated with local angular velocity. Free: position + v dt and
    quaternion integrated with the local angular velocity v[3:6].
    """
    out = qpos
    if model.hinge_slide_qadr.numel():
        out = out.index_add(1, model.hinge_slide_qadr, qvel[:, model.hinge_slide_dofs] * dt)
    dev = qpos.device
    if model.ball_qadr.numel():
        qi = model.ball_qadr[:, None] + torch.arange(4, device=dev)
        vi = model.ball_dofadr[:, None] + torch.arange(3, device=dev)
        quat = quat_integrate(qpos[:, qi], qvel[:, vi], dt)
        out = out.index_copy(1, qi.reshape(-1), quat.reshape(qpos.shape[0], -1))
    if model.free_qadr.numel():
        pi = model.free_qadr[:, None] + torch.arange(3, device=dev)
        qi = model.free_qadr[:, None] + 3 + torch.arange(4, device=dev)
        vi = model.free_dofadr[:, None] + torch.arange(3, device=dev)
        pos = qpos[:, pi] + qvel[:, vi] * dt
        quat = quat_integrate(qpos[:, qi], qvel[:, vi + 3], dt)
        out = out.index_copy(1, pi.reshape(-1), pos.reshape(qpos.shape[0], -1))
        out = out.index_copy(1, qi.reshape(-1), quat.reshape(qpos.shape[0], -1))
    return out


def lie_stage_velocity(model: RigidModel, qvel: torch.Tensor, dx: torch.Tensor, dt: float) -> torch.Tensor:
    """RK4 stage velocity `(B, nv)` with ball/free angular parts mapped into the Lie algebra (Runge-Kutta-Munthe-Kaas).

    A stage at rotation vector theta = dt * dx from the step start moves it at theta' = dexp^-1_{-theta}(w)
    = w + theta x w / 2 + theta x (theta x w) / 12 + ... for body-frame angular velocity w, the series cut after
    the second-order term (enough for fourth order). Hinge, slide and free translation dofs are unchanged. This is
    MuJoCo's RK4 since 4.0 (its changelog: "fourth-order accurate for the orientations of ball and free joints");
    Munthe-Kaas, "Runge-Kutta methods on Lie groups", BIT 38 (1998).
    """
    if not model.rot_ball_free_dofs.numel():
        return qvel
    idx = model.rot_ball_free_dofs  # (n, 3)
    w = qvel[:, idx]
    theta = dt * dx[:, idx]
    tw = torch.linalg.cross(theta, w)
    k = w + 0.5 * tw + torch.linalg.cross(theta, tw) / 12.0
    return qvel.index_copy(1, idx.reshape(-1), k.reshape(qvel.shape[0], -1))


def integrate_act(model: RigidModel, act: torch.Tensor, act_dot: torch.Tensor, dt: float) -> torch.Tensor:
    """Activations `(B, na)` advanced over `dt`: Euler, or exact for `filterexact`; clamped to actrange."""
    if model.na == 0:
        return act
    has = model.act_dyntype != DYN_NONE
    adr = model.act_actadr[has]
    tau = model.act_dynprm[has, 0].clamp(min=1e-15)
    exact = model.act_dyntype[has] == DYN_FILTEREXACT
    step = torch.where(exact, tau * (1 - torch.exp(-dt / tau)), torch.full_like(tau, dt))
    new = act[:, adr] + act_dot[:, adr] * step
    lo, hi = model.act_actrange[has].unbind(-1)
    new = torch.where(model.act_actlimited[has], torch.minimum(torch.maximum(new, lo), hi), new)
    return act.index_copy(1, adr, new)

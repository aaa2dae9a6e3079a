"""The rigid solver: state, forward dynamics pipeline and the step driver.

`step` reads like MuJoCo's `mj_step`: forward (kinematics → inertia → bias → passive → actuation → smooth
acceleration → constraints) then integrate (Euler, implicitfast or RK4), then the link poses of the new state.
"""

from __future__ import annotations

import dataclasses

import mujoco
import torch

from ...options import RigidOptions, integrator
from ...state import SolverState
from . import constraints
from .dynamics import (CTRL_NONE, ActuatorParams, Actuation, actuation, bias_forces, body_inertias,
                       lone_free_bias_derivative, mass_matrix, passive_damping_derivative, passive_forces)
from .integrators import RK4_A, RK4_C, integrate_act, integrate_pos, lie_stage_velocity
from .linalg import lu_solve, matvec, solve_spd
from .kinematics import Kinematics, forward_kinematics
from .model import RigidModel, build_model


@dataclasses.dataclass(frozen=True)
class RigidState(SolverState):
    """Everything that determines a rigid system's future. B envs; links are bodies 1..nbody-1."""

    prefix = "RigidSolver"

    qpos: torch.Tensor  #: (B, nq) generalised positions (m, rad, unit quaternions wxyz)
    dofs_vel: torch.Tensor  #: (B, nv) generalised velocities (m/s, rad/s; ball/free angular in the body frame)
    links_pos: torch.Tensor  #: (B, nlinks, 3) m, world; derived from qpos
    links_quat: torch.Tensor  #: (B, nlinks, 4) wxyz, world; derived from qpos
    ctrl: torch.Tensor  #: (B, nu) MJCF actuator controls
    act: torch.Tensor  #: (B, na) actuator activations
    qacc_warmstart: torch.Tensor  #: (B, nv) constraint-solver warm start (last step's qacc)
    dofs_ctrl_mode: torch.Tensor  #: (B, nv) int8: 0 none, 1 force, 2 position, 3 velocity (dof controller)
    dofs_ctrl_target: torch.Tensor  #: (B, nv) dof-controller target (N or N m, m or rad, m/s or rad/s)


@dataclasses.dataclass
class Forward:
    """Intermediate quantities of one forward pass (MuJoCo's mjData fields of the same names)."""

    kin: Kinematics
    qM: torch.Tensor  # (B, nv, nv)
    qfrc_bias: torch.Tensor  # (B, nv)
    qfrc_passive: torch.Tensor  # (B, nv)
    actuation: Actuation
    qfrc_smooth: torch.Tensor  # (B, nv) passive + actuator - bias
    qacc_smooth: torch.Tensor  # (B, nv)
    qacc: torch.Tensor  # (B, nv) constrained acceleration
    qfrc_constraint: torch.Tensor  # (B, nv)


class RigidSolver:
    """Rigid articulated bodies compiled by MuJoCo, simulated in torch.

    References: MuJoCo documentation, "Computation"; Featherstone, "Rigid Body Dynamics Algorithms" (2008).
    Limitations: contacts are not simulated yet (geoms are loaded but do not collide); see docs/rigid.md.
    """

    name = "RigidSolver"

    def __init__(self, mj_model: mujoco.MjModel, options: RigidOptions, dt: float, gravity, device, dtype):
        self.mj_model = mj_model
        self.options = options
        self.dt = float(dt)
        self.device, self.dtype = device, dtype
        self.model: RigidModel = build_model(mj_model, device, dtype)
        self.gravity = torch.tensor(gravity, dtype=dtype, device=device)
        m = self.model
        inf = float("inf")
        self.params = ActuatorParams(
            gainprm=m.act_gainprm[None], biasprm=m.act_biasprm[None],
            forcerange=torch.where(m.act_forcelimited[:, None], m.act_forcerange,
                                   torch.tensor([-inf, inf], dtype=dtype, device=device))[None],
            dof_kp=torch.zeros(1, m.nv, dtype=dtype, device=device),
            dof_kv=torch.zeros(1, m.nv, dtype=dtype, device=device),
            dof_force_range=torch.tensor([-inf, inf], dtype=dtype, device=device).expand(1, m.nv, 2).clone(),
        )
        self._damping_deriv = passive_damping_derivative(m)
        self._any_damping = bool((m.dof_damping > 0).any())
        self._kin_cache: tuple[torch.Tensor, Kinematics] | None = None

    # ------------------------------------------------------------------ state
    def initial_state(self, n_envs: int) -> RigidState:
        """The build-time state: `qpos0`, zero velocity, zero controls and activations, B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        z = lambda *s: torch.zeros(B, *s, dtype=self.dtype, device=self.device)  # noqa: E731
        qpos = m.qpos0.expand(B, -1).clone()
        return self.make_state(qpos=qpos, dofs_vel=z(m.nv), ctrl=z(m.nu), act=z(m.na), qacc_warmstart=z(m.nv),
                               dofs_ctrl_mode=torch.full((B, m.nv), CTRL_NONE, dtype=torch.int8, device=self.device),
                               dofs_ctrl_target=z(m.nv))

    def make_state(self, **fields) -> RigidState:
        """A state from its integration fields, with `links_pos`/`links_quat` computed from `qpos`."""
        kin = self.kinematics(fields["qpos"])
        return RigidState(links_pos=kin.xpos[:, 1:], links_quat=kin.xquat[:, 1:], **fields)

    def kinematics(self, qpos: torch.Tensor) -> Kinematics:
        """Forward kinematics, reusing the result for the very tensor computed last (a pure cache)."""
        cache = self._kin_cache
        if cache is not None and cache[0] is qpos:
            return cache[1]
        kin = forward_kinematics(self.model, qpos)
        self._kin_cache = (qpos, kin)
        return kin

    # ---------------------------------------------------------------- forward
    def forward(self, state: RigidState, qpos=None, qvel=None, act=None) -> Forward:
        """MuJoCo's `mj_forward` on `state` (optionally with other qpos/qvel/act, for RK4 stages)."""
        m, opts = self.model, self.options
        qpos = state.qpos if qpos is None else qpos
        qvel = state.dofs_vel if qvel is None else qvel
        act = state.act if act is None else act
        kin = self.kinematics(qpos)
        inertia = body_inertias(m, kin)
        qM = mass_matrix(m, kin, inertia)
        bias = bias_forces(m, kin, inertia, qvel, self.gravity)
        passive = passive_forces(m, qpos, qvel)
        actn = actuation(m, self.params, qpos, qvel, state.ctrl, act, state.dofs_ctrl_mode, state.dofs_ctrl_target)
        qfrc_smooth = passive + actn.qfrc - bias
        qacc_smooth = solve_spd(qM, qfrc_smooth)
        qacc, qfrc_constraint = qacc_smooth, torch.zeros_like(qacc_smooth)
        if opts.enable_joint_limit and m.nlimit:
            rows = constraints.joint_limit_rows(m, qpos, qvel, self.dt)
            any_row = rows.valid.any(-1)
            if bool(any_row.any()):
                solved, force = constraints.solve(rows, qM, qacc_smooth, state.qacc_warmstart, opts.iterations,
                                                  opts.tolerance, m.meaninertia)
                qacc = torch.where(any_row[:, None], solved, qacc_smooth)
                qfrc_constraint = matvec(rows.J.transpose(-1, -2), force)
        return Forward(kin, qM, bias, passive, actn, qfrc_smooth, qacc_smooth, qacc, qfrc_constraint)

    def implicit_matrix(self, fwd: Forward) -> torch.Tensor | None:
        """The matrix H of the implicit velocity update H qacc = f, or None for explicit integration."""
        m, dt = self.model, self.dt
        kind = self.options.integrator
        if kind == integrator.Euler:
            if not self._any_damping:
                return None
            return fwd.qM + dt * torch.diag(m.dof_damping)
        if kind == integrator.implicitfast:
            a = fwd.actuation
            moment = m.act_moment  # (nu, nv): sum_a moment[a, i] dforce[a] moment[a, j]
            deriv = self._damping_deriv + ((moment.T * a.dforce_dvel[:, None, :])[..., None] * moment).sum(-2)
            deriv = deriv + torch.diag_embed(a.dctrl_dvel)
            # MuJoCo keeps qDeriv only on the sparsity pattern of M (dofs on one kinematic chain); couplings
            # between branches (e.g. through a fixed tendon) are dropped, and so are they here
            deriv = torch.where(m.deriv_mask, deriv, 0.0)
            return fwd.qM - dt * deriv
        return None

    # ------------------------------------------------------------------- step
    def step(self, state: RigidState) -> RigidState:
        """One time step of `dt`; returns a new state (the input is not modified)."""
        if self.model.nv == 0:  # only static geometry: nothing moves
            return state
        if self.options.integrator == integrator.RK4:
            return self._step_rk4(state)
        m, dt = self.model, self.dt
        fwd = self.forward(state)
        H = self.implicit_matrix(fwd)
        qacc = fwd.qacc if H is None else solve_spd(H, fwd.qfrc_smooth + fwd.qfrc_constraint)
        if H is not None and self.options.integrator == integrator.implicitfast and m.lone_free_body.numel():
            qacc = self._lone_free_implicit(fwd, H, state.dofs_vel, qacc)
        act = integrate_act(m, state.act, fwd.actuation.act_dot, dt)
        qvel = state.dofs_vel + dt * qacc
        qpos = integrate_pos(m, state.qpos, qvel, dt)
        return self.make_state(qpos=qpos, dofs_vel=qvel, ctrl=state.ctrl, act=act, qacc_warmstart=fwd.qacc,
                               dofs_ctrl_mode=state.dofs_ctrl_mode, dofs_ctrl_target=state.dofs_ctrl_target)

    def _lone_free_implicit(self, fwd: Forward, H: torch.Tensor, qvel: torch.Tensor, qacc: torch.Tensor):
        """Re-solve the decoupled 6x6 blocks of standalone free bodies with H + dt d(qfrc_bias)/d(qvel) (LU).

        MuJoCo's implicitfast keeps the gyroscopic derivatives for such bodies (see `lone_free_bias_derivative`).
        """
        m = self.model
        idx = m.lone_free_dofadr[:, None] + torch.arange(6, device=qacc.device)  # (nlf, 6)
        block = H[:, idx[:, :, None], idx[:, None, :]]  # (B, nlf, 6, 6)
        block = block + self.dt * lone_free_bias_derivative(m, fwd.kin, body_inertias(m, fwd.kin), qvel)
        rhs = (fwd.qfrc_smooth + fwd.qfrc_constraint)[:, idx]
        sol = lu_solve(block, rhs)
        return qacc.index_copy(1, idx.reshape(-1), sol.reshape(qacc.shape[0], -1))

    def _step_rk4(self, state: RigidState) -> RigidState:
        """Classic RK4 on (qpos, qvel, act), each stage a full forward pass (MuJoCo's `mj_RungeKutta`); ball and free
        orientations are advanced by Runge-Kutta-Munthe-Kaas (`lie_stage_velocity`)."""
        m, dt = self.model, self.dt
        fwd = self.forward(state)
        vels, accs, act_dots = [state.dofs_vel], [fwd.qacc], [fwd.actuation.act_dot]
        for coeffs in RK4_A:
            dx = sum(c * v for c, v in zip(coeffs, vels) if c)
            dv = sum(c * a for c, a in zip(coeffs, accs) if c)
            da = sum(c * a for c, a in zip(coeffs, act_dots) if c)
            qpos = integrate_pos(m, state.qpos, dx, dt)
            qvel = state.dofs_vel + dt * dv
            act = state.act + dt * da
            fwd = self.forward(state, qpos=qpos, qvel=qvel, act=act)
            vels.append(lie_stage_velocity(m, qvel, dx, dt))  # what moves qpos; qvel itself is a plain vector
            accs.append(fwd.qacc)
            act_dots.append(fwd.actuation.act_dot)
        dx = sum(c * v for c, v in zip(RK4_C, vels))
        dv = sum(c * a for c, a in zip(RK4_C, accs))
        da = sum(c * a for c, a in zip(RK4_C, act_dots))
        qpos = integrate_pos(m, state.qpos, dx, dt)
        qvel = state.dofs_vel + dt * dv
        act = integrate_act(m, state.act, da, dt)
        return self.make_state(qpos=qpos, dofs_vel=qvel, ctrl=state.ctrl, act=act, qacc_warmstart=fwd.qacc,
                               dofs_ctrl_mode=state.dofs_ctrl_mode, dofs_ctrl_target=state.dofs_ctrl_target)

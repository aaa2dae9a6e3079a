"""The rigid solver: state, forward dynamics pipeline and the step driver.

`step` reads like MuJoCo's `mj_step`: forward (kinematics → inertia → bias → passive → actuation → smooth
acceleration → constraints) then integrate (Euler, implicitfast or RK4), then the link poses of the new state.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import mujoco
import torch

from ...options import RigidOptions, constraint_solver, integrator
from ...state import SolverState
from ..base import SolverBase
from . import cg, constraints, newton
from .dynamics import CTRL_NONE, Actuation
from .integrators import RK4_A, RK4_C, integrate_act, integrate_pos, lie_stage_velocity
from .collision.detect import ContactSet, build_contact_model
from .pipeline import ConstraintFlags, Smooth, constraint_stage, finish_stage, smooth_stage
from .kinematics import Kinematics, forward_kinematics
from .model import RigidModel, build_model
from .params import RigidParams, default_params, derive
from .queries import SolverQueries


_STATIC_PARAMS = ("any_damping",)  # plain Python fields of RigidParams (the compiled stage guards on them)


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
    dofs_ctrl_vel: torch.Tensor  #: (B, nv) velocity target of position control (m/s or rad/s; 0 unless set)
    links_xfrc: torch.Tensor  #: (B, nlinks, 6) external force (N) and torque (N m) at each link's COM, world frame
    links_xfrc_steps: torch.Tensor  #: (B,) int32 substeps `links_xfrc` still acts for (0: none; zeroed after)

    def integration_fields(self) -> dict[str, torch.Tensor]:
        """The fields `RigidSolver.make_state` takes: all but the link poses derived from `qpos`."""
        return {n: t for n, t in self.tensors().items() if n not in ("links_pos", "links_quat")}


def _tensor_version(t: torch.Tensor) -> int:
    """`t`'s in-place modification counter (-1 for inference tensors, which have none)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def _link_indices(links_idx, nlinks: int) -> torch.Tensor:
    """`links_idx` (None: all, an int, a sequence / array / tensor of ints) as int64 link indices on the CPU."""
    from ...errors import InvalidInputError

    if links_idx is None:
        return torch.arange(nlinks)
    idx = torch.as_tensor(links_idx).reshape(-1)
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.dtype.is_complex or \
            (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= nlinks)):
        raise InvalidInputError(f"links_idx={links_idx!r}: expected link indices in [0, {nlinks}).")
    return idx.to(torch.int64)


@dataclasses.dataclass
class Forward:
    """One forward pass: the smooth quantities plus the constrained acceleration (MuJoCo's mjData names)."""

    smooth: Smooth
    rows: constraints.ConstraintRows | None  # all constraint rows (None when the model has none)
    contacts: ContactSet | None  # the contacts of each env (None without contacts)
    qacc: torch.Tensor  # (B, nv) constrained acceleration
    qfrc_constraint: torch.Tensor  # (B, nv)
    efc_force: torch.Tensor | None  # (B, nr) row forces

    def __getattr__(self, name):  # kin, qM, qfrc_bias, qfrc_passive, actuation, qfrc_smooth, qacc_smooth
        return getattr(self.__dict__["smooth"], name)


class RigidSolver(SolverQueries, SolverBase):
    """Rigid articulated bodies compiled by MuJoCo, simulated in torch.

    References: MuJoCo documentation, "Computation"; Featherstone, "Rigid Body Dynamics Algorithms" (2008).
    Limitations: see docs/rigid.md (supported geom pairs, condim 1 and 3, no ball-joint limits).
    """

    name = "RigidSolver"

    def __init__(self, mj_model: mujoco.MjModel, options: RigidOptions, dt: float, gravity, device, dtype):
        self.mj_model = mj_model
        self.options = options
        self.dt = float(dt)
        self.device, self.dtype = device, dtype
        self.model: RigidModel = build_model(mj_model, device, dtype)
        off = self.model.disabled  # MuJoCo's disable flags of mj_model.opt (docs/rigid.md, "Options")
        self.gravity = torch.tensor(gravity, dtype=dtype, device=device) * (0.0 if "gravity" in off else 1.0)
        self.params: RigidParams = default_params(self.model, mj_model.ngeom, dtype, device)
        on = "constraint" not in off
        self.flags = ConstraintFlags(equality=on and "equality" not in off,
                                     frictionloss=on and "frictionloss" not in off,
                                     limit=on and options.enable_joint_limit and "limit" not in off,
                                     contact=on and options.enable_collision and "contact" not in off)
        self.warmstart = "warmstart" not in off  # else each solve starts from the smooth acceleration
        self.contact_model = build_contact_model(mj_model, options.max_collision_pairs, options.max_contacts, device,
                                                 dtype) \
            if self.flags.contact else None
        self._build_frames = (self.params.body_pos, self.params.body_quat)  # the MJCF's body frames, shared
        # kinematics cache (see `kinematics`): entries (scene state epoch, qpos, its in-place version, frames, kin)
        self._kin_cache: tuple | None = None  # the last kinematics computed on request (queries, a step's start)
        self._kin_pending: tuple | None = None  # the kinematics of the last step's (or make_state's) new qpos
        self.state_epoch: Callable[[], int] = lambda: 0  # the scene's state epoch (set by the scene at build)
        self.last_overflow: torch.Tensor | None = None  # (B,) contacts beyond max_collision_pairs in the last step
        from ..._runtime import get_runtime

        # compile=None: the runtime's choice (gs.init(compile=...)), the whole-step graph only; True: the two-stage
        # graphs too, for the steps the whole-step graph cannot take (docs/rigid.md, "torch.compile")
        self.compile_mode = options.compile if options.compile is not None else get_runtime().compile and "graph"
        self._compiled = self._build_compiled() if self.compile_mode is True else None
        self._graph = self._build_graph() if self.compile_mode else None  # the whole step, see `_graph_step`
        self._graph_traced = False  # whether the step function ran once eagerly (see `_graph_step`)
        self.graph_steps = self.graph_redone = 0  # steps the whole-step graph ran / of those redone another way
        self._graph_near = False  # whether the last graph step found a candidate contact pair near

    def set_params(self, **fields) -> None:
        """Replace primary fields of `params` (`params.PRIMARY`) and recompute the derived ones (out of place)."""
        self.params = derive(self.model, self.contact_model, self.params.replace(**fields))

    # ------------------------------------------------------------------ state
    def initial_state(self, n_envs: int) -> RigidState:
        """The build-time state: `qpos0`, zero velocity, zero controls and activations, B = max(n_envs, 1)."""
        m, B = self.model, max(n_envs, 1)
        z = lambda *s: torch.zeros(B, *s, dtype=self.dtype, device=self.device)  # noqa: E731
        qpos = m.qpos0.expand(B, -1).clone()
        return self.make_state(qpos=qpos, dofs_vel=z(m.nv), ctrl=z(m.nu), act=z(m.na), qacc_warmstart=z(m.nv),
                               dofs_ctrl_mode=torch.full((B, m.nv), CTRL_NONE, dtype=torch.int8, device=self.device),
                               dofs_ctrl_target=z(m.nv), dofs_ctrl_vel=z(m.nv))

    def make_state(self, **fields) -> RigidState:
        """A state from its integration fields, with `links_pos`/`links_quat` computed from `qpos`; without
        `links_xfrc` / `links_xfrc_steps`, no external wrench; without `dofs_ctrl_vel`, zero velocity targets."""
        if "dofs_ctrl_vel" not in fields:
            fields["dofs_ctrl_vel"] = torch.zeros_like(fields["dofs_vel"])
        if "links_xfrc" not in fields:
            B = fields["qpos"].shape[0]
            fields["links_xfrc"] = torch.zeros(B, self.model.nbody - 1, 6, dtype=self.dtype, device=self.device)
            fields["links_xfrc_steps"] = torch.zeros(B, dtype=torch.int32, device=self.device)
        kin = self.kinematics(fields["qpos"])
        self._kin_pending = self._kin_entry(fields["qpos"], kin)
        return RigidState(links_pos=kin.xpos[:, 1:], links_quat=kin.xquat[:, 1:], **fields)

    @property
    def frames_moved(self) -> bool:
        """Whether body frames were set since build (`set_pos` / `set_quat` on a fixed base, or a loaded checkpoint)."""
        return self.params.body_pos is not self._build_frames[0] or self.params.body_quat is not self._build_frames[1]

    def refresh_links(self, state: RigidState) -> RigidState:
        """`state` with its link poses recomputed from `qpos` when body frames were set (a state captured before
        holds the poses of the old frames); else `state` itself."""
        return self.make_state(**state.integration_fields()) if self.frames_moved else state

    def _frames(self) -> tuple:
        """The parameters forward kinematics reads: COMs and body frames (`params.body_ipos`, `body_pos`,
        `body_quat`)."""
        p = self.params
        return p.body_ipos, p.body_pos, p.body_quat, p.body_iquat

    def kinematics(self, qpos: torch.Tensor) -> Kinematics:
        """Forward kinematics of `qpos (B, nq)` (COMs and body frames from `params`), cached within a state epoch.

        The scene counts its state writes (`Scene._write_states`): its own step and the entity setters keep the
        epoch, every other write (`reset`, `set_state` / `load_checkpoint`, `gs.rollout`'s writes of its states,
        build) starts a new one. A result is reused only within its epoch, for the same qpos tensor, unmodified in
        place, and the same body frames: a setter that moves the robot replaces qpos, one that sets controls keeps
        the kinematics. So each step of `gs.rollout` (which writes the scene's states before every step) computes
        its kinematics from its own qpos and records the same ops whether or not it starts a checkpointed segment.
        A solver outside a scene has one epoch.
        """
        frames, epoch = self._frames(), self.state_epoch()
        for e in (self._kin_pending, self._kin_cache):
            if e is not None and e[0] == epoch and e[1] is qpos and e[2] == _tensor_version(qpos) and \
                    all(a is b for a, b in zip(e[3], frames)):
                return e[4]
        kin = forward_kinematics(self.model, qpos, *frames)
        self._kin_cache = self._kin_entry(qpos, kin, frames)
        return kin

    def _kin_entry(self, qpos, kin, frames=None) -> tuple:
        return (self.state_epoch(), qpos, _tensor_version(qpos), self._frames() if frames is None else frames, kin)

    # -------------------------------------------------------- external wrenches
    _put_state = None  #: set by the scene: installs a new current state of this solver
    steps_per_scene_step = 1  #: substeps of this solver in one `scene.step()` (set by the scene)

    def apply_links_external_wrench(self, force=None, torque=None, links_idx=None, envs_idx=None, *, pos=None,
                                    ref="link_origin", local: bool = False) -> None:
        """Genesis' `RigidSolver.apply_links_external_wrench`: a wrench on links `links_idx` (scene-wide link indices,
        None: all) in envs `envs_idx` (None: all) over the next `scene.step()` (all its substeps), then cleared;
        calls before one step add up. `force (E, L, 3)` N acts at `pos` (world point, or with `local` an offset in
        the `ref` frame) or else at the `ref` frame's origin: 'link_origin' (the link frame) or 'link_COM' (the
        link's COM, principal inertia axes); `torque (E, L, 3)` N m is a free couple. With `local`, force, torque and
        pos are in the `ref` frame's axes, otherwise in the world's. (L, 3) inputs when the scene has n_envs=0.

        The wrench is stored in the state as MuJoCo's `xfrc_applied` (force and torque at the COM, world frame,
        `RigidState.links_xfrc`), from the link poses when applied; MuJoCo then applies it at the moving COM in each
        substep (Genesis keeps the moment arm of application time within the step: a second-order difference)."""
        from ...errors import InvalidInputError, SceneStateError
        from ...state import envs_index

        if self._current_state is None or self._put_state is None:
            raise SceneStateError("apply_links_external_wrench: the solver is not part of a built scene.")
        if force is None and torque is None:
            raise InvalidInputError("apply_links_external_wrench: give force, torque or both.")
        if force is None and pos is not None:
            raise InvalidInputError("apply_links_external_wrench(pos=...) needs force: a torque acts the same wherever "
                                    "it is applied.")
        name = str(getattr(ref, "name", ref))
        frames = {"link_origin": "link_origin", "link_com": "link_COM"}
        if name.lower() not in frames:
            raise InvalidInputError(f"apply_links_external_wrench(ref={ref!r}): use 'link_origin' or 'link_COM' "
                                    "(as Genesis 1.4.5; root_COM is not a frame a wrench can be given in).")
        if not isinstance(local, bool):
            raise InvalidInputError(f"apply_links_external_wrench(local={local!r}): expected True or False.")
        state = self._current_state()
        B, nlinks = state.links_xfrc.shape[:2]
        envs = envs_index(envs_idx, B, self.device)
        links = _link_indices(links_idx, nlinks).to(self.device)
        E, L = envs.numel(), links.numel()

        def vec(value, what):
            if value is None:
                return torch.zeros(E, L, 3, dtype=self.dtype, device=self.device)
            t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
            try:  # (E, L, 3), or anything that broadcasts to it: (L, 3) when the scene has n_envs=0
                t = t.expand(E, L, 3)
            except RuntimeError:
                raise InvalidInputError(f"apply_links_external_wrench: {what} of shape {tuple(t.shape)} does not fit "
                                        f"({E} envs, {L} links, 3).") from None
            if not bool(torch.isfinite(t).all()):
                raise InvalidInputError(f"apply_links_external_wrench: {what} holds NaN or inf.")
            return t

        f, t, p = vec(force, "force"), vec(torque, "torque"), None if pos is None else vec(pos, "pos")
        kin = self.kinematics(state.qpos)
        bodies = links + 1
        if frames[name.lower()] == "link_origin":
            R, origin = kin.xmat[envs[:, None], bodies[None]], kin.xpos[envs[:, None], bodies[None]]
        else:
            R, origin = kin.ximat[envs[:, None], bodies[None]], kin.xipos[envs[:, None], bodies[None]]
        rot = lambda v: (R @ v[..., None])[..., 0]  # noqa: E731
        if local:
            f, t = rot(f), rot(t)
        point = origin if p is None else (origin + rot(p) if local else p)
        com = kin.xipos[envs[:, None], bodies[None]]
        wrench = torch.cat((f, t + torch.linalg.cross(point - com, f, dim=-1)), -1)  # MuJoCo's xfrc_applied
        xfrc = state.links_xfrc.index_put((envs[:, None], links[None]), wrench, accumulate=True)
        steps = state.links_xfrc_steps.index_fill(0, envs, self.steps_per_scene_step)
        self._put_state(dataclasses.replace(state, links_xfrc=xfrc, links_xfrc_steps=steps))

    def apply_links_external_force(self, force, links_idx=None, envs_idx=None, *, ref="link_origin",
                                   local: bool = False) -> None:
        """Genesis' earlier name: `apply_links_external_wrench(force=force, ...)`."""
        self.apply_links_external_wrench(force, None, links_idx, envs_idx, ref=ref, local=local)

    def apply_links_external_torque(self, torque, links_idx=None, envs_idx=None, *, ref="link_origin",
                                    local: bool = False) -> None:
        """Genesis' earlier name: `apply_links_external_wrench(torque=torque, ...)`."""
        self.apply_links_external_wrench(None, torque, links_idx, envs_idx, ref=ref, local=local)

    # ---------------------------------------------------------------- forward
    @staticmethod
    def _xfrc(state: RigidState) -> torch.Tensor | None:
        """The external wrenches acting in this step, `(B, nlinks, 6)` (zero in envs without), or None (no env has
        one: the eager step then skips them, bitwise as before they existed)."""
        if not bool((state.links_xfrc_steps > 0).any()):
            return None
        return RigidSolver._xfrc_dense(state)

    @staticmethod
    def _xfrc_dense(state: RigidState) -> torch.Tensor:
        """The external wrenches acting in this step, `(B, nlinks, 6)`, zero in envs without (no host read: the
        compiled paths take it whether or not any env has one)."""
        return torch.where((state.links_xfrc_steps > 0)[:, None, None], state.links_xfrc, 0.0)

    def _smooth(self, state: RigidState, qpos, qvel, act) -> Smooth:
        m, o = self.model, self.options
        if self._compiled is not None:
            p = self.params
            tensors = [getattr(p, f.name) for f in dataclasses.fields(p) if f.name not in _STATIC_PARAMS]
            xfrc = self._xfrc_dense(state)
            out = self._compiled[0](qpos, qvel, state.ctrl, act, state.dofs_ctrl_mode, state.dofs_ctrl_target,
                                    state.dofs_ctrl_vel, xfrc, p.any_damping, *tensors)
            qM, qfrc_smooth, qacc_smooth, H, gyro, act_dot, *kin = out
            actn = Actuation(None, None, act_dot, None, None)
            implicit_envs = p.euler_damped if self.options.integrator == integrator.Euler and H is not None else None
            return Smooth(Kinematics(*kin), qM, None, None, actn, qfrc_smooth, qacc_smooth, H, gyro, implicit_envs)
        return smooth_stage(m, self.params, self.gravity, self.dt, o.integrator, qpos, qvel,
                            state.ctrl, act, state.dofs_ctrl_mode, state.dofs_ctrl_target, state.dofs_ctrl_vel,
                            kin=self.kinematics(qpos),
                            xfrc=self._xfrc(state))

    def _constrain(self, s: Smooth, rows, warm: torch.Tensor):
        """(qacc, qfrc_constraint, efc_force): the constraint solve, run only when some env has a row."""
        qacc, qfrc = s.qacc_smooth, torch.zeros_like(s.qacc_smooth)
        if rows is None:
            return qacc, qfrc, None
        any_row = rows.valid.any(-1)
        if not bool(any_row.any()):
            return qacc, qfrc, torch.zeros_like(rows.aref)
        o = self.options
        warm = warm if self.warmstart else s.qacc_smooth
        cg_solve = o.constraint_solver == constraint_solver.CG
        solved, force = newton.solve(rows, s.qM, s.qacc_smooth, warm, o.iterations, o.tolerance, o.ls_iterations,
                                     o.ls_tolerance, iteration=cg.cg_iteration if cg_solve else None,
                                     start=cg.cg_start if cg_solve else None)
        return torch.where(any_row[:, None], solved, qacc), rows.joint_force(force), force

    def forward(self, state: RigidState, qpos=None, qvel=None, act=None, contacts=None) -> Forward:
        """MuJoCo's `mj_forward` on `state` (optionally with other qpos/qvel/act, for RK4 stages; `contacts`: the
        contacts of `state.qpos` when already detected)."""
        qpos = state.qpos if qpos is None else qpos
        qvel = state.dofs_vel if qvel is None else qvel
        act = state.act if act is None else act
        s = self._smooth(state, qpos, qvel, act)
        rows, contacts = constraint_stage(self.model, self.contact_model, self.flags, s.kin, qpos, qvel, self.dt,
                                          self.params, contacts)
        qacc, qfrc_constraint, force = self._constrain(s, rows, state.qacc_warmstart)
        return Forward(s, rows, contacts, qacc, qfrc_constraint, force)

    # ------------------------------------------------------------------- step
    def step(self, state: RigidState) -> RigidState:
        """One time step of `dt`; returns a new state (the input is not modified). Sets `last_overflow`."""
        self.last_overflow = None
        if self.model.nv == 0:  # only static geometry: nothing moves
            return state
        if self.options.integrator == integrator.RK4:
            return self._step_rk4(state)
        if self._graph is not None and not self._needs_grad(state):
            new = self._graph_step(state)
            if new is not None:
                return new
        return self._step_once(state)

    def _needs_grad(self, state: RigidState) -> bool:
        """Whether autograd records this step (a state or parameter tensor requires grad): the whole-step graph
        then stands aside (its fixed-count solve would differentiate through frozen iterations)."""
        if not torch.is_grad_enabled():
            return False
        return any(t.requires_grad for t in state.tensors().values()) or \
            any(isinstance(t, torch.Tensor) and t.requires_grad for t in self.params.__dict__.values())

    def _step_once(self, state: RigidState, contacts=None) -> RigidState:
        """`step` without the whole-step graph: eager, or the compiled smooth and finish stages when `compile`
        (`contacts`: those of `state.qpos`, when already detected)."""
        f = self.forward(state, contacts=contacts)
        self._note_overflow(f)
        s = f.smooth
        args = (state.qpos, state.dofs_vel, state.act, s.actuation.act_dot, f.qacc, s.qfrc_smooth + f.qfrc_constraint,
                s.H, s.gyro, self.params.body_ipos, s.implicit_envs, self.params.body_pos, self.params.body_quat,
                self.params.body_iquat)
        if self._compiled is not None:
            qpos, qvel, act, links_pos, links_quat = self._compiled[1](*args)
        else:
            qpos, qvel, act, kin = finish_stage(self.model, self.dt, *args)
            self._kin_pending = self._kin_entry(qpos, kin)
            links_pos, links_quat = kin.xpos[:, 1:], kin.xquat[:, 1:]
        return RigidState(qpos=qpos, dofs_vel=qvel, links_pos=links_pos, links_quat=links_quat, ctrl=state.ctrl,
                          act=act, qacc_warmstart=f.qacc, dofs_ctrl_mode=state.dofs_ctrl_mode,
                          dofs_ctrl_target=state.dofs_ctrl_target, dofs_ctrl_vel=state.dofs_ctrl_vel,
                          **self._xfrc_after(state))

    @staticmethod
    def _xfrc_after(state: RigidState) -> dict:
        """`links_xfrc` / `links_xfrc_steps` after one substep: one substep fewer, the wrench zeroed at 0 (Genesis
        clears applied wrenches after each `scene.step()`)."""
        steps = state.links_xfrc_steps
        if not bool((steps > 0).any()):
            return {"links_xfrc": state.links_xfrc, "links_xfrc_steps": steps}
        steps = (steps - 1).clamp(min=0)
        return {"links_xfrc": torch.where((steps > 0)[:, None, None], state.links_xfrc, 0.0),
                "links_xfrc_steps": steps}

    def _note_overflow(self, f: Forward) -> None:
        """Keep the most contacts any forward pass of this step could not fit, per env (RK4 has four)."""
        if f.contacts is not None:
            o = f.contacts.overflow
            self.last_overflow = o if self.last_overflow is None else torch.maximum(self.last_overflow, o)

    def _step_rk4(self, state: RigidState) -> RigidState:
        """Classic RK4 on (qpos, qvel, act), each stage a full forward pass (MuJoCo's `mj_RungeKutta`); ball and free
        orientations are advanced by Runge-Kutta-Munthe-Kaas (`lie_stage_velocity`)."""
        m, dt = self.model, self.dt
        fwd = self.forward(state)
        self._note_overflow(fwd)
        vels, accs, act_dots = [state.dofs_vel], [fwd.qacc], [fwd.actuation.act_dot]
        for coeffs in RK4_A:
            dx = sum(c * v for c, v in zip(coeffs, vels) if c)
            dv = sum(c * a for c, a in zip(coeffs, accs) if c)
            da = sum(c * a for c, a in zip(coeffs, act_dots) if c)
            qpos = integrate_pos(m, state.qpos, dx, dt)
            qvel = state.dofs_vel + dt * dv
            act = state.act + dt * da
            fwd = self.forward(state, qpos=qpos, qvel=qvel, act=act)
            self._note_overflow(fwd)
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
                               dofs_ctrl_mode=state.dofs_ctrl_mode, dofs_ctrl_target=state.dofs_ctrl_target,
                               dofs_ctrl_vel=state.dofs_ctrl_vel, **self._xfrc_after(state))

    # --------------------------------------------------------------- compile
    def _build_graph(self):
        """The whole step (`step_graph.build_step_graph`) through `torch.compile(fullgraph=True)`."""
        from .step_graph import build_step_graph, quiet_compile_warnings

        quiet_compile_warnings()
        self._graph_fn = build_step_graph(self, _STATIC_PARAMS)
        # On a CPU, inductor's C++ wrapper calls the graph's kernels from C++ instead of Python: a 1-env Franka step
        # 1.16 -> 0.74 ms (1 thread), cold compile 66 -> 75 s (docs/rigid.md "torch.compile"); for this graph only
        options = {"cpp_wrapper": True} if torch.device(self.device).type == "cpu" else None
        return torch.compile(self._graph_fn, dynamic=False, fullgraph=True, options=options)

    def _graph_step(self, state: RigidState) -> RigidState | None:
        """The step as one compiled graph and one host check, or None when this step must take another path: a
        candidate contact pair is near (the graph's broad phase; after such a step, eager detection decides first)
        - the two-graph path then runs -, or the graph's solve was not complete (some env needed more iterations
        than the graph holds: the eager step redoes it). `graph_redone` counts the graph steps redone."""
        from .step_graph import params_tensors

        if self._graph_near:  # the last step had a near pair: eager detection first (no graph run wasted)
            from .collision.detect import detect

            contacts = detect(self.contact_model, self.kinematics(state.qpos))
            if contacts.dist.shape[1]:  # contacts: this step without the graph, detected once
                return self._step_once(state, contacts)
        p = self.params
        xfrc = self._xfrc_dense(state)
        args = (state.qpos, state.dofs_vel, state.ctrl, state.act, state.dofs_ctrl_mode, state.dofs_ctrl_target,
                state.dofs_ctrl_vel, xfrc, state.qacc_warmstart, p.any_damping, params_tensors(p, _STATIC_PARAMS))
        fn = self._graph
        try:
            if not self._graph_traced:
                # the function runs once eagerly first (its result dropped, so every step of a compiled scene is
                # the graph's): it fills the module-level caches of constants it reads (`linalg.const`,
                # kinematics' quaternion tables), so the traced graph finds them and is not recompiled
                fn = self._graph_fn
                fn(*args)
                fn, self._graph_traced = self._graph, True
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - compiling failed (no C++ compiler, no Triton, ...)
            if fn is self._graph_fn or self.compile_mode is True:  # eager errors are real; so is an asked compile's
                raise
            import logging

            logging.getLogger("genesis_torch").warning(
                "RigidSolver: compiling the step failed (%s: %s); this scene runs eagerly. gs.init(compile=False) "
                "or RigidOptions(compile=False) turns compilation off.", type(exc).__name__, str(exc)[:200])
            self._graph = None
            return self._step_once(state)
        qpos, qvel, act, qacc, complete, near, links_pos, links_quat, overflow = out
        self.graph_steps += 1
        ok, self._graph_near = bool(complete & ~near), bool(near)  # the host check after the graph
        if not ok:
            self.graph_redone += 1
            if self._graph_near:
                return None
            staged, self._compiled = self._compiled, None
            try:
                return self._step_once(state)
            finally:
                self._compiled = staged
        if self.contact_model is not None and self.flags.contact:
            self.last_overflow = overflow  # the graph's contacts' (`detect.detect_static`), else zeros
        # the graph's kinematics are not cached: queries and eager steps compute eager FK of qpos, as after a load
        return RigidState(qpos=qpos, dofs_vel=qvel, links_pos=links_pos, links_quat=links_quat,
                          ctrl=state.ctrl, act=act, qacc_warmstart=qacc, dofs_ctrl_mode=state.dofs_ctrl_mode,
                          dofs_ctrl_target=state.dofs_ctrl_target, dofs_ctrl_vel=state.dofs_ctrl_vel,
                          **self._xfrc_after(state))

    def _build_compiled(self):
        """`torch.compile`d smooth and finish stages (inductor: fused C++/OpenMP on CPU, Triton on GPU)."""
        m, o, dt, g = self.model, self.options, self.dt, self.gravity

        names = [f.name for f in dataclasses.fields(RigidParams) if f.name not in _STATIC_PARAMS]

        def smooth_fn(qpos, qvel, ctrl, act, mode, target, target_vel, xfrc, any_damping, *tensors):
            p = RigidParams(**dict(zip(names, tensors)), any_damping=any_damping)
            s = smooth_stage(m, p, g, dt, o.integrator, qpos, qvel, ctrl, act, mode, target, target_vel, xfrc=xfrc)
            kin = tuple(getattr(s.kin, f.name) for f in dataclasses.fields(s.kin))
            return (s.qM, s.qfrc_smooth, s.qacc_smooth, s.H, s.gyro, s.actuation.act_dot) + kin

        def finish_fn(qpos, qvel, act, act_dot, qacc, qfrc_total, H, gyro, ipos, implicit_envs, body_pos, body_quat,
                      body_iquat):
            qpos, qvel, act, kin = finish_stage(m, dt, qpos, qvel, act, act_dot, qacc, qfrc_total, H, gyro, ipos,
                                                implicit_envs, body_pos, body_quat, body_iquat)
            return qpos, qvel, act, kin.xpos[:, 1:], kin.xquat[:, 1:]

        from .step_graph import own_code, quiet_compile_warnings  # per solver: see `step_graph.build_step_graph`

        quiet_compile_warnings()

        return torch.compile(own_code(smooth_fn), dynamic=False), torch.compile(own_code(finish_fn), dynamic=False)

"""Writes of the rigid entities' setters and PD control into a `RigidState` / `RigidParams` (out of place).

Each function takes the solver and the current state and returns the new state (or installs new params through
`RigidSolver.set_params`); the entity handles (`entities/rigid_entity.py`) validate the inputs first. `envs`:
`(E,)` int64 env indices; `dofs`, `qadr`: `(n,)` int64 scene-global dof / qpos indices; `values`: `(E, n, ...)`.
"""

from __future__ import annotations

import torch

from .dynamics import CTRL_FORCE, CTRL_NONE, CTRL_POSITION, CTRL_VELOCITY
from ...errors import InvalidInputError
from ...math.quat import quat_normalize

__all__ = ["set_qpos", "dof_param", "set_dof_param", "control_dofs", "control_dofs_position_velocity"]


def set_qpos(solver, state, envs: torch.Tensor, qadr: torch.Tensor, values: torch.Tensor,
             zero_dofs: torch.Tensor | None):
    """`state` with `values` at qpos[envs, qadr], the quaternions written normalised, dofs_vel[envs, zero_dofs]
    zeroed, and the link poses recomputed."""
    st, m = state, solver.model
    B = st.qpos.shape[0]
    qpos = st.qpos.index_put((envs[:, None], qadr[None, :]), values.to(st.qpos.dtype))
    rows = torch.zeros(B, dtype=torch.bool, device=qpos.device).index_fill(0, envs, True)
    written = set(qadr.tolist())
    for adr in torch.cat((m.ball_qadr, m.free_qadr + 3)).tolist():
        if written.isdisjoint(range(adr, adr + 4)):  # only quaternions this call wrote; others keep their bits
            continue
        normed = quat_normalize(qpos[:, adr:adr + 4])
        qpos = torch.cat((qpos[:, :adr], torch.where(rows[:, None], normed, qpos[:, adr:adr + 4]),
                          qpos[:, adr + 4:]), dim=1)
    vel = st.dofs_vel
    if zero_dofs is not None and zero_dofs.numel():  # the calling entity's dofs only, not the whole env
        vel = vel.index_put((envs[:, None], zero_dofs[None, :]), vel.new_zeros(()))
    return solver.make_state(**{**st.integration_fields(), "qpos": qpos, "dofs_vel": vel})


def dof_param(solver, name: str, B: int) -> torch.Tensor:
    """(B, nv) kp / kv, or (B, nv, 2) force range, merging MJCF actuators and the dof controller."""
    p, m = solver.params, solver.model
    if m.nu == 0:  # no MJCF actuators (e.g. primitives): gathering from the empty actuator arrays would fail
        own = {"kp": p.dof_kp, "kv": p.dof_kv}.get(name, p.dof_force_range)
        return own.expand(B, *own.shape[1:])
    act = m.dof_actuator.clamp(min=0)
    has = m.dof_actuator >= 0
    if name == "kp":
        own, from_act = p.dof_kp, -p.biasprm[:, act, 1]
    elif name == "kv":
        own, from_act = p.dof_kv, -p.biasprm[:, act, 2]
    else:
        own, from_act = p.dof_force_range, p.forcerange[:, act]
        has = has[:, None]
    return torch.where(has, from_act, own).expand(B, *own.shape[1:])


def set_dof_param(solver, name: str, envs, dofs, values, B: int) -> None:
    """Set kp / kv / force_range of `dofs` in `envs`: on the MJCF actuator driving a dof, else the dof controller's."""
    p, m = solver.params, solver.model
    act = m.dof_actuator[dofs]
    has = act >= 0
    full = lambda t: t.expand(B, *t.shape[1:])  # noqa: E731
    upd = {}
    if bool((~has).any()):
        own = {"kp": "dof_kp", "kv": "dof_kv", "force_range": "dof_force_range"}[name]
        upd[own] = full(getattr(p, own)).index_put((envs[:, None], dofs[~has][None]), values[:, ~has])
    if bool(has.any()):
        a, v = act[has], values[:, has]
        if name == "kp":
            upd["gainprm"] = full(p.gainprm).index_put((envs[:, None], a[None], torch.tensor(0)), v)
            upd["biasprm"] = full(p.biasprm).index_put((envs[:, None], a[None], torch.tensor(1)), -v)
        elif name == "kv":
            upd["biasprm"] = full(p.biasprm).index_put((envs[:, None], a[None], torch.tensor(2)), -v)
        else:
            upd["forcerange"] = full(p.forcerange).index_put((envs[:, None], a[None]), v)
    solver.set_params(**{k: v.clone() for k, v in upd.items()})


def control_dofs(solver, state, mode: int, envs, dofs, values):
    """`state` with a control command of `mode` (CTRL_POSITION / VELOCITY / FORCE) for `dofs` in `envs`.

    A dof driven by an MJCF actuator of the call's kind gets the actuator's `ctrl` (and its dof-controller mode back
    to none); any other dof takes the call as a dof-controller target (`dofs_ctrl_mode`, state), which turns a
    driving actuator off in those envs (the dof controller then uses the actuator's kp / kv / force range, as
    `get_dofs_kp` etc. report them). Every dof of the call gets a zero velocity target (`dofs_ctrl_vel`): Genesis'
    `control_dofs_position` zeroes `ctrl_vel`, which only position control reads."""
    st, m, p = state, solver.model, solver.params
    B, dev = st.ctrl.shape[0], st.ctrl.device
    act = m.dof_actuator[dofs]
    routed = act >= 0  # through the actuator's ctrl
    if m.nu:
        a_all = act.clamp(min=0)
        g0, b1, b2 = m.act_gainprm[a_all, 0], m.act_biasprm[a_all, 1], m.act_biasprm[a_all, 2]
        routed &= {CTRL_POSITION: b1 != 0, CTRL_VELOCITY: (b1 == 0) & (b2 != 0),
                   CTRL_FORCE: (b1 == 0) & (b2 == 0)}[mode] & (g0 != 0)
    own = ~routed  # dof-controller targets
    fields = {}
    if bool(routed.any()):
        a = act[routed]
        back = dofs[routed]
        gear = m.dof_gear[back]
        gb1 = p.gainprm[:, a, 0].expand(B, -1)[envs]
        v = values[:, routed]
        if mode == CTRL_POSITION:
            ctrl = -p.biasprm[:, a, 1].expand(B, -1)[envs] * gear * v / gb1
        elif mode == CTRL_VELOCITY:
            ctrl = -p.biasprm[:, a, 2].expand(B, -1)[envs] * gear * v / gb1
        else:
            ctrl = v / (gear * gb1)
        fields["ctrl"] = st.ctrl.index_put((envs[:, None], a[None]), ctrl.to(st.ctrl.dtype))
        if bool((st.dofs_ctrl_mode[envs][:, back] != CTRL_NONE).any()):  # the actuator takes over again
            fields["dofs_ctrl_mode"] = st.dofs_ctrl_mode.index_put(
                (envs[:, None], back[None]), torch.tensor(CTRL_NONE, dtype=torch.int8, device=dev))
    if bool(own.any()):
        d = dofs[own]
        modes = fields.get("dofs_ctrl_mode", st.dofs_ctrl_mode)
        fields["dofs_ctrl_mode"] = modes.index_put(
            (envs[:, None], d[None]), torch.tensor(mode, dtype=torch.int8, device=dev))
        fields["dofs_ctrl_target"] = st.dofs_ctrl_target.index_put((envs[:, None], d[None]), values[:, own])
    if bool((st.dofs_ctrl_vel[envs][:, dofs] != 0).any()):  # a velocity target set by position_velocity goes
        fields["dofs_ctrl_vel"] = st.dofs_ctrl_vel.index_put((envs[:, None], dofs[None]), st.dofs_ctrl_vel.new_zeros(()))
    return st.replace(**fields)


def control_dofs_position_velocity(solver, state, envs, dofs, position, velocity):
    """`state` with Genesis' position-and-velocity PD targets for `dofs` in `envs` (Genesis 1.4.5
    `RigidSolver.control_dofs_position_velocity`: position mode with `ctrl_pos = position`, `ctrl_vel = velocity`).
    The dof controller's force at each step is `kp (position - q) + kv (velocity - qdot)`, clamped to the force range,
    with the kp / kv / force range in force at that step (`dof_param`: an MJCF actuator's or the dof controller's),
    so later `set_dofs_kp` / `set_dofs_kv` apply. These dofs take dof-controller targets: an MJCF actuator driving
    one is off in those envs until a control call routes to it again (`control_dofs`). `position`, `velocity`:
    `(E, n)` rad or m, rad/s or m/s."""
    st, dev = state, state.ctrl.device
    mode = torch.tensor(CTRL_POSITION, dtype=torch.int8, device=dev)
    return st.replace(dofs_ctrl_mode=st.dofs_ctrl_mode.index_put((envs[:, None], dofs[None]), mode),
                      dofs_ctrl_target=st.dofs_ctrl_target.index_put((envs[:, None], dofs[None]),
                                                                     position.to(st.dofs_ctrl_target.dtype)),
                      dofs_ctrl_vel=st.dofs_ctrl_vel.index_put((envs[:, None], dofs[None]),
                                                               velocity.to(st.dofs_ctrl_vel.dtype)))

"""Inverse kinematics for rigid entities: damped least squares on the solver's batched Jacobians, all envs at once.

Genesis' `inverse_kinematics` / `inverse_kinematics_multilink` (same argument names and defaults). Each iteration,
for every selected env together:

    e = [pos_tgt - x_link ;  log(R_link^T R_tgt)]          (position error, world; rotation error, link frame)
    J = [J_point(link origin) ; R_link^T J_rot]            (rows masked by pos_mask / rot_mask), columns = the dofs
    dq = J^T (J J^T + damping I)^-1 e,  scaled so max|dq| <= max_step_size,   q <- q (+) dq

(`(+)` integrates dq as a velocity over unit time, so ball/free quaternions stay unit). With `respect_joint_limit`,
limited hinge/slide joints are clamped to their range after each step. An env stops once every target is within
`pos_tol` (m) and `rot_tol` (rad); an env still unsolved after `max_solver_iters` restarts from the next of
`max_samples - 1` random configurations (the same fixed, seeded sequence for every env, so an env's answer does not
depend on the others). The best configuration seen (least squared error) is returned. The scene is not changed.
Every product and solve is written with the solver's position-independent linear algebra (`solvers/rigid/linalg.py`),
so an env's answer is bitwise the same alone or in any batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InvalidInputError
from ..solvers.rigid.integrators import integrate_pos
from ..solvers.rigid.jacobians import point_jacobian_difference, rotation_jacobian_difference
from ..solvers.rigid.kinematics import forward_kinematics
from ..solvers.rigid.linalg import matmul, solve_spd, vecmat
from ..solvers.rigid.model import HINGE, SLIDE
from ..math.quat import quat_mul, quat_normalize

_SAMPLE_SEED = 0  # seed of the restart configurations (fixed: IK is deterministic)


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    """Conjugate (inverse of a unit quaternion), `(..., 4)` wxyz."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quat_log(q: torch.Tensor) -> torch.Tensor:
    """Rotation vector (axis * angle, rad, angle in [0, pi]) of unit quaternions `(..., 4)` wxyz -> `(..., 3)`."""
    q = torch.where(q[..., :1] < 0, -q, q)  # shortest rotation
    v = q[..., 1:]
    s = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    # angle / s -> 2 as s -> 0 (first-order series keeps it smooth and finite)
    scale = torch.where(s > 1e-7, angle / s.clamp(min=1e-7), 2.0 + 0.0 * s)
    return v * scale


def _check_positive(name, value, integer=False):
    """`value` as an int >= 1 (`integer`) or a finite float > 0; raises `InvalidInputError` otherwise."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(float(value)) or value <= 0:
        kind = "an int >= 1" if integer else "a positive finite number"
        raise InvalidInputError(f"inverse_kinematics({name}={value!r}): expected {kind}.")
    return int(value) if integer else float(value)


def _mask(name, value):
    try:
        m = [bool(v) for v in value]
    except TypeError:
        m = []
    if len(m) != 3:
        raise InvalidInputError(f"inverse_kinematics({name}={value!r}): expected three booleans, e.g. "
                                "[True, True, True].")
    return m


def _targets(entity, values, n_links, n_sel, width, what):
    """List of per-link targets -> `(n_sel, n_links, width)` tensor, or None when none given."""
    if values is None or len(values) == 0:
        return None
    if len(values) != n_links:
        raise InvalidInputError(f"inverse_kinematics: {what} has {len(values)} entries for {n_links} links; give one "
                                "per link (or none).")
    out = [entity._values(v, n_sel, (width,), f"inverse_kinematics({what})") for v in values]
    return torch.stack(out, 1)


def solve(entity, links, poss, quats, init_qpos=None, respect_joint_limit=True, max_samples=50, max_solver_iters=20,
          damping=0.01, pos_tol=5e-4, rot_tol=5e-3, pos_mask=(True, True, True), rot_mask=(True, True, True),
          max_step_size=0.5, dofs_idx_local=None, return_error=False, envs_idx=None):
    """Multi-link IK (see the module docstring). Returns qpos `(n_sel, n_qs)` (`(n_qs,)` with n_envs=0) and, with
    `return_error`, the final pose errors `(n_sel, n_links, 6)` = [pos error (m, world), rotation error (rad, link
    frame)] after masking."""
    scene, solver = entity._scene, entity._solver
    model = solver.model
    entity._require_built("inverse_kinematics")
    links = list(links)
    if not links:
        raise InvalidInputError("inverse_kinematics: no target link given; pass link=entity.get_link(name).")
    for ln in links:
        if getattr(ln, "entity", None) is not entity:
            raise InvalidInputError(f"inverse_kinematics: {ln!r} is not a link of {entity.name}; use "
                                    f"{entity.name}.get_link(name).")
    max_samples = _check_positive("max_samples", max_samples, integer=True)
    max_solver_iters = _check_positive("max_solver_iters", max_solver_iters, integer=True)
    damping = _check_positive("damping", damping)
    pos_tol, rot_tol = _check_positive("pos_tol", pos_tol), _check_positive("rot_tol", rot_tol)
    max_step_size = _check_positive("max_step_size", max_step_size)
    pmask, rmask = _mask("pos_mask", pos_mask), _mask("rot_mask", rot_mask)
    if sum(rmask) == 2:
        raise InvalidInputError("inverse_kinematics(rot_mask=...): align no axis, one axis or all three (Genesis' "
                                "rule); two axes fix the third, use [True, True, True].")
    if sum(rmask) == 1:  # align that axis: rotations about it are free, the other two error components count
        rmask = [not m for m in rmask]
    if not isinstance(respect_joint_limit, bool) or not isinstance(return_error, bool):
        raise InvalidInputError("inverse_kinematics: respect_joint_limit and return_error must be True or False.")
    envs = entity._envs(envs_idx)
    E, n_links = len(envs), len(links)
    tpos = _targets(entity, poss, n_links, E, 3, "pos")
    tquat = _targets(entity, quats, n_links, E, 4, "quat")
    if tpos is None and tquat is None:
        raise InvalidInputError("inverse_kinematics: give a target pos, a target quat, or both.")
    if tquat is not None:
        if bool((torch.linalg.vector_norm(tquat, dim=-1) < 1e-9).any()):
            raise InvalidInputError("inverse_kinematics(quat=...): quaternions must be non-zero (wxyz).")
        tquat = quat_normalize(tquat)
    dofs = entity._local(dofs_idx_local, entity._dof_ids, "dof")
    if dofs.numel() == 0:
        raise InvalidInputError(f"inverse_kinematics: {entity.name} has no dofs to solve for.")
    qs = torch.as_tensor(entity._q_ids, dtype=torch.int64, device=scene.device)
    qpos = entity._state.qpos[envs]
    if init_qpos is not None:
        qpos = qpos.index_copy(1, qs, entity._values(init_qpos, E, (len(qs),), "inverse_kinematics(init_qpos)"))
        qpos = _normalize_quats(model, qpos)

    bodies = torch.as_tensor([ln.idx + 1 for ln in links], dtype=torch.int64, device=scene.device)
    world = torch.zeros_like(bodies)
    dtype = qpos.dtype
    row_mask = torch.tensor(pmask + rmask, dtype=dtype, device=scene.device)
    if tpos is None:
        row_mask[:3] = 0
        tpos = qpos.new_zeros(E, n_links, 3)
    if tquat is None:
        row_mask[3:] = 0
        tquat = qpos.new_zeros(E, n_links, 4).index_fill(-1, torch.tensor([0], device=scene.device), 1.0)
    lo, hi, limited_q, limited_dof = _limits(entity, model, dofs)
    samples = _restart_samples(entity, model, dofs, lo, hi, limited_dof, max_samples, dtype)

    params = solver.params  # the selected envs' body frames (a base moved by set_pos / set_quat)
    frames = [t if t.shape[0] == 1 else t[envs] for t in (params.body_pos, params.body_quat)]

    def pose_error(q):
        kin = forward_kinematics(model, q, None, *frames)
        xpos, xquat, xmat = kin.xpos[:, bodies], kin.xquat[:, bodies], kin.xmat[:, bodies]
        e_pos = tpos - xpos
        e_rot = quat_log(quat_mul(quat_conj(xquat), tquat))
        return kin, xpos, xmat, torch.cat((e_pos, e_rot), -1) * row_mask  # (E, n_links, 6)

    best_q, best_err = qpos, qpos.new_zeros(E, n_links, 6)
    best_score = torch.full((E,), math.inf, dtype=dtype, device=scene.device)
    done = torch.zeros(E, dtype=torch.bool, device=scene.device)
    q = qpos
    for sample in range(max_samples):
        if sample > 0:  # unsolved envs restart from the next sample (hinge/slide dofs of the selection)
            restart = q.index_copy(1, samples[1], samples[0][sample - 1].expand(E, -1))
            q = torch.where(done[:, None], q, restart)
        for it in range(max_solver_iters + 1):
            kin, xpos, xmat, err = pose_error(q)
            score = (err * err).sum((-1, -2))
            better = (score < best_score) & ~done
            best_q = torch.where(better[:, None], q, best_q)
            best_err = torch.where(better[:, None, None], err, best_err)
            best_score = torch.where(better, score, best_score)
            ok = (torch.linalg.vector_norm(err[..., :3], dim=-1) <= pos_tol) & \
                 (torch.linalg.vector_norm(err[..., 3:], dim=-1) <= rot_tol)
            done = done | ok.all(-1)
            if bool(done.all()) or it == max_solver_iters:
                break
            jp = point_jacobian_difference(model, kin, world, bodies, xpos, xpos)  # (E, n_links, 3, nv)
            jr = matmul(xmat.transpose(-1, -2), rotation_jacobian_difference(model, kin, world, bodies))  # link frame
            J = (torch.cat((jp, jr), -2)[..., dofs] * row_mask[:, None]).reshape(E, 6 * n_links, -1)
            A = matmul(J, J.transpose(-1, -2)) + damping * torch.eye(6 * n_links, dtype=dtype, device=q.device)
            dq = vecmat(solve_spd(A, err.reshape(E, -1)), J)
            peak = dq.abs().amax(-1, keepdim=True)
            dq = dq * torch.clamp(max_step_size / peak.clamp(min=1e-30), max=1.0)
            stepped = integrate_pos(model, q, q.new_zeros(E, model.nv).index_copy(1, dofs, dq), 1.0)
            if respect_joint_limit and limited_q.numel():
                stepped = stepped.index_copy(1, limited_q, stepped[:, limited_q].clamp(lo[limited_dof],
                                                                                       hi[limited_dof]))
            q = torch.where(done[:, None], q, stepped)
        if bool(done.all()):
            break
    out = entity._out(best_q[:, qs])
    if return_error:
        return out, entity._out(best_err)
    return out


def _normalize_quats(model, qpos):
    """`qpos` with its ball and free-joint quaternions normalised."""
    for adr in torch.cat((model.ball_qadr, model.free_qadr + 3)).tolist():
        qpos = torch.cat((qpos[:, :adr], quat_normalize(qpos[:, adr:adr + 4]), qpos[:, adr + 4:]), 1)
    return qpos


def _limits(entity, model, dofs):
    """Per scene dof: (lower, upper) range of limited hinge/slide joints (-inf/inf otherwise), the qpos addresses
    and dof ids of the limited hinge/slide dofs among `dofs`."""
    m = entity._solver.mj_model
    dev, dtype = dofs.device, entity._scene.dtype
    jnt = m.dof_jntid
    hs = np.isin(m.jnt_type[jnt], [HINGE, SLIDE])
    limited = hs & m.jnt_limited[jnt].astype(bool)
    lo = np.where(limited, m.jnt_range[jnt, 0], -np.inf)
    hi = np.where(limited, m.jnt_range[jnt, 1], np.inf)
    sel = dofs.cpu().numpy()
    lim = sel[limited[sel]]
    return (torch.as_tensor(lo, dtype=dtype, device=dev), torch.as_tensor(hi, dtype=dtype, device=dev),
            torch.as_tensor(m.jnt_qposadr[jnt[lim]], dtype=torch.int64, device=dev),
            torch.as_tensor(lim, dtype=torch.int64, device=dev))


def _restart_samples(entity, model, dofs, lo, hi, limited_dof, max_samples, dtype):
    """(values (max_samples - 1, n), qpos addresses (n,)) of the restart configurations of the selected hinge/slide
    dofs: uniform in the joint range, or in [-pi, pi] (hinge) / [-1, 1] m (slide) when unlimited."""
    m = entity._solver.mj_model
    sel = dofs.cpu().numpy()
    jnt = m.dof_jntid[sel]
    hs = np.isin(m.jnt_type[jnt], [HINGE, SLIDE])
    sel, jnt = sel[hs], jnt[hs]
    span = np.where(m.jnt_type[jnt] == HINGE, math.pi, 1.0)
    low = np.where(np.isfinite(lo.cpu().numpy()[sel]), lo.cpu().numpy()[sel], -span)
    high = np.where(np.isfinite(hi.cpu().numpy()[sel]), hi.cpu().numpy()[sel], span)
    rng = np.random.default_rng(_SAMPLE_SEED)
    values = low + (high - low) * rng.random((max(max_samples - 1, 1), len(sel)))
    dev = dofs.device
    return (torch.as_tensor(values, dtype=dtype, device=dev),
            torch.as_tensor(m.jnt_qposadr[jnt], dtype=torch.int64, device=dev))

"""Forward kinematics and motion subspaces, batched over envs and vectorised over the bodies of a tree level.

Follows MuJoCo's `mj_kinematics` / `mj_comPos`: a body's frame is its parent's frame composed with the body
offset, then with each of its joints in order (hinge: rotation about `axis` through `pos`; slide: translation
along `axis`; ball: quaternion rotation about `pos`; free: absolute pose). Joint angles are taken relative to
`qpos0`, as MuJoCo does for hinge and slide joints.
"""

from __future__ import annotations

import dataclasses

import torch

from .model import BALL, DOF_ROT_BODY, DOF_TRANS_WORLD, FREE, HINGE, SLIDE, JointSlot, RigidModel
from .linalg import matmul, matvec
from .spatial import axis_angle_quat, quat_mul, quat_normalize, quat_rotate, quat_to_mat


@dataclasses.dataclass
class Kinematics:
    """Positions of a configuration. All world frame. B envs, nb bodies (incl. world), nj joints, nv dofs."""

    xpos: torch.Tensor  # (B, nb, 3) body frame origins, m
    xquat: torch.Tensor  # (B, nb, 4) body orientations, wxyz
    xmat: torch.Tensor  # (B, nb, 3, 3)
    xipos: torch.Tensor  # (B, nb, 3) centres of mass, m
    ximat: torch.Tensor  # (B, nb, 3, 3) principal inertia frames
    xanchor: torch.Tensor  # (B, nj, 3) joint anchors, m
    xaxis: torch.Tensor  # (B, nj, 3) joint axes
    cdof: torch.Tensor  # (B, nv, 6) dof motion subspaces [ang; lin] at the world origin


def forward_kinematics(model: RigidModel, qpos: torch.Tensor) -> Kinematics:
    """Kinematics of `qpos (B, nq)`; loops over tree depth and joint slots, never over envs or bodies."""
    B = qpos.shape[0]
    dtype, dev = qpos.dtype, qpos.device
    nb, nj = model.nbody, model.njnt
    ident = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, device=dev)
    pos_t = torch.zeros(B, nb, 3, dtype=dtype, device=dev)
    quat_t = ident.expand(B, nb, 4).clone()
    xanchor = torch.zeros(B, nj, 3, dtype=dtype, device=dev)
    xaxis = torch.zeros(B, nj, 3, dtype=dtype, device=dev)

    for bodies, parents, slots in model.levels:
        ppos = pos_t[:, parents]
        pquat = quat_t[:, parents]
        pos = ppos + quat_rotate(pquat, model.body_pos[bodies].expand(B, -1, 3))
        quat = quat_mul(pquat, model.body_quat[bodies].expand(B, -1, 4))
        for slot in slots:
            pos, quat, anchor, waxis = _apply_joints(slot, qpos, pos, quat, ident)
            xanchor = xanchor.index_copy(1, slot.joints, anchor[:, slot.positions])
            xaxis = xaxis.index_copy(1, slot.joints, waxis[:, slot.positions])
        pos_t = pos_t.index_copy(1, bodies, pos)
        quat_t = quat_t.index_copy(1, bodies, quat)

    xmat = quat_to_mat(quat_t)
    xipos = pos_t + matvec(xmat, model.body_ipos)
    ximat = matmul(xmat, quat_to_mat(model.body_iquat))
    cdof = motion_subspaces(model, xmat, xanchor, xaxis)
    return Kinematics(pos_t, quat_t, xmat, xipos, ximat, xanchor, xaxis, cdof)


def _apply_joints(slot: JointSlot, qpos, pos, quat, ident):
    """Compose one joint slot onto body frames `pos (B, n, 3)`, `quat (B, n, 4)`; only the joint types present
    are computed. Returns (pos, quat, joint anchors, joint world axes)."""
    B = qpos.shape[0]
    types = slot.types
    jpos = slot.pos.expand(B, -1, 3)
    axis = slot.axis.expand(B, -1, 3)
    anchor = pos + quat_rotate(quat, jpos)
    waxis = quat_rotate(quat, axis)
    q = qpos[:, slot.qadr] - slot.qpos0 if types & {HINGE, SLIDE} else None
    qloc = None
    if HINGE in types:
        hinge_q = axis_angle_quat(axis, q)
        qloc = hinge_q if types <= {HINGE, FREE} else torch.where((slot.jtype == HINGE)[:, None], hinge_q, ident)
    if BALL in types:
        adr = (slot.qadr[:, None] + torch.arange(4, device=qpos.device)).clamp(max=qpos.shape[1] - 1)
        ball_q = quat_normalize(qpos[:, adr])
        qloc = torch.where((slot.jtype == BALL)[:, None], ball_q, ident if qloc is None else qloc)
    new_quat = quat if qloc is None else quat_mul(quat, qloc)
    new_pos = anchor - quat_rotate(new_quat, jpos) if qloc is not None else pos
    if SLIDE in types:
        new_pos = new_pos + torch.where((slot.jtype == SLIDE)[:, None], waxis * q[..., None], 0.0)
    if FREE in types:
        is_free = (slot.jtype == FREE)[:, None]
        adr = slot.qadr[:, None] + torch.arange(7, device=qpos.device)
        free = qpos[:, adr.clamp(max=qpos.shape[1] - 1)]
        new_pos = torch.where(is_free, free[..., :3], new_pos)
        new_quat = torch.where(is_free, quat_normalize(free[..., 3:]), new_quat)
        anchor = torch.where(is_free, new_pos, anchor)
    new_quat = quat_normalize(new_quat)
    if slot.all_valid:
        return new_pos, new_quat, anchor, waxis
    v = slot.valid[:, None]
    return torch.where(v, new_pos, pos), torch.where(v, new_quat, quat), anchor, waxis


def motion_subspaces(model: RigidModel, xmat, xanchor, xaxis) -> torch.Tensor:
    """`cdof (B, nv, 6)`: the spatial velocity each unit dof velocity produces, at the world origin.

    Hinge: [a; p×a] with world axis a through anchor p. Slide: [0; a]. Ball and free rotations: the body-frame
    axes (columns of `xmat`) through the anchor (MuJoCo's local angular velocity). Free translation: world axes.
    """
    B = xmat.shape[0]
    nv = model.nv
    if nv == 0:
        return xmat.new_zeros(B, 0, 6)
    kind = model.dof_kind
    jax = xaxis[:, model.dof_jnt]  # (B, nv, 3)
    col = xmat.transpose(-1, -2)[:, model.dof_body, model.dof_sub]  # (B, nv, 3): column dof_sub of xmat
    eye = torch.eye(3, dtype=xmat.dtype, device=xmat.device)[model.dof_sub].expand(B, nv, 3)
    axis = torch.where((kind == DOF_ROT_BODY)[:, None], col, torch.where((kind == DOF_TRANS_WORLD)[:, None], eye, jax))  # hinge/slide: joint axis
    anchor = xanchor[:, model.dof_jnt]
    rot = model.dof_is_rot[:, None]
    ang = torch.where(rot, axis, 0.0)
    lin = torch.where(rot, torch.linalg.cross(anchor, axis), axis)
    return torch.cat((ang, lin), dim=-1)

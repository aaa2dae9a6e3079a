"""Forward kinematics and motion subspaces, batched over envs and vectorised over the bodies of a tree level.

Follows MuJoCo's `mj_kinematics` / `mj_comPos`: a body's frame is its parent's frame composed with the body
offset, then with each of its joints in order (hinge: rotation about `axis` through `pos`; slide: translation
along `axis`; ball: quaternion rotation about `pos`; free: absolute pose). Joint angles are taken relative to
`qpos0`, as MuJoCo does for hinge and slide joints.
"""

from __future__ import annotations

import dataclasses

import torch

from ...math.quat import axis_angle_quat, quat_mul, quat_normalize, quat_rotate, quat_to_mat
from .model import BALL, DOF_ROT_BODY, DOF_TRANS_WORLD, FREE, HINGE, SLIDE, JointSlot, RigidModel
from .linalg import matmul, matvec


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


def forward_kinematics(model: RigidModel, qpos: torch.Tensor, ipos: torch.Tensor | None = None,
                       body_pos: torch.Tensor | None = None, body_quat: torch.Tensor | None = None,
                       body_iquat: torch.Tensor | None = None) -> Kinematics:
    """Kinematics of `qpos (B, nq)`; loops over tree depth and joint slots, never over envs or bodies.

    `ipos (1|B, nb, 3)`: the COMs in the body frames (`RigidParams.body_ipos`), the MJCF's when None.
    `body_pos (1|B, nb, 3)`, `body_quat (1|B, nb, 4)`: the body frames in their parents' (`RigidParams.body_pos`,
    `body_quat`: per env once `set_pos`/`set_quat` moved a fixed base), the MJCF's when None.
    `body_iquat (1|B, nb, 4)`: the principal inertia frames in the body frames (`RigidParams.body_iquat`: per env for
    a heterogeneous entity's variants), the MJCF's when None.

    The frame composition runs batch-last (`(n, 3|4, B)`, vectorised over envs); outputs are batch-first.
    """
    B = qpos.shape[0]
    dtype, dev = qpos.dtype, qpos.device
    nb, nj = model.nbody, model.njnt
    qt = qpos.T.contiguous()  # (nq, B)
    ident = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, device=dev)[None, :, None]
    pos_t = torch.zeros(nb, 3, B, dtype=dtype, device=dev)
    quat_t = ident.expand(nb, 4, B).clone()
    xanchor = torch.zeros(nj, 3, B, dtype=dtype, device=dev)
    xaxis = torch.zeros(nj, 3, B, dtype=dtype, device=dev)
    # body offsets batch-last, (nb, 3|4, 1|B): the shared ones hold the same numbers as the model's
    bpos = (model.body_pos[None] if body_pos is None else body_pos).permute(1, 2, 0)
    bquat = (model.body_quat[None] if body_quat is None else body_quat).permute(1, 2, 0)

    for bodies, parents, slots in model.levels:
        ppos = pos_t[parents]
        pquat = quat_t[parents]
        pos = ppos + quat_rotate(pquat, bpos[bodies].expand(-1, -1, B), dim=1)
        quat = quat_mul(pquat, bquat[bodies].expand(-1, -1, B), dim=1)
        for slot in slots:
            pos, quat, anchor, waxis = _apply_joints(slot, qt, pos, quat, ident)
            xanchor = xanchor.index_copy(0, slot.joints, anchor[slot.positions])
            xaxis = xaxis.index_copy(0, slot.joints, waxis[slot.positions])
        pos_t = pos_t.index_copy(0, bodies, pos)
        quat_t = quat_t.index_copy(0, bodies, quat)

    first = lambda x: x.movedim(-1, 0).contiguous()  # noqa: E731
    pos_t, quat_t, xanchor, xaxis = first(pos_t), first(quat_t), first(xanchor), first(xaxis)
    xmat = quat_to_mat(quat_t)
    xipos = pos_t + matvec(xmat, model.body_ipos if ipos is None else ipos)
    ximat = matmul(xmat, quat_to_mat(model.body_iquat if body_iquat is None else body_iquat))
    cdof = motion_subspaces(model, xmat, xanchor, xaxis)
    return Kinematics(pos_t, quat_t, xmat, xipos, ximat, xanchor, xaxis, cdof)


def _apply_joints(slot: JointSlot, qt, pos, quat, ident):
    """Compose one joint slot onto body frames `pos (n, 3, B)`, `quat (n, 4, B)` given `qt = qpos^T (nq, B)`;
    only the joint types present are computed. Returns (pos, quat, joint anchors, joint world axes)."""
    B = qt.shape[1]
    types = slot.types
    jpos = slot.pos[..., None].expand(-1, -1, B)
    axis = slot.axis[..., None].expand(-1, -1, B)
    anchor = pos + quat_rotate(quat, jpos, dim=1)
    waxis = quat_rotate(quat, axis, dim=1)
    q = qt[slot.qadr] - slot.qpos0[:, None] if types & {HINGE, SLIDE} else None  # (n, B)
    is_ = lambda kind: (slot.jtype == kind)[:, None, None]  # noqa: E731
    qloc = None
    if HINGE in types:
        hinge_q = axis_angle_quat(axis, q, dim=1)
        qloc = hinge_q if types <= {HINGE, FREE} else torch.where(is_(HINGE), hinge_q, ident)
    if BALL in types:
        adr = (slot.qadr[:, None] + torch.arange(4, device=qt.device)).clamp(max=qt.shape[0] - 1)
        ball_q = quat_normalize(qt[adr], dim=1)
        qloc = torch.where(is_(BALL), ball_q, ident if qloc is None else qloc)
    new_quat = quat if qloc is None else quat_mul(quat, qloc, dim=1)
    new_pos = anchor - quat_rotate(new_quat, jpos, dim=1) if qloc is not None else pos
    if SLIDE in types:
        new_pos = new_pos + torch.where(is_(SLIDE), waxis * q[:, None], 0.0)
    if FREE in types:
        adr = (slot.qadr[:, None] + torch.arange(7, device=qt.device)).clamp(max=qt.shape[0] - 1)
        free = qt[adr]  # (n, 7, B)
        new_pos = torch.where(is_(FREE), free[:, :3], new_pos)
        new_quat = torch.where(is_(FREE), quat_normalize(free[:, 3:], dim=1), new_quat)
        anchor = torch.where(is_(FREE), new_pos, anchor)
    new_quat = quat_normalize(new_quat, dim=1)
    if slot.all_valid:
        return new_pos, new_quat, anchor, waxis
    v = slot.valid[:, None, None]
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

"""Forward kinematics and motion subspaces, batched over envs and vectorised over the bodies of a tree level.

Follows MuJoCo's `mj_kinematics` / `mj_comPos`: a body's frame is its parent's frame composed with the body
offset, then with each of its joints in order (hinge: rotation about `axis` through `pos`; slide: translation
along `axis`; ball: quaternion rotation about `pos`; free: absolute pose). Joint angles are taken relative to
`qpos0`, as MuJoCo does for hinge and slide joints.
"""

from __future__ import annotations

import dataclasses

import torch

from ...math.quat import quat_normalize
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
    plan = _plan(model, dtype, dev)
    qt = qpos.T.contiguous()  # (nq, B)
    # body offsets batch-last, (nb, 3|4, 1|B): the shared ones hold the same numbers as the model's
    bpos = (model.body_pos[None] if body_pos is None else body_pos).permute(1, 2, 0)
    bquat = (model.body_quat[None] if body_quat is None else body_quat).permute(1, 2, 0)
    hinge = None
    if plan.hinge_qadr is not None:  # the local rotations of all hinge slots at once (elementwise: same bits)
        hinge = _axis_angle(plan.hinge_axis, qt.index_select(0, plan.hinge_qadr) - plan.hinge_qpos0[:, None])
    # per level: (n, 3|4, B) frames; parents are read from the previous level directly in a chain, else gathered
    # from the levels so far (row 0: the world)
    world_pos, world_quat = plan.zero3.expand(1, 3, B), plan.ident.expand(1, 4, B)
    lv_pos, lv_quat, anchors, axes = [world_pos], [world_quat], [], []
    for (bodies, parents, slots), (prev_chain, parent_rows, hinge_rows) in zip(model.levels, plan.levels):
        if prev_chain:
            ppos, pquat = lv_pos[-1], lv_quat[-1]
        else:
            ppos = torch.cat(lv_pos).index_select(0, parent_rows)
            pquat = torch.cat(lv_quat).index_select(0, parent_rows)
        pos = ppos + _rotate(pquat, bpos.index_select(0, bodies))
        quat = _qmul(pquat, bquat.index_select(0, bodies), plan)
        for slot, rows in zip(slots, hinge_rows):
            hq = None if rows is None else hinge.narrow(0, rows[0], rows[1])
            pos, quat, anchor, waxis = _apply_joints(slot, qt, pos, quat, plan, hq)
            anchors.append(anchor if slot.all_valid else anchor.index_select(0, slot.positions))
            axes.append(waxis if slot.all_valid else waxis.index_select(0, slot.positions))
        lv_pos.append(pos)
        lv_quat.append(quat)

    first = lambda x: x.movedim(-1, 0).contiguous()  # noqa: E731
    if len(lv_pos) > 1:
        pos_t = torch.cat(lv_pos).index_select(0, plan.body_rows)
        quat_t = torch.cat(lv_quat).index_select(0, plan.body_rows)
    else:
        pos_t, quat_t = world_pos, world_quat
    if anchors:
        xanchor = torch.cat(anchors).index_select(0, plan.joint_rows)
        xaxis = torch.cat(axes).index_select(0, plan.joint_rows)
    else:
        xanchor = xaxis = torch.zeros(0, 3, B, dtype=dtype, device=dev)
    pos_t, quat_t, xanchor, xaxis = first(pos_t), first(quat_t), first(xanchor), first(xaxis)
    xmat = _quat_to_mat(quat_t, plan.one)
    xipos = pos_t + matvec(xmat, model.body_ipos if ipos is None else ipos)
    ximat = matmul(xmat, _quat_to_mat(model.body_iquat if body_iquat is None else body_iquat, plan.one))
    cdof = motion_subspaces(model, xmat, xanchor, xaxis)
    return Kinematics(pos_t, quat_t, xmat, xipos, ximat, xanchor, xaxis, cdof)


@dataclasses.dataclass
class _Plan:
    """Index tables and constants of `forward_kinematics` for one model, dtype and device (built once)."""

    levels: list  # per level: (parents are the previous level in order, parent rows in the levels so far, per slot
    #               (first row, rows) of its hinge quaternions or None)
    body_rows: torch.Tensor  # (nb,) row of each body in the concatenated levels (world first)
    joint_rows: torch.Tensor  # (nj,) row of each joint in the concatenated slot outputs
    hinge_axis: torch.Tensor | None  # (nh, 3, 1) axes of the hinge slot rows
    hinge_qadr: torch.Tensor | None  # (nh,)
    hinge_qpos0: torch.Tensor | None  # (nh,)
    ident: torch.Tensor  # (1, 4, 1) identity quaternion
    one: torch.Tensor  # () 1
    slot_vecs: dict  # id(slot) -> (jpos, 2 jpos, axis, 2 axis), each (n, 3, 1)
    zero3: torch.Tensor  # (1, 3, 1)
    qmul_a: torch.Tensor  # (16,) component of a in each term of the Hamilton product (term-major)
    qmul_b: torch.Tensor  # (16,) component of b
    qmul_sign: torch.Tensor  # (16, 1) sign of each term


def _plan(model: RigidModel, dtype, dev) -> _Plan:
    key = (dtype, dev)
    cache = model.__dict__.setdefault("_fk_plans", {})
    if key in cache:
        return cache[key]
    i = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
    row_of = {0: 0}  # body -> row in the concatenated levels
    joint_row, nrow_j, levels = {}, 0, []
    axis, qadr, qpos0, nh = [], [], [], 0
    prev = [0]
    for bodies, parents, slots in model.levels:
        b, p = bodies.tolist(), parents.tolist()
        chain = p == prev
        rows_p = i([row_of[x] for x in p])
        slot_rows = []
        for slot in slots:
            if slot.types == {HINGE}:
                slot_rows.append((nh, len(b)))
                axis.append(slot.axis)
                qadr.append(slot.qadr)
                qpos0.append(slot.qpos0)
                nh += len(b)
            else:
                slot_rows.append(None)
            for j in slot.joints.tolist():
                joint_row[j] = nrow_j
                nrow_j += 1
        base = len(row_of)
        for k, x in enumerate(b):
            row_of[x] = base + k
        levels.append((chain, rows_p, slot_rows))
        prev = b
    cat = lambda xs: torch.cat(xs) if xs else None  # noqa: E731
    consts = _plan_constants(dtype, dev)
    plan = _Plan(levels=levels, body_rows=i([row_of[x] for x in range(model.nbody)]),
                 joint_rows=i([joint_row[j] for j in range(model.njnt)]),
                 hinge_axis=None if not axis else cat(axis).to(dtype)[..., None], hinge_qadr=cat(qadr),
                 hinge_qpos0=None if not axis else cat(qpos0).to(dtype),
                 ident=torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, device=dev)[None, :, None],
                 one=consts.one,
                 slot_vecs={id(slot): (slot.pos.to(dtype)[..., None], (slot.pos.to(dtype) * 2)[..., None],
                                       slot.axis.to(dtype)[..., None], (slot.axis.to(dtype) * 2)[..., None])
                            for _, _, slots in model.levels for slot in slots},
                 zero3=torch.zeros(1, 3, 1, dtype=dtype, device=dev),
                 qmul_a=consts.qmul_a, qmul_b=consts.qmul_b, qmul_sign=consts.qmul_sign)
    cache[key] = plan
    return plan


def _qmul(a, b, plan: _Plan, dim: int = 1):
    """Hamilton product of quaternions with components along `dim` (1: `(n, 4, B)`; -1: `(..., 4)`):
    `math.quat.quat_mul`'s terms in its order (output o is s0 a_0 b_j0 + s1 a_1 b_j1 + s2 a_2 b_j2 + s3 a_3 b_j3,
    added left to right; x - y is x + (-y) exactly in IEEE arithmetic), so the same bits, in 11 ops instead of 31."""
    t = a.index_select(dim, plan.qmul_a) * b.index_select(dim, plan.qmul_b) * \
        (plan.qmul_sign if dim == 1 else plan.qmul_sign[:, 0])
    return t.narrow(dim, 0, 4) + t.narrow(dim, 4, 4) + t.narrow(dim, 8, 4) + t.narrow(dim, 12, 4)


_QCONSTS: dict = {}


def frame_product(quat: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """Rotation matrices `(..., 3, 3)` of `quat * local` for `(..., 4)` quaternions broadcasting together (e.g. geom
    frames from body frames): the same bits as `quat_to_mat(quat_mul(quat, local))` of `math.quat`, in fewer ops."""
    key = (quat.dtype, quat.device)
    c = _QCONSTS.get(key)
    if c is None:
        with torch.inference_mode(False):
            p = _plan_constants(quat.dtype, quat.device)
        c = _QCONSTS[key] = p
    return _quat_to_mat(_qmul(quat, local, c, dim=-1), c.one)


@dataclasses.dataclass
class _QuatConstants:
    qmul_a: torch.Tensor
    qmul_b: torch.Tensor
    qmul_sign: torch.Tensor
    one: torch.Tensor


def _plan_constants(dtype, dev) -> _QuatConstants:
    """The Hamilton product's term tables (see `_qmul`) and a tensor one."""
    i = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
    return _QuatConstants(qmul_a=i([0] * 4 + [1] * 4 + [2] * 4 + [3] * 4),
                          qmul_b=i([0, 1, 2, 3, 1, 0, 3, 2, 2, 3, 0, 1, 3, 2, 1, 0]),
                          qmul_sign=torch.tensor([1, 1, 1, 1, -1, 1, -1, 1, -1, 1, 1, -1, -1, -1, 1, 1], dtype=dtype,
                                                 device=dev)[:, None],
                          one=torch.ones((), dtype=dtype, device=dev))


def _rotate(q, v, v2=None):
    """`math.quat.quat_rotate(q, v, dim=1)` with `v (n, 3, 1|B)` broadcast against `q (n, 4, B)`, the same bits:
    2 (u x v) is computed as u x (2 v) (`v2`, when given) or (u x v) + (u x v), both exact doublings."""
    u = q.narrow(1, 1, 3)
    if v2 is None:
        t = torch.linalg.cross(u, v, dim=1)
        t = t + t
    else:
        t = torch.linalg.cross(u, v2, dim=1)
    return v + q.narrow(1, 0, 1) * t + torch.linalg.cross(u, t, dim=1)


def _quat_to_mat(q, one):
    """`math.quat.quat_to_mat` (`(..., 4)` -> `(..., 3, 3)`), the same bits: 2 s as s + s and 1 - 2 s with a tensor
    one, so no Python scalar is converted per call."""
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    dbl = lambda a: a + a  # noqa: E731
    rows = (
        one - dbl(yy + zz), dbl(xy - wz), dbl(xz + wy),
        dbl(xy + wz), one - dbl(xx + zz), dbl(yz - wx),
        dbl(xz - wy), dbl(yz + wx), one - dbl(xx + yy),
    )
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def _normalize(q, plan: _Plan):
    """`math.quat.quat_normalize(q, dim=1)` for `(n, 4, B)` (same ops and bits, the identity a cached constant)."""
    w, x, y, z = (q * q).unbind(1)
    norm = torch.sqrt(w + x + y + z).unsqueeze(1)
    return torch.where(norm > 1e-15, q / norm.clamp_min(1e-15), plan.ident)


def _axis_angle(axis, angle):
    """`math.quat.axis_angle_quat(axis, angle, dim=1)`: `axis (n, 3, 1|B)`, `angle (n, B)` -> `(n, 4, B)`."""
    half = 0.5 * angle
    return torch.cat((torch.cos(half).unsqueeze(1), axis * torch.sin(half).unsqueeze(1)), dim=1)


def _apply_joints(slot: JointSlot, qt, pos, quat, plan: _Plan, hinge_q=None):
    """Compose one joint slot onto body frames `pos (n, 3, B)`, `quat (n, 4, B)` given `qt = qpos^T (nq, B)`;
    only the joint types present are computed. `hinge_q (n, 4, B)`: the slot's hinge rotations when every joint
    of the slot is a hinge (computed for all such slots at once). Returns (pos, quat, joint anchors, joint world
    axes)."""
    B = qt.shape[1]
    types = slot.types
    ident = plan.ident
    jpos, jpos2, axis, axis2 = plan.slot_vecs[id(slot)]
    anchor = pos + _rotate(quat, jpos, jpos2)
    waxis = _rotate(quat, axis, axis2)
    if hinge_q is not None:
        new_quat = _qmul(quat, hinge_q, plan)
        new_pos = anchor - _rotate(new_quat, jpos, jpos2)
        return _keep_valid(slot, new_pos, _normalize(new_quat, plan), pos, quat, anchor, waxis)
    jpos = jpos.expand(-1, -1, B)
    q = qt[slot.qadr] - slot.qpos0[:, None] if types & {HINGE, SLIDE} else None  # (n, B)
    is_ = lambda kind: (slot.jtype == kind)[:, None, None]  # noqa: E731
    qloc = None
    if HINGE in types:
        hinge_q = _axis_angle(axis, q)
        qloc = hinge_q if types <= {HINGE, FREE} else torch.where(is_(HINGE), hinge_q, ident)
    if BALL in types:
        adr = (slot.qadr[:, None] + torch.arange(4, device=qt.device)).clamp(max=qt.shape[0] - 1)
        ball_q = quat_normalize(qt[adr], dim=1)
        qloc = torch.where(is_(BALL), ball_q, ident if qloc is None else qloc)
    new_quat = quat if qloc is None else _qmul(quat, qloc, plan)
    new_pos = anchor - _rotate(new_quat, jpos) if qloc is not None else pos
    if SLIDE in types:
        new_pos = new_pos + torch.where(is_(SLIDE), waxis * q[:, None], 0.0)
    if FREE in types:
        adr = (slot.qadr[:, None] + torch.arange(7, device=qt.device)).clamp(max=qt.shape[0] - 1)
        free = qt[adr]  # (n, 7, B)
        new_pos = torch.where(is_(FREE), free[:, :3], new_pos)
        new_quat = torch.where(is_(FREE), quat_normalize(free[:, 3:], dim=1), new_quat)
        anchor = torch.where(is_(FREE), new_pos, anchor)
    return _keep_valid(slot, new_pos, _normalize(new_quat, plan), pos, quat, anchor, waxis)


def _keep_valid(slot: JointSlot, new_pos, new_quat, pos, quat, anchor, waxis):
    """The slot's outputs, with the frames of the bodies that have no joint in this slot left as they were."""
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

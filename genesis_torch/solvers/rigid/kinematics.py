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
from .spatial import cross

WIDE_FK = 64  # from this many envs on, the tail of forward kinematics runs batch-last (below: fewer ops)


@dataclasses.dataclass
class Kinematics:
    """Positions of a configuration. All world frame. B envs, nb bodies (incl. world), nj joints, nv dofs.

    A wide batch's kinematics (`forward_kinematics` from `WIDE_FK` envs) are computed batch-last and carry only the
    `*_bl` fields; each batch-first field is then copied from its batch-last one on first read (and kept), so a step
    pays only for the layouts its stages read (a Franka step at 4096 envs reads xpos and xquat batch-first, for the
    state's link poses, and the rest batch-last). Reading or writing a field works as on a plain dataclass."""

    xpos: torch.Tensor | None = None  # (B, nb, 3) body frame origins, m
    xquat: torch.Tensor | None = None  # (B, nb, 4) body orientations, wxyz
    xmat: torch.Tensor | None = None  # (B, nb, 3, 3)
    xipos: torch.Tensor | None = None  # (B, nb, 3) centres of mass, m
    ximat: torch.Tensor | None = None  # (B, nb, 3, 3) principal inertia frames
    xanchor: torch.Tensor | None = None  # (B, nj, 3) joint anchors, m
    xaxis: torch.Tensor | None = None  # (B, nj, 3) joint axes
    cdof: torch.Tensor | None = None  # (B, nv, 6) dof motion subspaces [ang; lin] at the world origin
    # the same, batch-last and contiguous, as `forward_kinematics` computed them (the dynamics read these instead of
    # transposing the batch-first ones back); None when not known
    xipos_bl: torch.Tensor | None = None  # (nb, 3, B)
    ximat_bl: torch.Tensor | None = None  # (nb, 3, 3, B)
    cdof_bl: torch.Tensor | None = None  # (nv, 6, B)
    xpos_bl: torch.Tensor | None = None  # (nb, 3, B)
    xquat_bl: torch.Tensor | None = None  # (nb, 4, B)
    xmat_bl: torch.Tensor | None = None  # (nb, 3, 3, B)
    xanchor_bl: torch.Tensor | None = None  # (nj, 3, B)
    xaxis_bl: torch.Tensor | None = None  # (nj, 3, B)

    def batch_last(self, name: str) -> torch.Tensor:
        """Field `name` (xpos, xquat, xmat, xipos, ximat, xanchor, xaxis or cdof) batch-last and contiguous,
        `(..., B)`."""
        t = getattr(self, name + "_bl")
        return getattr(self, name).movedim(0, -1).contiguous() if t is None else t


def _batch_first_field(name: str) -> property:
    """Kinematics.`name`: the value set, else (None set) the batch-first copy of `name`_bl, made once."""
    slot = "_" + name

    def get(self):
        t = getattr(self, slot)
        if t is None:
            bl = getattr(self, name + "_bl")
            if bl is not None:
                t = batch_first(bl)
                setattr(self, slot, t)
        return t

    def put(self, value):
        setattr(self, slot, value)

    return property(get, put)


_BATCH_FIRST_FIELDS = ("xpos", "xquat", "xmat", "xipos", "ximat", "xanchor", "xaxis", "cdof")
for _name in _BATCH_FIRST_FIELDS:
    setattr(Kinematics, _name, _batch_first_field(_name))


def forward_kinematics(model: RigidModel, qpos: torch.Tensor, ipos: torch.Tensor | None = None,
                       body_pos: torch.Tensor | None = None, body_quat: torch.Tensor | None = None,
                       body_iquat: torch.Tensor | None = None) -> Kinematics:
    """Kinematics of `qpos (B, nq)`; loops over joint slots and tree depth, never over envs or bodies.

    `ipos (1|B, nb, 3)`: the COMs in the body frames (`RigidParams.body_ipos`), the MJCF's when None.
    `body_pos (1|B, nb, 3)`, `body_quat (1|B, nb, 4)`: the body frames in their parents' (`RigidParams.body_pos`,
    `body_quat`: per env once `set_pos`/`set_quat` moved a fixed base), the MJCF's when None.
    `body_iquat (1|B, nb, 4)`: the principal inertia frames in the body frames (`RigidParams.body_iquat`: per env for
    a heterogeneous entity's variants), the MJCF's when None.

    Each body's frame in its parent's (body offset, then its joints in order, MuJoCo's `mj_kinematics`) is computed
    for all bodies at once, one joint slot at a time; then one composition per tree level gives the world frames
    (pos = ppos + R(pquat) local_pos, quat = pquat local_quat) and the joint anchors and axes are mapped from the
    parents' frames to the world at once: ~20 ops per level instead of ~65. Products are associated as
    pquat (bquat qjoint) instead of MuJoCo's (pquat bquat) qjoint (rounding-level differences; the world's children
    keep MuJoCo's exact sequence, composing with the world is exact), and composed rotations are renormalised once.
    A pointer-doubling composition (log2 depth rounds) took fewer ops still but 1.4-2.2x the time from 1024 envs
    on (measured on Franka: every round composes every body). The composition runs batch-last (`(n, 3|4, B)`,
    vectorised over envs); outputs are batch-first.
    """
    B = qpos.shape[0]
    dtype, dev = qpos.dtype, qpos.device
    plan = _plan(model, dtype, dev)
    qt = qpos.T.contiguous()  # (nq, B)
    # body offsets batch-last in level order (world excluded), (n, 3|4, 1|B)
    bpos = (model.body_pos[None] if body_pos is None else body_pos).permute(1, 2, 0).index_select(0, plan.order)
    bquat = (model.body_quat[None] if body_quat is None else body_quat).permute(1, 2, 0).index_select(0, plan.order)
    n = plan.order.shape[0]
    world_pos, world_quat = plan.zero3.expand(1, 3, B), plan.ident.expand(1, 4, B)
    pos, quat, anchors, axes = bpos.expand(n, 3, B), bquat.expand(n, 4, B), [], []
    if plan.partial:  # index_copy below writes rows: into dense frames, not into the shared offsets' broadcast view
        # (torch 2.13's inductor writes index_copy into an expanded intermediate through its zero strides: every env
        # got the last env's frame, see docs/rigid.md "torch.compile pitfalls"; eager copies, same bits)
        pos, quat = pos.contiguous(), quat.contiguous()
    for slot, rows, vecs in plan.slots:  # each body's frame in its parent's, all bodies with an s-th joint at once
        hq = None
        if slot.types == {HINGE}:
            hq = _axis_angle(vecs[2], qt.index_select(0, slot.qadr) - slot.qpos0[:, None])
        if rows is None:  # every body has one
            pos, quat, anchor, waxis = _apply_joints(slot, vecs, qt, pos, quat, plan, hq)
        else:  # only the bodies `rows` have one: the others keep their frames
            new_pos, new_quat, anchor, waxis = _apply_joints(slot, vecs, qt, pos.index_select(0, rows),
                                                             quat.index_select(0, rows), plan, hq)
            pos, quat = pos.index_copy(0, rows, new_pos), quat.index_copy(0, rows, new_quat)
        anchors.append(anchor)
        axes.append(waxis)
    if n:
        # compose down the tree level by level, each body with its parent's world frame (row 0: the world; composing
        # with it is exact, the identity's products add signed zeros)
        lv_pos, lv_quat = [world_pos], [world_quat]
        for chain, start, size, parent_rows in plan.levels:
            if chain:
                ppos, pquat = lv_pos[-1], lv_quat[-1]
            else:
                ppos = torch.cat(lv_pos).index_select(0, parent_rows)
                pquat = torch.cat(lv_quat).index_select(0, parent_rows)
            lv_pos.append(ppos + _rotate(pquat, pos.narrow(0, start, size)))
            lv_quat.append(_qmul(pquat, quat.narrow(0, start, size), plan))
        pos, quat = torch.cat(lv_pos), torch.cat(lv_quat)
        if plan.deep < quat.shape[0]:  # renormalise the composed rotations (the world's children keep their bits)
            quat = torch.cat((quat.narrow(0, 0, plan.deep), _normalize(quat.narrow(0, plan.deep, quat.shape[0] -
                                                                                   plan.deep), plan)))
    pos_t = pos.index_select(0, plan.body_rows) if n else world_pos
    quat_t = quat.index_select(0, plan.body_rows) if n else world_quat
    if anchors:  # anchors and axes were in the parent's frame: to the world
        jpos, jaxis = torch.cat(anchors), torch.cat(axes)
        ppos, pquat = pos.index_select(0, plan.joint_parent), quat.index_select(0, plan.joint_parent)
        xanchor = (ppos + _rotate(pquat, jpos)).index_select(0, plan.joint_rows)
        xaxis = _rotate(pquat, jaxis).index_select(0, plan.joint_rows)
    else:
        xanchor = xaxis = torch.zeros(0, 3, B, dtype=dtype, device=dev)
    iframes = _inertia_frames(model if body_iquat is None else body_iquat, plan)
    ipos = model.body_ipos if ipos is None else ipos
    if B < WIDE_FK:  # few envs: batch-first, fewer ops (the same bits as below)
        pos_t, quat_t, xanchor, xaxis = (batch_first(x) for x in (pos_t, quat_t, xanchor, xaxis))
        xmat = _quat_to_mat(quat_t, plan.one)
        xipos = pos_t + matvec(xmat, ipos)
        return Kinematics(pos_t, quat_t, xmat, xipos, matmul(xmat, iframes), xanchor, xaxis,
                          motion_subspaces(model, xmat, xanchor, xaxis))
    # rotation matrices, COMs, inertia frames and motion subspaces batch-last too (elementwise, 3-term sums written
    # out: the bits of the batch-first `math.quat.quat_to_mat`, `A @ x` and `A @ B` above), handed to the dynamics;
    # the batch-first fields are copied from these when read (`Kinematics`)
    xmat = _quat_to_mat(quat_t, plan.one, dim=1)  # (nb, 3, 3, B)
    env_last = lambda t, nd: (t if t.dim() == nd else t[None]).movedim(0, -1)  # (1|B, ...) -> (..., 1|B), a view
    xipos = pos_t + _mv(xmat, env_last(ipos, 3))
    ximat = _mm(xmat, env_last(iframes, 4))
    cdof = _motion_subspaces(model, plan, xmat, xanchor, xaxis)
    return Kinematics(xipos_bl=xipos, ximat_bl=ximat, cdof_bl=cdof, xpos_bl=pos_t, xquat_bl=quat_t, xmat_bl=xmat,
                      xanchor_bl=xanchor, xaxis_bl=xaxis)


def batch_first(x: torch.Tensor) -> torch.Tensor:
    """A batch-last `(..., B)` tensor as a contiguous batch-first `(B, ...)` one (a copy)."""
    return x.movedim(-1, 0).contiguous()


def _mv(A, x):
    """`A x` for batch-last `A (n, 3, 3, B)`, `x (n, 3, 1|B)`, summed k = 0, 1, 2 in order -> `(n, 3, B)`."""
    a0, a1, a2 = A.unbind(2)
    x0, x1, x2 = x.unbind(1)
    return a0 * x0[:, None] + a1 * x1[:, None] + a2 * x2[:, None]


def _mm(A, M):
    """`A M` for batch-last `A (n, 3, 3, B)`, `M (n, 3, 3, 1|B)`, summed k = 0, 1, 2 in order -> `(n, 3, 3, B)`."""
    a0, a1, a2 = A.unbind(2)
    m0, m1, m2 = M.unbind(1)
    return a0[:, :, None] * m0[:, None] + a1[:, :, None] * m1[:, None] + a2[:, :, None] * m2[:, None]


def _inertia_frames(src, plan: "_Plan") -> torch.Tensor:
    """Rotation matrices of the principal inertia frames in the body frames `(1|B, nb, 3, 3)`, from `src`: the
    model (its `body_iquat`) or a `(1|B, nb, 4)` tensor; the last result is reused for the same unmodified tensor
    that needs no gradient (outside `torch.compile`, which folds constants itself)."""
    quat = src.body_iquat if isinstance(src, RigidModel) else src
    if quat.requires_grad or torch.compiler.is_compiling() or torch.is_inference_mode_enabled():
        return _quat_to_mat(quat, plan.one)
    try:
        version = quat._version
    except RuntimeError:  # an inference tensor: no version counter, no reuse
        return _quat_to_mat(quat, plan.one)
    c = plan.iframe
    if c is not None and c[0] is quat and c[1] == version:
        return c[2]
    mat = _quat_to_mat(quat, plan.one)
    plan.iframe = (quat, version, mat)
    return mat


@dataclasses.dataclass
class _Plan:
    """Index tables and constants of `forward_kinematics` for one model, dtype and device (built once)."""

    order: torch.Tensor  # (n,) the non-world bodies in level order (row r + 1 of the frames is body order[r])
    slots: list  # per joint slot: (JointSlot of the bodies with an s-th joint, their rows in level order or None: all,
    #              its (jpos, 2 jpos, axis, 2 axis), each (n, 3, 1))
    partial: bool  # some slot has rows (its frames are written with index_copy)
    levels: list  # per tree level: (its parents are the previous level's bodies in order, first row - 1, bodies,
    #               (n_level,) parent rows in the frames of the levels so far, row 0 the world)
    deep: int  # first row at depth >= 2 (composed rotations, renormalised; rows are in level order)
    body_rows: torch.Tensor  # (nb,) row of each body (world first)
    joint_rows: torch.Tensor  # (nj,) row of each joint in the concatenated slot outputs
    joint_parent: torch.Tensor  # (nj,) frame row of the parent of each joint's body, in slot-output order
    ident: torch.Tensor  # (1, 4, 1) identity quaternion
    one: torch.Tensor  # () 1
    zero3: torch.Tensor  # (1, 3, 1)
    qmul_a: torch.Tensor  # (16,) component of a in each term of the Hamilton product (term-major)
    qmul_b: torch.Tensor  # (16,) component of b
    qmul_sign: torch.Tensor  # (16, 1) sign of each term
    dof_kinds: tuple = (True, True, False, True)  # some dof is DOF_ROT_BODY, some DOF_TRANS_WORLD, all / some rotate
    iframe: tuple | None = None  # (body_iquat tensor, its version, its rotation matrices), see `_inertia_frames`


def _global_slots(model: RigidModel, dev) -> list:
    """The levels' joint slots concatenated over the levels (level order), restricted to the bodies that have an s-th
    joint: per slot (JointSlot, rows of those bodies among the non-world bodies in level order, None when all)."""
    sizes = [int(lvl[0].shape[0]) for lvl in model.levels]
    count = max((len(lvl[2]) for lvl in model.levels), default=0)
    out = []
    for s in range(count):
        parts = []
        for (bodies, _, slots), size in zip(model.levels, sizes):
            if s < len(slots):
                parts.append(slots[s])
            else:  # no body of this level has an s-th joint: rows that keep their frames
                z = torch.zeros(size, dtype=torch.int64, device=dev)
                parts.append(JointSlot(valid=z.bool(), all_valid=False, positions=z[:0], joints=z[:0], jj=z,
                                       types=frozenset(), jtype=z, pos=slots[0].pos.new_zeros(size, 3) if slots else
                                       model.body_pos.new_zeros(size, 3), axis=model.body_pos.new_zeros(size, 3),
                                       qadr=z, qpos0=model.body_pos.new_zeros(size)))
        valid = torch.cat([p.valid for p in parts])
        offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        rows = torch.cat([p.positions + o for p, o in zip(parts, offsets)])
        cat = lambda name: torch.cat([getattr(p, name) for p in parts])  # noqa: E731
        every = bool(valid.all())
        pick = (lambda t: t) if every else (lambda t: t.index_select(0, rows))  # noqa: E731
        out.append((JointSlot(valid=pick(valid), all_valid=True, positions=torch.arange(rows.shape[0], device=dev),
                              joints=cat("joints"), jj=pick(cat("jj")), types=frozenset().union(*(p.types for p in parts)),
                              jtype=pick(cat("jtype")), pos=pick(cat("pos")), axis=pick(cat("axis")),
                              qadr=pick(cat("qadr")), qpos0=pick(cat("qpos0"))), None if every else rows))
    return out


def _plan(model: RigidModel, dtype, dev) -> _Plan:
    key = (dtype, dev)
    cache = model.__dict__.setdefault("_fk_plans", {})
    if key in cache:
        return cache[key]
    i = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
    order = [b for bodies, _, _ in model.levels for b in bodies.tolist()]
    row_of = {0: 0, **{b: r + 1 for r, b in enumerate(order)}}
    parent = model.body_parent.tolist()
    levels, start, prev = [], 0, [0]
    for bodies, parents, _ in model.levels:
        size = int(bodies.shape[0])
        levels.append((parents.tolist() == prev, start, size, i([row_of[x] for x in parents.tolist()])))
        prev, start = bodies.tolist(), start + size
    # per slot its (jpos, 2 jpos, axis, 2 axis), each (n, 3, 1), carried with it (a dict keyed on id(slot) does not
    # trace: dynamo 2.13 raised NameError on the lookup)
    slots = [(slot, rows, (slot.pos.to(dtype)[..., None], (slot.pos.to(dtype) * 2)[..., None],
                           slot.axis.to(dtype)[..., None], (slot.axis.to(dtype) * 2)[..., None]))
             for slot, rows in _global_slots(model, dev)]
    joint_row, joint_parent, nrow = {}, [], 0
    for slot, rows, _ in slots:
        for pos, j in zip((slot.positions if rows is None else rows).tolist(), slot.joints.tolist()):
            joint_row[j] = nrow
            joint_parent.append(row_of[parent[order[pos]]])
            nrow += 1
    consts = _plan_constants(dtype, dev)
    plan = _Plan(order=i(order), slots=slots, levels=levels,
                 deep=1 + (levels[0][2] if levels else 0),
                 body_rows=i([row_of[x] for x in range(model.nbody)]),
                 joint_rows=i([joint_row[j] for j in range(model.njnt)]), joint_parent=i(joint_parent),
                 ident=torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, device=dev)[None, :, None],
                 one=consts.one,
                 partial=any(rows is not None for _, rows, _ in slots),
                 zero3=torch.zeros(1, 3, 1, dtype=dtype, device=dev),
                 qmul_a=consts.qmul_a, qmul_b=consts.qmul_b, qmul_sign=consts.qmul_sign,
                 dof_kinds=(bool((model.dof_kind == DOF_ROT_BODY).any()), bool((model.dof_kind == DOF_TRANS_WORLD).any()),
                            bool(model.dof_is_rot.all()), bool(model.dof_is_rot.any())))
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


def frame_product(quat: torch.Tensor, local: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Rotation matrices `(..., 3, 3)` of `quat * local` for `(..., 4)` quaternions broadcasting together (e.g. geom
    frames from body frames): the same bits as `quat_to_mat(quat_mul(quat, local))` of `math.quat`, in fewer ops.
    `dim` = 1: batch-last `(n, 4, B)` -> `(n, 3, 3, B)`, the same bits."""
    key = (quat.dtype, quat.device)
    c = _QCONSTS.get(key)
    if c is None:
        with torch.inference_mode(False):
            p = _plan_constants(quat.dtype, quat.device)
        c = _QCONSTS[key] = p
    return _quat_to_mat(_qmul(quat, local, c, dim=dim), c.one, dim=dim)


def attached_positions(kin: Kinematics, body: torch.Tensor, pos: torch.Tensor, bl: bool = False) -> torch.Tensor:
    """World positions `(B, n, 3)` of n frames fixed in bodies `body (n,)` at `pos (n, 3)` in the body frames
    (MuJoCo's geom_xpos), or with `bl` batch-last `(n, 3, B)` from the batch-last kinematics of a wide batch
    (`forward_kinematics` from `WIDE_FK` envs; vectorised over envs): the same bits either way (3-term sums in order)."""
    if bl:
        return kin.xpos_bl.index_select(0, body) + _mv(kin.xmat_bl.index_select(0, body), pos[:, :, None])
    return kin.xpos.index_select(1, body) + (kin.xmat.index_select(1, body) * pos[None, :, None, :]).sum(-1)


def attached_rotations(kin: Kinematics, body: torch.Tensor, quat: torch.Tensor, bl: bool = False) -> torch.Tensor:
    """World rotation matrices `(B, n, 3, 3)` of n frames fixed in bodies `body (n,)` with orientations `quat (n, 4)`
    in the body frames (MuJoCo's geom_xmat), or with `bl` batch-last `(n, 3, 3, B)`: the same bits either way."""
    if bl:
        return frame_product(kin.xquat_bl.index_select(0, body), quat[:, :, None], dim=1)
    return frame_product(kin.xquat.index_select(1, body), quat)


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
        t = cross(u, v, 1)
        t = t + t
    else:
        t = cross(u, v2, 1)
    return v + q.narrow(1, 0, 1) * t + cross(u, t, 1)


def _quat_to_mat(q, one, dim: int = -1):
    """`math.quat.quat_to_mat` (`(..., 4)` -> `(..., 3, 3)`; with `dim` = 1 batch-last `(n, 4, B)` -> `(n, 3, 3, B)`),
    the same bits: 2 s as s + s and 1 - 2 s with a tensor one, so no Python scalar is converted per call."""
    w, x, y, z = q.unbind(dim)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    dbl = lambda a: a + a  # noqa: E731
    rows = (
        one - dbl(yy + zz), dbl(xy - wz), dbl(xz + wy),
        dbl(xy + wz), one - dbl(xx + zz), dbl(yz - wx),
        dbl(xz - wy), dbl(yz + wx), one - dbl(xx + yy),
    )
    return torch.stack(rows, dim=dim).unflatten(dim, (3, 3))


def _normalize(q, plan: _Plan):
    """`math.quat.quat_normalize(q, dim=1)` for `(n, 4, B)` (same ops and bits, the identity a cached constant)."""
    w, x, y, z = (q * q).unbind(1)
    norm = torch.sqrt(w + x + y + z).unsqueeze(1)
    return torch.where(norm > 1e-15, q / norm.clamp_min(1e-15), plan.ident)


def _axis_angle(axis, angle):
    """`math.quat.axis_angle_quat(axis, angle, dim=1)`: `axis (n, 3, 1|B)`, `angle (n, B)` -> `(n, 4, B)`."""
    half = 0.5 * angle
    return torch.cat((torch.cos(half).unsqueeze(1), axis * torch.sin(half).unsqueeze(1)), dim=1)


def _apply_joints(slot: JointSlot, vecs: tuple, qt, pos, quat, plan: _Plan, hinge_q=None):
    """Compose one joint slot onto body frames `pos (n, 3, B)`, `quat (n, 4, B)` given `qt = qpos^T (nq, B)`;
    only the joint types present are computed. `vecs`: the slot's (jpos, 2 jpos, axis, 2 axis), each (n, 3, 1).
    `hinge_q (n, 4, B)`: the slot's hinge rotations when every joint of the slot is a hinge. Returns (pos, quat,
    joint anchors, joint world axes)."""
    B = qt.shape[1]
    types = slot.types
    ident = plan.ident
    jpos, jpos2, axis, axis2 = vecs
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


def _motion_subspaces(model: RigidModel, plan: "_Plan", xmat, xanchor, xaxis) -> torch.Tensor:
    """`motion_subspaces` batch-last: `xmat (nb, 3, 3, B)`, `xanchor`, `xaxis (nj, 3, B)` -> `cdof (nv, 6, B)`, the
    same bits; selections only for the dof kinds the model has (`plan.dof_kinds`)."""
    B = xmat.shape[-1]
    if model.nv == 0:
        return xmat.new_zeros(0, 6, B)
    rot_body, trans_world, all_rot, any_rot = plan.dof_kinds
    kind = model.dof_kind[:, None, None]
    axis = xaxis.index_select(0, model.dof_jnt)  # hinge/slide: the joint axis, (nv, 3, B)
    if trans_world:
        eye = torch.eye(3, dtype=xmat.dtype, device=xmat.device)[model.dof_sub][..., None]
        axis = torch.where(kind == DOF_TRANS_WORLD, eye, axis)
    if rot_body:  # column dof_sub of the body's xmat
        axis = torch.where(kind == DOF_ROT_BODY, xmat.transpose(1, 2)[model.dof_body, model.dof_sub], axis)
    anchor = xanchor.index_select(0, model.dof_jnt)
    if all_rot:
        return torch.cat((axis, cross(anchor, axis, 1)), 1)
    rot = model.dof_is_rot[:, None, None]
    ang = torch.where(rot, axis, 0.0)
    lin = torch.where(rot, cross(anchor, axis, 1), axis) if any_rot else axis
    return torch.cat((ang, lin), 1)


def motion_subspaces(model: RigidModel, xmat, xanchor, xaxis) -> torch.Tensor:
    """`cdof (B, nv, 6)`: the spatial velocity each unit dof velocity produces, at the world origin.

    Hinge: [a; p×a] with world axis a through anchor p. Slide: [0; a]. Ball and free rotations: the body-frame
    axes (columns of `xmat`) through the anchor (MuJoCo's local angular velocity). Free translation: world axes.
    """
    B = xmat.shape[0]
    nv = model.nv
    if nv == 0:
        return xmat.new_zeros(B, 0, 6)
    rot_body, trans_world, all_rot, any_rot = _plan(model, xmat.dtype, xmat.device).dof_kinds
    kind = model.dof_kind[:, None]
    axis = xaxis[:, model.dof_jnt]  # (B, nv, 3) hinge/slide: the joint axis
    if trans_world:
        eye = torch.eye(3, dtype=xmat.dtype, device=xmat.device)[model.dof_sub].expand(B, nv, 3)
        axis = torch.where(kind == DOF_TRANS_WORLD, eye, axis)
    if rot_body:  # column dof_sub of xmat
        axis = torch.where(kind == DOF_ROT_BODY, xmat.transpose(-1, -2)[:, model.dof_body, model.dof_sub], axis)
    anchor = xanchor[:, model.dof_jnt]
    if all_rot:
        return torch.cat((axis, torch.linalg.cross(anchor, axis)), dim=-1)
    rot = model.dof_is_rot[:, None]
    ang = torch.where(rot, axis, 0.0)
    lin = torch.where(rot, torch.linalg.cross(anchor, axis), axis) if any_rot else axis
    return torch.cat((ang, lin), dim=-1)

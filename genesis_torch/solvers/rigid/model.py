"""The rigid Model: static topology and parameters, compiled by MuJoCo and turned into tensors once at build.

Conventions: `nbody` counts MuJoCo's world body (index 0); links exposed to users are bodies 1..nbody-1.
Index tensors are int64; parameters have the runtime float dtype. The parameters a user can set per env (gains,
masses, inertias, COMs, dof armature / damping / stiffness / frictionloss, friction ratios) live on the solver
(`params.RigidParams`, `(1|B, ...)`); the values here are the MJCF's, shared.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import torch

from ...errors import UnsupportedFeatureError
from .linalg import padded_rows

HINGE, SLIDE, BALL, FREE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE),
                            int(mujoco.mjtJoint.mjJNT_BALL), int(mujoco.mjtJoint.mjJNT_FREE))
DYN_NONE, DYN_INTEGRATOR, DYN_FILTER, DYN_FILTEREXACT = (int(mujoco.mjtDyn.mjDYN_NONE), int(mujoco.mjtDyn.mjDYN_INTEGRATOR),
                                                         int(mujoco.mjtDyn.mjDYN_FILTER), int(mujoco.mjtDyn.mjDYN_FILTEREXACT))
GAIN_FIXED, GAIN_AFFINE = int(mujoco.mjtGain.mjGAIN_FIXED), int(mujoco.mjtGain.mjGAIN_AFFINE)
BIAS_NONE, BIAS_AFFINE = int(mujoco.mjtBias.mjBIAS_NONE), int(mujoco.mjtBias.mjBIAS_AFFINE)
TRN_JOINT, TRN_JOINTINPARENT, TRN_TENDON = (int(mujoco.mjtTrn.mjTRN_JOINT), int(mujoco.mjtTrn.mjTRN_JOINTINPARENT),
                                            int(mujoco.mjtTrn.mjTRN_TENDON))

EQ_CONNECT, EQ_WELD, EQ_JOINT, EQ_TENDON = (int(mujoco.mjtEq.mjEQ_CONNECT), int(mujoco.mjtEq.mjEQ_WELD),
                                           int(mujoco.mjtEq.mjEQ_JOINT), int(mujoco.mjtEq.mjEQ_TENDON))

# dof kinds: how a dof's motion axis is found in the world frame
DOF_ROT_AXIS, DOF_TRANS_AXIS, DOF_ROT_BODY, DOF_TRANS_WORLD = 0, 1, 2, 3


@dataclasses.dataclass
class JointSlot:
    """The k-th joints of the bodies of one tree level (bodies apply their joints in order), for kinematics."""

    valid: torch.Tensor  # (n,) bool: the body has a k-th joint
    all_valid: bool
    positions: torch.Tensor  # (nvalid,) positions of those bodies within the level
    joints: torch.Tensor  # (nvalid,) their joint ids
    jj: torch.Tensor  # (n,) joint id per body (0 where absent)
    types: frozenset  # joint types present
    jtype: torch.Tensor  # (n,)
    pos: torch.Tensor  # (n, 3) joint anchors, body frame
    axis: torch.Tensor  # (n, 3)
    qadr: torch.Tensor  # (n,) qpos addresses
    qpos0: torch.Tensor  # (n,) reference positions (hinge/slide)


@dataclasses.dataclass
class RigidModel:
    """Static description of a rigid system. Shapes use nb = nbody (incl. world), nj joints, nv dofs, nu actuators."""

    nq: int
    nv: int
    nbody: int
    njnt: int
    nu: int
    na: int
    ntendon: int
    nlimit: int
    levels: list  # per tree depth: (body ids (n,), parent ids (n,), per joint slot: (mask (n,), positions in level, joint ids))
    body_jnt: torch.Tensor  # (nb, S) joint ids per body in MuJoCo order, -1 padded
    jnt_type: torch.Tensor  # (nj,)
    jnt_qposadr: torch.Tensor  # (nj,)
    jnt_bodyid: torch.Tensor  # (nj,)
    dof_body: torch.Tensor  # (nv,)
    dof_jnt: torch.Tensor  # (nv,)
    dof_kind: torch.Tensor  # (nv,) DOF_* constant
    dof_sub: torch.Tensor  # (nv,) component 0..2 for ball/free dofs
    dof_is_rot: torch.Tensor  # (nv,) bool
    hinge_slide_dofs: torch.Tensor  # (nhs,) dofs of hinge/slide joints
    hinge_slide_qadr: torch.Tensor  # (nhs,) their qpos addresses
    ball_qadr: torch.Tensor  # (nball,) qpos address of each ball joint quaternion
    ball_dofadr: torch.Tensor  # (nball,)
    free_qadr: torch.Tensor  # (nfree,)
    free_dofadr: torch.Tensor  # (nfree,)
    body_own_dofs: tuple  # padded rows (nb, D): the dofs of each body
    dof_same_body_before: tuple  # padded rows (nv, D): earlier dofs of the same body that move dof j's axis
    level_parent_pos: list  # per depth d >= 1: position of each body's parent within depth d-1's bodies
    level_children: list  # per depth d >= 1: padded rows (n_{d-1}, D) of the children (positions in depth d)
    level_to_body: torch.Tensor  # (nb,) position in the depth-major order of each body id
    body_parent: torch.Tensor  # (nb,) parent body ids (the world's is itself)
    dof_anc: torch.Tensor  # (nv, nv) bool, [i, j] = dof i is an ancestor-or-self of dof j
    subtree_mass: torch.Tensor  # (nb,) kg, mass of each body's subtree
    body_pos: torch.Tensor  # (nb, 3) m, in parent frame
    body_quat: torch.Tensor  # (nb, 4)
    body_ipos: torch.Tensor  # (nb, 3) COM in body frame
    body_iquat: torch.Tensor  # (nb, 4) principal inertia frame in body frame
    body_mass: torch.Tensor  # (nb,) kg
    body_inertia: torch.Tensor  # (nb, 3) kg m^2, principal moments
    jnt_pos: torch.Tensor  # (nj, 3) anchor in body frame
    jnt_axis: torch.Tensor  # (nj, 3) unit axis in body frame
    qpos0: torch.Tensor  # (nq,) reference configuration
    qpos_spring: torch.Tensor  # (nq,)
    dof_armature: torch.Tensor  # (nv,) kg m^2 or kg
    dof_damping: torch.Tensor  # (nv,) N m s/rad or N s/m
    any_damping: bool  # some dof has damping (Euler then integrates damping implicitly)
    dof_stiffness: torch.Tensor  # (nv,) joint stiffness per dof (hinge/slide only)
    dof_frictionloss: torch.Tensor  # (nv,) N m or N
    dof_invweight0: torch.Tensor  # (nv,)
    ten_J: torch.Tensor  # (ntendon, nv) fixed-tendon coefficients on dofs
    ten_Jq: torch.Tensor  # (ntendon, nq) the same on qpos
    ten_stiffness: torch.Tensor  # (ntendon,)
    ten_damping: torch.Tensor  # (ntendon,)
    ten_lengthspring: torch.Tensor  # (ntendon, 2) dead band [low, high]
    act_len_q: torch.Tensor  # (nu, nq) actuator length = act_len_q @ qpos
    act_moment: torch.Tensor  # (nu, nv) actuator moment arms (gear included)
    act_gaintype: torch.Tensor  # (nu,)
    act_biastype: torch.Tensor  # (nu,)
    act_dyntype: torch.Tensor  # (nu,)
    act_dynprm: torch.Tensor  # (nu, 3)
    act_actadr: torch.Tensor  # (nu,) -1 when stateless
    act_ctrllimited: torch.Tensor  # (nu,) bool
    act_ctrlrange: torch.Tensor  # (nu, 2)
    act_actlimited: torch.Tensor  # (nu,) bool
    act_actrange: torch.Tensor  # (nu, 2)
    act_forcelimited: torch.Tensor  # (nu,) bool
    dof_actfrclimited: torch.Tensor  # (nv,) bool
    dof_actfrcrange: torch.Tensor  # (nv, 2)
    lim_dof: torch.Tensor  # (nl,) dof of each joint-limit row (2 rows per limited joint: lower, upper)
    lim_qadr: torch.Tensor  # (nl,)
    lim_sign: torch.Tensor  # (nl,) +1 for the lower limit row, -1 for the upper
    lim_value: torch.Tensor  # (nl,) the range bound
    lim_margin: torch.Tensor  # (nl,)
    lim_solref: torch.Tensor  # (nl, 2)
    lim_solimp: torch.Tensor  # (nl, 5)
    body_dofmask: torch.Tensor  # (nb, nv) 1.0 where dof j moves body b (dof j's body is an ancestor-or-self of b)
    body_invweight0: torch.Tensor  # (nb, 2) MuJoCo's mean inverse translational / rotational inertia at qpos0
    tlim_J: torch.Tensor  # (ntl, nv) tendon-limit rows (2 per limited tendon, lower then upper): sign * ten_J
    tlim_len_q: torch.Tensor  # (ntl, nq) sign * tendon length coefficients on qpos
    tlim_value: torch.Tensor  # (ntl,) sign * range bound
    tlim_margin: torch.Tensor  # (ntl,)
    tlim_solref: torch.Tensor  # (ntl, 2)
    tlim_solimp: torch.Tensor  # (ntl, 5)
    tlim_invweight: torch.Tensor  # (ntl,)
    fric_J: torch.Tensor  # (nfr, nv) frictionloss rows: unit dof rows, then tendon rows
    fric_dof: torch.Tensor  # (nfd,) the dofs of the first nfd rows
    fric_loss: torch.Tensor  # (nfr,) N or N m
    fric_solref: torch.Tensor  # (nfr, 2)
    fric_solimp: torch.Tensor  # (nfr, 5)
    fric_invweight: torch.Tensor  # (nfr,)
    eq: "EqualityModel"
    # defaults of the per-env-settable actuator parameters (the solver owns the live copies)
    act_gainprm: torch.Tensor  # (nu, 3)
    act_biasprm: torch.Tensor  # (nu, 3)
    act_forcerange: torch.Tensor  # (nu, 2)
    dof_actuator: torch.Tensor  # (nv,) the single joint-transmission actuator driving each dof, -1 if none
    dof_gear: torch.Tensor  # (nv,) gear of that actuator (1 when none)
    act_dof: torch.Tensor  # (nu,) the dof an actuator is the single joint actuator of (`dof_actuator`), -1 if none
    any_act_dof: bool  # some actuator is a dof's single joint actuator (the dof controller may override it)
    deriv_mask: torch.Tensor  # (nv, nv) bool, entries MuJoCo keeps in qDeriv (its sparse `D` pattern)
    lone_free_body: torch.Tensor  # (nlf,) bodies of standalone free joints (no jointed descendants)
    lone_free_dofadr: torch.Tensor  # (nlf,) their first dof
    rot_ball_free_dofs: torch.Tensor  # (nball + nfree, 3) angular dofs of ball and free joints (body frame)
    disabled: frozenset = frozenset()  # MuJoCo disable flags set in the model's opt, by MJCF name ("damper", ...)
    body_gravcomp: torch.Tensor | None = None  # (nb,) MuJoCo's body_gravcomp (Genesis' gravity_compensation)
    any_gravcomp: bool = False  # some body has gravcomp != 0 (the passive stage then applies it)


@dataclasses.dataclass
class EqualityModel:
    """Active equality constraints by kind. Connect and weld anchors are in their bodies' frames (site semantics
    turned into body + offset at build); weld orientations compare xquat[b1] * quat1 with xquat[b2] * quat2."""

    connect_body: torch.Tensor  # (ncon, 2) body ids
    connect_anchor: torch.Tensor  # (ncon, 2, 3) m, anchor in each body's frame
    connect_solref: torch.Tensor  # (ncon, 2)
    connect_solimp: torch.Tensor  # (ncon, 5)
    weld_body: torch.Tensor  # (nweld, 2)
    weld_anchor: torch.Tensor  # (nweld, 2, 3)
    weld_quat: torch.Tensor  # (nweld, 2, 4)
    weld_torquescale: torch.Tensor  # (nweld,)
    weld_solref: torch.Tensor  # (nweld, 2)
    weld_solimp: torch.Tensor  # (nweld, 5)
    scalar_len_q: torch.Tensor  # (nsc, 2, nq) joint value / fixed-tendon length of objects 1 and 2 = len_q @ qpos
    scalar_J: torch.Tensor  # (nsc, 2, nv) their Jacobians (zero rows when object 2 is absent)
    scalar_ref: torch.Tensor  # (nsc, 2) reference values (qpos0 / tendon_length0)
    scalar_has2: torch.Tensor  # (nsc,) bool
    scalar_poly: torch.Tensor  # (nsc, 5) polycoef: q1 - ref1 = p0 + p1 x + p2 x^2 + p3 x^3 + p4 x^4, x = q2 - ref2
    scalar_invweight: torch.Tensor  # (nsc,) diagApprox
    scalar_solref: torch.Tensor  # (nsc, 2)
    scalar_solimp: torch.Tensor  # (nsc, 5)

    @property
    def nrows(self) -> int:
        return 3 * self.connect_body.shape[0] + 6 * self.weld_body.shape[0] + self.scalar_ref.shape[0]


def _equality_model(m: mujoco.MjModel, f, i, ten_J, ten_Jq) -> EqualityModel:
    """The active equality constraints of `m` as an `EqualityModel`."""
    site = int(mujoco.mjtObj.mjOBJ_SITE)
    conn, weld, scal = [], [], []
    for e in range(m.neq):
        t, o1, o2, data = m.eq_type[e], m.eq_obj1id[e], m.eq_obj2id[e], m.eq_data[e]
        if t in (EQ_CONNECT, EQ_WELD):
            if m.eq_objtype[e] == site:
                bodies = [m.site_bodyid[o1], m.site_bodyid[o2]]
                anchors = [m.site_pos[o1], m.site_pos[o2]]
                quats = [m.site_quat[o1], m.site_quat[o2]]
            else:
                bodies = [o1, o2]
                # connect: anchor data[0:3] in body 1, data[3:6] in body 2; weld: the reverse (MuJoCo's eq_data)
                anchors = [data[0:3], data[3:6]] if t == EQ_CONNECT else [data[3:6], data[0:3]]
                quats = [data[6:10], np.array([1.0, 0.0, 0.0, 0.0])]
            row = (bodies, anchors, quats, data[10], m.eq_solref[e], m.eq_solimp[e])
            (conn if t == EQ_CONNECT else weld).append(row)
        else:
            len_q, J, ref = np.zeros((2, m.nq)), np.zeros((2, m.nv)), np.zeros(2)
            invw = 0.0
            for k, obj in enumerate((o1, o2)):
                if obj < 0:
                    continue
                if t == EQ_JOINT:
                    len_q[k, m.jnt_qposadr[obj]] = 1.0
                    J[k, m.jnt_dofadr[obj]] = 1.0
                    ref[k] = m.qpos0[m.jnt_qposadr[obj]]
                    invw += m.dof_invweight0[m.jnt_dofadr[obj]]
                else:
                    len_q[k], J[k], ref[k] = ten_Jq[obj], ten_J[obj], m.tendon_length0[obj]
                    invw += m.tendon_invweight0[obj]
            scal.append((len_q, J, ref, o2 >= 0, data[:5], invw, m.eq_solref[e], m.eq_solimp[e]))

    def stack(rows, k, shape):
        return np.stack([r[k] for r in rows]) if rows else np.zeros((0,) + shape)

    return EqualityModel(
        connect_body=i(stack(conn, 0, (2,))), connect_anchor=f(stack(conn, 1, (2, 3))),
        connect_solref=f(stack(conn, 4, (2,))), connect_solimp=f(stack(conn, 5, (5,))),
        weld_body=i(stack(weld, 0, (2,))), weld_anchor=f(stack(weld, 1, (2, 3))), weld_quat=f(stack(weld, 2, (2, 4))),
        weld_torquescale=f(stack(weld, 3, ())), weld_solref=f(stack(weld, 4, (2,))),
        weld_solimp=f(stack(weld, 5, (5,))),
        scalar_len_q=f(stack(scal, 0, (2, m.nq))), scalar_J=f(stack(scal, 1, (2, m.nv))),
        scalar_ref=f(stack(scal, 2, (2,))), scalar_has2=i(stack(scal, 3, ())).bool(),
        scalar_poly=f(stack(scal, 4, (5,))), scalar_invweight=f(stack(scal, 5, ())),
        scalar_solref=f(stack(scal, 6, (2,))), scalar_solimp=f(stack(scal, 7, (5,))))


def _reject(cond, what: str) -> None:
    if cond:
        raise UnsupportedFeatureError(what)


def validate_mjmodel(m: mujoco.MjModel) -> None:
    """Raise `UnsupportedFeatureError` naming the first MJCF feature the rigid solver does not simulate."""
    for e in range(m.neq):
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_EQUALITY, e) or f"#{e}"
        _reject(m.eq_type[e] not in (EQ_CONNECT, EQ_WELD, EQ_JOINT, EQ_TENDON),
                f"equality {name}: type {mujoco.mjtEq(m.eq_type[e]).name} is not supported; use connect, weld, "
                "joint or tendon.")
        _reject(not m.eq_active0[e], f"equality {name} starts inactive; runtime (de)activation is not supported, "
                "remove it or make it active.")
    _reject(m.nflex > 0, "<flex> / <flexcomp> deformables are not supported by the rigid solver; remove them.")
    _reject(m.nplugin > 0, "MuJoCo <plugin> elements are not supported; remove them.")
    _reject(m.nmocap > 0, "mocap bodies are not supported; use a free body or a fixed body instead.")
    _reject(np.any(m.jnt_actgravcomp != 0), "joint actuatorgravcomp is not supported (gravity compensation is a "
            "passive force here, as MuJoCo's default); remove the actuatorgravcomp attribute.")
    _reject(np.any(m.jnt_limited[m.jnt_type == BALL]), "ball-joint limits are not supported yet; remove range.")
    stiff_bad = (m.jnt_stiffness != 0) & ((m.jnt_type == BALL) | (m.jnt_type == FREE))
    _reject(np.any(stiff_bad), "stiffness on ball/free joints is not supported; use hinge/slide joints for springs.")
    for name in ("dof_dampingpoly", "jnt_stiffnesspoly", "jnt_springyield", "tendon_dampingpoly",
                 "tendon_stiffnesspoly", "tendon_springyield", "actuator_damping", "actuator_armature",
                 "actuator_delay", "tendon_armature"):
        arr = getattr(m, name, None)
        _reject(arr is not None and np.any(np.asarray(arr) != 0), f"MJCF attribute behind {name} is not supported.")
    _reject(np.any(getattr(m, "jnt_plasticadr", np.array([-1])) >= 0), "joint plasticity is not supported.")
    _reject(m.opt.density != 0 or m.opt.viscosity != 0 or np.any(m.opt.wind != 0),
            "fluid forces (<option density/viscosity/wind>) are not supported; set them to 0.")
    for t in range(m.ntendon):
        adr, num = m.tendon_adr[t], m.tendon_num[t]
        _reject(np.any(m.wrap_type[adr:adr + num] != int(mujoco.mjtWrap.mjWRAP_JOINT)),
                f"spatial tendon #{t} is not supported; only <fixed> tendons are.")
    for a in range(m.nu):
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) or f"#{a}"
        trn = m.actuator_trntype[a]
        _reject(trn not in (TRN_JOINT, TRN_JOINTINPARENT, TRN_TENDON),
                f"actuator {name}: transmission {mujoco.mjtTrn(trn).name} is not supported; use joint or tendon.")
        if trn in (TRN_JOINT, TRN_JOINTINPARENT):
            _reject(m.jnt_type[m.actuator_trnid[a, 0]] in (BALL, FREE),
                    f"actuator {name}: transmission on a ball/free joint is not supported.")
        _reject(m.actuator_gaintype[a] not in (GAIN_FIXED, GAIN_AFFINE),
                f"actuator {name}: gaintype {mujoco.mjtGain(m.actuator_gaintype[a]).name} is not supported.")
        _reject(m.actuator_biastype[a] not in (BIAS_NONE, BIAS_AFFINE),
                f"actuator {name}: biastype {mujoco.mjtBias(m.actuator_biastype[a]).name} is not supported.")
        _reject(m.actuator_dyntype[a] not in (DYN_NONE, DYN_INTEGRATOR, DYN_FILTER, DYN_FILTEREXACT),
                f"actuator {name}: dyntype {mujoco.mjtDyn(m.actuator_dyntype[a]).name} is not supported.")
        _reject(m.actuator_actearly[a], f"actuator {name}: actearly is not supported.")
        _reject(m.actuator_actnum[a] > 1, f"actuator {name}: multi-dimensional activations are not supported.")


def disabled_flags(m: mujoco.MjModel) -> frozenset:
    """The disable flags set in `m.opt`, by their MJCF `<flag>` names (e.g. "contact", "eulerdamp")."""
    bits = mujoco.mjtDisableBit.__members__.values()
    return frozenset(b.name.removeprefix("mjDSBL_").lower() for b in bits
                     if b.name != "mjNDISABLE" and m.opt.disableflags & int(b))


def _depth(parent: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(parent), dtype=np.int64)
    for b in range(1, len(parent)):  # MuJoCo orders parents before children
        depth[b] = depth[parent[b]] + 1
    return depth


def build_model(m: mujoco.MjModel, device, dtype) -> RigidModel:
    """Tensors of a compiled `mujoco.MjModel` (after `validate_mjmodel`)."""
    validate_mjmodel(m)
    f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=device).to(dtype)  # noqa: E731
    i = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)  # noqa: E731
    nb, nv, nq, nj, nu = m.nbody, m.nv, m.nq, m.njnt, m.nu
    parent = m.body_parentid.astype(np.int64)
    depth = _depth(parent)

    body_nj = np.bincount(m.jnt_bodyid, minlength=nb) if nj else np.zeros(nb, np.int64)
    slots = max(1, int(body_nj.max()) if nb else 1)
    body_jnt = -np.ones((nb, slots), np.int64)
    for j in range(nj):
        b = m.jnt_bodyid[j]
        body_jnt[b, j - m.body_jntadr[b]] = j
    levels = []
    level_ids, level_parent_pos, level_children = [np.array([0])], [], []
    for d in range(1, int(depth.max()) + 1 if nb > 1 else 1):
        ids = np.nonzero(depth == d)[0]
        slots_of_level = []
        for s in range(int(body_nj[ids].max())):
            jids = body_jnt[ids, s]
            jj = np.maximum(jids, 0)
            types = frozenset(int(t) for t in m.jnt_type[jids[jids >= 0]])
            slots_of_level.append(JointSlot(
                valid=i(jids >= 0).bool(), all_valid=bool((jids >= 0).all()), positions=i(np.nonzero(jids >= 0)[0]),
                joints=i(jids[jids >= 0]), jj=i(jj), types=types, jtype=i(m.jnt_type[jj]),
                pos=f(m.jnt_pos[jj]), axis=f(m.jnt_axis[jj]), qadr=i(m.jnt_qposadr[jj]), qpos0=f(m.qpos0[m.jnt_qposadr[jj]])))
        levels.append((i(ids), i(parent[ids]), slots_of_level))
        prev = {b: k for k, b in enumerate(level_ids[-1])}
        ppos = np.array([prev[p] for p in parent[ids]], dtype=np.int64)
        level_parent_pos.append(i(ppos))
        level_children.append(padded_rows(np.arange(len(level_ids[-1]))[:, None] == ppos[None, :], device))
        level_ids.append(ids)

    # ancestry
    subtree = np.zeros((nb, nb))
    for c in range(nb):
        b = c
        while True:
            subtree[b, c] = 1.0
            if b == 0:
                break
            b = parent[b]
    dof_body = m.dof_bodyid.astype(np.int64)
    dof_anc = np.zeros((nv, nv), bool)
    for j in range(nv):
        k = j
        while k >= 0:
            dof_anc[k, j] = True
            k = m.dof_parentid[k]

    # dof kinds
    dof_kind = np.zeros(nv, np.int64)
    dof_sub = np.zeros(nv, np.int64)
    for j in range(nj):
        t, adr = m.jnt_type[j], m.jnt_dofadr[j]
        if t == HINGE:
            dof_kind[adr] = DOF_ROT_AXIS
        elif t == SLIDE:
            dof_kind[adr] = DOF_TRANS_AXIS
        elif t == BALL:
            dof_kind[adr:adr + 3] = DOF_ROT_BODY
            dof_sub[adr:adr + 3] = np.arange(3)
        else:
            dof_kind[adr:adr + 3] = DOF_TRANS_WORLD
            dof_kind[adr + 3:adr + 6] = DOF_ROT_BODY
            dof_sub[adr:adr + 6] = np.tile(np.arange(3), 2)
    # the velocity a dof's axis moves with: its strict ancestors, except the sibling rotational dofs of a ball
    # or free joint, whose body-fixed axes all move with the velocity before the joint (MuJoCo's mj_comVel)
    vel_before = dof_anc & ~np.eye(nv, dtype=bool)
    same_rot = (m.dof_jntid[:, None] == m.dof_jntid[None, :]) & (dof_kind == DOF_ROT_BODY)[:, None] \
        & (dof_kind == DOF_ROT_BODY)[None, :]
    vel_before &= ~same_rot
    hs = np.nonzero((m.jnt_type == HINGE) | (m.jnt_type == SLIDE))[0]
    balls = np.nonzero(m.jnt_type == BALL)[0]
    frees = np.nonzero(m.jnt_type == FREE)[0]

    dof_stiffness = np.zeros(nv)
    dof_stiffness[m.jnt_dofadr[hs]] = m.jnt_stiffness[hs]

    # fixed tendons
    nt = m.ntendon
    ten_J, ten_Jq = np.zeros((nt, nv)), np.zeros((nt, nq))
    for t in range(nt):
        for w in range(m.tendon_adr[t], m.tendon_adr[t] + m.tendon_num[t]):
            jid = m.wrap_objid[w]
            ten_J[t, m.jnt_dofadr[jid]] += m.wrap_prm[w]
            ten_Jq[t, m.jnt_qposadr[jid]] += m.wrap_prm[w]

    # actuator transmissions
    act_len_q, act_moment = np.zeros((nu, nq)), np.zeros((nu, nv))
    dof_actuator, dof_gear = -np.ones(nv, np.int64), np.ones(nv)
    dof_nact = np.zeros(nv, np.int64)
    for a in range(nu):
        gear = m.actuator_gear[a, 0]
        target = m.actuator_trnid[a, 0]
        if m.actuator_trntype[a] == TRN_TENDON:
            act_len_q[a] = gear * ten_Jq[target]
            act_moment[a] = gear * ten_J[target]
        else:
            act_len_q[a, m.jnt_qposadr[target]] = gear
            act_moment[a, m.jnt_dofadr[target]] = gear
            d = m.jnt_dofadr[target]
            dof_nact[d] += 1
            dof_actuator[d], dof_gear[d] = a, gear
    dof_actuator[dof_nact != 1] = -1
    dof_gear[dof_nact != 1] = 1.0
    act_dof = -np.ones(nu, np.int64)
    act_dof[dof_actuator[dof_actuator >= 0]] = np.nonzero(dof_actuator >= 0)[0]
    dof_actfrclimited = np.zeros(nv, bool)
    dof_actfrcrange = np.zeros((nv, 2))
    dof_actfrclimited[m.jnt_dofadr[hs]] = m.jnt_actfrclimited[hs].astype(bool)
    dof_actfrcrange[m.jnt_dofadr[hs]] = m.jnt_actfrcrange[hs]

    # joint limits: two rows (lower, upper) per limited hinge/slide joint
    lim = hs[m.jnt_limited[hs].astype(bool)]
    lim2 = np.repeat(lim, 2)
    sign = np.tile([1.0, -1.0], len(lim))
    value = np.stack([m.jnt_range[lim, 0], m.jnt_range[lim, 1]], 1).reshape(-1) if len(lim) else np.zeros(0)

    # standalone free bodies: the free joint is the only joint of its subtree (MuJoCo's implicitfast treats their
    # 6x6 block with the exact bias-force derivative)
    lone = [j for j in frees if subtree[m.jnt_bodyid[j], m.jnt_bodyid].sum() == 1]

    # tendon limits: two rows (lower, upper) per limited tendon, as joint limits
    tl = np.repeat(np.nonzero(m.tendon_limited)[0], 2)
    tsign = np.tile([1.0, -1.0], len(tl) // 2)
    tvalue = m.tendon_range[tl, (tsign < 0).astype(int)] if len(tl) else np.zeros(0)
    # frictionloss rows: dofs, then tendons (MuJoCo's order)
    fd = np.nonzero(m.dof_frictionloss > 0)[0]
    ft = np.nonzero(m.tendon_frictionloss > 0)[0]
    fric_J = np.concatenate((np.eye(nv)[fd], ten_J[ft]), 0) if nv else np.zeros((0, nv))

    deriv_mask = np.zeros((nv, nv), bool)
    for r in range(nv):
        deriv_mask[r, m.D_colind[m.D_rowadr[r]:m.D_rowadr[r] + m.D_rownnz[r]]] = True

    return RigidModel(
        nq=nq, nv=nv, nbody=nb, njnt=nj, nu=nu, na=m.na, ntendon=nt, nlimit=len(lim2),
        levels=levels, body_jnt=i(body_jnt), jnt_type=i(m.jnt_type), jnt_qposadr=i(m.jnt_qposadr),
        jnt_bodyid=i(m.jnt_bodyid), dof_body=i(dof_body), dof_jnt=i(m.dof_jntid), dof_kind=i(dof_kind),
        dof_sub=i(dof_sub), dof_is_rot=i(np.isin(dof_kind, [DOF_ROT_AXIS, DOF_ROT_BODY])).bool(),
        hinge_slide_dofs=i(m.jnt_dofadr[hs]), hinge_slide_qadr=i(m.jnt_qposadr[hs]),
        ball_qadr=i(m.jnt_qposadr[balls]), ball_dofadr=i(m.jnt_dofadr[balls]),
        free_qadr=i(m.jnt_qposadr[frees]), free_dofadr=i(m.jnt_dofadr[frees]),
        body_own_dofs=padded_rows(dof_body[None, :] == np.arange(nb)[:, None], device),
        dof_same_body_before=padded_rows(vel_before.T & (dof_body[:, None] == dof_body[None, :]), device),
        level_parent_pos=level_parent_pos, level_children=level_children, body_parent=i(parent), level_to_body=i(np.argsort(np.concatenate(level_ids))),
        dof_anc=i(dof_anc).bool(),
        subtree_mass=f(subtree @ m.body_mass),
        body_pos=f(m.body_pos), body_quat=f(m.body_quat), body_ipos=f(m.body_ipos), body_iquat=f(m.body_iquat),
        body_mass=f(m.body_mass), body_inertia=f(m.body_inertia), jnt_pos=f(m.jnt_pos), jnt_axis=f(m.jnt_axis),
        qpos0=f(m.qpos0), qpos_spring=f(m.qpos_spring), dof_armature=f(m.dof_armature),
        dof_damping=f(m.dof_damping), any_damping=bool(np.any(m.dof_damping > 0)),
        dof_stiffness=f(dof_stiffness), dof_frictionloss=f(m.dof_frictionloss), dof_invweight0=f(m.dof_invweight0),
        ten_J=f(ten_J), ten_Jq=f(ten_Jq), ten_stiffness=f(m.tendon_stiffness), ten_damping=f(m.tendon_damping),
        ten_lengthspring=f(m.tendon_lengthspring.reshape(nt, 2)),
        act_len_q=f(act_len_q), act_moment=f(act_moment), act_gaintype=i(m.actuator_gaintype),
        act_biastype=i(m.actuator_biastype), act_dyntype=i(m.actuator_dyntype), act_dynprm=f(m.actuator_dynprm[:, :3]),
        act_actadr=i(m.actuator_actadr),
        act_ctrllimited=i(m.actuator_ctrllimited).bool() & ("clampctrl" not in disabled_flags(m)),
        act_ctrlrange=f(m.actuator_ctrlrange), act_actlimited=i(m.actuator_actlimited).bool(),
        act_actrange=f(m.actuator_actrange), act_forcelimited=i(m.actuator_forcelimited).bool(),
        dof_actfrclimited=i(dof_actfrclimited).bool(), dof_actfrcrange=f(dof_actfrcrange),
        lim_dof=i(m.jnt_dofadr[lim2]), lim_qadr=i(m.jnt_qposadr[lim2]), lim_sign=f(sign), lim_value=f(value),
        lim_margin=f(m.jnt_margin[lim2]), lim_solref=f(m.jnt_solref[lim2].reshape(-1, 2)),
        lim_solimp=f(m.jnt_solimp[lim2].reshape(-1, 5)),
        body_dofmask=f(subtree[dof_body].T if nv else np.zeros((nb, 0))),
        body_invweight0=f(m.body_invweight0.reshape(nb, 2)),
        tlim_J=f(tsign[:, None] * ten_J[tl]), tlim_len_q=f(tsign[:, None] * ten_Jq[tl]), tlim_value=f(tsign * tvalue),
        tlim_margin=f(m.tendon_margin[tl]), tlim_solref=f(m.tendon_solref_lim[tl].reshape(-1, 2)),
        tlim_solimp=f(m.tendon_solimp_lim[tl].reshape(-1, 5)), tlim_invweight=f(m.tendon_invweight0[tl]),
        fric_J=f(fric_J), fric_dof=i(fd),
        fric_loss=f(np.concatenate((m.dof_frictionloss[fd], m.tendon_frictionloss[ft]))),
        fric_solref=f(np.concatenate((m.dof_solref[fd], m.tendon_solref_fri[ft])).reshape(-1, 2)),
        fric_solimp=f(np.concatenate((m.dof_solimp[fd], m.tendon_solimp_fri[ft])).reshape(-1, 5)),
        fric_invweight=f(np.concatenate((m.dof_invweight0[fd], m.tendon_invweight0[ft]))),
        eq=_equality_model(m, f, i, ten_J, ten_Jq),
        act_gainprm=f(m.actuator_gainprm[:, :3]), act_biasprm=f(m.actuator_biasprm[:, :3]),
        act_forcerange=f(m.actuator_forcerange), dof_actuator=i(dof_actuator), dof_gear=f(dof_gear),
        act_dof=i(act_dof), any_act_dof=bool((act_dof >= 0).any()),
        deriv_mask=i(deriv_mask).bool(),
        lone_free_body=i(m.jnt_bodyid[lone]), lone_free_dofadr=i(m.jnt_dofadr[lone]),
        rot_ball_free_dofs=i(np.concatenate((m.jnt_dofadr[balls], m.jnt_dofadr[frees] + 3))[:, None] + np.arange(3)),
        disabled=disabled_flags(m),
        body_gravcomp=f(m.body_gravcomp), any_gravcomp=bool(np.any(m.body_gravcomp != 0)),
    )

"""MuJoCo parity of the rigid solver: every stage of `forward` and one `step` per integrator, on random states.

Reference: the `mujoco` package run at test time on the very `MjModel` the solver was built from (contacts off),
from an identical state (qpos, qvel, ctrl, warm start). Models: the bundled Franka and seeded random MJCF trees
(`mjcf_random.py`) chosen so that together they hold hinge, slide, ball and free joints, standalone free bodies and
free bodies with jointed children, bodies with several joints, fixed tendons (passive and actuated), every
actuator kind, force/ctrl ranges and limit margins (`test_model_set_covers_features` keeps it so). Each model is
checked on N_STATES states batched as envs of one solver call, so batching is exercised too.

Tolerances (VALIDATION.md, as MJX / MuJoCo-Warp compare with MuJoCo C): smooth dynamics `atol = rtol = 1e-8` with
the solver in float64 (same equations in the same order; measured errors are 1e-11 or less) and `1e-4` with the
solver in float32 against MuJoCo's float64. A constraint solve is judged by MuJoCo's own cost of its result (see
`test_constrained_qacc`).

The RK4 comparison on ball/free joints needs MuJoCo >= 4.0 (Runge-Kutta-Munthe-Kaas orientations) and the
implicitfast comparison on standalone free bodies MuJoCo >= 3.11 (their gyroscopic derivatives); with an older
`mujoco` those cases are skipped.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import zlib
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch
from genesis_torch.options import RigidOptions, integrator
from genesis_torch.solvers.rigid import constraint_rows
from genesis_torch.solvers.rigid.solver import RigidSolver

from .mjcf_random import random_mjcf, random_state

pytestmark = pytest.mark.usefixtures("single_thread")

FRANKA = Path(genesis_torch.__file__).parent / "assets" / "franka.xml"
SEEDS = (1, 2, 5, 9, 13, 16, 20, 25, 31, 34)
MODELS = ("franka", *(f"random{s}" for s in SEEDS), "ball_chain", "lone_free")
DTYPES = (torch.float64, torch.float32)
TOL = {torch.float64: 1e-8, torch.float32: 1e-4}
N_STATES = 3
INTEGRATORS = {
    "Euler": (integrator.Euler, mujoco.mjtIntegrator.mjINT_EULER),
    "implicitfast": (integrator.implicitfast, mujoco.mjtIntegrator.mjINT_IMPLICITFAST),
    "RK4": (integrator.RK4, mujoco.mjtIntegrator.mjINT_RK4),
}
MJ_VERSION = tuple(int(p) for p in mujoco.__version__.split(".")[:2])
JNT = mujoco.mjtJoint


def _xml(name: str) -> str:
    if name == "franka":
        return FRANKA.read_text()
    if name == "ball_chain":  # ball joints only, a 6-body tree
        return random_mjcf(3, n_bodies=6, joint_types=("ball",), float_base=False)
    if name == "lone_free":  # a free body carrying a chain of three welded bodies
        return random_mjcf(7, n_bodies=4, joint_types=("free",), float_base=True)
    return random_mjcf(int(name.removeprefix("random")))


@functools.lru_cache(maxsize=None)
def mj_model(name: str, kind: str = "Euler") -> mujoco.MjModel:
    m = mujoco.MjModel.from_xml_string(_xml(name))
    m.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)  # the solver has no contacts yet
    m.opt.integrator = INTEGRATORS[kind][1]
    return m


def lone_free_joints(m: mujoco.MjModel) -> list[int]:
    """Free joints whose kinematic tree has no other dofs (MuJoCo's 'standalone free bodies')."""
    return [j for j in range(m.njnt) if m.jnt_type[j] == JNT.mjJNT_FREE
            and m.tree_dofnum[m.body_treeid[m.jnt_bodyid[j]]] == 6]


def states(m: mujoco.MjModel, seed: int, *, smooth: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """N_STATES random (qpos, qvel, ctrl). `smooth`: limited joints pulled strictly inside range - margin (no
    limit row exists); otherwise the first limited joint of each state is pushed past a bound, moving outward (a row
    that is active unless the smooth acceleration already pulls it back), the others keep random_state's values."""
    rng = np.random.default_rng(seed)
    out = []
    limited = [j for j in range(m.njnt) if m.jnt_limited[j]]
    for k in range(N_STATES):
        qpos, qvel, ctrl = random_state(m, rng)
        for n, j in enumerate(limited):
            lo, hi = m.jnt_range[j]
            pad = m.jnt_margin[j] + 0.02 * (hi - lo)
            adr = m.jnt_qposadr[j]
            if smooth:
                qpos[adr] = np.clip(qpos[adr], lo + pad, hi - pad)
            elif n == 0:  # past the lower bound for even k, the upper for odd, and moving further out
                out_dir = -1.0 if k % 2 == 0 else 1.0
                qpos[adr] = (lo - 0.05 * (hi - lo)) if k % 2 == 0 else (hi + 0.05 * (hi - lo))
                qvel[m.jnt_dofadr[j]] = out_dir * abs(qvel[m.jnt_dofadr[j]])
        out.append((qpos, qvel, ctrl))
    return out


def mj_forward_data(m: mujoco.MjModel, qpos, qvel, ctrl) -> mujoco.MjData:
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:], d.ctrl[:] = qpos, qvel, ctrl
    mujoco.mj_forward(m, d)
    return d


def make_solver(m: mujoco.MjModel, dtype, kind: str = "Euler") -> RigidSolver:
    opts = RigidOptions(integrator=INTEGRATORS[kind][0], iterations=100, tolerance=1e-8)  # MuJoCo's defaults
    return RigidSolver(m, opts, m.opt.timestep, m.opt.gravity, "cpu", dtype)


def make_state(solver: RigidSolver, datas: list[mujoco.MjData]):
    """Our state from MuJoCo datas (one env each), warm start included."""
    t = lambda f: torch.tensor(np.stack([getattr(d, f) for d in datas]), dtype=solver.dtype)  # noqa: E731
    base = solver.initial_state(len(datas))
    return solver.make_state(qpos=t("qpos"), dofs_vel=t("qvel"), ctrl=t("ctrl"), act=t("act"),
                             qacc_warmstart=t("qacc_warmstart"), dofs_ctrl_mode=base.dofs_ctrl_mode,
                             dofs_ctrl_target=base.dofs_ctrl_target)


@dataclasses.dataclass
class Case:
    m: mujoco.MjModel
    datas: list  # MuJoCo data after mj_forward, one per env
    solver: RigidSolver
    state: object
    fwd: object


@functools.lru_cache(maxsize=None)
def forward_case(name: str, dtype: torch.dtype, smooth: bool = True) -> Case:
    m = mj_model(name)
    datas = [mj_forward_data(m, *s) for s in states(m, seed=zlib.crc32(name.encode()) + smooth, smooth=smooth)]
    solver = make_solver(m, dtype)
    state = make_state(solver, datas)
    return Case(m, datas, solver, state, solver.forward(state))


def assert_close(ours: torch.Tensor, ref, dtype, what: str, tol: float | None = None, acc: bool = False) -> None:
    """|ours - ref| <= atol + rtol |ref| elementwise with atol = rtol = tol (TOL[dtype] by default).

    `acc`: an acceleration, M^-1 f. In float32 its round-off grows with cond(M) (1e2..1e3 on these models; even an
    exact float32 solve of MuJoCo's own M and f errs by 4e-5 at a scale of 2e2), so a small component of a large
    vector cannot be resolved to rtol: there atol is taken relative to the vector's scale, tol * max(1, max|ref|).
    """
    tol = TOL[dtype] if tol is None else tol
    ref = np.asarray(ref, dtype=np.float64).reshape(ours.shape)
    atol = tol * max(1.0, float(np.abs(ref).max(initial=0.0))) if acc and dtype == torch.float32 else tol
    np.testing.assert_allclose(ours.detach().double().numpy(), ref, atol=atol, rtol=tol, err_msg=what)


def full_inertia(m: mujoco.MjModel, d: mujoco.MjData) -> np.ndarray:
    M = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, M)  # dense from MuJoCo's CSR `d.M` (MuJoCo 4 has no `d.qM`)
    return M


# ------------------------------------------------------------------------------------------- model coverage
def test_model_set_covers_features():
    """The parity models jointly contain every feature the solver supports; edits to SEEDS cannot drop one."""
    have = set()
    for name in MODELS:
        m = mj_model(name)
        have |= {JNT(t).name for t in m.jnt_type}
        have |= {"lone_free"} if lone_free_joints(m) else set()
        if any(m.jnt_type[j] == JNT.mjJNT_FREE for j in range(m.njnt)) and len(lone_free_joints(m)) < np.sum(
                m.jnt_type == JNT.mjJNT_FREE):
            have.add("free_with_jointed_children")
        have |= {"multi_joint_body"} if np.any(m.body_jntnum >= 2) else set()
        have |= {"tendon"} if m.ntendon else set()
        have |= {"tendon_actuator"} if np.any(m.actuator_trntype == mujoco.mjtTrn.mjTRN_TENDON) else set()
        have |= {"limit_margin"} if np.any(m.jnt_margin[m.jnt_limited.astype(bool)] > 0) else set()
        have |= {"forcerange"} if np.any(m.actuator_forcelimited) else set()
        have |= {"ctrlrange"} if np.any(m.actuator_ctrllimited) else set()
        have |= {"gain_affine"} if np.any(m.actuator_gaintype == mujoco.mjtGain.mjGAIN_AFFINE) else set()
        have |= {"bias_affine"} if np.any(m.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE) else set()
        have |= {"stiffness"} if np.any(m.jnt_stiffness > 0) else set()
        have |= {"tendon_stiffness"} if np.any(m.tendon_stiffness > 0) else set()
        have |= {"tendon_damping"} if np.any(m.tendon_damping > 0) else set()
    want = {"mjJNT_HINGE", "mjJNT_SLIDE", "mjJNT_BALL", "mjJNT_FREE", "lone_free", "free_with_jointed_children",
            "multi_joint_body", "tendon", "tendon_actuator", "limit_margin", "forcerange", "ctrlrange", "gain_affine",
            "bias_affine", "stiffness", "tendon_stiffness", "tendon_damping"}
    assert want <= have, f"parity models lack {sorted(want - have)}"


# ---------------------------------------------------------------------------------------------- stages
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODELS)
def test_kinematics(name, dtype):
    """Forward kinematics: body positions, orientations (quaternions up to sign), frames and COMs."""
    c = forward_case(name, dtype)
    for b, d in enumerate(c.datas):
        kin = c.fwd.kin
        assert_close(kin.xpos[b], d.xpos, dtype, f"xpos env {b}")
        assert_close(kin.xmat[b], d.xmat, dtype, f"xmat env {b}")
        assert_close(kin.xipos[b], d.xipos, dtype, f"xipos env {b}")
        sign = torch.sign((kin.xquat[b].double() * torch.tensor(d.xquat)).sum(-1, keepdim=True))
        assert_close(kin.xquat[b] * sign.to(dtype), d.xquat, dtype, f"xquat env {b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODELS)
def test_mass_matrix(name, dtype):
    """Joint-space inertia with armature, against `mj_fullM`."""
    c = forward_case(name, dtype)
    for b, d in enumerate(c.datas):
        assert_close(c.fwd.qM[b], full_inertia(c.m, d), dtype, f"qM env {b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODELS)
def test_bias_forces(name, dtype):
    """Coriolis, centrifugal and gravity forces (`qfrc_bias`)."""
    c = forward_case(name, dtype)
    for b, d in enumerate(c.datas):
        assert_close(c.fwd.qfrc_bias[b], d.qfrc_bias, dtype, f"qfrc_bias env {b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODELS)
def test_passive_forces(name, dtype):
    """Joint and tendon springs and dampers (`qfrc_passive`)."""
    c = forward_case(name, dtype)
    for b, d in enumerate(c.datas):
        assert_close(c.fwd.qfrc_passive[b], d.qfrc_passive, dtype, f"qfrc_passive env {b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODELS)
def test_actuation(name, dtype):
    """Actuator forces after clamping (`actuator_force`) and their generalised forces (`qfrc_actuator`)."""
    c = forward_case(name, dtype)
    for b, d in enumerate(c.datas):
        assert_close(c.fwd.actuation.force[b], d.actuator_force, dtype, f"actuator_force env {b}")
        assert_close(c.fwd.actuation.qfrc[b], d.qfrc_actuator, dtype, f"qfrc_actuator env {b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODELS)
def test_smooth_acceleration(name, dtype):
    """`qfrc_smooth` and `qacc_smooth = M^-1 qfrc_smooth`; without limit rows the constrained qacc equals it."""
    c = forward_case(name, dtype)
    for b, d in enumerate(c.datas):
        assert d.nefc == 0  # the smooth states really have no constraint rows
        assert_close(c.fwd.qfrc_smooth[b], d.qfrc_smooth, dtype, f"qfrc_smooth env {b}")
        assert_close(c.fwd.qacc_smooth[b], d.qacc_smooth, dtype, f"qacc_smooth env {b}", acc=True)
        assert_close(c.fwd.qacc[b], d.qacc, dtype, f"qacc env {b}", acc=True)


# ------------------------------------------------------------------------------------------------ steps
def _needs_new_mujoco(name: str, kind: str) -> str | None:
    m = mj_model(name)
    rot = np.any(np.isin(m.jnt_type, [JNT.mjJNT_BALL, JNT.mjJNT_FREE]))
    if kind == "RK4" and rot and MJ_VERSION < (4, 0):
        return "MuJoCo < 4.0 integrates ball/free orientations in RK4 without the Munthe-Kaas correction"
    if kind == "implicitfast" and lone_free_joints(m) and MJ_VERSION < (3, 11):
        return "MuJoCo < 3.11 integrates standalone free bodies by the midpoint rule in implicitfast"
    return None


def _step_both(name: str, kind: str, dtype, smooth: bool, seed: int):
    reason = _needs_new_mujoco(name, kind)
    if reason:
        pytest.skip(reason)
    m = mj_model(name, kind)
    datas = [mj_forward_data(m, *s) for s in states(m, seed=seed, smooth=smooth)]
    solver = make_solver(m, dtype, kind)
    nxt = solver.step(make_state(solver, datas))
    for d in datas:
        mujoco.mj_step(m, d)
    return m, datas, nxt


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", INTEGRATORS)
@pytest.mark.parametrize("name", MODELS)
def test_step(name, kind, dtype):
    """One `mj_step` from states without constraint rows: qpos, qvel and the next warm start."""
    m, datas, nxt = _step_both(name, kind, dtype, smooth=True, seed=7)
    for b, d in enumerate(datas):
        assert_close(nxt.qpos[b], d.qpos, dtype, f"{kind} qpos env {b}")
        assert_close(nxt.dofs_vel[b], d.qvel, dtype, f"{kind} qvel env {b}")
        assert_close(nxt.qacc_warmstart[b], d.qacc_warmstart, dtype, f"{kind} qacc_warmstart env {b}", acc=True)


@pytest.mark.parametrize("kind", INTEGRATORS)
@pytest.mark.parametrize("name", ["franka", "random13", "random16", "random20"])
def test_step_with_limits(name, kind):
    """One step from states with violated limits, float64: MJX's bar for a step with constraints is 5e-3 on qvel
    (atol = rtol); qpos moves by dt * qvel, so the same bound holds for it a fortiori."""
    m, datas, nxt = _step_both(name, kind, torch.float64, smooth=False, seed=11)
    for b, d in enumerate(datas):
        assert_close(nxt.qpos[b], d.qpos, torch.float64, f"{kind} qpos env {b}", tol=5e-3)
        assert_close(nxt.dofs_vel[b], d.qvel, torch.float64, f"{kind} qvel env {b}", tol=5e-3)


@pytest.mark.parametrize("kind", ["implicitfast", "RK4"])
def test_step_tumbling_free_body(kind):
    """A fast-tumbling standalone free body (|w| ~ 30 rad/s), where implicitfast's gyroscopic derivatives and RK4's
    Munthe-Kaas orientation update change the step by far more than the tolerance."""
    reason = _needs_new_mujoco("lone_free", kind)
    if reason:
        pytest.skip(reason)
    m = mj_model("lone_free", kind)
    rng = np.random.default_rng(5)
    datas = []
    for qpos, qvel, ctrl in (random_state(m, rng) for _ in range(N_STATES)):
        qvel[3:6] = 30.0 * qvel[3:6] / np.linalg.norm(qvel[3:6])
        datas.append(mj_forward_data(m, qpos, qvel, ctrl))
    solver = make_solver(m, torch.float64, kind)
    state = make_state(solver, datas)
    for _ in range(5):
        state = solver.step(state)
    for d in datas:
        for _ in range(5):
            mujoco.mj_step(m, d)
    for b, d in enumerate(datas):
        assert_close(state.qpos[b], d.qpos, torch.float64, f"{kind} qpos env {b}")
        assert_close(state.dofs_vel[b], d.qvel, torch.float64, f"{kind} qvel env {b}")


# ---------------------------------------------------------------------------------------- constraints
LIMIT_MODELS = [n for n in MODELS if mj_model(n).jnt_limited.any()]


def mujoco_cost(m: mujoco.MjModel, d: mujoco.MjData, qacc: np.ndarray) -> float:
    """MuJoCo's primal cost of `qacc` at `d`'s state: 1/2 (a - a0)' M (a - a0) + s(J a - aref), with the
    constraint term s from MuJoCo's own `mj_constraintUpdate` (on a copy of `d`)."""
    d = copy.copy(d)  # mj_constraintUpdate writes efc_state, efc_force, qfrc_constraint
    jar = np.zeros(d.nefc)
    mujoco.mj_mulJacVec(m, d, jar, qacc)
    jar -= d.efc_aref
    cost = np.zeros(1)
    mujoco.mj_constraintUpdate(m, d, jar, cost, 0)
    diff = qacc - d.qacc_smooth
    return float(0.5 * diff @ full_inertia(m, d) @ diff + cost[0])


def _limit_case(name: str, dtype):
    c = forward_case(name, dtype, smooth=False)
    quadratic = mujoco.mjtConstraintState.mjCNSTRSTATE_QUADRATIC
    assert all(d.nefc for d in c.datas)  # every state has limit rows,
    assert any(np.any(d.efc_state == quadratic) for d in c.datas)  # and some are active at MuJoCo's solution
    return c


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", LIMIT_MODELS)
def test_limit_rows(name, dtype):
    """Joint-limit rows (Jacobian, reference acceleration aref, regulariser R) equal MuJoCo's `efc_*` rows."""
    c = _limit_case(name, dtype)
    rows = constraint_rows.joint_limit_rows(c.solver.model, c.state.qpos, c.state.dofs_vel, c.solver.dt)
    for b, d in enumerate(c.datas):
        assert np.all(d.efc_type == mujoco.mjtConstraint.mjCNSTR_LIMIT_JOINT)
        valid = rows.valid[b]
        assert int(valid.sum()) == d.nefc
        J = np.zeros((d.nefc, c.m.nv))
        for r in range(d.nefc):  # dense rows whatever MuJoCo's storage
            e = np.zeros(d.nefc)
            e[r] = 1.0
            mujoco.mj_mulJacTVec(c.m, d, J[r], e)
        assert_close(rows.J[b][valid], J, dtype, f"efc_J env {b}")
        assert_close(rows.aref[b][valid], d.efc_aref, dtype, f"efc_aref env {b}")
        assert_close(1.0 / rows.D[b][valid], d.efc_R, dtype, f"efc_R env {b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", LIMIT_MODELS)
def test_constrained_qacc(name, dtype):
    """Constrained qacc, judged as MJX judges a constraint solve: MuJoCo's cost of our qacc is at most 1.025 x the
    cost of MuJoCo's qacc, plus the Gauss cost 1/2 lmax(M) e^2 of an acceleration error e = TOL[dtype] (1 + max|
    qacc_mj|) at the parity tolerance (MuJoCo's cost is exactly 0 where no row is active, and float32 round-off of
    an otherwise exact qacc costs ~1e-8 there); and |qacc - qacc_mj| <= 5e-3 (1 + max|qacc_mj|) elementwise, i.e.
    5e-3 relative to the acceleration scale of the state (limit rows reach hundreds of rad/s^2). Checked from a
    cold start and again one MuJoCo step later with MuJoCo's warm start (`qacc_warmstart`) given to both."""
    c = _limit_case(name, dtype)
    for attempt in ("cold", "warm"):
        if attempt == "warm":
            datas = []
            for d in c.datas:
                d2 = mj_forward_data(c.m, d.qpos, d.qvel, d.ctrl)
                mujoco.mj_step(c.m, d2)
                mujoco.mj_forward(c.m, d2)
                datas.append(d2)
            state = make_state(c.solver, datas)
            fwd = c.solver.forward(state)
        else:
            datas, fwd = c.datas, c.fwd
        for b, d in enumerate(datas):
            ours = fwd.qacc[b].double().numpy()
            cost_ours, cost_mj = mujoco_cost(c.m, d, ours), mujoco_cost(c.m, d, d.qacc)
            scale = 1.0 + np.abs(d.qacc).max()
            slack = 0.5 * np.linalg.eigvalsh(full_inertia(c.m, d))[-1] * (TOL[dtype] * scale) ** 2
            assert cost_ours <= 1.025 * cost_mj + slack, (attempt, b, cost_ours, cost_mj, slack)
            np.testing.assert_array_less(np.abs(ours - d.qacc), 5e-3 * scale, err_msg=f"{attempt} qacc env {b}")

"""Gradients through frictional contact against central finite differences in float64 (VALIDATION.md: random
directions, eps ~1e-6; contact cases reported separately from the smooth ones in test_gradients.py).

Autograd runs through the whole step: collision detection, contact rows, the unrolled Newton solve and the implicitfast
update (RigidOptions defaults but for a 1e-10 solver tolerance). Contacts are soft, so a trajectory is differentiable
wherever its discrete structure does not change: the set of contacts (a corner crossing the plane), the rows of the
pyramid that push, and the zone of each elliptic cone (separating / sliding on the cone / sticking inside it). Each
check records that structure at every step of the +eps and -eps runs and asserts it is the same, so a difference
never straddles a switch; the structure may still change along a trajectory (the fast box hops, the slow one goes
from sliding to sticking), only not between the two runs.

(a) A box (0.2 x 0.16 x 0.1 m, mu = 0.5, dt = 2 ms) settled on a plane, then 20 steps from an initial velocity:
    "slow", 0.05 m/s with spin (4 corner contacts throughout; elliptic cones slide 2-3 steps, then stick) and "fast",
    1 m/s (it hops: 4, 0 (and 2, pyramidal) contacts along the way, MuJoCo's soft-contact lift, see
    test_contact_validation.py).
    Loss: weighted final position; inputs: the initial velocity and the friction coefficient, a tensor of the
    contact model (`solver.contact_model.pair_friction`), perturbed together. Also d x / d mu < 0 (more friction,
    shorter slide).
(b) A planar 3-link arm (hinges about z, capsule links, MJCF position actuators kp = 20, kv = 2, joint damping 0.5)
    pushing a free 1 kg box over the plane, 25 steps of 5 ms after a 10-step approach (the box moves 2.8 cm; link-box
    contacts 0 to 4 and box-plane 0 to 4 along the way). Loss: weighted final box position; input: the actuator
    targets (ctrl). Pyramidal cone only.

Measured relative errors |g.u - FD| / |FD| (six random directions u for the box, five for the arm):
- pyramidal cone, eps = 1e-6: box slow 5e-11 .. 1.4e-9, fast 6e-12 .. 5.8e-10, arm 4.5e-10 .. 8.3e-9; asserted
  1e-6. A pyramid's cost is piecewise quadratic: Newton lands exactly on the minimiser of the active piece, so the
  step is a smooth function of its inputs and the unrolled derivative is exact.
- elliptic cone, box: eps = 1e-6 is noise-limited. The cone cost is not piecewise quadratic and Newton stops when a
  step no longer lowers the cost in floating point, which fixes qacc only to ~sqrt(machine eps) relative; the final
  positions then jump between branches ~4e-13 m apart as the input moves (measured on a segment of +-2e-6, whatever
  the solver tolerance, 1e-10 to 0), so a 1e-6 difference carries up to ~1e-4 relative noise (measured: slow up to
  1.3e-4, fast 8.7e-7). eps = 1e-4 straddles switches (the slow box's slide-to-stick step, a corner of the fast one),
  so eps = 1e-5: slow 6.5e-10 .. 9.9e-6, fast 2e-11 .. 5e-8; asserted 1e-4. The arm is not run with elliptic cones
  (~20 s, and its structure changes within eps = 1e-4).
All gradients asserted finite.

Bugs found here, fixed, and kept as regression tests:
- test_gradient_finite_without_pushing_rows: when an env's Newton solve starts at its optimum (valid constraint rows,
  none pushing: a contact within its margin but separating, or an env of the batch without rows while another has
  some), the Newton direction p is 0 and constraints.line_search divides d1 / d2 with d2 = p^T H p = 0 (the first
  step and the loop's Newton step); the forward discards these 0 / 0 through torch.where, but the backward
  multiplies the discarded NaN by 0, so that env's whole gradient is NaN (B = 1 as well).
- test_orientation_gradient_at_zero_angular_velocity: spatial.quat_integrate uses a constant identity rotation when
  omega = 0 exactly, so d quat / d omega is 0 instead of dt / 2 there (a body that does not spin never gets an
  orientation gradient).
"""

from __future__ import annotations

import functools

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.options import RigidOptions
from genesis_torch.solvers.rigid.constraints import row_terms
from genesis_torch.solvers.rigid.linalg import matvec
from genesis_torch.solvers.rigid.pipeline import constraint_stage
from genesis_torch.solvers.rigid.solver import RigidSolver

pytestmark = pytest.mark.usefixtures("single_thread")

CONES = {"pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL, "elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC}
F64 = torch.float64


def _solver(xml: str, cone: str) -> RigidSolver:
    m = mujoco.MjModel.from_xml_string(xml)
    m.opt.cone = CONES[cone]  # the solver reads the cone from m.opt
    return RigidSolver(m, RigidOptions(iterations=100, tolerance=1e-10), m.opt.timestep, m.opt.gravity, "cpu", F64)


def _with(solver: RigidSolver, state, **fields):
    return solver.make_state(**{**state.integration_fields(), **fields})


def _structure(solver: RigidSolver, state, qacc: torch.Tensor) -> tuple:
    """What must not change between the +eps and -eps runs at a step from `state` whose constrained acceleration
    was `qacc` (the next state's warm start): the contacts (slots and pairs), which rows push, and for elliptic cones
    the zone of each cone (0 separating, 1 sliding on the cone surface, 2 inside the cone)."""
    rows, c = constraint_stage(solver.model, solver.contact_model, solver.flags, solver.kinematics(state.qpos),
                               state.qpos, state.dofs_vel, solver.dt)
    contacts = (tuple(c.valid.flatten().tolist()), tuple(c.pair[c.valid].tolist()))
    if rows is None:  # no pair near: no contact slot, no rows
        return contacts, ()
    force = row_terms(rows, matvec(rows.J, qacc) - rows.aref)[1]
    if rows.nc:
        fc = force[:, rows.nr - 3 * rows.nc:].reshape(-1, rows.nc, 3)
        limit = rows.friction[..., 0] * fc[..., 0]  # mu f_n (isotropic friction here)
        sliding = (fc[..., 1:].norm(dim=-1) - limit).abs() <= 1e-9 * (1 + limit.abs())
        zone = torch.where(fc[..., 0] <= 0, 0, torch.where(sliding, 1, 2))
        return contacts, tuple(zone.flatten().tolist())
    return contacts, tuple((force != 0).flatten().tolist())


def _rollout(solver: RigidSolver, state, steps: int, trace: bool):
    """(final state, structure of every step or [])."""
    structure = []
    for _ in range(steps):
        new = solver.step(state)
        if trace:
            structure.append(_structure(solver, state, new.qacc_warmstart))
        state = new
    return state, structure


def _check(loss, inputs: tuple[torch.Tensor, ...], grads: tuple[torch.Tensor, ...], eps: float, tol: float,
           seed: int, n_dirs: int) -> tuple[list[float], list]:
    """The directional derivatives grads . u against central differences of loss(*inputs, trace) (returns value,
    structure trace, final state) along `n_dirs` random directions u. Returns the relative errors and the structure
    of the last +eps run."""
    for g in grads:
        assert torch.isfinite(g).all()
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n_dirs):
        dirs = [torch.from_numpy(rng.standard_normal(t.shape)) for t in inputs]
        with torch.no_grad():
            plus, trace_p, _ = loss(*(t + eps * d for t, d in zip(inputs, dirs)), trace=True)
            minus, trace_m, _ = loss(*(t - eps * d for t, d in zip(inputs, dirs)), trace=True)
        assert trace_p == trace_m, "the contact structure differs between the +eps and -eps runs"
        fd = ((plus - minus) / (2 * eps)).item()
        analytic = sum((g * d).sum() for g, d in zip(grads, dirs)).item()
        errors.append(abs(analytic - fd) / abs(fd))
    assert max(errors) <= tol, f"relative errors {errors} (eps {eps})"
    return errors, trace_p


# -------------------------------------------------------------------------------------------------- box
BOX_XML = """<mujoco><option timestep="0.002"/><worldbody>
  <geom type="plane" size="0 0 1" friction="0.5 0 0"/>
  <body pos="0 0 0.05"><freejoint/><geom type="box" size="0.1 0.08 0.05" friction="0.5 0 0"/></body>
</worldbody></mujoco>"""
BOX_STEPS = 20
BOX_V0 = {"slow": [0.05, 0.02, 0.0, 0.0, 0.0, 0.2], "fast": [1.0, 0.3, 0.0, 0.0, 0.0, 0.0]}
EPS = {"pyramidal": 1e-6, "elliptic": 1e-5}
TOL = {"pyramidal": 1e-6, "elliptic": 1e-4}


@functools.lru_cache(maxsize=None)
def _settled_box(cone: str):
    """A solver and the box resting on the plane (a resting depth and a warm start), per cone."""
    solver = _solver(BOX_XML, cone)
    state = solver.initial_state(1)
    with torch.no_grad():
        for _ in range(60):
            state = solver.step(state)
    return solver, state


@pytest.mark.parametrize("case", BOX_V0)
@pytest.mark.parametrize("cone", CONES)
def test_box_slide_gradient(cone, case):
    """d(final box position) / d(initial velocity, friction) against central differences (errors: docstring); the
    box ends further along +x with less friction (d x / d mu < 0)."""
    solver, rest = _settled_box(cone)
    cm = solver.contact_model
    weights = torch.tensor([1.0, 0.7, -0.4], dtype=F64)

    def loss(v0, mu, trace):
        cm.pair_friction = mu.reshape(1, 1).expand(cm.npair, 2)  # friction as a differentiable input
        end, structure = _rollout(solver, _with(solver, rest, dofs_vel=v0), BOX_STEPS, trace)
        return (end.qpos[0, :3] * weights).sum(), structure, end

    inputs = (torch.tensor([BOX_V0[case]], dtype=F64), torch.tensor(0.5, dtype=F64))
    x = [t.clone().requires_grad_(True) for t in inputs]
    value, _, end = loss(*x, trace=False)
    grads = torch.autograd.grad(value, x, retain_graph=True)
    (dx_dmu,) = torch.autograd.grad(end.qpos[0, 0], x[1])
    assert dx_dmu < 0, dx_dmu

    _, trace = _check(loss, inputs, grads, EPS[cone], TOL[cone], seed=3, n_dirs=2)
    counts = {sum(step[0][0]) for step in trace}  # contacts per step along the trajectory
    assert (counts == {4}) if case == "slow" else (len(counts) > 1), counts  # slow: 4 corners throughout


# -------------------------------------------------------------------------------------------------- arm
ARM_XML = """<mujoco><option timestep="0.005"/>
  <default><geom contype="2" conaffinity="0" friction="0.5 0 0"/><position kp="20" kv="2"/></default>
  <worldbody>
    <geom type="plane" size="0 0 1" contype="1" conaffinity="1" friction="0.5 0 0"/>
    <body pos="0 0 0.05">
      <joint name="j1" type="hinge" axis="0 0 1" damping="0.5"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02" density="500"/>
      <body pos="0.2 0 0">
        <joint name="j2" type="hinge" axis="0 0 1" damping="0.5"/>
        <geom type="capsule" fromto="0 0 0 0.15 0 0" size="0.02" density="500"/>
        <body pos="0.15 0 0">
          <joint name="j3" type="hinge" axis="0 0 1" damping="0.5"/>
          <geom type="capsule" fromto="0 0 0 0.1 0 0" size="0.02" density="500"/>
        </body>
      </body>
    </body>
    <body pos="0.38 -0.075 0.05"><freejoint/>
      <geom type="box" size="0.05 0.05 0.05" contype="1" conaffinity="3" density="1000"/></body>
  </worldbody>
  <actuator><position joint="j1"/><position joint="j2"/><position joint="j3"/></actuator>
</mujoco>"""
ARM_TARGET = [[-0.3, 0.1, 0.1]]  # rad: the links sweep towards -y into the box
ARM_STEPS = 25


def test_arm_push_gradient():
    """d(final box position) / d(actuator targets) with the pyramidal cone (errors: docstring)."""
    solver = _solver(ARM_XML, "pyramidal")
    target = torch.tensor(ARM_TARGET, dtype=F64)
    with torch.no_grad():
        state = solver.initial_state(1)
        for _ in range(20):  # the box settles
            state = solver.step(state)
        state = _with(solver, state, ctrl=target)
        for _ in range(10):  # the arm reaches the box
            state = solver.step(state)
    start = state
    weights = torch.tensor([0.6, 1.0, 0.3], dtype=F64)
    arm_box = [p for p in range(solver.contact_model.npair) if solver.contact_model.pair_body[p, 0] != 0]

    def loss(ctrl, trace):
        end, structure = _rollout(solver, _with(solver, start, ctrl=ctrl), ARM_STEPS, trace)
        return (end.qpos[0, 3:6] * weights).sum(), structure, end

    x = target.clone().requires_grad_(True)
    value, _, end = loss(x, trace=False)
    grads = torch.autograd.grad(value, [x])
    _, trace = _check(loss, (target,), grads, 1e-6, 1e-6, seed=5, n_dirs=2)
    pushed = sum(any(p in arm_box for p in contacts[1]) for contacts, _ in trace)
    assert pushed >= ARM_STEPS // 2, pushed  # the arm touches the box for most of the run
    moved = (start.qpos[0, 4] - end.qpos[0, 4]).item()
    assert moved > 0.02, moved  # and pushes it > 2 cm towards -y


# ------------------------------------------------------------------- regressions (bugs found and fixed here)
SPHERE_XML = """<mujoco><worldbody><geom type="plane" size="0 0 1"/>
  <body><freejoint/><geom type="sphere" size="0.1" margin="0.01"/></body></worldbody></mujoco>"""


@pytest.mark.parametrize("cone", CONES)
def test_gradient_finite_without_pushing_rows(cone):
    """One step of a sphere, two envs: env 0 touches the plane (a pushing row), env 1 is within the contact margin but
    moving away (valid rows, none pushing). Both gradients must be finite (they were NaN before line_search used safe denominators)."""
    solver = _solver(SPHERE_XML, cone)
    state = solver.initial_state(2)
    qpos = state.qpos.clone()
    qpos[:, 2] = torch.tensor([0.099, 0.105], dtype=F64)
    v = torch.tensor([[0.0] * 6, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]], dtype=F64, requires_grad=True)
    start = _with(solver, state, qpos=qpos, dofs_vel=v)
    rows = solver.forward(start).rows
    assert rows.valid.any(-1).all()  # both envs have contact rows, so both run the Newton solve
    new = solver.step(start)
    (g,) = torch.autograd.grad(new.qpos.sum(), v)
    assert torch.isfinite(g).all(), g


def test_orientation_gradient_at_zero_angular_velocity():
    """One step of a free body and a ball joint from rest (no gravity, no contact): d qpos / d qvel equals central
    differences. At omega = 0 the quaternion rows come out 0 instead of dt / 2 = 1e-3 (correct at omega = 1e-3 to
    8e-13); a body released without spin keeps omega = 0 exactly, so it never gets an orientation gradient."""
    m = mujoco.MjModel.from_xml_string(
        '<mujoco><option><flag gravity="disable"/></option><worldbody><body><freejoint/>'
        '<geom type="sphere" size="0.1"/></body><body pos="1 0 0"><joint type="ball"/>'
        '<geom type="box" size=".1 .2 .3"/></body></worldbody></mujoco>')
    solver = RigidSolver(m, RigidOptions(), m.opt.timestep, m.opt.gravity, "cpu", F64)
    state = solver.initial_state(1)

    def qpos(v):
        return solver.step(_with(solver, state, dofs_vel=v)).qpos[0]

    v0 = torch.zeros(1, m.nv, dtype=F64)
    jac = torch.autograd.functional.jacobian(qpos, v0)[:, 0]
    fd = torch.stack([(qpos(v0 + 1e-6 * e) - qpos(v0 - 1e-6 * e)) / 2e-6 for e in torch.eye(m.nv, dtype=F64)[:, None]],
                     -1)
    assert (jac - fd).abs().max() < 1e-9, (jac - fd).abs().max()

"""Gravity compensation: MuJoCo's `body_gravcomp` (MJCF `gravcomp`, and `gs.materials.Rigid(gravity_compensation=)`,
Genesis' per-entity factor) as MuJoCo's passive force -gravcomp * m * g at each body's COM through its Jacobian.

Reference: `mujoco` on the same model, float64: `qfrc_passive` on random states (3 envs batched) of the Franka and
seeded random trees with random gravcomp in [-0.5, 1.5] per body, and qpos/qvel after 100 steps of each integrator;
a Box with gravity_compensation=1 stays where it is, 0.5 falls by the discrete law with g/2."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.errors import UnsupportedFeatureError
from genesis_torch.solvers.rigid.model import validate_mjmodel

from .test_parity import INTEGRATORS, N_STATES, _xml, assert_close, make_solver, make_state, mj_forward_data, states

pytestmark = pytest.mark.usefixtures("single_thread")

MODELS = ("franka", "random1", "random13", "random20", "lone_free")
STEPS = 100


def gravcomp_model(name: str, kind: str = "Euler", seed: int = 0) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_string(_xml(name))
    rng = np.random.default_rng(seed)
    for body in spec.bodies:
        if body.name != "world":
            body.gravcomp = float(rng.uniform(-0.5, 1.5))
    m = spec.compile()
    m.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
    m.opt.integrator = INTEGRATORS[kind][1]
    return m


@pytest.mark.parametrize("name", MODELS)
def test_passive_force_matches_mujoco(name):
    m = gravcomp_model(name)
    validate_mjmodel(m)
    assert np.any(m.body_gravcomp != 0)
    datas = [mj_forward_data(m, *s) for s in states(m, seed=3, smooth=True)]
    assert any(np.abs(d.qfrc_gravcomp).max() > 1e-3 for d in datas)
    solver = make_solver(m, torch.float64)
    fwd = solver.forward(make_state(solver, datas))
    for b, d in enumerate(datas):
        assert_close(fwd.qfrc_passive[b], d.qfrc_passive, torch.float64, f"qfrc_passive env {b}", tol=1e-10)
        assert_close(fwd.qacc[b], d.qacc, torch.float64, f"qacc env {b}")


@pytest.mark.parametrize("kind", INTEGRATORS)
# not the Franka: from random states its limit contacts make 100 steps chaotic even without gravcomp (2e-3)
@pytest.mark.parametrize("name", ("random13", "random20", "lone_free"))
def test_trajectory_matches_mujoco(name, kind):
    m = gravcomp_model(name, kind, seed=1)
    datas = [mj_forward_data(m, *s) for s in states(m, seed=5, smooth=True)]
    solver = make_solver(m, torch.float64, kind)
    state = make_state(solver, datas)
    for _ in range(STEPS):
        state = solver.step(state)
        for d in datas:
            mujoco.mj_step(m, d)
    err = max(max(np.abs(state.qpos[b].numpy() - d.qpos).max(), np.abs(state.dofs_vel[b].numpy() - d.qvel).max())
              for b, d in enumerate(datas))
    assert err < 1e-8, f"{kind}: qpos/qvel differ from MuJoCo by {err:.3g} after {STEPS} steps"


def test_spring_and_damper_disabled_skip_gravcomp():
    """MuJoCo skips the passive stage, gravcomp included, when both springs and dampers are disabled."""
    m = gravcomp_model("random13")
    m.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_SPRING | mujoco.mjtDisableBit.mjDSBL_DAMPER)
    datas = [mj_forward_data(m, *s) for s in states(m, seed=3, smooth=True)]
    solver = make_solver(m, torch.float64)
    fwd = solver.forward(make_state(solver, datas))
    for b, d in enumerate(datas):
        assert_close(fwd.qfrc_passive[b], d.qfrc_passive, torch.float64, f"qfrc_passive env {b}", tol=1e-10)
        assert_close(fwd.qacc[b], d.qacc, torch.float64, f"qacc env {b}")


def test_actuatorgravcomp_refused():
    spec = mujoco.MjSpec.from_string(_xml("random13"))
    for body in spec.bodies:
        body.gravcomp = 1.0
    spec.joints[0].actgravcomp = True
    with pytest.raises(UnsupportedFeatureError, match="actuatorgravcomp"):
        validate_mjmodel(spec.compile())


@pytest.mark.parametrize("factor", (1.0, 0.5))
def test_material_gravity_compensation(gs64, factor):
    """Genesis' `Rigid(gravity_compensation=)`: a free box falls with (1 - factor) g, exactly by the discrete
    semi-implicit Euler law z_N = z0 - (1 - factor) g dt^2 N (N + 1) / 2, in parity with MuJoCo (3 envs)."""
    scene = gs64.Scene(sim_options=gs64.options.SimOptions(dt=0.002),
                       rigid_options=gs64.options.RigidOptions(integrator=gs64.integrator.Euler))
    scene.add_entity(gs64.morphs.Box(pos=(0, 0, 1.0), size=(0.1, 0.2, 0.3)),
                     material=gs64.materials.Rigid(gravity_compensation=factor))
    scene.build(n_envs=N_STATES)
    m = scene.rigid_solver.mj_model
    assert np.all(m.body_gravcomp[1:] == factor)
    d = mujoco.MjData(m)
    for _ in range(STEPS):
        scene.step()
        mujoco.mj_step(m, d)
    s = scene.get_state().solvers["RigidSolver"]
    np.testing.assert_allclose(s.qpos.numpy(), np.tile(d.qpos, (N_STATES, 1)), atol=1e-12, rtol=0)
    np.testing.assert_allclose(s.dofs_vel.numpy(), np.tile(d.qvel, (N_STATES, 1)), atol=1e-12, rtol=0)
    z = 1.0 - (1 - factor) * 9.81 * 0.002 ** 2 * STEPS * (STEPS + 1) / 2
    np.testing.assert_allclose(s.qpos[:, 2].numpy(), z, atol=1e-12, rtol=0)
    # get_dofs_force reports MuJoCo's qfrc_actuator + qfrc_passive, gravity compensation included
    mujoco.mj_forward(m, d)
    box = scene.entities[0]
    np.testing.assert_allclose(box.get_dofs_force().numpy(), np.tile(d.qfrc_passive + d.qfrc_actuator, (N_STATES, 1)),
                               atol=1e-12, rtol=0)
    assert abs(d.qfrc_passive[2]) > 0.1  # the compensation is there to report


def test_material_arguments(gs64):
    R = gs64.materials.Rigid
    r = R(gravity_compensation=1.0, needs_coup=False, coup_friction=0.2, coup_softness=0.01, coup_restitution=0.5,
          friction_torsional=0.01, friction_rolling=0.001, sdf_cell_size=0.01, sdf_min_res=16, sdf_max_res=64,
          coup_type="two_way_soft_constraint", coup_links=("a",), enable_coup_collision=False,
          coup_collision_links=None, contact_resistance=1.0, use_visual_raycasting=True)
    assert r.gravity_compensation == 1.0
    with pytest.raises(gs64.errors.InvalidInputError, match="coup_restitution"):
        R(coup_restitution=2.0)
    with pytest.raises(gs64.errors.InvalidInputError, match="gravity_compensation"):
        R(gravity_compensation=float("nan"))
    with pytest.raises(TypeError):
        R(not_an_argument=1)

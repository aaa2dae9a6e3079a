"""Gradients through rigid steps against central finite differences in float64 (VALIDATION.md: random directions,
eps ~1e-6, relative error <= 1e-4 for smooth problems).

The scenes avoid joint limits (the constraint activation is a kink); contact gradients come with contacts.
"""

import numpy as np
import pytest
import torch

import genesis_torch as gs
from tests.rigid.mjcf_random import random_mjcf

STEPS = 6
EPS = 1e-6


@pytest.fixture
def f64():
    gs.init(backend=gs.cpu, precision="64")
    yield
    gs.destroy()


def _scene(morph, integrator):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005, requires_grad=True),
                     rigid_options=gs.options.RigidOptions(integrator=integrator, enable_joint_limit=False))
    robot = scene.add_entity(morph)
    scene.build(n_envs=2)
    return scene, robot


def _loss_fn(scene, robot, weights):
    """loss(v0, target): set initial velocities and position targets, step, weigh the final positions."""
    init = scene.get_state()

    def loss(v0, target):
        scene.reset(state=init)
        robot.set_dofs_velocity(v0)
        robot.control_dofs_position(target)
        for _ in range(STEPS):
            scene.step()
        return (robot.get_qpos() * weights).sum() + (robot.get_dofs_velocity() * weights[..., :v0.shape[-1]]).sum()

    return loss


def _check(loss, v0, target, seed):
    v0 = v0.clone().requires_grad_(True)
    target = target.clone().requires_grad_(True)
    value = loss(v0, target)
    value.backward()
    assert torch.isfinite(v0.grad).all() and torch.isfinite(target.grad).all()
    rng = np.random.default_rng(seed)
    for _ in range(3):
        dv = torch.from_numpy(rng.standard_normal(v0.shape))
        dt = torch.from_numpy(rng.standard_normal(target.shape))
        with torch.no_grad():
            fd = (loss(v0 + EPS * dv, target + EPS * dt) - loss(v0 - EPS * dv, target - EPS * dt)) / (2 * EPS)
        analytic = (v0.grad * dv).sum() + (target.grad * dt).sum()
        rel = abs(analytic.item() - fd.item()) / max(abs(fd.item()), 1e-8)
        assert rel <= 1e-4, f"directional derivative {analytic.item():.10g} vs finite difference {fd.item():.10g}"


@pytest.mark.parametrize("integrator", [gs.integrator.Euler, gs.integrator.implicitfast, gs.integrator.RK4])
def test_franka_gradient_wrt_initial_velocity_and_targets(f64, integrator):
    scene, robot = _scene(gs.morphs.MJCF(file="franka.xml"), integrator)
    home = torch.tensor([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.02, 0.02], dtype=torch.float64)
    robot.set_dofs_position(home)
    weights = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 9)))
    rng = np.random.default_rng(1)
    v0 = torch.from_numpy(0.3 * rng.standard_normal((2, 9)))
    v0[:, 7:] = 0.0  # keep the fingers off their limits
    target = home + torch.from_numpy(0.2 * rng.standard_normal((2, 9)))
    target[:, 7:] = 0.02
    _check(_loss_fn(scene, robot, weights), v0, target, seed=2)


@pytest.mark.parametrize("seed", [1, 4])
def test_random_tree_gradient(f64, tmp_path, seed):
    path = tmp_path / "tree.xml"
    path.write_text(random_mjcf(seed, joint_types=("hinge", "slide", "ball"), limits=False, actuators=False))
    scene, robot = _scene(gs.morphs.MJCF(file=str(path)), gs.integrator.implicitfast)
    nv = robot.n_dofs
    weights = torch.from_numpy(np.random.default_rng(seed).standard_normal((2, robot.n_qs)))
    rng = np.random.default_rng(seed + 10)
    v0 = torch.from_numpy(0.5 * rng.standard_normal((2, nv)))
    # dofs without an MJCF actuator get the PD controller; give it gains so targets matter
    robot.set_dofs_kp(torch.full((nv,), 5.0, dtype=torch.float64))
    robot.set_dofs_kv(torch.full((nv,), 0.5, dtype=torch.float64))
    hs = [i for i in range(nv) if robot._dof_is_hs[i]]
    target = torch.from_numpy(0.3 * rng.standard_normal((2, len(hs))))

    init = scene.get_state()

    def loss(v, t):
        scene.reset(state=init)
        robot.set_dofs_velocity(v)
        robot.control_dofs_position(t, dofs_idx_local=hs)
        for _ in range(STEPS):
            scene.step()
        return (robot.get_qpos() * weights).sum()

    _check(loss, v0, target, seed=seed)

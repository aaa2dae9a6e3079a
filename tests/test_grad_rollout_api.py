"""`gs.rollout` (checkpointed or not) and `gs.functional_step` (issue 19, genesis_torch/rollout.py)."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError

from .conftest import cpu_runtime

F64 = torch.float64
T = 12


@pytest.fixture
def franka():
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, requires_grad=True))
        robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build(n_envs=2)
        yield scene, robot


def _run(scene, robot, init, k):
    tau = torch.linspace(-1, 1, T * 14, dtype=F64).reshape(T, 2, 7).requires_grad_(True)
    v0 = torch.full((2, 9), 0.1, dtype=F64, requires_grad=True)
    shift = torch.zeros(robot.n_links, dtype=F64, requires_grad=True)
    goal = torch.tensor([0.4, 0.2, 0.5], dtype=F64)
    scene.reset(state=init)
    robot.set_mass_shift(shift)
    robot.set_dofs_velocity(v0)
    loss = gs.rollout(scene, tau, lambda t, u: robot.control_dofs_force(u, dofs_idx_local=range(7)),
                      lambda t: (robot.get_links_pos()[:, -1] - goal).square().sum(), checkpoint_every=k)
    loss.backward()
    return loss.detach(), tau.grad, v0.grad, shift.grad, scene.get_state()["RigidSolver"].qpos.detach(), scene.t


def test_checkpointed_rollout_matches_plain_bitwise(franka):
    scene, robot = franka
    init = scene.get_state()
    ref = _run(scene, robot, init, None)
    assert ref[5] == T and ref[1].abs().max() > 0 and ref[3].abs().max() > 0
    for k in (1, 5):
        got = _run(scene, robot, init, k)
        for name, a, b in zip(("loss", "tau grad", "v0 grad"), got[:3], ref[:3]):
            assert torch.equal(a, b), (k, name)
        assert torch.equal(got[4], ref[4]) and got[5] == T
        assert torch.allclose(got[3], ref[3], rtol=1e-12, atol=0), k  # parameter: a sum over steps, to rounding


def test_rollout_equals_a_step_loop(franka):
    scene, robot = franka
    init = scene.get_state()
    loss, tau_grad = _run(scene, robot, init, None)[:2]
    tau = torch.linspace(-1, 1, T * 14, dtype=F64).reshape(T, 2, 7).requires_grad_(True)
    goal = torch.tensor([0.4, 0.2, 0.5], dtype=F64)
    scene.reset(state=init)
    robot.set_mass_shift(torch.zeros(robot.n_links, dtype=F64))
    robot.set_dofs_velocity(torch.full((2, 9), 0.1, dtype=F64))
    acc = torch.zeros((), dtype=F64)
    for t in range(T):
        robot.control_dofs_force(tau[t], dofs_idx_local=range(7))
        scene.step()
        acc = acc + (robot.get_links_pos()[:, -1] - goal).square().sum()
    acc.backward()
    assert torch.equal(acc.detach(), loss)
    assert torch.allclose(tau.grad, tau_grad, rtol=1e-12, atol=1e-18)


def test_captured_tensor_requiring_grad_raises(franka):
    scene, robot = franka
    goal = torch.tensor([0.4, 0.2, 0.5], dtype=F64, requires_grad=True)
    loss = gs.rollout(scene, None, None, lambda t: (robot.get_links_pos()[:, -1] - goal).square().sum(), steps=4,
                      checkpoint_every=2)
    with pytest.raises(InvalidInputError, match="neither in controls"):
        loss.backward()


def test_rollout_validates_input(franka):
    scene, robot = franka
    u = torch.zeros(3, 2, 7, dtype=F64)
    apply = lambda t, x: robot.control_dofs_force(x, dofs_idx_local=range(7))  # noqa: E731
    for kwargs in ({"checkpoint_every": 0}, {"checkpoint_every": 1.5}, {"steps": 4}):
        with pytest.raises(InvalidInputError):
            gs.rollout(scene, u, apply, **kwargs)
    with pytest.raises(InvalidInputError):
        gs.rollout(scene, [1, 2], apply)
    with pytest.raises(InvalidInputError):
        gs.rollout(scene, u)  # controls without apply_control
    assert scene.t == 0


def test_functional_step_equals_scene_step(franka):
    scene, robot = franka
    robot.set_dofs_velocity(torch.full((2, 9), 0.2, dtype=F64))
    step = gs.functional_step(scene)
    out = step(scene.get_state().solvers)
    scene.step()
    for name, t in scene.get_state()["RigidSolver"].tensors().items():
        assert torch.equal(t, getattr(out["RigidSolver"], name)), name
    with pytest.raises(InvalidInputError):
        step({})

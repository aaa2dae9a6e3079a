"""The graph contract of `SimOptions(requires_grad=True)` (issue 19, DESIGN.md §5): setters take tensors that require
grad, getters and `scene.get_state()` keep the graph, `serializable()` and checkpoints detach, and optimisation loops
(`reset` -> set -> roll out -> `backward`) neither fail nor keep earlier iterations' graphs alive."""

from __future__ import annotations

import gc
import pickle
import weakref

import pytest
import torch

import genesis_torch as gs

from .conftest import cpu_runtime
from .test_grad_rollouts import mpm_block_scene

F64 = torch.float64
HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.02, 0.02]


@pytest.fixture
def f64():
    with cpu_runtime("64"):
        yield


def _franka(requires_grad=True, n_envs=2):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, requires_grad=requires_grad))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    robot.set_dofs_position(torch.tensor(HOME, dtype=F64))
    return scene, robot


def test_getters_and_snapshots_keep_the_graph(f64, tmp_path):
    scene, robot = _franka()
    v0 = torch.full((2, 9), 0.1, dtype=F64, requires_grad=True)
    robot.set_dofs_velocity(v0)
    for _ in range(3):
        scene.step()
    outs = {"get_qpos": robot.get_qpos(), "get_dofs_position": robot.get_dofs_position(),
            "get_dofs_velocity": robot.get_dofs_velocity(), "get_links_pos": robot.get_links_pos(),
            "get_links_quat": robot.get_links_quat(), "get_links_vel": robot.get_links_vel(),
            "get_links_ang": robot.get_links_ang()}
    for name, t in outs.items():
        (g,) = torch.autograd.grad(t.sum(), v0, retain_graph=True)
        assert g.abs().max() > 0, name
    snap = scene.get_state()
    assert snap["RigidSolver"].qpos.grad_fn is not None
    (g,) = torch.autograd.grad(snap["RigidSolver"].qpos.sum(), v0, retain_graph=True)
    assert g.abs().max() > 0
    ser = snap.serializable()
    assert all(not t.requires_grad and t.grad_fn is None for t in ser["RigidSolver"].tensors().values())
    assert torch.equal(ser["RigidSolver"].qpos, snap["RigidSolver"].qpos.detach())
    pickle.loads(pickle.dumps(ser))  # plain pickle, no graph
    scene.save_checkpoint(tmp_path / "c.safetensors")  # a state in a graph saves (detached)
    scene.reset()
    scene.load_checkpoint(tmp_path / "c.safetensors")
    loaded = scene.get_state()["RigidSolver"]
    assert not loaded.qpos.requires_grad and torch.equal(loaded.qpos, snap["RigidSolver"].qpos.detach())
    # resetting to a snapshot that is in a graph continues that graph
    scene.reset(state=snap)
    scene.step()
    (g,) = torch.autograd.grad(robot.get_qpos().sum(), v0)
    assert g.abs().max() > 0


def test_without_requires_grad_steps_record_nothing(f64):
    scene, robot = _franka(requires_grad=False)
    v0 = torch.full((2, 9), 0.1, dtype=F64, requires_grad=True)
    robot.set_dofs_velocity(v0)
    scene.step()
    assert robot.get_qpos().grad_fn is None and not robot.get_dofs_velocity().requires_grad


def test_particle_getters_keep_the_graph(f64):
    scene, block = mpm_block_scene()
    x0 = (block.get_particles_pos() + 0.01).requires_grad_(True)
    block.set_position(x0)
    scene.step()
    st = scene.get_state()["MPMSolver"]
    for t in (block.get_particles_pos(), block.get_particles_vel(), st.pos, st.F):
        (g,) = torch.autograd.grad(t.sum(), x0, retain_graph=True)
        assert torch.isfinite(g).all() and g.abs().max() > 0
    assert not st.active.requires_grad  # bool fields stay out of the graph


def _param_graph_size(t: torch.Tensor) -> int:
    """Number of autograd nodes reachable from `t.grad_fn`."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        f = todo.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        todo.extend(n for n, _ in f.next_functions)
    return len(seen)


def test_optimisation_loop_resets_without_leaking_graphs(f64):
    """reset -> set controls and parameters (tensors that require grad) -> roll out -> backward, 8 iterations with the
    same inputs: every iteration gives the same gradients (no error from building on the freed graph of the previous
    one), the parameters' graphs do not grow, and no tensor of an earlier iteration's rollout survives the reset."""
    scene, robot = _franka()
    init = scene.get_state()
    v0 = torch.full((2, 9), 0.1, dtype=F64, requires_grad=True)
    kp = torch.full((9,), 200.0, dtype=F64, requires_grad=True)
    shift = torch.zeros(robot.n_links, dtype=F64, requires_grad=True)
    grads, sizes, last = [], [], None
    for it in range(8):
        scene.reset(state=init)
        robot.set_dofs_velocity(v0)
        robot.set_dofs_kp(kp)
        robot.set_mass_shift(shift)
        robot.control_dofs_position(torch.tensor(HOME, dtype=F64))
        for _ in range(4):
            scene.step()
        loss = robot.get_links_pos()[:, -1].square().sum()
        params = scene.rigid_solver.params
        sizes.append((_param_graph_size(params.dof_kp), _param_graph_size(params.link_mass_shift)))
        grads.append(torch.autograd.grad(loss, (v0, kp, shift)))
        if last is not None:
            gc.collect()
            assert last() is None, "a tensor of the previous iteration's rollout is still alive"
        last = weakref.ref(scene.get_state()["RigidSolver"].qpos)
        del loss
    assert len(set(sizes)) == 1, sizes
    for g in grads[1:]:
        for a, b in zip(g, grads[0]):
            assert torch.equal(a, b)
    assert grads[0][1].abs().max() > 0 and grads[0][2].abs().max() > 0


def test_parameter_set_before_reset_keeps_its_gradient(f64):
    """"set, then reset, then roll out": a reset keeps model parameters (they are not state), and their graph."""
    scene, robot = _franka()
    shift = torch.zeros(robot.n_links, dtype=F64, requires_grad=True)
    for _ in range(2):
        robot.set_mass_shift(shift)
        scene.reset()
        robot.control_dofs_position(torch.tensor(HOME, dtype=F64))
        for _ in range(3):
            scene.step()
        (g,) = torch.autograd.grad(robot.get_qpos().sum(), shift)
        assert g.abs().max() > 0


def test_mpm_material_parameter_in_a_loop(f64):
    """`MPMEntity.set_material_params(E=...)` with a tensor that requires grad, in every iteration of a loop."""
    scene, block = mpm_block_scene()
    E = torch.tensor(5e3, dtype=F64, requires_grad=True)
    v0 = torch.randn(block.n_particles, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    grads = []
    for _ in range(3):
        scene.reset()
        block.set_velocity(v0)
        block.set_material_params(E=E)
        for _ in range(3):
            scene.step()
        grads.append(torch.autograd.grad((block.get_particles_pos() * v0).sum(), E)[0])
    assert grads[0] != 0 and grads[0] == grads[1] == grads[2]

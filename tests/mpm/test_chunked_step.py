"""The CPU substep's env chunks (MPMSolver.chunk_particles): P2G and G2P env chunk by env chunk give the unchunked
results bitwise (same per-particle ops, same scatter index order), states and gradients, on every grid layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.mpm.solver import MPMSolver

from ..conftest import cpu_runtime
from .conftest import small_scene


def _run(chunk, kind, precision, mode="auto", steps=25):
    with cpu_runtime(precision):
        scene, ents = small_scene(4, coupled=(kind != "mpm"), **({"flip_ratio": 0.7} if kind == "flip" else {}))
        solver = scene.mpm_solver
        solver.grid_mode, solver.chunk_particles = mode, chunk
        if chunk < MPMSolver.chunk_particles:
            assert len(solver._env_chunks(4, solver.model.n, torch.device("cpu"))) > 1, "precondition: chunked"
        rng = np.random.default_rng(2)
        for e in ents:
            if isinstance(e, gs.RigidEntity):
                continue
            e.set_velocity(torch.as_tensor(rng.normal(0, 0.5, (4, e.n_particles, 3)), dtype=scene.dtype))
            e.set_active(torch.as_tensor(rng.random((4, e.n_particles)) > 0.1))
        ents[-1].set_material_params(E=torch.tensor([1e4, 2e4, 3e4, 4e4], dtype=scene.dtype))  # per-env params
        for _ in range(steps):
            scene.step()
        return scene.get_state().to_arrays()


@pytest.mark.parametrize("kind,precision,mode", [("mpm", "64", "auto"), ("coupled", "32", "dense"),
                                                 ("flip", "64", "sparse")])
def test_chunked_step_equals_unchunked_bitwise(kind, precision, mode):
    whole = _run(MPMSolver.chunk_particles, kind, precision, mode)
    for chunk in (150, 300):  # one env per chunk, two envs per chunk (131 particles per env)
        parts = _run(chunk, kind, precision, mode)
        assert sorted(whole) == sorted(parts)
        for key in whole:
            assert whole[key].tobytes() == parts[key].tobytes(), f"{key}: chunk {chunk} differs"


def _grads(chunk):
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, requires_grad=True),
                         mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                           grid_density=16, particle_size=1 / 32))
        block = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.3), size=(0.125, 0.125, 0.125)),
                                 material=gs.materials.MPM.Elastic(E=5e3, nu=0.3, rho=400.0))
        scene.build(n_envs=3)
        scene.mpm_solver.chunk_particles = chunk
        g = torch.Generator().manual_seed(0)
        v0 = (0.3 * torch.randn(3, block.n_particles, 3, generator=g, dtype=torch.float64)).requires_grad_()
        E = torch.tensor([4e3, 5e3, 6e3], dtype=torch.float64, requires_grad=True)
        block.set_velocity(v0)
        block.set_material_params(E=E)
        for _ in range(8):
            scene.step()
        (block.get_particles_pos() * torch.randn(3, block.n_particles, 3, generator=g, dtype=torch.float64)).sum(
        ).backward()
        return v0.grad, E.grad


def test_chunked_step_gradients_equal_unchunked():
    (gv, gE), (cv, cE) = _grads(MPMSolver.chunk_particles), _grads(64)
    assert gE.abs().min() > 0
    assert torch.equal(gv, cv) and torch.equal(gE, cE)

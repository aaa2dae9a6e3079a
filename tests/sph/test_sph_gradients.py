"""Finite-difference gradient check (float64, central differences along a random direction; VALIDATION.md) of a loss
on final particle positions w.r.t. the initial velocity: a compressed blob (pressure, viscosity and cohesion all
active) near a wall (its volume map and pressure term active), 10 substeps. WCSPH, and DFSPH through its Jacobi
iterations (their counts depend on the state; the 1e-6 perturbation leaves them unchanged here). Measured relative
errors: WCSPH 1.9e-9, DFSPH 5.3e-9."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime

STEPS = 10


def loss_fn(v0: torch.Tensor, weights: torch.Tensor, solver: str = "WCSPH") -> torch.Tensor:
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-3, requires_grad=True),
                     sph_options=gs.options.SPHOptions(particle_size=0.02, lower_bound=(0, 0, 0),
                                                       upper_bound=(0.4, 0.4, 0.4), pressure_solver=solver))
    blob = scene.add_entity(gs.morphs.Box(pos=(0.2, 0.2, 0.2), size=(0.1, 0.1, 0.1)),
                            material=gs.materials.SPH.Liquid(stiffness=2000.0, mu=0.01, gamma=0.02))
    scene.build()
    x = blob.get_particles_pos()
    x = (x - x.mean(0)) * 0.9 + torch.tensor([0.2, 0.2, 0.065], dtype=x.dtype)  # compressed, 2.1 cm off the floor
    blob.set_position(x)
    blob.set_velocity(v0)
    for _ in range(STEPS):
        scene.step()
    p = blob.get_particles_pressure()
    assert (p > 0).sum() > 20, "the pressure term must be active"
    return (blob.get_particles_pos() * weights).sum()


@pytest.mark.parametrize("solver", ["WCSPH", "DFSPH"])
def test_gradient_wrt_initial_velocity_matches_central_differences(solver):
    with cpu_runtime("64"):
        g = torch.Generator().manual_seed(0)
        n = 125
        v0 = (0.2 * torch.randn(n, 3, generator=g, dtype=torch.float64)).requires_grad_()
        weights = torch.randn(n, 3, generator=g, dtype=torch.float64)
        loss_fn(v0, weights, solver).backward()
        assert torch.isfinite(v0.grad).all()
        with torch.no_grad():
            d = torch.randn(n, 3, generator=g, dtype=torch.float64)
            eps = 1e-6
            fd = (loss_fn(v0 + eps * d, weights, solver) - loss_fn(v0 - eps * d, weights, solver)) / (2 * eps)
        an = (v0.grad * d).sum()
        assert abs(an - fd) <= 1e-6 * abs(fd), (an.item(), fd.item())
        # the gradient is not just the ballistic one (dt * steps per unit velocity): the liquid's forces shape it
        assert (v0.grad - weights * STEPS * 1e-3).abs().max() > 1e-4

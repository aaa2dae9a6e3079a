"""Finite-difference gradient checks (float64, central differences along random directions; VALIDATION.md) of a
loss on final particle positions w.r.t. the initial velocity and Young's modulus, with pure APIC transfers and with a
PIC/FLIP blend (`MPMOptions.flip_ratio`)."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime

STEPS = 12


def loss_fn(v0: torch.Tensor, E: torch.Tensor, weights: torch.Tensor, flip_ratio: float) -> torch.Tensor:
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, requires_grad=True),
                     mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1), grid_density=16,
                                                       particle_size=1 / 32, flip_ratio=flip_ratio))
    block = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.3), size=(0.125, 0.125, 0.125)),
                             material=gs.materials.MPM.Elastic(E=5e3, nu=0.3, rho=400.0))
    scene.build()
    block.set_velocity(v0)
    block.set_material_params(E=E)
    for _ in range(STEPS):
        scene.step()
    return (block.get_particles_pos() * weights).sum()


@pytest.mark.parametrize("flip_ratio", [0.0, 0.7])
def test_gradient_wrt_initial_velocity_and_E_matches_central_differences(flip_ratio):
    with cpu_runtime("64"):
        g = torch.Generator().manual_seed(0)
        n = 64
        v0 = (0.3 * torch.randn(n, 3, generator=g, dtype=torch.float64)).requires_grad_()
        E = torch.tensor(5e3, dtype=torch.float64, requires_grad=True)
        weights = torch.randn(n, 3, generator=g, dtype=torch.float64)
        loss = loss_fn(v0, E, weights, flip_ratio)
        loss.backward()
        assert torch.isfinite(v0.grad).all() and E.grad is not None and E.grad != 0
        with torch.no_grad():
            d = torch.randn(n, 3, generator=g, dtype=torch.float64)
            eps = 1e-6
            fd_v = (loss_fn(v0 + eps * d, E, weights, flip_ratio) - loss_fn(v0 - eps * d, E, weights, flip_ratio)) / (
                2 * eps)
            an_v = (v0.grad * d).sum()
            epsE = 1e-3  # E ~ 5e3 Pa: a relative step of 2e-7
            fd_E = (loss_fn(v0, E + epsE, weights, flip_ratio) - loss_fn(v0, E - epsE, weights, flip_ratio)) / (
                2 * epsE)
        assert abs(an_v - fd_v) <= 1e-4 * abs(fd_v), (an_v.item(), fd_v.item())
        assert abs(E.grad - fd_E) <= 1e-4 * abs(fd_E), (E.grad.item(), fd_E.item())

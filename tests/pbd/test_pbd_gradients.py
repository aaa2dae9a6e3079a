"""Finite-difference gradient check (float64, central differences along a random direction; VALIDATION.md) of a loss
on final cloth positions w.r.t. the initial velocity, through stretch, bending, a pinned particle, a rigid ball and
the floor."""

from __future__ import annotations

import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import PBD, grid_obj

STEPS = 25


def loss_fn(v0: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, requires_grad=True),
                     pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0.0), upper_bound=(1, 1, 2)))
    scene.add_entity(gs.morphs.Sphere(pos=(0.0, 0.0, 0.25), radius=0.2, fixed=True))
    cloth = scene.add_entity(gs.morphs.Mesh(file=grid_obj(4), pos=(0, 0, 0.5), scale=0.6),
                             material=PBD.Cloth(stretch_compliance=1e-5, bending_compliance=1e-3))
    scene.build()
    cloth.fix_particles([0], zero_velocity=False)
    cloth.set_velocity(v0)
    for _ in range(STEPS):
        scene.step()
    return (cloth.get_particles_pos() * weights).sum()


def test_gradient_wrt_initial_velocity_matches_central_differences():
    with cpu_runtime("64"):
        g = torch.Generator().manual_seed(0)
        n = 25
        v0 = (torch.tensor([0.0, 0.0, -2.0], dtype=torch.float64) + 0.3 * torch.randn(n, 3, generator=g,
                                                                                    dtype=torch.float64))
        v0.requires_grad_()
        weights = torch.randn(n, 3, generator=g, dtype=torch.float64)
        loss = loss_fn(v0, weights)
        loss.backward()
        assert torch.isfinite(v0.grad).all() and v0.grad.abs().max() > 0
        with torch.no_grad():
            d = torch.randn(n, 3, generator=g, dtype=torch.float64)
            eps = 1e-6
            fd = (loss_fn(v0 + eps * d, weights) - loss_fn(v0 - eps * d, weights)) / (2 * eps)
        an = (v0.grad * d).sum()
        assert abs(an - fd) <= 1e-6 * abs(fd), (an.item(), fd.item())

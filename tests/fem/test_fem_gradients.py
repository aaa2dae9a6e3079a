"""Finite-difference gradient checks (float64, central differences along a random direction; VALIDATION.md) of a
loss on final vertex positions w.r.t. the initial velocity and Young's modulus, for the explicit and the implicit
(Newton + PCG with fixed iteration counts, differentiated by autograd) solvers."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import remesh

STEPS = 8


def loss_fn(v0, E, weights, implicit):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2 if implicit else 1e-3, requires_grad=True),
                     fem_options=gs.options.FEMOptions(use_implicit_solver=implicit, n_pcg_iterations=20,
                                                       n_newton_iterations=1, pcg_threshold=1e-30,
                                                       newton_dx_threshold=1e-30))
    block = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.2, 0.1, 0.1)),
                             material=gs.materials.FEM.Elastic(E=2e4, nu=0.3, rho=500.0, model="linear_corotated"))
    remesh(block, (2, 1, 1))
    scene.build()
    block.set_velocity(v0)
    block.set_material_params(E=E)
    for _ in range(STEPS):
        scene.step()
    pos = block.get_pos()
    return ((pos - pos.mean(0)) * weights).sum()  # the deformation (and rotation): what E changes


@pytest.mark.parametrize("implicit", [False, True])
def test_gradient_wrt_initial_velocity_and_E_matches_central_differences(implicit):
    with cpu_runtime("64"):
        g = torch.Generator().manual_seed(0)
        n = 12
        v0 = (2.0 * torch.randn(n, 3, generator=g, dtype=torch.float64)).requires_grad_()
        E = torch.tensor(2e4, dtype=torch.float64, requires_grad=True)
        weights = torch.randn(n, 3, generator=g, dtype=torch.float64)
        loss = loss_fn(v0, E, weights, implicit)
        loss.backward()
        assert torch.isfinite(v0.grad).all() and E.grad is not None and E.grad != 0
        with torch.no_grad():
            d = torch.randn(n, 3, generator=g, dtype=torch.float64)
            eps = 1e-6
            fd_v = (loss_fn(v0 + eps * d, E, weights, implicit)
                    - loss_fn(v0 - eps * d, E, weights, implicit)) / (2 * eps)
            epsE = 10.0  # 5e-4 of E: truncation error ~ 3e-7 relative, round-off far below
            fd_E = (loss_fn(v0, E + epsE, weights, implicit) - loss_fn(v0, E - epsE, weights, implicit)) / (2 * epsE)
        an_v = (v0.grad * d).sum()
        assert abs(an_v - fd_v) <= 1e-6 * abs(fd_v), (an_v.item(), fd_v.item())
        assert abs(E.grad - fd_E) <= 1e-6 * abs(fd_E), (E.grad.item(), fd_E.item())

"""FEM.Muscle: a bar with uniform fibres along x and activation a is in equilibrium at the analytic stretch of the
linear model, 1 - a axially and 1 + nu a laterally (active stress E a balances the elastic E (1 - lambda)); the API
validates its input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import remesh


def bar(n_envs=1, a=0.1, nu=0.3):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-3, gravity=(0.0, 0.0, 0.0)))
    e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.4, 0.1, 0.1)),
                         material=gs.materials.FEM.Muscle(E=1e4, nu=nu, rho=1000.0, model="linear"))
    remesh(e, (8, 2, 2))
    scene.build(n_envs=n_envs)
    e.set_muscle(muscle_direction=np.tile([1.0, 0.0, 0.0], (e.n_elements, 1)))
    e.set_actuation(a)
    return scene, e


def test_bar_equilibrium_is_the_analytic_contraction():
    with cpu_runtime("64"):
        a, nu = 0.1, 0.3
        scene, e = bar(a=a, nu=nu)
        s, X = scene.fem_solver, e.init_positions
        c = X.mean(0)
        active = torch.ones(1, e.n_elements, dtype=torch.bool)
        actu = scene.get_state()["FEMSolver"].actu
        x = c + (X - c) * torch.tensor([1 - a, 1 + nu * a, 1 + nu * a], dtype=X.dtype)
        f_eq = s.elastic_forces(x[None], active, actu=actu)
        f_rest = s.elastic_forces(X[None], active, actu=actu)
        assert f_eq.abs().max() < 1e-10 * f_rest.abs().max()
        end = X[:, 0] > X[:, 0].max() - 1e-9  # at rest the fibres pull the end face in with E a A
        assert float(f_rest[0, end, 0].sum()) == pytest.approx(-1e4 * a * 0.1 * 0.1, rel=1e-9)


def test_actuation_api():
    with cpu_runtime("64"):
        scene, e = bar(n_envs=2)
        e.set_muscle(muscle_group=np.zeros(e.n_elements, int))
        with pytest.raises(gs.errors.InvalidInputError, match="muscle_group"):
            e.set_muscle(muscle_group=np.full(e.n_elements, 1))  # n_groups = 1
        with pytest.raises(gs.errors.InvalidInputError, match="per-element"):
            e.set_actuation(torch.zeros(e.n_elements))
        before = scene.get_state()["FEMSolver"].actu.clone()
        with pytest.raises(gs.errors.InvalidInputError, match="unit"):
            e.set_muscle(muscle_direction=np.ones((e.n_elements, 3)))
        assert torch.equal(scene.get_state()["FEMSolver"].actu, before)
        e.set_actuation(torch.tensor([[0.2], [0.0]], dtype=torch.float64))
        actu = scene.get_state()["FEMSolver"].actu
        assert torch.all(actu[0] == 0.2) and torch.all(actu[1] == 0.0)
        scene.step()
        X = e.init_positions
        pos = e.get_state().pos
        assert float(pos[0, :, 0].max() - pos[0, :, 0].min()) < float(X[:, 0].max() - X[:, 0].min())
        assert torch.allclose(pos[1], X)  # the passive env stays at rest (no gravity)
        other = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-3))
        el = other.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.1, 0.1, 0.1)), material=gs.materials.FEM.Elastic())
        other.build()
        with pytest.raises(gs.errors.InvalidInputError, match="FEM.Muscle"):
            el.set_actuation(0.1)
        with pytest.raises(gs.errors.UnsupportedFeatureError, match="IPC"):
            gs.materials.FEM.Cloth()

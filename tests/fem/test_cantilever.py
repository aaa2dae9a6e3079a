"""Cantilever (VALIDATION.md, FEM): a beam clamped at x = 0 (hard vertex constraints) sagging under its own weight,
solved by the implicit solver in one backward-Euler step of dt = 1000 s (inertia negligible, one Newton step of a
linear problem: the static solution). Its tip deflection equals scikit-fem's linear-elastic solution on the identical
mesh (same vertices and tetrahedra, same E, nu, body force, clamped nodes) to 1e-4 relative, and approaches
Euler-Bernoulli's q L^4 / (8 E I) with refinement (linear tets lock in bending; docs/fem.md has the table)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import remesh

E, NU, RHO, G, L, W = 1e7, 0.3, 1000.0, 9.81, 1.0, 0.1
EULER_BERNOULLI = RHO * G * W * W * L ** 4 / (8 * E * W ** 4 / 12)


def ours(cells, pcg):
    """(tip deflection m, entity) of the genesis-torch static solve."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e3, gravity=(0, 0, -G)),
                     fem_options=gs.options.FEMOptions(use_implicit_solver=True, enable_vertex_constraints=True,
                                                       n_pcg_iterations=pcg, pcg_threshold=1e-30, damping_alpha=0.0,
                                                       damping_beta=0.0, floor_height=-10.0))
    beam = scene.add_entity(gs.morphs.Box(pos=(L / 2, 0, 1.0), size=(L, W, W)),
                            material=gs.materials.FEM.Elastic(E=E, nu=NU, rho=RHO))
    remesh(beam, cells)
    scene.build()
    X = beam.init_positions
    beam.set_vertex_constraints(torch.nonzero(X[:, 0] < 1e-9)[:, 0])
    scene.step()
    tip = X[:, 0] > L - 1e-9
    return float((X[tip, 2] - beam.get_pos()[tip, 2]).mean()), beam


def scikit_fem(beam) -> float:
    """Tip deflection (m) of scikit-fem's P1 linear elasticity on the beam's mesh (consistent load rho g V / 4 per
    vertex and element, as the lumped gravity of the FEM solver)."""
    skfem = pytest.importorskip("skfem")
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    p, t = beam.rest_verts.T.copy(), beam.rest_elems.T.copy()
    basis = skfem.Basis(skfem.MeshTet(p, t), skfem.ElementVector(skfem.ElementTetP1()))
    K = skfem.asm(linear_elasticity(*lame_parameters(E, NU)), basis)

    @skfem.LinearForm
    def weight(v, w):
        return -RHO * G * v.value[2]

    f = skfem.asm(weight, basis)
    clamped = basis.nodal_dofs[:, np.nonzero(p[0] < 1e-9)[0]].ravel()
    u = skfem.solve(*skfem.condense(K, f, D=clamped))
    return float(-u[basis.nodal_dofs[2, p[0] > L - 1e-9]].mean())


@pytest.mark.parametrize("cells,pcg", [((10, 1, 1), 400), ((20, 2, 2), 1500),
                                       pytest.param((40, 4, 4), 6000, marks=pytest.mark.slow)])
def test_tip_deflection_equals_scikit_fem(cells, pcg):
    pytest.importorskip("skfem")
    with cpu_runtime("64"):
        d, beam = ours(cells, pcg)
        assert abs(d / scikit_fem(beam) - 1) < 1e-4


def test_converges_towards_euler_bernoulli():
    pytest.importorskip("skfem")
    with cpu_runtime("64"):
        ratios = [ours(c, p)[0] / EULER_BERNOULLI for c, p in (((10, 1, 1), 400), ((20, 2, 2), 1500))]
        assert 0 < ratios[0] < ratios[1] < 1.02  # stiff (locking) coarse tets, approaching from below

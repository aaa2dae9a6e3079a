"""Implicit FEM (backward Euler, Newton + PCG): stable and dissipative at 10x the explicit stability bound, its
linear solve converges (one Newton step makes the incremental potential of the linear model stationary), and a
dropped block comes to rest on the floor (penetrating it by at most about one substep's motion, as Genesis: the
floor acts on the velocity after the solve)."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import box_scene

FEM = gs.materials.FEM


def total_energy(scene):
    S, solver = scene.get_state()["FEMSolver"], scene.fem_solver
    return float(solver.kinetic_energy(S.vel) + solver.elastic_energy(S.pos, S.active))


@pytest.mark.parametrize("kind,alpha,beta", [("linear", 0.0, 0.0), ("linear_corotated", 0.5, 5e-4)])
def test_stable_and_dissipative_at_ten_times_the_explicit_bound(kind, alpha, beta):
    with cpu_runtime("64"):
        mat = FEM.Elastic(E=1e5, nu=0.3, rho=1000.0, model=kind)
        probe, _ = box_scene(gravity=(0, 0, 0), cells=(2, 1, 1), pos=(0, 0, 2.0), material=mat)
        dt = 10 * probe.fem_solver.stable_dt()
        scene, ent = box_scene(gravity=(0, 0, 0), cells=(2, 1, 1), pos=(0, 0, 2.0), material=mat, dt=dt,
                               use_implicit_solver=True, n_pcg_iterations=40, pcg_threshold=1e-24,
                               damping_alpha=alpha, damping_beta=beta)
        g = torch.Generator().manual_seed(1)
        ent.set_velocity(0.3 * torch.randn(ent.n_vertices, 3, generator=g, dtype=torch.float64))
        es = [total_energy(scene)]
        for _ in range(30):
            scene.step()
            es.append(total_energy(scene))
        assert all(b <= a * (1 + 1e-9) for a, b in zip(es, es[1:])), "energy grew in a step"
        assert es[-1] < 0.5 * es[0]  # backward Euler damps the fast modes it cannot resolve
        p = (scene.fem_solver.model.mass[:, None] * scene.get_state()["FEMSolver"].vel).sum(1)
        p0 = (scene.fem_solver.model.mass[:, None] * 0.3 * torch.randn(ent.n_vertices, 3, generator=g.manual_seed(1),
                                                                        dtype=torch.float64)).sum(0)
        if alpha == 0:  # without mass damping, internal forces keep the momentum
            torch.testing.assert_close(p[0], p0, rtol=0, atol=1e-9)


def test_newton_step_solves_the_linear_problem():
    with cpu_runtime("64"):
        scene, ent = box_scene(gravity=(0, 0, -9.81), cells=(3, 2, 2), dt=1e-2, use_implicit_solver=True,
                               n_pcg_iterations=250, pcg_threshold=1e-28,
                               material=FEM.Elastic(E=1e5, nu=0.3, rho=1000.0, model="linear"))
        g = torch.Generator().manual_seed(2)
        ent.set_velocity(0.3 * torch.randn(ent.n_vertices, 3, generator=g, dtype=torch.float64))
        S = scene.get_state()["FEMSolver"]
        solver, m = scene.fem_solver, scene.fem_solver.model
        scene.step()
        x = scene.get_state()["FEMSolver"].pos
        dt, a, b = m.dt, m.damping_alpha, m.damping_beta / m.dt
        xhat = S.pos + dt * S.vel + dt * dt * m.gravity
        d = x - S.pos
        grad = m.mass[:, None] / dt ** 2 * (x - xhat) + m.mass[:, None] * a / dt * d \
            - solver.elastic_forces(x, S.active) + b * solver.stiffness_product(S.pos, d, S.active)
        scale = float((m.mass[:, None] * 9.81).abs().max())
        assert float(grad.abs().max()) <= 1e-8 * scale  # the incremental potential is stationary at x_{n+1}


def test_dropped_block_rests_on_the_floor():
    with cpu_runtime("64"):
        scene, ent = box_scene(dt=1e-2, pos=(0.0, 0.0, 0.1), size=(0.1, 0.1, 0.1), cells=(1, 1, 1),
                               use_implicit_solver=True, n_pcg_iterations=20)
        for _ in range(70):
            scene.step()
        z = ent.get_pos()[:, 2]
        assert -5e-3 < float(z.min()) < 1e-3 and float(ent.get_vel().abs().max()) < 1e-2


def test_line_search_keeps_full_newton_steps_on_a_quadratic_problem():
    """With `n_linesearch_iterations` > 0 the Armijo test accepts the full step of a converged Newton solve of the
    (quadratic) linear model: the same bits as without line search; a 10x too long step is cut back."""
    with cpu_runtime("64"):
        runs = []
        for ls in (0, 3):
            scene, ent = box_scene(gravity=(0, 0, -9.81), cells=(2, 1, 1), dt=1e-2, use_implicit_solver=True,
                                   n_pcg_iterations=60, pcg_threshold=1e-28, n_linesearch_iterations=ls,
                                   material=FEM.Elastic(E=1e5, nu=0.3, rho=1000.0, model="linear"))
            ent.set_velocity(torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64))
            for _ in range(3):
                scene.step()
            runs.append(ent.get_pos())
        assert torch.equal(runs[0], runs[1])
        from genesis_torch.solvers.fem.implicit import _line_search

        energy = lambda x: (x * x).sum((-1, -2))  # noqa: E731  minimum at 0; from x = 1 the step -10 overshoots
        x = torch.ones(1, 2, 3, dtype=torch.float64)
        step = _line_search(energy, x, -10 * x, 2 * x, 4, 1e-4, 0.5)
        assert float(energy(x + step)) < float(energy(x))

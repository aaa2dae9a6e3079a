"""Explicit FEM dynamics in float64: momentum of a free body is conserved to round-off (and angular momentum for the
rotation-invariant energies), the longitudinal wave speed of a bar is sqrt(E / rho) within 2%, total energy does not
grow inside the stability bound and blows up beyond it (with the build-time warning), the floor and rigid geoms
stop the body."""

from __future__ import annotations

import logging
import math

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import box_scene

FEM = gs.materials.FEM


def momenta(solver, S):
    m = solver.model.mass[:, None]
    p = (m * S.vel).sum(1)
    L = (m * torch.linalg.cross(S.pos, S.vel)).sum(1)
    return p, L


@pytest.mark.parametrize("kind", ["linear", "linear_corotated", "stable_neohookean"])
def test_free_body_conserves_momentum(kind):
    with cpu_runtime("64"):
        scene, ent = box_scene(gravity=(0, 0, 0), dt=5e-4, pos=(0, 0, 2.0), cells=(3, 2, 2),
                               material=FEM.Elastic(E=2e4, nu=0.3, rho=500.0, model=kind))
        g = torch.Generator().manual_seed(0)
        ent.set_velocity(0.5 * torch.randn(ent.n_vertices, 3, generator=g, dtype=torch.float64))
        p0, L0 = momenta(scene.fem_solver, scene.get_state()["FEMSolver"])
        for _ in range(200):
            scene.step()
        S = scene.get_state()["FEMSolver"]
        p1, L1 = momenta(scene.fem_solver, S)
        assert float((S.pos - ent.init_positions).abs().max()) > 1e-2  # it moved and deformed
        scale = float(scene.fem_solver.model.mass.sum()) * 0.5
        assert float((p1 - p0).abs().max()) <= 1e-12 * scale
        if kind != "linear":  # rotation-invariant energies exert no net torque; symplectic Euler keeps L exactly
            assert float((L1 - L0).abs().max()) <= 1e-12 * scale * 2.0
        else:  # the linear energy is not rotation invariant: it does exert a net torque
            assert float((L1 - L0).abs().max()) > 1e-8 * scale


def test_bar_wave_speed():
    """A free-free bar (nu = 0, 40 cells along it) released in its first longitudinal mode u = A cos(pi x / L)
    oscillates with period 2 L / c, c = sqrt(E / rho)."""
    with cpu_runtime("64"):
        E, rho, L = 1e5, 1000.0, 1.0
        c = math.sqrt(E / rho)
        dt = 2.5e-4
        scene, ent = box_scene(gravity=(0, 0, 0), dt=dt, size=(L, 0.05, 0.05), pos=(0, 0, 1.0), cells=(40, 1, 1),
                               material=FEM.Elastic(E=E, nu=0.0, rho=rho, model="linear"))
        X = ent.init_positions
        u = 1e-3 * torch.cos(math.pi * (X[:, 0] + L / 2) / L)
        ent.set_position(X + torch.stack((u, 0 * u, 0 * u), -1))
        end = X[:, 0] > L / 2 - 1e-9
        ts, ys = [], []
        for i in range(int(0.45 / dt)):
            scene.step()
            ys.append(float((ent.get_pos()[end, 0] - X[end, 0]).mean()))
            ts.append((i + 1) * dt)
        crossings = [ts[i] - ys[i] * (ts[i + 1] - ts[i]) / (ys[i + 1] - ys[i])
                     for i in range(len(ys) - 1) if ys[i] > 0 >= ys[i + 1] or ys[i] < 0 <= ys[i + 1]]
        period = 2 * (crossings[2] - crossings[1])
        assert abs(period / (2 * L / c) - 1) < 0.02, period


@pytest.mark.parametrize("kind", ["linear_corotated", "stable_neohookean"])
def test_energy_does_not_grow_inside_the_bound(kind):
    with cpu_runtime("64"):
        mat = FEM.Elastic(E=1e5, nu=0.3, rho=1000.0, model=kind)  # 12 tets, 600 steps of 0.25x the bound
        scene, ent = box_scene(gravity=(0, 0, 0), cells=(2, 1, 1), pos=(0, 0, 2.0), material=mat)
        dt = 0.25 * scene.fem_solver.stable_dt()
        scene, ent = box_scene(gravity=(0, 0, 0), cells=(2, 1, 1), pos=(0, 0, 2.0), material=mat, dt=dt)
        g = torch.Generator().manual_seed(1)
        ent.set_velocity(0.3 * torch.randn(ent.n_vertices, 3, generator=g, dtype=torch.float64))
        solver = scene.fem_solver

        def energy(S, v_next):
            # symplectic Euler's velocities live at half steps: pair x_n with (v_{n-1/2} + v_{n+1/2}) / 2
            return float(solver.kinetic_energy(0.5 * (S.vel + v_next)) + solver.elastic_energy(S.pos, S.active))

        prev = scene.get_state()["FEMSolver"]
        es = []
        for _ in range(600):
            scene.step()
            S = scene.get_state()["FEMSolver"]
            es.append(energy(prev, S.vel))
            prev = S
        e0 = es[0]
        assert max(es) <= 1.02 * e0  # bounded oscillation of O((dt omega)^2), no growth
        first, last = sum(es[:150]) / 150, sum(es[-150:]) / 150
        assert abs(last - first) <= 1e-2 * e0, (first, last)


def test_beyond_the_bound_warns_and_diverges(caplog):
    with cpu_runtime("64"):
        mat = FEM.Elastic(E=1e5, nu=0.3, rho=1000.0, model="linear")
        scene, _ = box_scene(gravity=(0, 0, 0), cells=(3, 2, 2), pos=(0, 0, 2.0), material=mat)
        bound = scene.fem_solver.stable_dt()
        with caplog.at_level(logging.WARNING, logger="genesis_torch"):
            scene, ent = box_scene(gravity=(0, 0, 0), cells=(3, 2, 2), pos=(0, 0, 2.0), material=mat, dt=2 * bound,
                                   )
        assert "exceeds the explicit solver's stable bound" in caplog.text and "FEMOptions(dt=" in caplog.text
        g = torch.Generator().manual_seed(1)
        ent.set_velocity(0.01 * torch.randn(ent.n_vertices, 3, generator=g, dtype=torch.float64))
        with pytest.raises(gs.errors.SimulationDivergedError):
            for _ in range(400):
                scene.step()


def test_floor_and_rigid_sphere_stop_the_block():
    with cpu_runtime("64"):
        lin = FEM.Elastic(E=2e4, nu=0.3, rho=500.0, model="linear")
        scene, ent = box_scene(dt=1e-3, pos=(0.0, 0.0, 0.15), size=(0.1, 0.1, 0.1), cells=(2, 2, 2), damping=20.0,
                               material=lin)
        for _ in range(600):
            scene.step()
        z = ent.get_pos()[:, 2]
        assert -1e-3 < float(z.min()) < 1e-3 and float(ent.get_vel().abs().max()) < 0.05  # resting on z = 0
        scene, ent = box_scene(dt=1e-3, pos=(0.0, 0.0, 0.3), size=(0.1, 0.1, 0.05), cells=(2, 2, 1), rigid=True,
                               material=lin)
        for _ in range(400):
            scene.step()
        z = ent.get_pos()[:, 2]
        assert float(z.min()) > 0.15 - 0.02  # held on top of the sphere (top at z = 0.18), far above the floor

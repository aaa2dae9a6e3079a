"""A water column at rest (VALIDATION.md, SPH): pressure against the hydrostatic law p = rho0 g (H - z), the density
error, and that no particle leaves the domain, with WCSPH and DFSPH.

The column is 12 x 12 x 22 particles (particle_size d = 0.01 m, 22 over the height) on the lattice of spacing
s = 0.8^(1/3) d filling a tank 12 s wide: each particle then has the volume 0.8 d^3 that Genesis' particle volume
gives it, so the kernel sum is near the rest density and the column starts near its equilibrium (sampled at spacing
d it would first fall by 20 % of its height) and relaxes: its velocities are damped (x 0.98 per WCSPH step, x 0.9 per
DFSPH step) for the first part of the run (the solver's own viscosity damps the acoustic modes over ~ H^2 / mu = 6 s),
then it runs free and must stay at rest. Cohesion (gamma) is off: Genesis' cohesion term pulls the free surface inward
and adds a spurious surface pressure (docs/sph.md); the hydrostatic law is for a liquid without it. H is the
free-surface height (top layer + s / 2); the interior is the particles farther than 2 h = 0.04 m from the side walls and
2 h from the floor and the surface (where kernels are truncated), in bins of two layers; each particle's pressure is its
mean over the free-running part (the pressure of a weakly compressible liquid carries acoustic noise: one layer's mean
swings by 10 % from step to step)."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime

D, NX, NZ = 0.01, 12, 22
SP = 0.8 ** (1 / 3) * D  #: lattice spacing
DZ = SP  #: layer spacing
W = NX * SP  #: tank width
G = 9.81


def column(solver: str, dt: float):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt, gravity=(0.0, 0.0, -G)),
                     sph_options=gs.options.SPHOptions(particle_size=D, lower_bound=(0.0, 0.0, 0.0),
                                                       upper_bound=(W, W, 0.4), pressure_solver=solver))
    # 11 x 8 x 36 = 12 x 12 x 22 particles sampled at spacing d (a box that fits the tank), then put on the lattice
    water = scene.add_entity(gs.morphs.Box(lower=(0.0, 0.0, 0.0), upper=(11 * D, 8 * D, 36 * D)),
                             material=gs.materials.SPH.Liquid(gamma=0.0))
    scene.build()
    idx = torch.stack(torch.meshgrid(torch.arange(NX), torch.arange(NX), torch.arange(NZ), indexing="ij"), -1)
    water.set_position((idx.reshape(-1, 3).to(scene.dtype) + 0.5) * SP)
    return scene, water


def profile(water, p):
    """(per interior bin of two layers: mean z, mean of the particles' pressures `p (n,)`, hydrostatic p), H."""
    x = water.get_particles_pos()
    z = x[:, 2]
    H = float(z.max()) + DZ / 2
    h = 2 * D
    inner = ((x[:, 0] - W / 2).abs() < W / 2 - 2 * h) & ((x[:, 1] - W / 2).abs() < W / 2 - 2 * h)
    inner &= (z > 2 * h) & (z < H - 2 * h)
    layer = torch.div(torch.round(z / DZ - 0.5).long(), 2, rounding_mode="floor")
    out = []
    for L in layer[inner].unique().tolist():
        m = inner & (layer == L)
        zm = float(z[m].mean())
        out.append((zm, float(p[m].mean()), 1000.0 * G * (H - zm)))
    return out, H


@pytest.mark.slow
@pytest.mark.parametrize("solver,dt,damped,free,damp", [
    pytest.param("WCSPH", 4e-4, 600, 150, 0.98, marks=pytest.mark.xfail(
        strict=False, reason="measured (float64, 3b4bfe9): bins within -6.2 %..+1.8 % of rho0 g (H - z), a pressure "
        "gradient 1.05 rho0 g; the two bins nearest the surface miss 3 % (issue 15, open)")),
    pytest.param("DFSPH", 2e-3, 120, 30, 0.9, marks=pytest.mark.xfail(
        strict=False, reason="measured (float64, 3b4bfe9): 16-47 % below rho0 g (H - z), gradient 0.95 rho0 g and "
        "~250 Pa short (issue 15, open: DFSPH's boundary share k_i grad V_b is half the pressure-mirrored one the "
        "hydrostatic wall term assumes; surface particles get half support)"))])
def test_hydrostatic_column(solver, dt, damped, free, damp):
    """WCSPH: 0.3 s at dt 4e-4 s (below the acoustic CFL bound 0.4 h / c = 4.3e-4 s, c = sqrt(7 B / rho0) = 18.7 m/s),
    the last 0.06 s free; DFSPH: 0.3 s at dt 2e-3 s, the last 0.06 s free. Pressure within 3 % of rho0 g (H - z) in
    every interior layer (at least 4 bins of 2 layers); density error: WCSPH's interior densities within 1 % of rho0
    (Tait's compression at the bottom, p / (7 B) = 0.6 %); DFSPH's solver error (mean predicted compression) at most
    max_density_error_percent."""
    with cpu_runtime("64"):
        scene, water = column(solver, dt)
        p = 0.0
        for k in range(damped + free):
            scene.step()
            if k < damped:
                water.set_velocity(water.get_particles_vel() * damp)
            else:
                p = p + water.get_particles_pressure() / free
        layers, H = profile(water, p)
        assert len(layers) >= 4 and H > 20 * DZ
        for z, p, want in layers:
            assert abs(p - want) <= 0.03 * want, (solver, z, p, want)
        rho = water.get_particles_density()
        x = water.get_particles_pos()
        if solver == "WCSPH":
            interior = (x[:, 2] < H - 2 * D)
            assert ((rho[interior] / 1000.0 - 1).abs() < 0.01).all()
        else:
            stats = scene.sph_solver.last_stats
            assert stats["density_error"].item() <= 0.05 * 0.01 * 1000.0
            assert stats["density_iterations"] < 100
        lo, hi = scene.sph_solver.model.lower, scene.sph_solver.model.upper
        assert ((x >= lo) & (x <= hi)).all(), "a particle left the domain"
        assert water.get_particles_vel().norm(dim=-1).max() < 0.05, "the column is not at rest"

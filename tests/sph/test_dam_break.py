"""Dam breaks: the active count and mass are conserved exactly, a mirror-symmetric collapse stays symmetric to
round-off in float64 (WCSPH and DFSPH), and the surge front follows Martin & Moyce (1952) (slow).

Columns are 2D (a few particles deep between the y walls) and start on a lattice of spacing s = 0.8^(1/2) d in x
and z and d in y (d = particle_size): each particle then has the volume 0.8 d^3 that Genesis' particle volume gives
it and the kernel sum is near the rest density (a column sampled at spacing d would hold 20 % less water than its
volume and first fall). DFSPH's lattice has its first layers at the rest gap from the walls (`rest_gaps`: where the
first layer's kernel sum plus the wall's volume map equals the interior's, 0.558 s from the x and z walls, 0.580 d
from the y walls; at s / 2 and d / 2 the first layers start 3-4 % compressed, which DFSPH, enforcing rho <= rho0
within a substep, turns into a launch: docs/sph.md); WCSPH's at s / 2 and d / 2 (Tait's pressure is clamped at 0
below rho0, so its columns start slightly compressed, as in tests/sph/test_hydrostatic.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from ..test_state_contract import bits

S_OVER_D = 0.8 ** 0.5


def rest_gaps() -> tuple:
    """(g_x, g_y, g_z) / d: the distances from a wall normal to x, y, z at which the first layer of the lattice of
    spacings (s, d, s) has the kernel sum plus the wall's volume map (kernel.halfspace_volume) equal to the
    interior's (1.0034): (0.558 s, 0.580 d, 0.558 s) over d. Bisection over the half lattice."""
    from genesis_torch.solvers.sph.kernel import halfspace_volume, kernel_w

    sp = torch.tensor([S_OVER_D, 1.0, S_OVER_D], dtype=torch.float64)
    r = torch.arange(-5, 6, dtype=torch.float64)
    X = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3) * sp
    full = float((0.8 * kernel_w(X.norm(dim=1), 2.0)).sum())
    gaps = []
    for a in range(3):
        half = float((0.8 * kernel_w(X[X[:, a] >= 0].norm(dim=1), 2.0)).sum())
        lo, hi = 0.2 * float(sp[a]), 1.5 * float(sp[a])
        for _ in range(60):
            g = 0.5 * (lo + hi)
            wall = float(halfspace_volume(torch.tensor(g, dtype=torch.float64), 2.0)[0])
            lo, hi = (g, hi) if half + wall > full else (lo, g)
        gaps.append(0.5 * (lo + hi))
    return tuple(gaps)


#: the first layers' distances from the walls x, y, z in units of d (module docstring)
GAPS = {"DFSPH": rest_gaps(), "WCSPH": (S_OVER_D / 2, 0.5, S_OVER_D / 2)}


def dam(solver, dt, *, d, n, length, centre=None, depth=4, gamma=0.01, sample=None, mu=0.005):
    """A column of n = (nx, nz) particles (x, z) at spacing s = 0.8^(1/2) d and `depth` along y at spacing d,
    against the wall x = 0 (or centred at x = `centre`), in a tank `length` long, (depth - 1) d + 2 g_y deep, the
    first layers at the solver's gaps g (`GAPS`) from the walls x = 0, z = 0 and both y walls; returns (scene,
    water, s). `sample` (k1, k2), k1 k2 = nx nz: the particles are sampled as k1 x k2 columns (a block that fits a
    tank narrower than nx d) before being placed on the lattice."""
    s = S_OVER_D * d
    nx, nz = n
    k1, k2 = sample or n
    assert k1 * k2 == nx * nz
    gx, gy, gz = GAPS[solver]
    width = (depth - 1) * d + 2 * gy * d
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt),
                     sph_options=gs.options.SPHOptions(particle_size=d, pressure_solver=solver, lower_bound=(0, 0, 0),
                                                       upper_bound=(length, width, max(2 * nz * s, k2 * d))))
    water = scene.add_entity(gs.morphs.Box(lower=(0, 0, 0), upper=(k1 * d, depth * d, k2 * d)),
                             material=gs.materials.SPH.Liquid(gamma=gamma, mu=mu))
    scene.build()
    idx = torch.stack(torch.meshgrid(torch.arange(nx), torch.arange(depth), torch.arange(nz), indexing="ij"), -1)
    x = idx.reshape(-1, 3).to(scene.dtype) * torch.tensor([s, d, s], dtype=scene.dtype)
    x = x + torch.tensor([gx, gy, gz], dtype=scene.dtype) * d
    if centre is not None:
        x[:, 0] += centre - ((nx - 1) * s / 2 + gx * d)
    water.set_position(x)
    return scene, water, s


def gate_width(solver: str, nx: int, s: float, d: float) -> float:
    """The gate's distance a from the wall x = 0 (m): nx columns at spacing s with the solver's gap at both walls
    (WCSPH: nx s)."""
    return (nx - 1) * s + 2 * GAPS[solver][0] * d


@pytest.mark.parametrize("solver", ["WCSPH", "DFSPH"])
def test_mass_conserved_and_mirror_symmetry_to_round_off(solver):
    """A 10 x 16 (x 4) column in the middle of a 0.4 m tank collapses to both sides for 60 substeps: the active
    count and the mass are bitwise constant, every particle stays in the domain, and particle i and its mirror
    image i' (x -> L - x) keep x_i + x_i' = L, y_i = y_i', z_i = z_i' to 1e-12 m (float64; the pair sums of
    mirrored particles run in different orders, so round-off, ~1e-16 m per substep, is all that may differ)."""
    with cpu_runtime("64"):
        L = 0.4
        scene, water, s = dam(solver, 1e-3 if solver == "DFSPH" else 4e-4, d=0.01, n=(10, 16), length=L,
                              centre=L / 2)
        x0 = water.get_particles_pos()
        mirror = torch.as_tensor(np.lexsort((x0[:, 2].numpy().round(9), x0[:, 1].numpy().round(9),
                                             (L - x0[:, 0]).numpy().round(9))))
        order = torch.as_tensor(np.lexsort((x0[:, 2].numpy().round(9), x0[:, 1].numpy().round(9),
                                            x0[:, 0].numpy().round(9))))
        partner = torch.empty_like(order)
        partner[order] = mirror  # particle order[k] mirrors particle mirror[k]
        torch.testing.assert_close(x0[:, 0] + x0[partner, 0], torch.full_like(x0[:, 0], L), rtol=0, atol=1e-12)
        mass = water.get_mass()
        for _ in range(60 if solver == "WCSPH" else 30):
            scene.step()
        x = water.get_particles_pos()
        assert water.get_particles_active().all() and bits(water.get_mass()) == bits(mass)
        lo, hi = scene.sph_solver.model.lower, scene.sph_solver.model.upper
        assert ((x >= lo) & (x <= hi)).all()
        assert (x[:, 0] - x0[:, 0]).abs().max() > 0.005, "the column should have started to spread"
        asym = torch.stack(((x[:, 0] + x[partner, 0] - L).abs(), (x[:, 1] - x[partner, 1]).abs(),
                            (x[:, 2] - x[partner, 2]).abs())).max()
        assert asym < 1e-12, asym.item()  # measured 4e-16 (WCSPH), 9e-16 (DFSPH)


def behind_gate(solver, dt, d, nx, s, mu, steps=400, damp=0.98):
    """The column of liquid `mu` at rest behind the gate: positions `(n, 3)` after settling (velocities damped x
    `damp` per substep) in a tank whose wall x = `gate_width` is the gate, as in the experiment before the gate is
    lifted. The same liquid as released: with Genesis' default mu 5e-3 the settle breaks Genesis' viscous step bound
    0.01 h^2 / mu = 2.1e-4 s at DFSPH's dt 5e-4 s (and the released DFSPH front reads +17 % instead of +11 % at
    T = 1.43: the front depends on the settled state, docs/sph.md)."""
    k1 = max(k for k in range(1, nx + 1) if (2 * nx * nx) % k == 0 and k * d <= nx * s)
    scene, water, _ = dam(solver, dt, d=d, n=(nx, 2 * nx), length=gate_width(solver, nx, s, d), gamma=0.0,
                          sample=(k1, 2 * nx * nx // k1), mu=mu)
    for _ in range(steps):
        scene.step()
        water.set_velocity(water.get_particles_vel() * damp)
    return water.get_particles_pos()


# Martin & Moyce (1952), Phil. Trans. R. Soc. A 244, 312-324, Table 2: square column of side a = 2.25 in (n^2 = 2:
# height 2a), surge front x / a against T = t sqrt(2 g / a).
MM_T = np.array([0.41, 0.84, 1.19, 1.43, 1.63, 1.83, 1.98, 2.20, 2.32, 2.51, 2.65, 2.83, 2.98])
MM_Z = np.array([1.11, 1.22, 1.44, 1.67, 1.89, 2.11, 2.33, 2.56, 2.78, 3.00, 3.22, 3.44, 3.67])


@pytest.mark.slow
@pytest.mark.parametrize("solver,dt", [("WCSPH", 2e-4), ("DFSPH", 5e-4)])
def test_surge_front_follows_martin_and_moyce(solver, dt):
    """A 2D column (4 particles deep, free-slip walls) a = 0.1 m wide (22 particles) and 2a high, d = 0.005 m,
    gamma = 0 (cohesion would slow the thin front), mu = 5e-4 (Genesis' default 5e-3 gives a Reynolds number 2 sqrt(g
    2a) a / mu of only 40 and a front 9 % slow at T = 3 at 12 particles per a; 5e-4 gives ~400), first settled at rest
    behind a gate (the tank wall x = a), then released into a tank 5a long (the gate lifted at t = 0). The front
    (largest x of the particles within 2 d of the floor, in units of a) is compared with the experiment for T >= 1.4, up
    to T = 3.0 (x = 3.7 a).

    Tolerance 12 % of Z: the experiment's own front lags the inviscid theory early on because of the gate release
    (Martin & Moyce's Fig. 3 shows their two column sizes differing by ~5-10 % in Z at equal T), and SPH fronts at
    22 particles per a are thin (a front of one particle layer is resolved to d / a = 5 %); published SPH and MPS
    comparisons (e.g. Koshizuka & Oka 1996, Fig. 6) sit within about 10 % of these points. Measured (DFSPH with
    the lagged wall mirroring, rest-gap start, the gate settled with the released liquid): WCSPH +9.2 % (T = 1.43)
    .. -0.2 %, DFSPH +11.4 % (T = 1.43) .. -1.2 % (T = 2.98)."""
    with cpu_runtime("64"):
        nx = 22
        d = 0.1 / (nx * S_OVER_D)
        scene, water, s = dam(solver, dt, d=d, n=(nx, 2 * nx), length=0.5, gamma=0.0, mu=5e-4)
        water.set_position(behind_gate(solver, dt, d, nx, s, mu=5e-4))
        a = gate_width(solver, nx, s, d)  # the column's width: the gate's position
        g = 9.81
        t_end = 3.0 / np.sqrt(2 * g / a)
        got_T, got_Z = [], []
        steps = int(round(t_end / dt))
        for k in range(1, steps + 1):
            scene.step()
            if k % 20 == 0:
                x = water.get_particles_pos()
                front = x[x[:, 2] < 2 * d, 0].max().item() + s / 2
                got_T.append(k * dt * np.sqrt(2 * g / a))
                got_Z.append(front / a)
        got_T, got_Z = np.array(got_T), np.array(got_Z)
        sel = MM_T >= 1.4
        model = np.interp(MM_T[sel], got_T, got_Z)
        rel = np.abs(model - MM_Z[sel]) / MM_Z[sel]
        assert rel.max() < 0.12, list(zip(MM_T[sel], MM_Z[sel], model.round(3)))

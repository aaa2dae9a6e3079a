"""XPBD physics (VALIDATION.md, "PBD / XPBD"): one iteration on a linear spring is implicit Euler to round-off, the
hanging chain's static stretch, a pinned cloth's energy, a cloth draped on a ball, fixed particles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.pbd.constraints import bending
from genesis_torch.solvers.pbd.model import CLOTH, Parts, build_pbd_model
from genesis_torch.solvers.pbd.solver import PBDSolver

from ..conftest import cpu_runtime
from .conftest import cloth_scene


def line_solver(n_free, mass, compliance, dt, iters, gravity=(0.0, 0.0, -9.81), relax=1.0, length=0.1, B=1):
    """A vertical chain: particle 0 fixed at z = 50 m, n_free particles below at rest length `length`."""
    pos = np.zeros((n_free + 1, 3))
    pos[:, 2] = 50.0 - np.arange(n_free + 1) * length
    e = np.stack([np.arange(n_free), np.arange(1, n_free + 1)], 1)
    parts = Parts(pos=pos, mass=np.full(n_free + 1, mass), kind=CLOTH,
                  constraints={"stretch": (e, np.full(n_free, length), np.full(n_free, compliance),
                                           np.full(n_free, relax))})
    model = build_pbd_model([parts], gs.options.PBDOptions(max_stretch_solver_iterations=iters), dt, gravity, None,
                            "cpu", torch.float64)
    solver = PBDSolver(model, "cpu", torch.float64)
    st = solver.initial_state(B)
    return solver, st.replace(free=st.free.index_fill(1, torch.tensor([0]), False))


@pytest.mark.parametrize("dt,compliance,mass", [(1e-2, 1e-3, 0.5), (1e-3, 1e-6, 0.1), (5e-2, 1e-2, 2.0)])
def test_one_xpbd_iteration_on_a_spring_is_implicit_euler(dt, compliance, mass):
    """x1 - L = (x0 - L + dt v0) / (1 + w^2 dt^2), w^2 = k / m, k = 1 / compliance (no gravity, relaxation 1)."""
    solver, st = line_solver(1, mass, compliance, dt, iters=1, gravity=(0.0, 0.0, 0.0))
    z0 = torch.tensor([50.0, 49.9 - 0.013], dtype=torch.float64)  # stretched 13 mm
    v0 = torch.tensor([0.0, 0.7], dtype=torch.float64)
    pos = st.pos.clone()
    pos[0, :, 2] = z0
    vel = torch.zeros_like(pos)
    vel[0, 1, 2] = v0[1]
    out = solver.step(st.replace(pos=pos, vel=vel))
    w2 = 1.0 / compliance / mass
    u0 = (z0[1] - z0[0]) + 0.1  # spring extension along -z: C = |x1 - x0| - L = -(z1 - z0) - L
    want = z0[0] - 0.1 + (u0 + dt * v0[1]) / (1 + w2 * dt ** 2)
    assert abs(out.pos[0, 1, 2].item() - want.item()) <= 1e-14 * 50
    want_v = (want - z0[1]) / dt
    assert abs(out.vel[0, 1, 2].item() - want_v.item()) <= 1e-12 * abs(want_v.item()) + 1e-12


def test_hanging_chain_static_stretch():
    """10 particles of 0.1 kg below a fixed one, compliance 1e-4 m/N: total stretch m g alpha N (N+1) / 2 =
    5.3955e-3 m (the mean over the last 100 steps; the chain still rings by +-0.1 mm)."""
    solver, st = line_solver(10, 0.1, 1e-4, 2e-3, iters=8)
    acc = []
    for i in range(1000):
        st = solver.step(st)
        if i >= 900:
            acc.append((st.pos[0, 0, 2] - st.pos[0, -1, 2]).item() - 1.0)
    want = 0.1 * 9.81 * 1e-4 * 55
    assert abs(np.mean(acc) / want - 1) < 0.01, np.mean(acc)
    assert st.pos[0, 0, 2].item() == 50.0  # the fixed particle never moved


def test_bending_gradient_matches_autograd():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    c, grad = bending(x, torch.zeros(5, dtype=torch.float64))
    auto, = torch.autograd.grad(c.sum(), x)
    assert torch.allclose(grad, auto, rtol=1e-10, atol=1e-12)


def energy(scene, ent):
    """Kinetic + gravitational + stretch + bending energy (J) of env 0, XPBD's potential 1/2 C^2 / alpha."""
    from genesis_torch.solvers.pbd.constraints import KINDS

    m = scene.pbd_solver.model
    st = scene.get_state()["PBDSolver"]
    x, v = st.pos[0:1], st.vel[0:1]
    e = 0.5 * (m.mass * (v ** 2).sum(-1)).sum() - (m.mass * (x[0] @ m.gravity)).sum()
    for kind, colours in m.colours.items():
        for c in colours:
            cval, _ = KINDS[kind](x[:, c.flat].reshape(1, *c.idx.shape, 3), c.rest)
            e = e + 0.5 * (cval[0] ** 2 / (c.alpha_t * m.dt ** 2)).sum()
    return e.item()


def test_pinned_cloth_energy_never_increases_and_pins_never_move():
    """A cloth hanging from two pinned corners, compliances such that 8 sweeps converge (alpha / dt^2 >> w): sampled
    every 10 steps (0.04 s) after a 0.2 s transient, its energy (kinetic, gravity, 1/2 C^2 / alpha) never grows."""
    with cpu_runtime("64"):
        scene, ent, pins = cloth_scene(n=6, iters=8, stretch_compliance=1e-3, bending_compliance=1e-1,
                                       stretch_relaxation=1.0, bending_relaxation=1.0)
        x_pins = ent.get_particles_pos()[pins].clone()
        energies = []
        for i in range(300):
            scene.step()
            assert torch.equal(ent.get_particles_pos()[pins], x_pins)
            if i >= 50 and i % 10 == 0:
                energies.append(energy(scene, ent))
        assert all(b <= a for a, b in zip(energies, energies[1:])), np.diff(energies)
        assert energies[-1] < energies[0] - 1.0


def test_cloth_drapes_on_a_ball_without_entering_it():
    with cpu_runtime("64"):
        scene, ent, _ = cloth_scene(n=8, pinned=False, sphere=True, dt=4e-3)
        for _ in range(250):
            scene.step()
        x = ent.get_particles_pos()
        dist = (x - torch.tensor([0.0, 0.0, 0.5], dtype=x.dtype)).norm(dim=-1)
        assert dist.min().item() >= 0.3, dist.min().item()
        assert x[:, 2].max().item() < 0.85  # it fell onto the ball (top at 0.8 m) ...
        assert (x[:, 2] < 0.5).any()  # ... and hangs over its sides


def tet_volume(scene) -> float:
    """Total signed volume (m^3) of the volume constraints' tetrahedra in env 0."""
    from genesis_torch.solvers.pbd.constraints import volume

    x = scene.get_state()["PBDSolver"].pos[0:1]
    return sum((volume(x[:, c.flat].reshape(1, *c.idx.shape, 3), c.rest)[0] + c.rest).sum().item()
               for c in scene.pbd_solver.model.colours["volume"])


def test_elastic_body_dropped_on_the_floor_rests_near_its_rest_volume():
    """A tetgen-meshed cube (303 tets), tilted, dropped from 0.16 m onto the floor: it comes to rest (speeds below
    5 cm/s after 1.6 s) above the floor with its volume within 5 % of the rest volume."""
    pytest.importorskip("tetgen")
    from .conftest import box_obj

    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3),
                         pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0), upper_bound=(1, 1, 2),
                                                           max_volume_solver_iterations=2))
        body = scene.add_entity(gs.morphs.Mesh(file=box_obj(), pos=(0, 0, 0.3), euler=(20, 30, 0)),
                                material=gs.materials.PBD.Elastic(stretch_compliance=1e-7, volume_compliance=1e-9,
                                                                  stretch_relaxation=1.0, volume_relaxation=1.0))
        scene.build()
        assert body.n_elems > 200 and body.n_faces == 192
        rest = tet_volume(scene)
        assert rest == pytest.approx(0.2 ** 3, rel=1e-9)
        for _ in range(400):
            scene.step()
        assert body.get_particles_vel().norm(dim=-1).max().item() < 0.05
        assert body.get_particles_pos()[:, 2].min().item() >= 0.0
        assert abs(tet_volume(scene) / rest - 1) < 0.05


def liquid_density(scene) -> torch.Tensor:
    """rho / rho0 `(B, nl)` of the liquid particles, the solver's own estimate (liquid.py)."""
    from genesis_torch.solvers.pbd.liquid import poly6

    L = scene.pbd_solver.model.liquid
    x = scene.get_state()["PBDSolver"].pos[:, L.idx]
    B, nl = x.shape[:2]
    b, i, j = L.neighbours(x)
    d = x[b, i] - x[b, j]
    assert (d.norm(dim=-1) < L.h).all()
    Vi = L.kappa * L.mass / L.rho0
    rho = (Vi * poly6(torch.zeros_like(Vi), L.h)).repeat(B)
    return rho.index_add(0, b * nl + i, Vi[j] * poly6((d * d).sum(-1), L.h)).reshape(B, nl)


def test_liquid_column_settles_at_its_rest_density_inside_the_domain():
    """A 0.1 x 0.1 x 0.2 m column of 250 position-based-fluid particles (4 density iterations, 2 substeps of 2 ms)
    collapses under gravity in a 0.1 x 0.1 x 0.5 m box: after 0.8 s no particle is denser than 1.05 rho0 (the
    one-sided constraint only resists compression), every particle is inside the domain, and the column keeps most of
    its height (its particles are held apart: the liquid does not pancake)."""
    with cpu_runtime("32"):
        ps = 0.02
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, substeps=2),
                         pbd_options=gs.options.PBDOptions(particle_size=ps, lower_bound=(0, 0, 0),
                                                           upper_bound=(0.1, 0.1, 0.5),
                                                           max_density_solver_iterations=4))
        water = scene.add_entity(gs.morphs.Box(pos=(0.05, 0.05, 0.1), size=(0.1, 0.1, 0.2)),
                                 material=gs.materials.PBD.Liquid(sampler="regular", density_relaxation=1.0))
        scene.build()
        assert water.n_particles == 250
        rho = liquid_density(scene)
        assert rho.max().item() == pytest.approx(1.0, abs=1e-5)  # the rest lattice's interior particles
        for _ in range(200):
            scene.step()
        x = water.get_particles_pos()
        rho = liquid_density(scene)
        assert rho.max().item() < 1.05, rho.max().item()
        assert ((x >= 0) & (x <= torch.tensor([0.1, 0.1, 0.5]))).all()
        assert x[:, 2].max().item() > 0.12


def test_two_cloths_dropped_on_each_other_do_not_interpenetrate():
    """Particle collisions (Genesis' rule: closer than particle_size, farther apart at rest): a 0.2 m cloth dropped
    on another lying on the floor stays on top of it; without collisions both would end flat at z = 0."""
    with cpu_runtime("64"):
        ps = 0.02
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3),
                         pbd_options=gs.options.PBDOptions(particle_size=ps, lower_bound=(-1, -1, 0),
                                                           upper_bound=(1, 1, 2)))
        from .conftest import grid_obj

        low = scene.add_entity(gs.morphs.Mesh(file=grid_obj(10), pos=(0, 0, 0.1), scale=0.2), material=PBD_CLOTH())
        top = scene.add_entity(gs.morphs.Mesh(file=grid_obj(10), pos=(0.03, 0.01, 0.2), scale=0.2),
                               material=PBD_CLOTH())
        scene.build()
        for _ in range(150):
            scene.step()
        xl, xt = low.get_particles_pos(), top.get_particles_pos()
        assert xl[:, 2].abs().max().item() < 1e-9  # the lower cloth lies on the floor
        assert torch.cdist(xt, xl).min().item() > 0.95 * ps
        over = (xt[:, 0].abs() < 0.09) & (xt[:, 1].abs() < 0.09)  # above the lower cloth
        assert over.sum() > 60 and xt[over, 2].min().item() > 0.5 * ps  # (0.0139 m: between the lower particles)


def PBD_CLOTH():
    return gs.materials.PBD.Cloth()

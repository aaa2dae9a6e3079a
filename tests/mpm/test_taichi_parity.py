"""A 3-D version of Taichi's mpm3d scene against an independent Taichi implementation (CPU, float64), and the
discrete ballistic law of the centre of mass before floor contact (VALIDATION.md, MPM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime

taichi = pytest.importorskip("taichi", reason="taichi is the reference of this test (pip install taichi==1.7.4)")

from .taichi_reference import run as taichi_run  # noqa: E402

N_GRID, DT, G, E, NU = 32, 4e-4, 9.8, 400.0, 0.2  # mpm3d: 32^3 grid, dt = 4e-4, E = 400, gravity 9.8 along y


def mpm3d(box: float, steps: int):
    """(our final state, the taichi result, x0, COM trajectory) for random particles in [0.15, 0.55]^3."""
    with cpu_runtime("64"):
        # our walls include the node on the particles' clamp plane (lower_bound + 3 dx, as Genesis' CubeBoundary);
        # mpm3d's are the nodes I < 3 and I > n_grid - 3 of a grid from 0 to 1: one cell more of domain on each
        # side makes the two wall sets the same nodes (y <= 2 dx and y >= 1 - 2 dx)
        pad = 1.0 / N_GRID
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=DT, gravity=(0.0, -G, 0.0)),
                         mpm_options=gs.options.MPMOptions(lower_bound=(-pad,) * 3, upper_bound=(1 + pad,) * 3,
                                                           grid_density=N_GRID, particle_size=1 / 64))
        liquid = scene.add_entity(gs.morphs.Box(pos=(0.35, 0.35, 0.35), size=(box,) * 3),
                                  material=gs.materials.MPM.Liquid(E=E, nu=NU, rho=1.0))
        scene.build()
        x0 = np.random.default_rng(0).random((liquid.n_particles, 3)) * 0.4 + 0.15  # mpm3d's initial cube
        liquid.set_position(x0)
        com = [liquid.get_particles_pos().mean(0)]
        for _ in range(steps):
            scene.step()
            com.append(liquid.get_particles_pos().mean(0))
        ours = scene.get_state()["MPMSolver"]
        lam = liquid.material.lame[1]
    ref = taichi_run(x0, steps, n_grid=N_GRID, dt=DT, p_vol=(1 / 64) ** 3, rho=1.0, lam=lam, gravity=-G, axis=1)
    return ours, ref, x0, torch.stack(com)


def check(box: float, steps: int):
    ours, ref, x0, com = mpm3d(box, steps)
    assert float(ours.pos[0, :, 1].min()) > 3.5 / N_GRID, "precondition: no particle reached the floor's stencil"
    for name in ("pos", "vel", "F"):
        err = np.abs(getattr(ours, name)[0].numpy() - ref[name]).max()
        assert err < 1e-9, f"{name}: max |ours - taichi| = {err:.3e}"
    # ballistic law: v_n = -n dt g, y_n = y_0 - g dt^2 n (n + 1) / 2 (transfers conserve momentum exactly)
    n = torch.arange(steps + 1, dtype=torch.float64)
    want_y = com[0, 1] - G * DT * DT * n * (n + 1) / 2
    assert (com[:, 1] - want_y).abs().max() < 1e-12
    assert (com[:, [0, 2]] - com[0, [0, 2]]).abs().max() < 1e-12
    assert abs(float(ours.vel[0, :, 1].mean()) + steps * DT * G) < 1e-12


def test_mpm3d_matches_taichi_small():
    check(box=0.2, steps=200)  # 1,728 particles


@pytest.mark.slow
def test_mpm3d_matches_taichi_full():
    check(box=0.4, steps=200)  # 15,625 particles

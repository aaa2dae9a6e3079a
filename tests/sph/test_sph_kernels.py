"""SPH building blocks against independent computations: the cubic spline kernel (normalisation, gradient vs
autograd), the wall volume map (vs SciPy quadrature of the kernel over the half-space), the cell-sort neighbour
search (vs brute-force all-pairs distances, with inactive particles, several envs, both segment paths) and its cap,
the rigid geoms as boundaries (a box moving into the liquid pushes it), and the Verlet lists (vs a fresh search)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.integrate import quad

import genesis_torch as gs
from genesis_torch.solvers.sph import neighbors as nb
from genesis_torch.solvers.sph.kernel import halfspace_volume, kernel_grad, kernel_w, kernel_w0, kernel_w_f

from ..conftest import cpu_runtime
from .conftest import tank_scene

H = 0.04


def test_kernel_integrates_to_one_and_its_gradient_is_the_derivative():
    r = torch.linspace(0, H, 20001, dtype=torch.float64)
    integral = torch.trapezoid(4 * math.pi * r ** 2 * kernel_w(r, H), r)
    assert abs(integral.item() - 1.0) < 1e-8
    assert kernel_w(torch.tensor([0.0, H, 1.5 * H], dtype=torch.float64), H).tolist() == [kernel_w0(H), 0.0, 0.0]
    g = torch.Generator().manual_seed(0)
    xij = (0.02 * torch.randn(3, 50, generator=g, dtype=torch.float64)).requires_grad_()
    rr = xij.norm(dim=0)
    (auto,) = torch.autograd.grad(kernel_w(rr, H).sum(), xij)
    torch.testing.assert_close(kernel_grad(xij.detach(), rr.detach(), H), auto, rtol=1e-10, atol=1e-6)
    # the solver's one-pass form (truncated powers): the same W and gradient scale
    r = torch.linspace(0, 1.2 * H, 5001, dtype=torch.float64)
    W, F = kernel_w_f(r, H)
    torch.testing.assert_close(W, kernel_w(r, H), rtol=1e-12, atol=1e-9)
    e = torch.stack((r, torch.zeros_like(r), torch.zeros_like(r)))
    torch.testing.assert_close(F * r, kernel_grad(e, r, H)[0], rtol=1e-12, atol=1e-6)


@pytest.mark.parametrize("s", [0.0, 0.004, 0.013, 0.02, 0.031, 0.039, 0.05, -0.006, -0.025])
def test_wall_volume_map_is_the_kernel_integral_over_the_half_space(s):
    w = lambda rr: kernel_w(torch.tensor(rr, dtype=torch.float64), H).item()  # noqa: E731
    plane = lambda t: 2 * math.pi * quad(lambda rr: w(rr) * rr, abs(t), H, points=[H / 2])[0]  # noqa: E731
    want = quad(plane, s, H, points=[H / 2])[0] if s >= 0 else 0.5 + quad(plane, s, 0.0)[0]
    phi, dphi = halfspace_volume(torch.tensor(s, dtype=torch.float64), H)
    assert abs(phi.item() - want) < 1e-10
    assert abs(dphi.item() + plane(s)) < 1e-8 * max(1.0, plane(s))  # dPhi/ds = -(plane integral at s)


def brute_pairs(x, active, n):
    """All ordered pairs (i, j), i != j, both active, same env, |x_i - x_j| < H: from the full distance matrix."""
    P = x.shape[1]
    d2 = ((x[:, :, None] - x[:, None, :]) ** 2).sum(0)
    env = torch.arange(P) // n
    m = (d2 < H * H) & active[:, None] & active[None, :] & (env[:, None] == env[None, :])
    m.fill_diagonal_(False)
    return [tuple(p) for p in m.nonzero().tolist()]


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_neighbour_search_equals_brute_force(seed, dense, monkeypatch):
    monkeypatch.setattr(nb, "DENSE_CELLS", 1 << 22 if dense else 0)
    g = torch.Generator().manual_seed(seed)
    B, n = 3, 400
    x = (torch.rand(3, B * n, generator=g, dtype=torch.float64) * torch.tensor([[0.3], [0.2], [0.25]],
                                                                              dtype=torch.float64))
    x[:, :5] = x[:, 5:10]  # coincident particles
    active = torch.rand(B * n, generator=g) > 0.1
    grid = nb.Grid(lower=torch.zeros(3, dtype=torch.float64), cell=H * (1.0 + seed), res=(10, 10, 10), h=H)
    p = nb.find_pairs(x, active, n, grid)
    got = list(zip(p.i.tolist(), p.j.tolist()))
    assert sorted(got) == brute_pairs(x, active, n) and len(set(got)) == len(got)
    assert (p.i[1:] >= p.i[:-1]).all(), "CSR: sorted by i"
    assert torch.equal(p.counts, torch.bincount(p.i, minlength=B * n))


def test_neighbour_cap_raises_instead_of_truncating():
    x = torch.zeros(3, nb.MAX_NEIGHBORS + 2, dtype=torch.float64)  # every particle at one point
    grid = nb.Grid(lower=torch.zeros(3, dtype=torch.float64), cell=H, res=(2, 2, 2), h=H)
    with pytest.raises(nb.NeighborOverflowError, match="more than the cap"):
        nb.find_pairs(x, torch.ones(x.shape[1], dtype=torch.bool), x.shape[1], grid)
    assert issubclass(nb.NeighborOverflowError, gs.errors.GenesisError)


def test_a_box_moving_into_the_liquid_pushes_it():
    """One-way coupling: the rigid box (free, on the plane) given 1 m/s towards the water; after 60 ms (6 cm) the
    particles in its way move in -x, while without the box they do not, and none is inside the box."""
    with cpu_runtime("64"):
        out = []
        for rigid in (True, False):
            scene, ents = tank_scene(1, rigid=rigid, gravity=(0.0, 0.0, 0.0))
            water = ents[-1]
            if rigid:
                ents[1].set_dofs_velocity(torch.tensor([[-1.0, 0, 0, 0, 0, 0]], dtype=torch.float64))
            for _ in range(15):
                scene.step()
            x, v = water.get_particles_pos()[0], water.get_particles_vel()[0]
            near = (x[:, 0] > 0.08) & (x[:, 2] < 0.06)
            out.append(v[near, 0].mean().item())
            if rigid:
                box = ents[1].get_pos()[0]
                inside = ((x - box).abs() < 0.03).all(1)
                assert not inside.any(), x[inside]
        assert out[0] < -0.2 and out[0] < 3 * out[1], out


def test_verlet_lists_hold_every_neighbour_and_rebuild_on_motion():
    """After 100 substeps of a collapsing dam (particles moved by more than the skin) the Verlet lists (pairs within
    (1 + SKIN) h of the state's reference positions) give exactly the kernel sums of a fresh search at h (a pair
    beyond h has W = 0, so the sums agree to round-off), the reference moved (the lists were rebuilt) and the
    neighbour counts within h match the fresh search."""
    from genesis_torch.solvers.sph.solver import SKIN

    with cpu_runtime("64"):
        scene, ents = tank_scene(2, rigid=False, dt=2e-3, substeps=4)
        water = ents[-1]
        ref0 = scene.sph_solver.initial_state(2).ref
        for _ in range(25):
            scene.step()
        S = scene.get_state()["SPHSolver"]
        solver = scene.sph_solver
        assert not torch.equal(S.ref, ref0), "the lists should have been rebuilt"
        assert ((S.pos - S.ref).norm(dim=-1) > 0).any()
        hood, _ = solver.neighbourhood(S.pos, S.active, S.ref, None)
        m = solver.model
        x = S.pos.reshape(-1, 3).T.contiguous()
        fresh = nb.find_pairs(x, S.active.reshape(-1), m.n, m.grid)
        r = (x[:, fresh.i] - x[:, fresh.j]).norm(dim=0)
        want = torch.zeros(x.shape[1], dtype=x.dtype).index_add_(0, fresh.i, kernel_w(r, m.h))
        got = solver.pair_sum(hood, hood.W)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-9)
        within = solver.pair_sum(hood, (hood.r < m.h).to(x.dtype))
        assert torch.equal(within.long(), fresh.counts)
        assert hood.pairs.counts.sum() > fresh.counts.sum(), f"the lists reach (1 + {SKIN}) h"
        assert water.n_particles == m.n


def test_boundary_share_is_validated():
    with cpu_runtime("32"):
        scene, _ = tank_scene(0, rigid=False, solver="DFSPH")
        solver = scene.sph_solver
        assert solver.boundary_share == 2.0
        solver.boundary_share = 1
        assert solver.boundary_share == 1.0
        with pytest.raises(gs.errors.InvalidInputError, match="boundary_share must be 1"):
            solver.boundary_share = 1.5
        assert solver.boundary_share == 1.0


@pytest.mark.parametrize("uniform", [True, False])
def test_fused_wcsph_pair_terms_equal_the_term_by_term_sums(uniform):
    """The WCSPH substep sums pressure, viscosity and cohesion as one per-pair scalar times x_ij (grad W_ij = F_ij
    x_ij); here against the three sums written term by term with grad W from `kernel_grad` and a dense (P, P)
    scatter (float64, a moving collapse, mu and gamma on, and a second liquid of other coefficients when not
    `uniform`): the new velocities agree to 1e-12 relative."""
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, substeps=2),
                         sph_options=gs.options.SPHOptions(particle_size=0.02, lower_bound=(0.0, 0.0, 0.0),
                                                           upper_bound=(0.3, 0.2, 0.3)))
        scene.add_entity(gs.morphs.Box(lower=(0.0, 0.0, 0.0), upper=(0.14, 0.2, 0.16)),
                         material=gs.materials.SPH.Liquid(mu=0.02, gamma=0.05))
        if not uniform:
            scene.add_entity(gs.morphs.Box(lower=(0.16, 0.0, 0.0), upper=(0.26, 0.2, 0.1)),
                             material=gs.materials.SPH.Liquid(rho=800.0, mu=0.01, gamma=0.2))
        scene.build()
        for _ in range(5):
            scene.step()
        S = scene.get_state()["SPHSolver"]
        solver, m = scene.sph_solver, scene.sph_solver.model
        assert solver._uniform_coeffs == uniform
        hood, _ = solver.neighbourhood(S.pos, S.active, S.ref, None)
        rho = solver.density(hood, 1)
        v = S.vel.reshape(-1, 3).T.contiguous()
        got, p = solver._wcsph(hood, v, rho, 1)
        # reference: every term as written in the module docstring
        i, j = hood.pairs.i.long(), hood.pairs.j.long()
        x = S.pos.reshape(-1, 3).T
        xij = x[:, i] - x[:, j]
        r = xij.norm(dim=0)
        gw = kernel_grad(xij, r, m.h)
        rho0, mass = m.rho0, m.mass
        pr = p / torch.maximum(rho, rho0) ** 2
        pair = -(rho0[j] * m.V * (pr[i] + pr[j])) * gw
        vij = ((v[:, i] - v[:, j]) * xij).sum(0)
        pair = pair + 10.0 * m.mu[i] * (mass[j] / rho[j]) * vij / (r ** 2 + 0.01 * m.h ** 2) * gw
        wc = kernel_w(torch.maximum(r, torch.tensor(m.particle_size, dtype=r.dtype)), m.h)
        pair = pair - (m.gamma[i] / mass[i]) * mass[j] * wc * xij
        acc = torch.zeros_like(v).index_add_(1, i, pair) + m.gravity[:, None] + hood.hydro
        acc = acc - 2.0 * rho0 * pr * hood.gradb
        want = v + m.dt * acc
        assert (want - v).abs().max() > 1e-4, "the pair terms should act"
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12 * float(want.abs().max()))

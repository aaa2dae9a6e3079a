"""Single-particle stress tests of every constitutive model against its formula (computed here with NumPy's SVD),
and the bounds the plastic return mappings must keep (constitutive.py cites the papers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.mpm import constitutive as cm

from ..conftest import cpu_runtime

MPM = gs.materials.MPM
RNG = np.random.default_rng(7)
FS = [np.eye(3) + 0.25 * RNG.standard_normal((3, 3)) for _ in range(6)]
FS = [F for F in FS if np.linalg.det(F) > 0.2]


def numpy_lame(E, nu):
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


def want_tau(kind, F, mu, lam, Jp=1.0, xi=10.0):
    """Kirchhoff stress from the papers' formulas, in NumPy."""
    U, s, Vt = np.linalg.svd(F)
    J = np.linalg.det(F)
    if kind == "corotated":
        R = U @ Vt
        return 2 * mu * (F - R) @ F.T + lam * (J - 1) * J * np.eye(3)
    if kind == "snow":
        h = math.exp(xi * (1 - Jp))
        return want_tau("corotated", F, mu * h, lam * h)
    if kind == "neohookean":
        return mu * (F @ F.T - np.eye(3)) + lam * math.log(J) * np.eye(3)
    if kind == "sand":
        eps = np.log(s)
        return U @ np.diag(2 * mu * eps + lam * eps.sum()) @ U.T
    return lam * J * (J - 1) * np.eye(3)


def one_particle_scene(material):
    scene = gs.Scene(mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1), grid_density=16,
                                                       particle_size=0.05))
    e = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.04, 0.04, 0.04)), material=material)
    scene.build()
    assert e.n_particles == 1
    return scene


MATERIALS = [("corotated", MPM.Elastic(E=1e4, nu=0.3)), ("neohookean", MPM.Elastic(E=1e4, nu=0.3, model="neohooken")),
             ("corotated", MPM.ElastoPlastic(E=1e4, nu=0.3)), ("snow", MPM.Snow(E=1e4, nu=0.3)),
             ("sand", MPM.Sand(E=1e4, nu=0.3)), ("liquid", MPM.Liquid(E=1e4, nu=0.3))]


@pytest.mark.parametrize("kind,material", MATERIALS, ids=[type(m).__name__ + "-" + k for k, m in MATERIALS])
def test_single_particle_stress_matches_formula(kind, material):
    with cpu_runtime("64"):
        solver = one_particle_scene(material).mpm_solver
        mu, lam = numpy_lame(material.E, material.nu)
        for F in FS:
            Jp = 0.97
            got = solver.stress(torch.tensor(F)[None, None], torch.tensor([[Jp]], dtype=torch.float64))[0, 0]
            np.testing.assert_allclose(got.numpy(), want_tau(kind, F, mu, lam, Jp), rtol=1e-10, atol=1e-8)


def test_explicit_lame_parameters_override_E_and_nu():
    with cpu_runtime("64"):
        solver = one_particle_scene(MPM.Elastic(E=1e4, nu=0.3, mu=123.0, lam=45.0)).mpm_solver
        F = FS[0]
        got = solver.stress(torch.tensor(F)[None, None], torch.ones(1, 1, dtype=torch.float64))[0, 0]
        np.testing.assert_allclose(got.numpy(), want_tau("corotated", F, 123.0, 45.0), rtol=1e-10, atol=1e-10)


def random_F(n, scale, seed):
    g = torch.Generator().manual_seed(seed)
    F = torch.eye(3, dtype=torch.float64) + scale * torch.randn(n, 3, 3, generator=g, dtype=torch.float64)
    return F[torch.linalg.det(F) > 0.05]


def test_snow_clamp_keeps_singular_values_in_bounds_and_moves_volume_to_Jp():
    F = random_F(200, 0.2, 1)
    Jp = torch.ones(F.shape[0], dtype=torch.float64)
    Fe, Jp_new = cm.clamp_singular_values(F, Jp, 2.5e-2, 4.5e-3)
    s = torch.linalg.svdvals(Fe)
    assert s.min() >= 1 - 2.5e-2 - 1e-12 and s.max() <= 1 + 4.5e-3 + 1e-12
    torch.testing.assert_close(Jp_new * torch.linalg.det(Fe), torch.linalg.det(F), rtol=1e-12, atol=0)
    inside = random_F(50, 1e-3, 2)  # already inside the bounds: unchanged
    out, _ = cm.clamp_singular_values(inside, torch.ones(inside.shape[0], dtype=torch.float64), 2.5e-2, 4.5e-3)
    torch.testing.assert_close(out, inside, rtol=0, atol=1e-13)


def test_von_mises_return_lands_on_the_yield_surface():
    F = torch.cat((random_F(100, 0.2, 3), random_F(100, 0.005, 6)))  # some yield, some stay elastic
    mu = torch.full((F.shape[0],), 1e4, dtype=torch.float64)
    tau_y = 300.0
    Fe, Jp = cm.von_mises_project(F, torch.ones_like(mu), mu, tau_y)
    eps_old = torch.log(torch.linalg.svdvals(F))
    eps = torch.log(torch.linalg.svdvals(Fe))
    dev = (eps - eps.mean(-1, keepdim=True)).norm(dim=-1)
    dev_old = (eps_old - eps_old.mean(-1, keepdim=True)).norm(dim=-1)
    radius = tau_y / (2 * 1e4)
    yielded = dev_old > radius
    assert yielded.any() and (~yielded).any()
    torch.testing.assert_close(dev[yielded], torch.full_like(dev[yielded], radius), rtol=1e-10, atol=0)
    torch.testing.assert_close(Fe[~yielded], F[~yielded], rtol=0, atol=1e-12)
    torch.testing.assert_close(eps.sum(-1), eps_old.sum(-1), rtol=0, atol=1e-12)  # isochoric flow: Jp stays 1
    torch.testing.assert_close(Jp, torch.ones_like(Jp), rtol=0, atol=1e-12)


def test_drucker_prager_projection_ends_inside_the_cone():
    F = random_F(400, 0.15, 4)
    n = F.shape[0]
    mu, lam = (torch.full((n,), v, dtype=torch.float64) for v in numpy_lame(1e4, 0.3))
    alpha = cm.sand_alpha(30.0)
    assert abs(alpha - math.sqrt(2 / 3) * 2 * 0.5 / 2.5) < 1e-15  # sin 30 deg = 1/2
    Fe, _ = cm.drucker_prager_project(F, torch.ones(n, dtype=torch.float64), mu, lam, alpha)
    eps = torch.log(torch.linalg.svdvals(Fe))
    tr = eps.sum(-1)
    dev = (eps - tr[:, None] / 3).norm(dim=-1)
    yield_fn = dev + (3 * lam + 2 * mu) / (2 * mu) * tr * alpha
    assert (tr <= 1e-12).all(), "no volumetric expansion survives the projection"
    assert (yield_fn <= 1e-10).all(), "every state ends inside or on the cone"
    eps_old = torch.log(torch.linalg.svdvals(F))
    expanded = eps_old.sum(-1) > 0
    assert expanded.any()
    tip = torch.linalg.svdvals(Fe[expanded])  # the cone's tip: eps = 0, F_E a pure rotation
    torch.testing.assert_close(tip, torch.ones_like(tip), rtol=0, atol=1e-12)


def test_polar_rotation_and_svd3():
    F = random_F(100, 0.4, 5)
    U, s, Vt = torch.linalg.svd(F)
    torch.testing.assert_close(cm.polar_rotation(F), U @ Vt, rtol=0, atol=1e-12)
    U3, s3, V3 = cm.svd3(F)
    assert (torch.linalg.det(U3) > 0).all() and (torch.linalg.det(V3) > 0).all()
    torch.testing.assert_close((U3 * s3[:, None, :]) @ V3.transpose(-1, -2), F, rtol=0, atol=1e-12)
    A = F[:4].clone().requires_grad_()
    fns = (lambda A: cm.hencky_tau(A, torch.full((4,), 2.0, dtype=A.dtype), torch.full((4,), 3.0, dtype=A.dtype)),
           lambda A: cm.polar_rotation(A))
    for fn in fns:
        assert torch.autograd.gradcheck(fn, (A,))
    # at F = I (repeated singular values) the corotated stress still has a finite gradient
    eye = torch.eye(3, dtype=torch.float64)[None].clone().requires_grad_()
    cm.corotated_tau(eye, torch.ones(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(eye.grad).all()

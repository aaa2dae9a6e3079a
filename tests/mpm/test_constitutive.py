"""Single-particle stress tests of every constitutive model against its formula (computed here with NumPy's SVD),
and the bounds the plastic return mappings must keep (constitutive.py cites the papers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError
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


def _diag_F(eps):
    """Rotated diagonal trial gradients with Hencky strains `eps (n, 3)` (float64)."""
    q = torch.linalg.qr(torch.as_tensor(RNG.standard_normal((len(eps), 3, 3))))[0]
    q = q * torch.linalg.det(q)[:, None, None]  # rotations
    return q @ torch.diag_embed(torch.exp(torch.as_tensor(eps, dtype=torch.float64)))


def test_drucker_prager_volume_correction():
    """[T17 §4.3.2]: a dilation projected to the tip is kept in Jp = exp(tr eps) and counts in the next projection:
    compressing less than it leaves F_E at the tip (no pressure), compressing more leaves F_E with only the excess
    compression and Jp = 1; without the correction the full compression stays elastic."""
    mu, lam = (torch.full((3,), v, dtype=torch.float64) for v in numpy_lame(1e4, 0.3))
    alpha = cm.sand_alpha(30.0)
    one = torch.ones(3, dtype=torch.float64)
    Fe, Jp = cm.drucker_prager_project(_diag_F([[0.02, 0.01, 0.0]] * 3), one, mu, lam, alpha)
    torch.testing.assert_close(torch.linalg.svdvals(Fe), torch.ones(3, 3, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(Jp, torch.full_like(Jp, math.exp(0.03)), rtol=1e-12, atol=0)
    # isotropic compressions of total log-volume -0.01, -0.03 (back to the old volume) and -0.05
    Fc = _diag_F([[v / 3] * 3 for v in (-0.01, -0.03, -0.05)])
    Fe2, Jp2 = cm.drucker_prager_project(Fc, Jp, mu, lam, alpha)
    vol = torch.log(torch.linalg.svdvals(Fe2)).sum(-1)
    torch.testing.assert_close(vol, torch.tensor([0.0, 0.0, -0.02], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(Jp2, torch.tensor([math.exp(0.02), 1.0, 1.0], dtype=torch.float64), rtol=1e-12,
                               atol=1e-12)
    Fe3, _ = cm.drucker_prager_project(Fc, Jp, mu, lam, alpha, volume_correction=False)
    vol3 = torch.log(torch.linalg.svdvals(Fe3)).sum(-1)
    torch.testing.assert_close(vol3, torch.tensor([-0.01, -0.03, -0.05], dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("phi", [20.0, 30.0, 40.0])
def test_sand_cone_in_plane_strain(phi):
    """A plane-strain trial strain (eps_2 = volumetric share only) far outside the cone is returned to a stress
    with (tau_1 - tau_3) / 2 = sin(phi_ps) p, p = -tr(tau) / 3 = -tau_2: Mohr-Coulomb with phi_ps =
    `Sand.plane_strain_angle`; `Sand.plane_strain(phi)` has phi_ps = phi, and Genesis' `Sand(friction_angle=30)`
    resists like 43.85 degrees."""
    assert abs(MPM.Sand(friction_angle=30.0).plane_strain_angle - math.degrees(math.asin(3 / (math.sqrt(3) * 2.5)))) \
        < 1e-12
    for mat in (MPM.Sand(friction_angle=phi), MPM.Sand.plane_strain(phi, E=1e4, nu=0.3)):
        mu, lam = (torch.full((2,), v, dtype=torch.float64) for v in mat.lame)
        eps = [[0.05 - 0.01, -0.01, -0.05 - 0.01], [0.2 - 0.03, -0.03, -0.2 - 0.03]]
        Fe, _ = cm.drucker_prager_project(_diag_F(eps), torch.ones(2, dtype=torch.float64), mu, lam,
                                          cm.sand_alpha(mat.friction_angle))
        tau = torch.linalg.eigvalsh(cm.hencky_tau(Fe, mu, lam))  # ascending: tau_3 (most compressive) first
        p = -tau.sum(-1) / 3
        torch.testing.assert_close(tau[:, 1], -p, rtol=0, atol=1e-9 * p.abs().max().item())
        ratio = (tau[:, 2] - tau[:, 0]) / 2 / p
        torch.testing.assert_close(ratio, torch.full_like(ratio, math.sin(math.radians(mat.plane_strain_angle))),
                                   rtol=1e-10, atol=0)
    assert abs(MPM.Sand.plane_strain(phi).plane_strain_angle - phi) < 1e-10
    with pytest.raises(InvalidInputError, match="plane_strain"):
        MPM.Sand.plane_strain(95.0)


def _dense_sand(psi0=20.0, e_c=0.05):
    return MPM.Sand.plane_strain(30.0, E=1e4, nu=0.3, dilatancy_angle=psi0, critical_volume_strain=e_c)


@pytest.mark.parametrize("e_v", [0.0, 0.02, 0.05])
def test_dilatant_return_lands_on_the_softened_cone(e_v):
    """Dense sand (Bolton 1986): a particle with plastic log volume gain e_v (its Jp) is returned onto the cone of
    phi = phi_cs + 0.8 psi, psi = psi_0 (1 - e_v / e_c), along dgamma (n + sin(psi) / sqrt(2) I), and the
    dilation dgamma 3 sin(psi) / sqrt(2) is added to ln Jp; at e_v = e_c it is the critical-state cone, no
    dilation, the same F_E as the non-dilatant return with that cone."""
    mat = _dense_sand()
    phi_cs, psi0, e_c = mat.dilatancy
    assert abs(phi_cs - 30.0) < 1e-10 and psi0 == 20.0 and e_c == 0.05
    F = random_F(200, 0.15, 11)
    n = F.shape[0]
    mu, lam = (torch.full((n,), v, dtype=torch.float64) for v in mat.lame)
    Jp = torch.full((n,), math.exp(e_v), dtype=torch.float64)
    Fe, Jp2 = cm.drucker_prager_project(F, Jp, mu, lam, 0.0, dilatancy=mat.dilatancy)
    psi = math.radians(psi0) * (1 - e_v / e_c)
    alpha, beta = math.sqrt(2) / 3 * math.sin(math.radians(phi_cs) + 0.8 * psi), math.sin(psi) / math.sqrt(2)
    eps_tr, eps = (torch.log(torch.linalg.svdvals(X)) for X in (F, Fe))
    c = (3 * lam + 2 * mu) / (2 * mu)

    def parts(e):
        tr = e.sum(-1)
        return tr, (e - tr[:, None] / 3).norm(dim=-1)

    (tr0, d0), (tr1, d1) = parts(eps_tr), parts(eps)
    f0 = d0 + c * tr0 * alpha
    on = (f0 > 1e-9) & (tr0 < 0)
    inside, tip = (f0 <= 0) & (tr0 < 0), tr0 > 0
    assert on.sum() > 20 and inside.sum() > 5 and tip.sum() > 20
    torch.testing.assert_close((d1 + c * tr1 * alpha)[on], torch.zeros_like(d1[on]), rtol=0, atol=1e-10)
    dgamma = d0 - d1
    torch.testing.assert_close((tr0 - tr1)[on], 3 * beta * dgamma[on], rtol=0, atol=1e-10)  # the dilation
    torch.testing.assert_close(torch.log(Jp2[on]), e_v + (tr0 - tr1)[on], rtol=0, atol=1e-10)  # kept in Jp
    torch.testing.assert_close(Fe[inside], F[inside], rtol=0, atol=1e-12)
    torch.testing.assert_close(Jp2[inside], Jp[inside], rtol=1e-12, atol=0)
    tip_s = torch.linalg.svdvals(Fe[tip])
    torch.testing.assert_close(tip_s, torch.ones_like(tip_s), rtol=0, atol=1e-12)
    if e_v == e_c:  # critical state: Klár et al.'s return with the plane-strain cone of phi_cs
        Fk, Jk = cm.drucker_prager_project(F, torch.ones(n, dtype=torch.float64), mu, lam,
                                           cm.sand_alpha(mat.friction_angle))
        torch.testing.assert_close(Fe, Fk, rtol=0, atol=1e-12)
        torch.testing.assert_close(Jp2, Jk * math.exp(e_c), rtol=1e-12, atol=0)


def test_dilatant_volume_correction_counts_only_the_gap():
    """Of ln Jp the first e_c is dilatancy (kept, the grains stay loose), the rest the volume correction's open gap
    [T17]: a compression of the gap only leaves F_E at the tip; compressed past it, F_E keeps the excess and Jp
    returns to exp(e_c), not to 1."""
    mat = _dense_sand(20.0, 0.05)
    mu, lam = (torch.full((3,), v, dtype=torch.float64) for v in mat.lame)
    Jp = torch.full((3,), math.exp(0.08), dtype=torch.float64)  # e_c = 0.05 dilated, a gap of 0.03
    Fc = _diag_F([[v / 3] * 3 for v in (-0.01, -0.03, -0.05)])
    Fe, Jp2 = cm.drucker_prager_project(Fc, Jp, mu, lam, 0.0, dilatancy=mat.dilatancy)
    vol = torch.log(torch.linalg.svdvals(Fe)).sum(-1)
    torch.testing.assert_close(vol, torch.tensor([0.0, 0.0, -0.02], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(Jp2, torch.tensor([math.exp(0.07), math.exp(0.05), math.exp(0.05)],
                                                 dtype=torch.float64), rtol=1e-12, atol=0)


def test_dense_sand_parameters_are_validated():
    assert MPM.Sand().dilatancy is None and MPM.Sand(critical_volume_strain=0.1).dilatancy is None
    for kw, word in (({"dilatancy_angle": -1.0}, "dilatancy_angle"), ({"dilatancy_angle": True}, "dilatancy_angle"),
                     ({"dilatancy_angle": 10.0}, "critical_volume_strain"),
                     ({"dilatancy_angle": 10.0, "critical_volume_strain": float("nan")}, "critical_volume_strain"),
                     ({"critical_volume_strain": -0.1}, "critical_volume_strain")):
        with pytest.raises(InvalidInputError, match=word):
            MPM.Sand(friction_angle=30.0, **kw)
    with pytest.raises(InvalidInputError, match="Bolton"):  # Genesis' 45 degrees: plane-strain angle already 90
        MPM.Sand(dilatancy_angle=10.0, critical_volume_strain=0.05)


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


def test_svd3_matches_lapack_on_hard_cases_and_is_position_independent():
    """svd3 (solvers/mpm/svd3.py: Jacobi on F^T F, Givens QR of F V) against LAPACK's singular values and its own
    reconstruction, float64: random, inverted (det < 0), rotations, repeated, rank-deficient and zero matrices; det U
    = det V = +1, |sigma| decreasing, the sign on the last one; a matrix's bits do not depend on its batch position."""
    g = torch.Generator().manual_seed(3)
    rot = torch.linalg.qr(torch.randn(20, 3, 3, generator=g, dtype=torch.float64))[0]
    rot = rot * torch.linalg.det(rot).sign()[:, None, None]
    F = torch.cat([torch.eye(3, dtype=torch.float64) + 0.8 * torch.randn(300, 3, 3, generator=g, dtype=torch.float64),
                   rot, rot @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)),  # reflections
                   rot @ torch.diag(torch.tensor([2.0, 2.0, 0.5], dtype=torch.float64)) @ rot.flip(0).mT,
                   rot @ torch.diag(torch.tensor([1.5, 0.0, 0.0], dtype=torch.float64)),  # rank 1
                   torch.eye(3, dtype=torch.float64).expand(3, 3, 3), torch.zeros(3, 3, 3, dtype=torch.float64)])
    U, s, V = cm.svd3(F)
    scale = F.abs().amax((-1, -2)).clamp_min(1.0)[:, None, None]
    torch.testing.assert_close((U * s[:, None, :]) @ V.mT / scale, F / scale, rtol=0, atol=1e-13)
    eye = torch.eye(3, dtype=torch.float64).expand_as(F)
    torch.testing.assert_close(U.mT @ U, eye, rtol=0, atol=1e-13)
    torch.testing.assert_close(V.mT @ V, eye, rtol=0, atol=1e-13)
    assert (torch.linalg.det(U) > 0).all() and (torch.linalg.det(V) > 0).all()
    torch.testing.assert_close(s.abs(), torch.linalg.svdvals(F), rtol=0, atol=1e-13 * float(scale.max()))
    assert (s[:, :2] >= 0).all()
    inverted = torch.linalg.det(F) < -1e-9
    assert (s[inverted, 2] < 0).all() and (s[torch.linalg.det(F) > 1e-9, 2] > 0).all()
    for f32 in (False, True):  # the same matrix alone and at another place in a batch: the same bits
        X = F.float() if f32 else F
        alone = cm.svd3(X[7:8])
        moved = cm.svd3(torch.cat((X[100:137], X[7:8], X[:5])))
        for a, b in zip(alone, moved):
            assert torch.equal(a[0], b[37])

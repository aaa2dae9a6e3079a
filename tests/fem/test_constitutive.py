"""The three elastic energies (solvers/fem/constitutive.py) in float64: P is the gradient of psi, dP the directional
derivative of P (R fixed for the corotated model), psi and P vanish at rest, the polar rotation is a rotation with
R^T F symmetric, and the corotated / stable neo-Hookean energies are invariant under rotations."""

from __future__ import annotations

import pytest
import torch

from genesis_torch.solvers.fem import constitutive as cm

KINDS = cm.KINDS


def random_F(n=32, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.eye(3, dtype=torch.float64) + scale * torch.randn(n, 3, 3, generator=g, dtype=torch.float64)


def random_rotation(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.linalg.det(q))[:, None, None]


MU, LAM = torch.tensor(3.0e4, dtype=torch.float64), torch.tensor(5.0e4, dtype=torch.float64)


@pytest.mark.parametrize("kind", KINDS)
def test_piola_is_the_energy_gradient(kind):
    F = random_F().requires_grad_()
    mu, lam = MU.expand(32), LAM.expand(32)
    psi = cm.energy_density(kind, F, mu, lam)
    (grad,) = torch.autograd.grad(psi.sum(), F)
    P = cm.first_piola(kind, F.detach(), mu, lam)
    torch.testing.assert_close(P, grad, rtol=1e-9, atol=1e-7 * float(MU))


@pytest.mark.parametrize("kind", KINDS)
def test_rest_state_is_stress_and_energy_free(kind):
    eye = torch.eye(3, dtype=torch.float64)[None]
    assert abs(float(cm.energy_density(kind, eye, MU[None], LAM[None]))) < 1e-9
    assert float(cm.first_piola(kind, eye, MU[None], LAM[None]).abs().max()) < 1e-9


@pytest.mark.parametrize("kind", KINDS)
def test_dP_is_the_derivative_of_P(kind):
    F, dF = random_F(seed=2), random_F(seed=3) - torch.eye(3, dtype=torch.float64)
    mu, lam = MU.expand(32), LAM.expand(32)
    R = cm.polar_rotation(F) if kind == "linear_corotated" else None
    got = cm.dfirst_piola(kind, F, dF, mu, lam, R)
    h = 1e-6
    fd = (cm.first_piola(kind, F + h * dF, mu, lam, R) - cm.first_piola(kind, F - h * dF, mu, lam, R)) / (2 * h)
    torch.testing.assert_close(got, fd, rtol=1e-6, atol=1e-6 * float(MU))


def test_polar_rotation_is_orthogonal_with_symmetric_stretch():
    F = random_F(scale=0.5, seed=4)
    F = F * torch.sign(torch.linalg.det(F))[:, None, None]  # det > 0
    R = cm.polar_rotation(F)
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, rtol=0, atol=1e-12)
    S = R.transpose(-1, -2) @ F
    torch.testing.assert_close(S, S.transpose(-1, -2), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(32, dtype=torch.float64), rtol=0, atol=1e-12)
    U, _, Vh = torch.linalg.svd(F)  # the SVD's rotation agrees
    torch.testing.assert_close(R, U @ Vh, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["linear_corotated", "stable_neohookean"])
def test_energies_are_rotation_invariant(kind):
    F, Q = random_F(seed=5), random_rotation(32)
    mu, lam = MU.expand(32), LAM.expand(32)
    torch.testing.assert_close(cm.energy_density(kind, Q @ F, mu, lam), cm.energy_density(kind, F, mu, lam),
                               rtol=1e-10, atol=1e-6)
    # and the linear energy is not (what the corotated model fixes)
    lin = cm.energy_density("linear", Q @ F, mu, lam) - cm.energy_density("linear", F, mu, lam)
    assert float(lin.abs().max()) > 1e2

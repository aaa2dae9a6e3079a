"""The cubic spline smoothing kernel and its half-space integral (the boundary volume map of a plane).

Kernel (Monaghan 1992, "Smoothed particle hydrodynamics", ARA&A 30, eq. 2.6 (M4 spline), written with the support
radius h as in Koschier et al. 2019, "Smoothed Particle Hydrodynamics Techniques for the Physics Based Simulation of
Fluids and Solids", Eurographics tutorial, eq. 4; Genesis' `cubic_kernel`), q = r / h, k = 8 / (pi h^3):

    W(r) = k (6 q^3 - 6 q^2 + 1)   for 0 <= q <= 1/2,
           2 k (1 - q)^3            for 1/2 < q <= 1,      0 beyond;   integral over R^3 = 1.

Half-space integral (the volume map of a planar wall: Bender, Kugelstadt, Weiler & Koschier 2019, "Volume maps: an
implicit boundary representation for SPH", MIG '19, eq. 4, V(x) = integral of W(x - x') over the solid): for a point
at signed distance s from the plane (s > 0 outside the solid, in the fluid),

    Phi(s) = 16 H(|s| / h) for s >= 0,  1 - 16 H(|s| / h) for s < 0,   Phi(0) = 1/2,   Phi(s >= h) = 0,
    dPhi/ds = -(16 / h) G(|s| / h),

where G(q) = int_q^1 f(u) u du and H(q) = int_q^1 G(u) du with W = k f (closed forms below; 16 G / h is Genesis'
`cubic_kernel_plane_integral`, the kernel integrated over a plane at distance s).
"""

from __future__ import annotations

import math

import torch

__all__ = ["kernel_w", "kernel_w0", "kernel_grad", "kernel_w_f", "halfspace_volume"]


def kernel_w(r: torch.Tensor, h: float) -> torch.Tensor:
    """W(r) in 1/m^3 for distances `r (...)` m >= 0 (0 beyond the support radius `h` m)."""
    k = 8.0 / (math.pi * h ** 3)
    q = r / h
    inner = k * (6.0 * q ** 3 - 6.0 * q ** 2 + 1.0)
    outer = 2.0 * k * (1.0 - q).clamp_min(0.0) ** 3
    return torch.where(q <= 0.5, inner, outer)


def kernel_w0(h: float) -> float:
    """W(0) = 8 / (pi h^3), 1/m^3."""
    return 8.0 / (math.pi * h ** 3)


def kernel_grad(xij: torch.Tensor, r: torch.Tensor, h: float) -> torch.Tensor:
    """grad_i W(x_i - x_j) in 1/m^4, `(3, E)` component-major, from `xij = x_i - x_j (3, E)` m and `r = |xij| (E,)`.
    Points from i towards j (dW/dr <= 0); zero at and beyond the support radius (and for r <= 1e-5 m as Genesis)."""
    k = 8.0 / (math.pi * h ** 3)
    q = r / h
    dwdq = torch.where(q <= 0.5, 6.0 * k * q * (3.0 * q - 2.0), -6.0 * k * (1.0 - q).clamp_min(0.0) ** 2)
    scale = torch.where(r > 1e-5, dwdq / (h * r.clamp_min(1e-5)), torch.zeros_like(r))
    return scale * xij


def kernel_w_f(r: torch.Tensor, h: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(W `(E,)` 1/m^3, F `(E,)` 1/m^5) at distances `r (E,)` m, grad_i W(x_ij) = F x_ij: `kernel_w` and the scale
    of `kernel_grad` in one pass, with the spline as truncated powers (Monaghan 1992, eq. 2.6's M4 written as
    W = 2k ((1 - q)_+^3 - 4 (1/2 - q)_+^3), dW/dq = -6k ((1 - q)_+^2 - 4 (1/2 - q)_+^2): the same polynomial, no
    branch evaluated twice, fewer pair-sized temporaries). The pair terms that act along x_ij use F and never form
    the gradient."""
    k = 8.0 / (math.pi * h ** 3)
    q = r * (1.0 / h)
    t = (1.0 - q).clamp_min(0.0)
    u = (0.5 - q).clamp_min(0.0)
    t2, u2 = t * t, u * u
    W = (t2 * t - 4.0 * (u2 * u)) * (2.0 * k)
    F = (t2 - 4.0 * u2) * (-6.0 * k / h) / r.clamp_min(1e-5)
    return W, torch.where(r > 1e-5, F, torch.zeros_like(F))


def _g(q: torch.Tensor) -> torch.Tensor:
    """G(q) = int_q^1 f(u) u du for q in [0, 1] (0 beyond)."""
    q2 = q * q
    inner = 0.0875 - (1.2 * q2 * q2 * q - 1.5 * q2 * q2 + 0.5 * q2)
    w = (1.0 - q).clamp_min(0.0)
    outer = 0.5 * w ** 4 - 0.4 * w ** 5
    return torch.where(q <= 0.5, inner, outer)


def _h(q: torch.Tensor) -> torch.Tensor:
    """H(q) = int_q^1 G(u) du for q in [0, 1] (0 beyond); H(0) = 1/32."""
    q2 = q * q
    inner = 0.03125 - (0.0875 * q - 0.2 * q2 * q2 * q2 + 0.3 * q2 * q2 * q - q2 * q / 6.0)
    w = (1.0 - q).clamp_min(0.0)
    outer = w ** 5 / 10.0 - w ** 6 / 15.0
    return torch.where(q <= 0.5, inner, outer)


def halfspace_volume(s: torch.Tensor, h: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Phi(s), dPhi/ds) of the half-space solid at signed distance `s (...)` m (positive in the fluid): the
    dimensionless kernel integral over the solid and its derivative (1/m). See the module docstring."""
    q = s.abs() / h
    H, G = 16.0 * _h(q), _g(q)
    return torch.where(s >= 0, H, 1.0 - H), -(16.0 / h) * G

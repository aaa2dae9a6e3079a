"""XPBD constraints and their projection (Macklin, Mueller & Chentanez 2016, "XPBD: position-based simulation of
compliant constrained dynamics", MIG '16).

For a constraint C(x) with compliance alpha (the inverse stiffness) and time-step compliance alpha~ = alpha / dt^2,
one projection updates its Lagrange multiplier and positions (eqs. 18 and 17 of the paper):

    dlambda = (-C - alpha~ lambda) / (sum_i w_i |grad_i C|^2 + alpha~),  lambda += dlambda,  x_i += w_i grad_i C dlambda

with w_i = 1/m_i (0 for fixed particles). lambda starts at 0 each substep and accumulates over the iterations. Here
dlambda is also scaled by the material's relaxation factor (Genesis' `*_relaxation`: successive under-relaxation;
at 1 the update is XPBD's). The constraints (each with its gradient in closed form):

* stretch: C = |x0 - x1| - L (distance, Mueller et al. 2007, "Position based dynamics", §3.3);
* bending: C = theta - theta0 with theta the signed dihedral angle of the two triangles (x2, x3, x0) and
  (x3, x2, x1) hinged on the edge x2-x3; gradients of Bridson, Marino & Fedkiw 2003 ("Simulation of clothing with
  folds and wrinkles", SCA, §4);
* volume: C = V - V0 with V = (x1 - x0) . ((x2 - x0) x (x3 - x0)) / 6 the signed tetrahedron volume (Mueller et al.
  2007, §4.3).

Positions are `(B, n, 3)`; a group's particle indices `(k, a)`; per-constraint values `(B, k)` or `(k,)`.
"""

from __future__ import annotations

import torch

__all__ = ["stretch", "bending", "volume", "project", "KINDS"]


def stretch(x: torch.Tensor, rest: torch.Tensor):
    """C `(B, k)` and grad `(B, k, 2, 3)` of distance constraints; `x (B, k, 2, 3)`, rest length `(k,)` m."""
    d = x[:, :, 0] - x[:, :, 1]
    length = d.norm(dim=-1)
    n = d / length.clamp_min(torch.finfo(x.dtype).tiny)[..., None]
    return length - rest, torch.stack((n, -n), 2)


def bending(x: torch.Tensor, rest: torch.Tensor):
    """C `(B, k)` (rad) and grad `(B, k, 4, 3)` of dihedral constraints; `x (B, k, 4, 3)`: wings x0, x1, hinge x2, x3;
    `rest (k,)` the rest dihedral angle. C is wrapped to (-pi, pi]."""
    p0, p1, p2, p3 = x.unbind(2)
    e = p3 - p2
    el = e.norm(dim=-1, keepdim=True)
    tiny = torch.finfo(x.dtype).tiny
    n1 = torch.linalg.cross(p2 - p0, p3 - p0)
    n2 = torch.linalg.cross(p3 - p1, p2 - p1)
    s1, s2 = (n1 * n1).sum(-1, keepdim=True).clamp_min(tiny), (n2 * n2).sum(-1, keepdim=True).clamp_min(tiny)
    u1, u2 = n1 / s1.sqrt(), n2 / s2.sqrt()
    theta = torch.atan2((torch.linalg.cross(u1, u2) * e).sum(-1) / el[..., 0].clamp_min(tiny), (u1 * u2).sum(-1))
    m1, m2 = n1 / s1, n2 / s2
    ie = 1.0 / el.clamp_min(tiny)
    g0, g1 = el * m1, el * m2
    g2 = ((p0 - p3) * e).sum(-1, keepdim=True) * ie * m1 + ((p1 - p3) * e).sum(-1, keepdim=True) * ie * m2
    g3 = ((p2 - p0) * e).sum(-1, keepdim=True) * ie * m1 + ((p2 - p1) * e).sum(-1, keepdim=True) * ie * m2
    c = theta - rest
    c = torch.remainder(c + torch.pi, 2 * torch.pi) - torch.pi
    return c, -torch.stack((g0, g1, g2, g3), 2)  # d theta / dx = -(Bridson's vectors) with this orientation


def volume(x: torch.Tensor, rest: torch.Tensor):
    """C `(B, k)` m^3 and grad `(B, k, 4, 3)` of tetrahedron volume constraints; `x (B, k, 4, 3)`, rest signed volume
    `(k,)` m^3."""
    p0, p1, p2, p3 = x.unbind(2)
    a, b, c = p1 - p0, p2 - p0, p3 - p0
    g1, g2, g3 = torch.linalg.cross(b, c) / 6, torch.linalg.cross(c, a) / 6, torch.linalg.cross(a, b) / 6
    vol = (a * g1).sum(-1)
    return vol - rest, torch.stack((-(g1 + g2 + g3), g1, g2, g3), 2)


KINDS = {"stretch": stretch, "bending": bending, "volume": volume}


def project(kind: str, pos: torch.Tensor, wc: torch.Tensor, flat: torch.Tensor, rest, alpha_t, relax,
            lam: torch.Tensor, average=None):
    """One XPBD projection of the constraints of one colour (no particle shared): returns (new positions
    `(B, n, 3)`, new multipliers `(B, k)`).

    `wc (B, k, a)` the inverse masses of the constraints' particles (0: fixed), `flat (k a,)` those particles,
    `rest (k,)`, `alpha_t (k,)` = compliance / dt^2, `relax (k,)`, `lam (B, k)` the multipliers so far in this
    substep. `average (k a,)`: for a Jacobi batch (constraints sharing particles), each correction times 1 / (the
    number of the batch's constraints on its particle)."""
    B, k, a = wc.shape
    x = pos.index_select(1, flat).reshape(B, k, a, 3)
    c, g = KINDS[kind](x, rest)
    if kind == "stretch":  # |grad C| = 1 for both particles
        denom = wc.sum(-1) + alpha_t
    else:
        denom = (wc * (g * g).sum(-1)).sum(-1) + alpha_t
    ok = denom > 0  # all particles fixed and no compliance: nothing to do
    dlam = torch.where(ok, relax * (-c - alpha_t * lam) / torch.where(ok, denom, torch.ones_like(denom)),
                       torch.zeros_like(denom))
    dx = ((wc * dlam[..., None])[..., None] * g).reshape(B, k * a, 3)
    if average is None:  # one colour: every particle once, so a copy (index_add along dim 1 is ~7x slower on CPU)
        return pos.index_copy(1, flat, x.reshape(B, k * a, 3) + dx), lam + dlam
    dx = dx * average[:, None]
    return pos.transpose(0, 1).index_add(0, flat, dx.transpose(0, 1)).transpose(0, 1), lam + dlam

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

`stretch`/`bending`/`volume` take positions `(B, k, a, 3)`; `project` the solver's component-first `(3 B, n)`;
a group's particle indices `(k, a)`; per-constraint values `(B, k)` or `(k,)`.
"""

from __future__ import annotations

import torch

__all__ = ["stretch", "bending", "volume", "project", "stretch_factor", "KINDS", "SOA_KINDS"]

# The closed forms work on components first: P `(3, B, a, k)` (component, env, the constraint's particle,
# constraint), so dot and cross products are a few elementwise ops over B k values (no reductions over a size-3
# last dimension, slow on CPU). The `(B, k, a, 3)` functions below wrap them.


def _dot(u, v):
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _cross(u, v):
    return torch.stack((u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]))


def stretch_soa(P: torch.Tensor, rest: torch.Tensor):
    """C `(B, k)` and grad `(3, B, 2, k)` of distance constraints; `P (3, B, 2, k)`, rest length `(k,)` m."""
    d = P[:, :, 0] - P[:, :, 1]
    length = _dot(d, d).sqrt()
    n = d / length.clamp_min(torch.finfo(P.dtype).tiny)
    return length - rest, torch.stack((n, -n), 2)


def bending_soa(P: torch.Tensor, rest: torch.Tensor):
    """C `(B, k)` (rad) and grad `(3, B, 4, k)` of dihedral constraints; `P (3, B, 4, k)`: wings x0, x1, hinge x2,
    x3; `rest (k,)` the rest dihedral angle. C is wrapped to (-pi, pi]."""
    p0, p1, p2, p3 = P.unbind(2)
    e = p3 - p2
    el = _dot(e, e).sqrt()
    tiny = torch.finfo(P.dtype).tiny
    n1 = _cross(p2 - p0, p3 - p0)
    n2 = _cross(p3 - p1, p2 - p1)
    s1, s2 = _dot(n1, n1).clamp_min(tiny), _dot(n2, n2).clamp_min(tiny)
    ie = 1.0 / el.clamp_min(tiny)
    inv12 = (s1 * s2).rsqrt()
    theta = torch.atan2(_dot(_cross(n1, n2), e) * inv12 * ie, _dot(n1, n2) * inv12)
    m1, m2 = n1 / s1, n2 / s2
    g0, g1 = el * m1, el * m2
    g2 = (_dot(p0 - p3, e) * ie) * m1 + (_dot(p1 - p3, e) * ie) * m2
    g3 = (_dot(p2 - p0, e) * ie) * m1 + (_dot(p2 - p1, e) * ie) * m2
    c = torch.remainder(theta - rest + torch.pi, 2 * torch.pi) - torch.pi
    return c, -torch.stack((g0, g1, g2, g3), 2)  # d theta / dx = -(Bridson's vectors) with this orientation


def volume_soa(P: torch.Tensor, rest: torch.Tensor):
    """C `(B, k)` m^3 and grad `(3, B, 4, k)` of tetrahedron volume constraints; `P (3, B, 4, k)`, rest signed volume
    `(k,)` m^3."""
    p0, p1, p2, p3 = P.unbind(2)
    a, b, c = p1 - p0, p2 - p0, p3 - p0
    g1, g2, g3 = _cross(b, c) / 6, _cross(c, a) / 6, _cross(a, b) / 6
    return _dot(a, g1) - rest, torch.stack((-(g1 + g2 + g3), g1, g2, g3), 2)


SOA_KINDS = {"stretch": stretch_soa, "bending": bending_soa, "volume": volume_soa}


def _aos(fn):
    def wrapped(x: torch.Tensor, rest: torch.Tensor):
        c, g = fn(x.permute(3, 0, 2, 1), rest)
        return c, g.permute(1, 3, 2, 0)
    wrapped.__doc__ = (f"C `(B, k)` and grad `(B, k, a, 3)` of `{fn.__name__[:-4]}` constraints at `x (B, k, a, 3)` "
                       f"(see `{fn.__name__}`).")
    return wrapped


stretch, bending, volume = _aos(stretch_soa), _aos(bending_soa), _aos(volume_soa)
KINDS = {"stretch": stretch, "bending": bending, "volume": volume}


def stretch_factor(wc: torch.Tensor, alpha_t, relax) -> torch.Tensor:
    """`(B, k)`: relax / (w_0 + w_1 + alpha~) of distance constraints (|grad C| = 1), 0 where the denominator is 0
    (both particles fixed, no compliance); fixed over a substep (`wc (B, 2, k)` inverse masses)."""
    denom = wc.sum(1) + alpha_t
    ok = denom > 0
    return torch.where(ok, relax / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(denom))


def project(kind: str, X: torch.Tensor, wc: torch.Tensor, flat: torch.Tensor, rest, alpha_t, relax,
            lam: torch.Tensor, average=None, factor=None):
    """One XPBD projection of the constraints of one colour (no particle shared): returns (new positions
    `(3 B, n)`, new multipliers `(B, k)`).

    `X (3 B, n)` m: the positions component-first (row c B + b: component c of env b; the solver's layout during
    the constraint sweeps: gathering and scattering along the last dim are the fastest CPU ops here), `wc (B, a, k)`
    the inverse masses of the constraints' particles (0: fixed), `flat (a k,)` those particles (particle-major: the
    constraints' first particles, then their second ones, ...), `rest (k,)`, `alpha_t (k,)` = compliance / dt^2,
    `relax (k,)`, `lam (B, k)` the multipliers so far in this substep. `average (a k,)`: for a Jacobi batch
    (constraints sharing particles), each correction times 1 / (the number of the batch's constraints on its
    particle). The corrections are added with `index_add` (one per particle in a colour: the same sum as a copy).
    `factor (B, k)`: `stretch_factor(wc, alpha_t, relax)` when already computed (stretch only)."""
    B, a, k = wc.shape
    P = X.index_select(1, flat).reshape(3, B, a, k)
    tiny = torch.finfo(X.dtype).tiny
    if kind == "stretch":  # |grad C| = 1 for both particles: C and its gradient inline (fewer ops)
        f = stretch_factor(wc, alpha_t, relax) if factor is None else factor
        d = P[:, :, 0] - P[:, :, 1]
        length = _dot(d, d).sqrt()
        dlam = f * ((rest - length) - alpha_t * lam)
        s = dlam / length.clamp_min(tiny)  # grad = (d, -d) / |d|
        dx = torch.stack((d * (wc[:, 0] * s), d * (wc[:, 1] * -s)), 2).reshape(3 * B, a * k)
        if average is not None:
            dx = dx * average
        return X.index_add(1, flat, dx), lam + dlam
    c, g = SOA_KINDS[kind](P, rest)
    denom = (wc * (g[0] * g[0] + g[1] * g[1] + g[2] * g[2])).sum(1) + alpha_t
    ok = denom > 0  # all particles fixed and no compliance: nothing to do
    dlam = torch.where(ok, relax * (-c - alpha_t * lam) / torch.where(ok, denom, torch.ones_like(denom)),
                       torch.zeros_like(denom))
    dx = (wc * dlam[:, None]) * g
    dx = dx.reshape(3 * B, a * k)
    if average is not None:
        dx = dx * average
    return X.index_add(1, flat, dx), lam + dlam

"""Active stress of FEM muscles (Genesis 1.4.5's `gs.materials.FEM.Muscle`, `engine/materials/FEM/muscle.py`).

An element with activation a, unit fibre direction m (reference frame) and modulus E (Genesis' `Muscle.stiffness`,
its E) adds to its elastic stress

    P_a = E a (F m) m^T / l,   l = |F m|  (the fibre stretch),

the gradient dpsi_a/dF of the active energy density psi_a = E a (l - 1) (J/m^3): a contractile tension E a along the
deformed fibre for a > 0. This is Genesis' formula (`stress += stiffness * (actu / l) * F @ m m^T`, with l computed
as `(F m).norm(1e-12)` = sqrt(|F m|^2 + 1e-12), used here too); the fibre model is the active term of Teran et al.
2003 ("Finite volume methods for the simulation of skeletal muscle", SCA), with a constant activation-times-modulus
in place of their force-length curve. Genesis applies it in its explicit solver only; here the implicit solver uses it
too (energy, gradient and the Hessian below).

Its Hessian: dP_a = E a / l (dF m - n (n . dF m)) m^T, n = F m / l, whose quadratic form
E a / l (|dF m|^2 - (n . dF m)^2) is >= 0 for a >= 0 and <= 0 for a < 0; `active_dstress` keeps its positive
semi-definite part (a clamped at 0), so the implicit solver's CG matrix stays positive definite (Newton then uses an
approximate Hessian for a < 0; the gradient, hence the solution, is exact).

Shapes: `F, dF (B, ne, 3, 3)`, fibre directions `m (P, ne, 3)`, moduli `E (P, ne)` Pa, activations `actu (B, ne)`.
"""

from __future__ import annotations

import torch

from ...math.small import dot, mv

__all__ = ["active_stress", "active_dstress", "active_energy", "FIBRE_EPS"]

FIBRE_EPS = 1e-12  #: l = sqrt(|F m|^2 + FIBRE_EPS), Genesis' `norm(1e-12)`


def _fibre(F, m):
    Fm = mv(F, m)  # (B, ne, 3) the deformed fibre
    return Fm, torch.sqrt(dot(Fm, Fm) + FIBRE_EPS)


def active_stress(F: torch.Tensor, m: torch.Tensor, E: torch.Tensor, actu: torch.Tensor) -> torch.Tensor:
    """P_a = E a (F m) m^T / l `(B, ne, 3, 3)` Pa."""
    Fm, l = _fibre(F, m)
    return (E * actu / l)[..., None, None] * Fm[..., :, None] * m[..., None, :]


def active_energy(F: torch.Tensor, m: torch.Tensor, E: torch.Tensor, actu: torch.Tensor) -> torch.Tensor:
    """psi_a = E a (l - 1) `(B, ne)` J/m^3 (0 at rest up to FIBRE_EPS / 2 E a)."""
    return E * actu * (_fibre(F, m)[1] - 1.0)


def active_dstress(F: torch.Tensor, dF: torch.Tensor, m: torch.Tensor, E: torch.Tensor,
                   actu: torch.Tensor) -> torch.Tensor:
    """The positive semi-definite part of dP_a : dF, `E max(a, 0) / l (dF m - n (n . dF m)) m^T` `(B, ne, 3, 3)`."""
    Fm, l = _fibre(F, m)
    n = Fm / l[..., None]
    dFm = mv(dF, m)
    t = dFm - dot(n, dFm)[..., None] * n
    return (E * actu.clamp_min(0.0) / l)[..., None, None] * t[..., :, None] * m[..., None, :]

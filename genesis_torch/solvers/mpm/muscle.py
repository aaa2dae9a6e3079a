"""Active stress of MPM muscles (Genesis 1.4.5's `gs.materials.MPM.Muscle`, `engine/materials/MPM/muscle.py`) and the
state that carries their activations.

A particle with activation a, unit fibre direction m (rest frame) and modulus E (Genesis' `Muscle.stiffness`, its E)
adds to its elastic Kirchhoff stress (the stress the MLS-MPM momentum update takes, constitutive.py)

    tau_a = E a (F m)(F m)^T    (Pa),

Genesis' `stress += stiffness * actu * F_tmp @ (m m^T) @ F_tmp^T`. It is P_a F^T with P_a = E a (F m) m^T, the gradient
of the active energy density psi_a = E a (|F m|^2 - 1) / 2 (J/m^3): for a > 0 a contractile tension along the
deformed fibre that grows with the fibre stretch l = |F m| as E a l^2 (Kirchhoff) or E a l (first Piola-Kirchhoff).
Genesis' FEM muscle uses psi_a = E a (l - 1) instead (a constant tension E a, solvers/fem/muscle.py, Teran et al.
2003): the two solvers' formulas differ in Genesis and are kept as Genesis has them. They agree at l = 1, the
undeformed fibre (both P_a = E a m m^T); elsewhere the MPM tension is l times the FEM one, so the FEM helper (whose
1/l factor is exactly that difference) is not reused.

With a plain neo-Hookean bar (constitutive.neohookean_tau) and fibres along x, a free uniaxial equilibrium
F = diag(s, t, t) solves tau_xx = mu (s^2 - 1) + lam ln(s t^2) + E a s^2 = 0 and tau_yy = mu (t^2 - 1) + lam ln(s t^2)
= 0 (`bar_equilibrium`). To first order in a: 2 mu e_s + lam (e_s + 2 e_t) = -E a, 2 mu e_t + lam (e_s + 2 e_t) = 0,
i.e. uniaxial stress -E a: s = 1 - a, t = 1 + nu a, the FEM test's analytic solution (tests/fem/test_fem_muscle.py).

Shapes: `F (B, n, 3, 3)`, fibre directions `m (P, n, 3)`, moduli `E (P, n)` Pa, activations `actu (B, n)`.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ...math.small import mv
from .solver import MPMState

__all__ = ["active_tau", "MPMMuscleState", "bar_equilibrium", "DEFAULT_DIRECTION"]

DEFAULT_DIRECTION = (0.0, 0.0, 1.0)  #: a particle's fibre direction before `set_muscle` (+z, as Genesis)


def active_tau(F: torch.Tensor, m: torch.Tensor, E: torch.Tensor, actu: torch.Tensor) -> torch.Tensor:
    """tau_a = E a (F m)(F m)^T `(B, n, 3, 3)` Pa (only +, *: the same bits env chunk by env chunk)."""
    Fm = mv(F, m)  # (B, n, 3) the deformed fibre
    return (E * actu)[..., None, None] * Fm[..., :, None] * Fm[..., None, :]


@dataclasses.dataclass(frozen=True)
class MPMMuscleState(MPMState):
    """`MPMState` of a scene with `MPM.Muscle` entities: the fields of `MPMState` and the activations (DESIGN.md §4:
    they determine the future, so they are state, as `FEMState.actu`). Same checkpoint prefix, one more key."""

    actu: torch.Tensor = None  #: (B, n) activation of every particle (`MPMEntity.set_actuation`; 0: passive)

    @classmethod
    def extend(cls, state: MPMState, actu: torch.Tensor) -> "MPMMuscleState":
        """`state`'s fields with the activations `actu (B, n)`."""
        return cls(**{n: getattr(state, n) for n in MPMState.field_names()}, actu=actu)


def bar_equilibrium(mu: float, lam: float, E: float, a: float, iterations: int = 50) -> tuple[float, float]:
    """The axial and lateral stretches (s, t) of a free neo-Hookean muscle bar with fibres along its axis and
    activation `a`: the root of tau_xx = mu (s^2 - 1) + lam ln(s t^2) + E a s^2 = 0, tau_yy = mu (t^2 - 1) +
    lam ln(s t^2) = 0, by Newton's method from (1, 1). Raises `ValueError` if it does not converge."""
    s, t = 1.0, 1.0
    for _ in range(iterations):
        L = lam * math.log(s * t * t)
        r = (mu * (s * s - 1) + L + E * a * s * s, mu * (t * t - 1) + L)
        j = ((2 * mu * s + lam / s + 2 * E * a * s, 2 * lam / t), (lam / s, 2 * mu * t + 2 * lam / t))
        d = j[0][0] * j[1][1] - j[0][1] * j[1][0]
        ds = (r[0] * j[1][1] - r[1] * j[0][1]) / d
        dt = (j[0][0] * r[1] - j[1][0] * r[0]) / d
        s, t = s - ds, t - dt
        if abs(ds) + abs(dt) < 1e-15:
            return s, t
    raise ValueError(f"bar_equilibrium(mu={mu}, lam={lam}, E={E}, a={a}): Newton did not converge.")

"""FEM materials: `gs.materials.FEM.Elastic` and `gs.materials.FEM.Muscle` (Genesis 1.4.5's names, arguments and
defaults); `gs.materials.FEM.Cloth` is refused (Genesis simulates it only through its IPC coupler).

A material picks the FEM solver for an entity and carries its constitutive parameters; the energies themselves, with
their sources, are in `genesis_torch/solvers/fem/constitutive.py` (docs/fem.md). Units: `E`, `hydroelastic_modulus`
in Pa; `rho` in kg/m^3.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["Elastic", "Muscle", "Cloth", "MATERIALS", "MODELS"]

MODELS = ("linear", "stable_neohookean", "linear_corotated")  #: Genesis' constitutive models


def _number(name: str, value, *, positive: bool = True, allow_zero: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and positive:
        ok = value > 0 or (allow_zero and value == 0)
    if not ok:
        rule = "a non-negative" if allow_zero else "a positive" if positive else "a"
        raise InvalidInputError(f"FEM.Elastic({name}={value!r}): expected {rule} finite number.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Elastic:
    """Hyperelastic solid meshed into tetrahedra (Genesis' `gs.materials.FEM.Elastic`).

    Args:
        E: Young's modulus (Pa), default 1e6.
        nu: Poisson's ratio in (-1, 0.5), default 0.2.
        rho: density (kg/m^3), default 1000; vertex masses are the lumped element masses rho V / 4.
        model: "linear" (small-strain elasticity), "linear_corotated" (Mueller & Gross 2004, the corotated energy of
            Sifakis & Barbic 2012) or "stable_neohookean" (Smith, de Goes & Kim 2018); Genesis' deprecated spelling
            "stable_neohooken" is accepted and stored as "stable_neohookean".
        hydroelastic_modulus, friction_mu, contact_resistance: Genesis' contact parameters of its hydroelastic / IPC
            couplers. Validated and stored; `friction_mu` is the Coulomb coefficient of the vertices against rigid
            geoms here (the floor has restitution 0 and no friction, as Genesis' FloorBoundary); the other two have no
            effect (there is no hydroelastic or IPC coupling).

    The Lamé parameters are mu = E / (2 (1 + nu)) and lam = E nu / ((1 + nu)(1 - 2 nu)) (as Genesis; for the stable
    neo-Hookean energy they are used as given, without Smith et al.'s re-parameterisation, see docs/fem.md).
    """

    E: float = 1e6
    nu: float = 0.2
    rho: float = 1000.0
    hydroelastic_modulus: float = 1e7
    friction_mu: float = 0.1
    contact_resistance: float | None = None
    model: str = "linear"

    def __post_init__(self):
        _number("E", self.E)
        _number("rho", self.rho)
        _number("hydroelastic_modulus", self.hydroelastic_modulus)
        _number("friction_mu", self.friction_mu, allow_zero=True)
        if self.contact_resistance is not None:
            _number("contact_resistance", self.contact_resistance)
        nu = _number("nu", self.nu, positive=False)
        if not -1.0 < nu < 0.5:
            raise InvalidInputError(f"FEM.Elastic(nu={self.nu!r}): Poisson's ratio must lie in (-1, 0.5).")
        if self.model == "stable_neohooken":  # Genesis' deprecated spelling
            object.__setattr__(self, "model", "stable_neohookean")
        if self.model not in MODELS:
            raise InvalidInputError(f"FEM.Elastic(model={self.model!r}): use one of {MODELS}.")
        if self.model == "stable_neohookean" and nu <= 0:
            raise InvalidInputError(f"FEM.Elastic(nu={self.nu!r}, model='stable_neohookean'): the energy's rest volume "
                                    "ratio 1 + 3 mu / (4 lam) needs lam > 0, i.e. nu in (0, 0.5).")

    @property
    def mu(self) -> float:
        """Shear modulus (Pa), E / (2 (1 + nu))."""
        return self.E / (2.0 * (1.0 + self.nu))

    @property
    def lam(self) -> float:
        """Lamé's first parameter (Pa), E nu / ((1 + nu)(1 - 2 nu))."""
        return self.E * self.nu / ((1.0 + self.nu) * (1.0 - 2.0 * self.nu))

    @property
    def wave_speed(self) -> float:
        """Pressure-wave speed (m/s) of the undeformed material, sqrt((lam + 2 mu) / rho): what bounds an explicit
        substep (docs/fem.md, "Stability")."""
        return math.sqrt((self.lam + 2.0 * self.mu) / self.rho)

    def fingerprint(self) -> dict:
        return {"type": "FEM.Elastic", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Muscle(Elastic):
    """An actuated elastic solid (Genesis' `gs.materials.FEM.Muscle`): `Elastic` plus an active fibre stress.

    Args: those of `Elastic` (same defaults) and
        n_groups: number of muscle groups (positive int, default 1); `entity.set_muscle(muscle_group=...)` assigns
            each element a group, `entity.set_actuation(actu)` one activation per group.

    Each element adds Genesis' active stress P_a = stiffness (a / l) F m m^T (stiffness = the element's E, a its
    activation, m its unit fibre direction (`set_muscle(muscle_direction=...)`, default +z as Genesis), l = |F m|),
    the gradient of psi_a = stiffness a (l - 1): for a > 0 a contractile tension along the fibre (docs/fem.md).
    """

    n_groups: int = 1

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.n_groups, bool) or not isinstance(self.n_groups, int) or self.n_groups < 1:
            raise InvalidInputError(f"FEM.Muscle(n_groups={self.n_groups!r}): expected a positive int.")

    @property
    def stiffness(self) -> float:
        """The active stress' modulus (Pa): E (Genesis' `Muscle.stiffness`)."""
        return self.E

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "type": "FEM.Muscle"}


class Cloth:
    """Genesis' `gs.materials.FEM.Cloth` (shell elements) exists only with its IPC coupler, which genesis-torch does
    not have: constructing it raises `UnsupportedFeatureError`. Use `gs.materials.PBD.Cloth` for cloth."""

    def __init__(self, **kwargs):
        raise UnsupportedFeatureError(
            "gs.materials.FEM.Cloth needs Genesis' IPC coupler (shell elements with incremental-potential contact), "
            "which genesis-torch does not implement; use gs.materials.PBD.Cloth (position-based cloth) instead.")


MATERIALS = (Elastic,)  #: Muscle is an Elastic

"""MPM materials: `gs.materials.MPM.Elastic | Muscle | ElastoPlastic | Snow | Sand | Liquid` (Genesis's names and defaults).

A material picks the MPM solver for an entity and carries its constitutive parameters. Every class validates at
construction and raises `InvalidInputError` naming the bad parameter. The constitutive models themselves, with the
papers and equations they follow, are in `genesis_torch/solvers/mpm/constitutive.py`.

Units: `E`, `mu`, `lam`, `von_mises_yield_stress` in Pa; `rho` in kg/m^3; `friction_angle` in degrees.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["Elastic", "Muscle", "ElastoPlastic", "Snow", "Sand", "Liquid"]

_SAMPLERS = ("regular", "random")


def _positive(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{owner}({name}={value!r}): expected a positive finite number.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class _Base:
    """Shared parameters: Young's modulus `E` (Pa), Poisson ratio `nu`, density `rho` (kg/m^3), optional Lamé
    parameters `lam`/`mu` (Pa) overriding those from `E`/`nu`, and the particle `sampler` ("regular" lattice at
    `particle_size`, or "random": uniform points, one per lattice cell on average, seeded by the entity index)."""

    E: float = 1e6
    nu: float = 0.2
    rho: float = 1000.0
    lam: float | None = None
    mu: float | None = None
    sampler: str = "regular"

    def __post_init__(self):
        owner = type(self).__name__
        _positive(owner, "E", self.E)
        _positive(owner, "rho", self.rho)
        if isinstance(self.nu, bool) or not isinstance(self.nu, (int, float)) or not (0 <= self.nu < 0.5):
            raise InvalidInputError(f"{owner}(nu={self.nu!r}): Poisson's ratio must lie in [0, 0.5).")
        for name in ("lam", "mu"):
            if getattr(self, name) is not None:
                _positive(owner, name, getattr(self, name))
        if self.sampler == "pbs":
            raise UnsupportedFeatureError(f"{owner}(sampler='pbs'): Poisson-disk sampling is not implemented; use "
                                          "sampler='regular' or 'random'.")
        if self.sampler not in _SAMPLERS:
            raise InvalidInputError(f"{owner}(sampler={self.sampler!r}): use one of {_SAMPLERS}.")
        self._validate()

    def _validate(self) -> None:
        pass

    @property
    def lame(self) -> tuple[float, float]:
        """(mu, lam) in Pa: the given values, else mu = E/(2(1+nu)), lam = E nu/((1+nu)(1-2nu))."""
        mu = self.E / (2 * (1 + self.nu)) if self.mu is None else self.mu
        lam = self.E * self.nu / ((1 + self.nu) * (1 - 2 * self.nu)) if self.lam is None else self.lam
        return mu, lam

    @property
    def wave_speed(self) -> float:
        """Speed (m/s) of pressure waves in the undeformed material, sqrt((lam + 2 mu) / rho) (the P-wave modulus of
        linear elasticity): what bounds an explicit substep, dt <= dx / c (the CFL condition)."""
        mu, lam = self.lame
        return math.sqrt((lam + 2 * mu) / self.rho)

    def fingerprint(self) -> dict:
        return {"type": f"MPM.{type(self).__name__}", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Elastic(_Base):
    """Hyperelastic solid. `model`: "corotation" (fixed corotated, Stomakhin et al. 2012) or "neohooken"
    (compressible neo-Hookean, Bonet & Wood 2008), Genesis's spellings."""

    E: float = 3e5
    model: str = "corotation"

    def _validate(self):
        if self.model not in ("corotation", "neohooken"):
            raise InvalidInputError(f"Elastic(model={self.model!r}): use 'corotation' or 'neohooken'.")


@dataclasses.dataclass(frozen=True)
class Muscle(Elastic):
    """An actuated elastic solid (Genesis' `gs.materials.MPM.Muscle`): `Elastic` (default E = 1e6 Pa and model
    "neohooken", as Genesis) plus an active fibre stress.

    Args: those of `Elastic` and
        n_groups: number of muscle groups (positive int, default 1); `entity.set_muscle(muscle_group=...)` assigns
            each particle a group, `entity.set_actuation(actu)` one activation per group.

    Each particle adds Genesis' active Kirchhoff stress tau_a = stiffness a (F m)(F m)^T (stiffness = E, a its
    activation, m its unit fibre direction, `set_muscle(muscle_direction=...)`, default +z as Genesis): for a > 0 a
    contractile tension along the fibre (solvers/mpm/muscle.py, docs/mpm.md "Muscle").
    """

    E: float = 1e6
    model: str = "neohooken"
    n_groups: int = 1

    def _validate(self):
        super()._validate()
        if isinstance(self.n_groups, bool) or not isinstance(self.n_groups, int) or self.n_groups < 1:
            raise InvalidInputError(f"Muscle(n_groups={self.n_groups!r}): expected a positive int.")

    @property
    def stiffness(self) -> float:
        """The active stress' modulus (Pa): E (Genesis' `Muscle.stiffness`)."""
        return self.E


@dataclasses.dataclass(frozen=True)
class ElastoPlastic(_Base):
    """Corotated elasticity with plasticity: von Mises radial return on the Hencky strain with yield stress
    `von_mises_yield_stress` (Pa) when `use_von_mises`, else singular values clamped to
    `[1 - yield_lower, 1 + yield_higher]` (Stomakhin et al. 2013 without hardening)."""

    yield_lower: float = 2.5e-2
    yield_higher: float = 4.5e-3
    use_von_mises: bool = True
    von_mises_yield_stress: float = 10000.0

    def _validate(self):
        _check_yield(self)
        if not isinstance(self.use_von_mises, bool):
            raise InvalidInputError(f"ElastoPlastic(use_von_mises={self.use_von_mises!r}): expected True or False.")
        _positive("ElastoPlastic", "von_mises_yield_stress", self.von_mises_yield_stress)


@dataclasses.dataclass(frozen=True)
class Snow(_Base):
    """Snow (Stomakhin et al. 2013): corotated elasticity, critical compression/stretch `yield_lower`/`yield_higher`
    (theta_c, theta_s) and hardening exp(`hardening` (1 - Jp)) of both Lamé parameters."""

    yield_lower: float = 2.5e-2
    yield_higher: float = 4.5e-3
    hardening: float = 10.0

    def _validate(self):
        _check_yield(self)
        if isinstance(self.hardening, bool) or not isinstance(self.hardening, (int, float)) or \
                not math.isfinite(self.hardening) or self.hardening < 0:
            raise InvalidInputError(f"Snow(hardening={self.hardening!r}): expected a finite number >= 0 (xi = 10 in "
                                    "Stomakhin et al. 2013).")


@dataclasses.dataclass(frozen=True)
class Sand(_Base):
    """Dry sand (Klár et al. 2016): St. Venant-Kirchhoff on the Hencky strain with Drucker-Prager plasticity;
    `friction_angle` in degrees (0 < angle < 90).

    As in Genesis, the cone is Klár et al.'s fit to the Mohr-Coulomb angle in triaxial compression, which in plane
    strain (a quasi-2-D flow: a channel, a long slope) acts as a larger angle: `friction_angle=30` resists like
    phi = 43.9 degrees there (`plane_strain_angle`), and a granular column collapse runs out ~30 % short of the
    experiments (docs/mpm.md, "Granular collapse"). `Sand.plane_strain(friction_angle)` gives the material whose
    cone matches a Mohr-Coulomb angle in plane strain.

    Dense sand (ours): `dilatancy_angle` psi_0 > 0 (degrees) with `critical_volume_strain` e_c > 0 makes the sand
    dilate while it flows, at psi = psi_0 (1 - e_v / e_c) with its plastic log volume gain e_v (`Jp`), and resist at
    phi = phi_cs + 0.8 psi (Bolton 1986, plane strain), phi_cs = `plane_strain_angle` the critical-state angle: it
    starts at the peak and softens to the critical state as it loosens (`dilatancy`, solvers/mpm/constitutive.py).
    The defaults (0, 0) are Genesis' material, bitwise today's results."""

    friction_angle: float = 45.0
    #: peak dilatancy angle psi_0 (degrees, ours, not Genesis'): 0 (default) is Klár et al.'s flow along dev(tau)
    #: only, bitwise today's and Genesis' material; > 0 makes the sand dense: it dilates while it flows and softens
    #: to its critical state (see `dilatancy`), `friction_angle` then being the critical-state (constant-volume) cone
    dilatancy_angle: float = 0.0
    #: plastic volumetric strain ln(det F_P) at which the dilatancy has decayed to 0 and the friction to the critical
    #: state (ours; needed > 0 with `dilatancy_angle` > 0, ignored at 0)
    critical_volume_strain: float = 0.0

    def _validate(self):
        a = self.friction_angle
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 < a < 90):
            raise InvalidInputError(f"Sand(friction_angle={a!r}): expected degrees strictly between 0 and 90.")
        psi, ec = self.dilatancy_angle, self.critical_volume_strain
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not (0 <= psi < 90):
            raise InvalidInputError(f"Sand(dilatancy_angle={psi!r}): expected degrees in [0, 90) (0: no dilatancy).")
        if isinstance(ec, bool) or not isinstance(ec, (int, float)) or not math.isfinite(ec) or ec < 0:
            raise InvalidInputError(f"Sand(critical_volume_strain={ec!r}): expected a finite number >= 0 (the plastic "
                                    "log volume gain at the critical state, e.g. 0.05).")
        if psi > 0:
            if ec <= 0:
                raise InvalidInputError(f"Sand(dilatancy_angle={psi!r}, critical_volume_strain={ec!r}): a dilatant "
                                        "sand needs critical_volume_strain > 0 (e.g. 0.1), where its dilatancy stops.")
            if self.plane_strain_angle + 0.8 * psi >= 90:
                raise InvalidInputError(
                    f"Sand(friction_angle={a!r}, dilatancy_angle={psi!r}): the peak plane-strain angle "
                    f"{self.plane_strain_angle:.1f} + 0.8 * {psi!r} (Bolton 1986) reaches 90 degrees; lower either "
                    "(friction_angle below 42.2 degrees, see Sand.plane_strain).")

    @property
    def dilatancy(self) -> tuple[float, float, float] | None:
        """None without dilatancy, else (phi_cs, psi_0, e_c): the critical-state plane-strain Mohr-Coulomb angle
        (`plane_strain_angle`, degrees), the peak dilatancy angle (degrees) and `critical_volume_strain`.

        A particle's plastic log volume gain e_v = ln(det F_P) (its `Jp`, at most e_c of it counted as dilatancy, the
        rest as the tip's open gap of the volume correction) sets psi = psi_0 (1 - e_v / e_c) >= 0 and the mobilized
        angle phi = phi_cs + 0.8 psi (Bolton 1986, Géotechnique 36, 65, plane strain): dense sand starts at the peak
        phi_cs + 0.8 psi_0 and softens to phi_cs as it dilates to its critical state (constitutive.py)."""
        if self.dilatancy_angle == 0:
            return None
        return self.plane_strain_angle, float(self.dilatancy_angle), float(self.critical_volume_strain)

    @property
    def plane_strain_angle(self) -> float:
        """The Mohr-Coulomb friction angle (degrees) this material has in plane-strain plastic flow.

        The Drucker-Prager cone of Klár et al. 2016 §7.3 is sqrt(J2) <= A p with A = 6 sin(phi) / (sqrt(3) (3 -
        sin(phi))) (their alpha = sqrt(2/3) 2 sin(phi) / (3 - sin(phi)), written for ||dev tau||_F = sqrt(2 J2) and
        p = -tr(tau) / 3): the cone through the compression meridian of the Mohr-Coulomb hexagon (one of the standard
        Drucker-Prager matches; Chen & Mizuno 1990, "Nonlinear Analysis in Soil Mechanics", Elsevier). Their return
        mapping flows along dev(tau) only (no dilatancy), so plane strain (d eps_2 = 0) keeps s_2 = 0, sigma_2 =
        (sigma_1 + sigma_3) / 2 = -p, sqrt(J2) = (sigma_1 - sigma_3) / 2, and the cone reads (sigma_1 - sigma_3) / 2
        <= A p: Mohr-Coulomb with sin(phi_ps) = A. From friction_angle = 42.2 degrees on (Genesis' default 45
        included) A >= 1: no compressive plane-strain state reaches the cone, and this returns 90."""
        s = math.sin(math.radians(self.friction_angle))
        return math.degrees(math.asin(min(1.0, 6.0 * s / (math.sqrt(3.0) * (3.0 - s)))))

    @classmethod
    def plane_strain(cls, friction_angle: float = 30.0, **kwargs) -> "Sand":
        """A `Sand` whose cone resists plane-strain flow like Mohr-Coulomb with `friction_angle` (degrees, 0 < angle
        < 90; the measured angle of a quasi-2-D experiment): `Sand(friction_angle=phi_k, **kwargs)` with phi_k the
        angle of Klár et al.'s formula giving A = sin(friction_angle) (see `plane_strain_angle`), sin(phi_k) =
        3 sqrt(3) A / (6 + sqrt(3) A): 30 -> 22.23 degrees (always below 42.3 degrees). Genesis given the returned
        `friction_angle` runs the same material."""
        a = friction_angle
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 < a < 90):
            raise InvalidInputError(f"Sand.plane_strain(friction_angle={a!r}): expected degrees strictly between 0 "
                                    "and 90.")
        A = math.sin(math.radians(a))
        return cls(friction_angle=math.degrees(math.asin(3.0 * math.sqrt(3.0) * A / (6.0 + math.sqrt(3.0) * A))),
                   **kwargs)


@dataclasses.dataclass(frozen=True)
class Liquid(_Base):
    """Weakly compressible liquid: pressure from the volume ratio J only, Kirchhoff stress lam J (J - 1) I, with the
    deformation gradient reset to J^(1/3) I each substep (as Genesis's MPM liquid). `viscous=True` is not
    implemented (raises)."""

    viscous: bool = False

    @property
    def wave_speed(self) -> float:
        """Speed of sound (m/s) of the liquid, sqrt(lam / rho): its stress lam J (J - 1) has bulk modulus lam at J = 1."""
        return math.sqrt(self.lame[1] / self.rho)

    def _validate(self):
        if not isinstance(self.viscous, bool):
            raise InvalidInputError(f"Liquid(viscous={self.viscous!r}): expected True or False.")
        if self.viscous:
            raise UnsupportedFeatureError("Liquid(viscous=True): viscous MPM liquid is not implemented; use "
                                          "viscous=False.")


def _check_yield(m) -> None:
    owner = type(m).__name__
    for name in ("yield_lower", "yield_higher"):
        v = getattr(m, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < 1):
            raise InvalidInputError(f"{owner}({name}={v!r}): expected a fraction in [0, 1).")


MATERIALS = (Elastic, ElastoPlastic, Snow, Sand, Liquid)  #: Muscle is an Elastic

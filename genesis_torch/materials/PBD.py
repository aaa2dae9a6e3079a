"""PBD materials: `gs.materials.PBD.Cloth | Elastic | Liquid | Particle` (Genesis 1.4.5's names and defaults).

A material picks the PBD solver for an entity and carries its constraint parameters (docs/pbd.md). Every class
validates at construction and raises `InvalidInputError` naming the bad parameter.

Units: `rho` kg/m^2 for `Cloth` (mass = rho * surface area), kg/m^3 otherwise. Compliances are XPBD's alpha
(Macklin, Mueller & Chentanez 2016), the inverse stiffness of each constraint: `stretch_compliance` m/N (C in m),
`bending_compliance` 1/(N m) (C the dihedral angle in rad), `volume_compliance` m^5/N (C the volume in m^3; energy C^2 / (2 alpha)).
Relaxations are the factors (in (0, 1], Genesis' meaning: smaller weakens the constraint) each projection's Lagrange
multiplier step is scaled by. Friction coefficients are Coulomb's (position-level friction of Macklin et al. 2014).
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["Base", "Cloth", "Elastic", "Liquid", "Particle", "MATERIALS"]

_SAMPLERS = ("regular", "random")


def _number(owner: str, name: str, value, *, positive=False, relax=False) -> None:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if not bad:
        bad = (value <= 0 if positive else value < 0) or (relax and value > 1)
    if bad:
        rule = "in (0, 1]" if relax else ("> 0" if positive else ">= 0")
        raise InvalidInputError(f"{owner}({name}={value!r}): expected a finite number {rule}.")


@dataclasses.dataclass(frozen=True)
class Base:
    """Base of the PBD materials (not instantiated directly)."""

    _POSITIVE = ("rho",)
    _RELAX = ()

    def __post_init__(self):
        owner = f"PBD.{type(self).__name__}"
        if type(self) is Base:
            raise InvalidInputError("gs.materials.PBD.Base is abstract; use PBD.Cloth, Elastic, Liquid or Particle.")
        for f in dataclasses.fields(self):
            if f.name == "sampler":
                continue
            _number(owner, f.name, getattr(self, f.name), positive=f.name in self._POSITIVE,
                    relax=f.name in self._RELAX)
        sampler = getattr(self, "sampler", None)
        if sampler == "pbs":
            raise UnsupportedFeatureError(f"{owner}(sampler='pbs'): Poisson-disk sampling is not implemented; use "
                                          "sampler='regular' or 'random'.")
        if sampler is not None and sampler not in _SAMPLERS:
            raise InvalidInputError(f"{owner}(sampler={sampler!r}): use one of {_SAMPLERS}.")

    def fingerprint(self) -> dict:
        return {"type": f"PBD.{type(self).__name__}", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Cloth(Base):
    """Cloth from a triangle `Mesh`: a distance constraint on every edge, a dihedral-angle bending constraint on every
    interior edge (the two triangles sharing it), air drag `-air_resistance |v| v` (N). Genesis' defaults."""

    rho: float = 4.0
    static_friction: float = 0.15
    kinetic_friction: float = 0.15
    stretch_compliance: float = 1e-7
    bending_compliance: float = 1e-5
    stretch_relaxation: float = 0.3
    bending_relaxation: float = 0.1
    air_resistance: float = 1e-3

    _RELAX = ("stretch_relaxation", "bending_relaxation")


@dataclasses.dataclass(frozen=True)
class Elastic(Base):
    """Volumetric solid from a closed surface (Mesh, Box, Sphere, Cylinder), tetrahedralised (tetgen, the optional
    extra): distance constraints on the tet edges and a volume constraint per tetrahedron. Genesis' defaults;
    `bending_compliance` / `bending_relaxation` are validated and unused, as in Genesis' PBD3DEntity."""

    rho: float = 1000.0
    static_friction: float = 0.15
    kinetic_friction: float = 0.15
    stretch_compliance: float = 0.0
    bending_compliance: float = 0.0
    volume_compliance: float = 0.0
    stretch_relaxation: float = 0.1
    bending_relaxation: float = 0.1
    volume_relaxation: float = 0.1

    _RELAX = ("stretch_relaxation", "bending_relaxation", "volume_relaxation")


@dataclasses.dataclass(frozen=True)
class Liquid(Base):
    """Position-based fluid (Macklin & Mueller 2013): rest density `rho` (kg/m^3), the density constraint's step
    factor `density_relaxation`, XSPH viscosity `viscosity_relaxation`. Particles sampled at `particle_size`."""

    rho: float = 1000.0
    sampler: str = "random"
    density_relaxation: float = 0.2
    viscosity_relaxation: float = 0.01

    _RELAX = ("density_relaxation",)


@dataclasses.dataclass(frozen=True)
class Particle(Base):
    """Free particles without interaction among themselves: gravity, the domain walls and the rigid geoms only.
    Mass rho * particle_size^3 each."""

    rho: float = 1000.0
    sampler: str = "random"


MATERIALS = (Cloth, Elastic, Liquid, Particle)

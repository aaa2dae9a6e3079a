"""SPH materials: `gs.materials.SPH.Liquid` (Genesis 1.4.5's names and defaults).

A material picks the SPH solver for an entity and carries its parameters; it validates at construction and raises
`InvalidInputError` naming the bad parameter. The equations that use them are in `genesis_torch/solvers/sph/` and
docs/sph.md. Units: `rho` kg/m^3, `stiffness` Pa (N/m^2), `mu` and `gamma` as Genesis defines them (below).
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["Base", "Liquid"]

_SAMPLERS = ("regular", "random")


def _number(name: str, value, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (value <= 0 if positive else value < 0):
        rule = "a positive" if positive else "a non-negative"
        raise InvalidInputError(f"SPH.Liquid({name}={value!r}): expected {rule} finite number.")


@dataclasses.dataclass(frozen=True)
class Base:
    """Base of the SPH materials: the particle `sampler` ("regular" lattice at `SPHOptions.particle_size`, or
    "random": uniform points, one per lattice cell on average, seeded by the entity index). Genesis' "pbs"
    (Poisson-disk) sampler is not implemented and raises."""

    sampler: str = "regular"

    def __post_init__(self):
        if isinstance(self.sampler, str) and self.sampler.split("-")[0] == "pbs":
            raise UnsupportedFeatureError(f"SPH.{type(self).__name__}(sampler={self.sampler!r}): Poisson-disk "
                                          "sampling is not implemented; use sampler='regular' or 'random'.")
        if self.sampler not in _SAMPLERS:
            raise InvalidInputError(f"SPH.{type(self).__name__}(sampler={self.sampler!r}): use one of {_SAMPLERS}.")
        self._validate()

    def _validate(self) -> None:
        pass

    def fingerprint(self) -> dict:
        return {"type": f"SPH.{type(self).__name__}", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Liquid(Base):
    """A liquid (Genesis' `gs.materials.SPH.Liquid`).

    Attributes:
        rho: rest density rho0 (kg/m^3).
        stiffness: WCSPH equation-of-state stiffness B (Pa): p = B ((rho / rho0)**exponent - 1) (Tait; Becker &
            Teschner 2007, eq. 7). Unused by DFSPH, whose pressure follows from incompressibility.
        exponent: the Tait exponent (7 for water).
        mu: viscosity, Genesis' coefficient nu of the SPH Laplacian viscosity (Koschier et al. 2019 tutorial,
            eq. 20): a_i += 2 (d + 2) nu sum_j (m_j / rho_j) (v_ij . x_ij) / (|x_ij|^2 + 0.01 h^2) grad W_ij, d = 3.
        gamma: surface tension, Genesis' cohesion coefficient (Becker & Teschner 2007, eq. 9 with particle masses):
            a_i -= gamma / m_i sum_j m_j x_ij W(max(|x_ij|, particle_size)).
        sampler: see `Base`; Genesis' default for SPH is "regular".
    """

    rho: float = 1000.0
    stiffness: float = 50000.0
    exponent: float = 7.0
    mu: float = 0.005
    gamma: float = 0.01
    sampler: str = "regular"

    def _validate(self) -> None:
        for name in ("rho", "stiffness", "exponent"):
            _number(name, getattr(self, name), positive=True)
        for name in ("mu", "gamma"):
            _number(name, getattr(self, name), positive=False)


MATERIALS = (Liquid,)

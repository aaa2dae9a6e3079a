"""Materials pick the solver of an entity: `Rigid` (rigid solver) or `MPM.*` (MPM solver)."""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError
from . import MPM

__all__ = ["Rigid", "MPM"]


@dataclasses.dataclass(frozen=True)
class Rigid:
    """Rigid-body material. `rho`: density (kg/m^3) giving the mass of primitive morphs (MJCF keeps its masses)."""

    rho: float = 200.0

    def __post_init__(self):
        if isinstance(self.rho, bool) or not isinstance(self.rho, (int, float)) or not math.isfinite(self.rho) \
                or self.rho <= 0:
            raise InvalidInputError(f"Rigid(rho={self.rho!r}): expected a positive density in kg/m^3.")

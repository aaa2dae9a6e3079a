"""Materials pick the solver of an entity: `Rigid` (rigid solver) or `MPM.*` (MPM solver)."""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError
from . import MPM

__all__ = ["Rigid", "MPM"]


@dataclasses.dataclass(frozen=True)
class Rigid:
    """Rigid-body material. `rho`: density (kg/m^3) giving the mass of primitive morphs (MJCF keeps its masses).
    `friction`: sliding friction coefficient of every geom of the entity (None keeps the file's / MuJoCo's default 1);
    a contact uses the larger coefficient of its two geoms, as in Genesis and MuJoCo."""

    rho: float = 200.0
    friction: float | None = None

    def __post_init__(self):
        if isinstance(self.rho, bool) or not isinstance(self.rho, (int, float)) or not math.isfinite(self.rho) \
                or self.rho <= 0:
            raise InvalidInputError(f"Rigid(rho={self.rho!r}): expected a positive density in kg/m^3.")
        f = self.friction
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f <= 0):
            raise InvalidInputError(f"Rigid(friction={f!r}): expected a positive friction coefficient (e.g. 1.0) or "
                                    "None.")

"""`gs.materials.Tool`: Genesis 1.4.5's kinematic, differentiable tool (a mesh moved by its own pose / velocity
state that pushes particle matter one way)."""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError

__all__ = ["Tool"]


@dataclasses.dataclass(frozen=True)
class Tool:
    """Tool material (Genesis 1.4.5 `gs.materials.Tool` names and defaults), for `gs.morphs.Mesh` entities only.

    `friction`: Coulomb coefficient of the tool's surface against MPM matter (the grid-velocity projection of the MPM
    colliders, solvers/mpm/colliders.py). `collision`: whether particles collide with the tool at all.
    Accepted without effect: `coup_softness` (the MPM collider projects with full weight at phi <= 0 and none outside;
    Genesis' weight exp(-phi / softness) also acts a few mm outside) and `sdf_res` (the tool's SDF grid follows the MPM
    collider rule: a cell of half the MPM cell, 32..129 samples per axis)."""

    friction: float = 0.0
    coup_softness: float = 0.01
    collision: bool = True
    sdf_res: int = 128

    def __post_init__(self):
        for name in ("friction", "coup_softness"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InvalidInputError(f"Tool({name}={v!r}): expected a finite number >= 0.")
        if not isinstance(self.collision, bool):
            raise InvalidInputError(f"Tool(collision={self.collision!r}): expected True or False.")
        if isinstance(self.sdf_res, bool) or not isinstance(self.sdf_res, int) or self.sdf_res < 1:
            raise InvalidInputError(f"Tool(sdf_res={self.sdf_res!r}): expected a positive int.")

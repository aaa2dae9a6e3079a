"""`gs.materials.Kinematic`: Genesis 1.4.5's material of ghost / reference entities (posed, never simulated)."""

from __future__ import annotations

import dataclasses

from ..errors import InvalidInputError

__all__ = ["Kinematic"]


@dataclasses.dataclass(frozen=True)
class Kinematic:
    """Visualization-only material (Genesis 1.4.5 `gs.materials.Kinematic`): the entity is posed through its qpos /
    base pose (set_qpos, set_dofs_position, set_pos, set_quat, inverse_kinematics) and has forward kinematics, but no
    dynamics, no contacts and no coupling with any other solver; `scene.step()` leaves it where it is.

    `use_visual_raycasting`: accepted without effect (cameras render MuJoCo's geoms; there are no raycaster sensors)."""

    use_visual_raycasting: bool = False

    def __post_init__(self):
        if not isinstance(self.use_visual_raycasting, bool):
            raise InvalidInputError(f"Kinematic(use_visual_raycasting={self.use_visual_raycasting!r}): expected True "
                                    "or False.")

"""Genesis' top-level enums that belong to no options class here (Genesis keeps them in `genesis/constants.py`)."""

from __future__ import annotations

import enum

__all__ = ["friction_cone"]


class friction_cone(enum.IntEnum):
    """Genesis' `gs.friction_cone` (same members and values): the contact friction cone of
    `gs.options.RigidOptions(friction_cone=...)`, i.e. MuJoCo's `cone`: `pyramidal` (MuJoCo's and Genesis' default)
    or `elliptic` (the exact cone)."""

    pyramidal = 0
    elliptic = 1

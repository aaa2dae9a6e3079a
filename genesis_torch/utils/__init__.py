"""Genesis' `genesis.utils` helpers that scripts import: `geom` (quaternions, rotations, transforms)."""

from . import geom

__all__ = ["geom"]

"""Genesis' `genesis.utils` helpers that scripts import: `geom` (quaternions, rotations, transforms) and `misc`
(tensors to NumPy)."""

from . import geom, misc

__all__ = ["geom", "misc"]

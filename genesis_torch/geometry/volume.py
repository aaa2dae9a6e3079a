"""Tetrahedra of a morph's volume (DESIGN.md §8): the closed surface (`surface.surface_mesh`) meshed by `tetgen` (the
Python package) or `pytetwild`, optional extras; no hand-written mesher.

Only the interface is here: the FEM and PBD solver issues wire the backends in. Until then, and whenever neither
package is installed, `tetrahedralize` raises `UnsupportedFeatureError` naming what to install.
"""

from __future__ import annotations

import importlib.util

from ..errors import UnsupportedFeatureError
from .surface import check_solid

__all__ = ["TET_BACKENDS", "tet_backend", "tetrahedralize"]

TET_BACKENDS = ("tetgen", "pytetwild")  #: importable package names, in order of preference


def tet_backend() -> str | None:
    """The first installed package of `TET_BACKENDS`, or None."""
    for name in TET_BACKENDS:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def tetrahedralize(morph, *, max_volume: float | None = None):
    """(vertices `(nv, 3)` float64 m, tetrahedra `(nt, 4)` int64) filling the morph's world-frame surface, each
    tetrahedron at most `max_volume` m^3 (None: no limit). Not implemented yet: raises `UnsupportedFeatureError`
    (naming `tetgen` / `pytetwild` when neither is installed)."""
    check_solid("tetrahedralize", morph)
    backend = tet_backend()
    if backend is None:
        raise UnsupportedFeatureError(
            "tetrahedralize: volume meshes need the optional package 'tetgen' or 'pytetwild', and neither is "
            "installed; pip install tetgen (or pip install pytetwild).")
    raise UnsupportedFeatureError(
        f"tetrahedralize: {backend} is installed, but genesis-torch does not tetrahedralise morphs yet (the FEM and "
        "PBD solvers will); use a particle solver (MPM) for volumes meanwhile.")

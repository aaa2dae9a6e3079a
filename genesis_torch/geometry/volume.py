"""Tetrahedra of a morph's volume (DESIGN.md §8), for the FEM (and PBD) solvers.

* `box_tets`: a structured mesh of a Box, built in: a grid of cells, each split into the 6 tetrahedra of Kuhn's
  subdivision (every tetrahedron runs from the cell's low corner to its high corner along one permutation of the
  axes), so neighbouring cells share faces and the mesh is conforming.
* `tetrahedralize`: any closed surface (Box, Sphere, Cylinder, Mesh through `surface.surface_mesh`) meshed by the
  `tetgen` package (Genesis' mesher, with Genesis' switches "pq<minratio>/<mindihedral>a<maxvolume>Y"), else by
  `pytetwild`; optional extras (`pip install genesis-torch[fem]`). Neither installed: `UnsupportedFeatureError`
  naming the extra. No hand-written mesher.

Every result is `(verts (nv, 3) float64 m, tets (nt, 4) int64)` in the world frame, each tetrahedron positively
oriented: det[x1 - x0, x2 - x0, x3 - x0] > 0.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import math
import os
import sys

import numpy as np

from ..errors import InvalidInputError, UnsupportedFeatureError
from .surface import check_solid, pose_matrix, surface_mesh

__all__ = ["TET_BACKENDS", "TET_DEFAULTS", "tet_backend", "tetrahedralize", "box_tets", "orient_tets"]

TET_BACKENDS = ("tetgen", "pytetwild")  #: importable package names, in order of preference
#: Genesis 1.4.5's tetrahedralisation options of a morph and their defaults (its `TetGenMixin`)
TET_DEFAULTS = {"order": 1, "mindihedral": 10, "minratio": 1.1, "nobisect": True, "quality": True,
                "maxvolume": -1.0, "verbose": 0}
_EXTRA = "pip install 'genesis-torch[fem]' (or pip install tetgen)"


def tet_backend() -> str | None:
    """The first installed package of `TET_BACKENDS`, or None."""
    for name in TET_BACKENDS:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


@contextlib.contextmanager
def _silenced_stdout():
    """Silence the C library's own prints to file descriptor 1 (tetgen's "parsing switches") while meshing."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (e.g. captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def orient_tets(verts: np.ndarray, tets: np.ndarray, owner: str = "tets") -> np.ndarray:
    """`tets (nt, 4)` int64 with two vertices swapped wherever det[x1 - x0, x2 - x0, x3 - x0] < 0. Raises
    `InvalidInputError` for degenerate tetrahedra (|volume| below 1e-12 of the mean)."""
    tets = np.array(tets, np.int64, copy=True)
    x = verts[tets]
    det = np.linalg.det(np.stack((x[:, 1] - x[:, 0], x[:, 2] - x[:, 0], x[:, 3] - x[:, 0]), -1))
    bad = np.abs(det) <= 1e-12 * np.abs(det).mean()
    if bad.any():
        raise InvalidInputError(f"{owner}: {int(bad.sum())} of {len(tets)} tetrahedra are degenerate (zero volume); "
                                "remesh with a quality bound (minratio) or a larger maxvolume.")
    neg = det < 0
    tets[neg, 2], tets[neg, 3] = tets[neg, 3].copy(), tets[neg, 2].copy()
    return tets


def box_tets(morph, cells=None, *, max_volume: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Structured tetrahedra of a Box morph (turned by its `quat`, at its `pos`).

    Args:
        cells: (nx, ny, nz) cells along the box's axes (ints >= 1), or None: cells of edge h = (6 max_volume)^(1/3)
            (6 tetrahedra of volume h^3 / 6 each, at most `max_volume` m^3), nx = ceil(size_x / h); without
            `max_volume` one cell along the shortest side and cubic-ish cells elsewhere.
    Returns (verts `((nx+1)(ny+1)(nz+1), 3)`, tets `(6 nx ny nz, 4)`)."""
    from ..morphs import Box

    if not isinstance(morph, Box):
        raise InvalidInputError(f"box_tets: expected a Box morph, got {type(morph).__name__}.")
    size = np.asarray(morph.size, np.float64)
    if cells is None:
        if max_volume is not None and max_volume > 0:
            h = (6.0 * max_volume) ** (1.0 / 3.0)
        else:
            h = float(size.min())
        cells = tuple(max(1, math.ceil(s / h - 1e-9)) for s in size)
    cells = tuple(cells)
    if len(cells) != 3 or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in cells):
        raise InvalidInputError(f"box_tets(cells={cells!r}): expected three ints >= 1.")
    n = np.asarray(cells) + 1
    grid = np.stack(np.meshgrid(*[np.linspace(-0.5, 0.5, k) for k in n], indexing="ij"), -1).reshape(-1, 3)
    verts = (grid * size) @ pose_matrix(morph).T + np.asarray(morph.pos)
    index = np.arange(n.prod()).reshape(tuple(n))
    lo = np.stack(np.meshgrid(*[np.arange(c) for c in cells], indexing="ij"), -1).reshape(-1, 3)
    tets = []
    for perm in itertools.permutations(range(3)):  # Kuhn: corner 000 -> + e_perm0 -> + e_perm1 -> + e_perm2 = 111
        corner, path = lo.copy(), [lo.copy()]
        for axis in perm:
            corner = corner.copy()
            corner[:, axis] += 1
            path.append(corner)
        tets.append(np.stack([index[p[:, 0], p[:, 1], p[:, 2]] for p in path], 1))
    tets = np.stack(tets, 1).reshape(-1, 4)
    return verts, orient_tets(verts, tets, "box_tets")


def _num(v: float) -> str:
    """A number as tetgen's switch parser reads it: plain decimals (it stops at an exponent, "a2e-06" is a = 2)."""
    return np.format_float_positional(float(v), trim="-")


def tetrahedralize(morph, *, max_volume: float | None = None, minratio: float = 1.1, mindihedral: float = 10,
                   quality: bool = True, nobisect: bool = True, order: int = 1, verbose: int = 0,
                   **resolution) -> tuple[np.ndarray, np.ndarray]:
    """Tetrahedra filling the morph's closed world-frame surface (`surface_mesh(morph, **resolution)`, vertices
    welded), meshed by `tetgen` with Genesis' switches ("p", "q<minratio>/<mindihedral>" when `quality`,
    "a<max_volume>" when > 0, "Y" when `nobisect`), else `pytetwild` (its default envelope; the quality switches do
    not apply).
    `max_volume` (m^3) is tetgen's volume bound, which its final smoothing may exceed by a few tens of percent, and
    which `nobisect` (no Steiner points on the surface) can keep it from reaching in thin parts (as in Genesis).
    Raises `UnsupportedFeatureError` naming the extra when neither is installed, `InvalidInputError` when the
    surface is not closed or the mesher fails."""
    check_solid("tetrahedralize", morph)
    if order != 1:
        raise UnsupportedFeatureError(f"tetrahedralize(order={order}): only linear (4-node) tetrahedra are "
                                      "supported; use order=1.")
    backend = tet_backend()
    if backend is None:
        raise UnsupportedFeatureError(f"tetrahedralize: volume meshes of a {type(morph).__name__} need the optional "
                                      f"package 'tetgen' (or 'pytetwild'), and neither is installed; {_EXTRA}.")
    surf = surface_mesh(morph, **resolution)
    surf.merge_vertices()  # files store vertices per face (STL) or split at seams: weld them for a closed surface
    if not surf.is_watertight:
        raise InvalidInputError(f"tetrahedralize: the surface of {type(morph).__name__} is not closed (watertight); "
                                "repair the mesh file (e.g. trimesh's fill_holes) first.")
    v, f = np.asarray(surf.vertices, np.float64), np.asarray(surf.faces, np.int32)
    try:
        if backend == "tetgen":
            import tetgen

            switches = "p" + (f"q{_num(minratio)}/{_num(mindihedral)}" if quality else "") \
                + (f"a{_num(max_volume)}" if max_volume is not None and max_volume > 0 else "") \
                + ("Y" if nobisect else "") \
                + ("V" * int(verbose) if verbose else "") + ("" if verbose else "Q")
            with _silenced_stdout():
                verts, tets, *_ = tetgen.TetGen(v, f).tetrahedralize(switches=switches)
        else:
            import pytetwild

            verts, tets = pytetwild.tetrahedralize(v, f)
    except Exception as exc:  # the mesher's own message names the problem
        raise InvalidInputError(f"tetrahedralize: {backend} failed on the surface of {type(morph).__name__}: "
                                f"{exc}") from exc
    verts = np.asarray(verts, np.float64)
    used = np.unique(np.asarray(tets))
    remap = np.full(len(verts), -1, np.int64)
    remap[used] = np.arange(len(used))
    verts, tets = verts[used], remap[np.asarray(tets, np.int64)]
    return verts, orient_tets(verts, tets, f"tetrahedralize({type(morph).__name__})")

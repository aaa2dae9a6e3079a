"""Particle sampling of morphs (DESIGN.md §8): a regular lattice of spacing `particle_size` (or uniform random points
at the same mean density) inside the morph's shape, then placed at the morph's pose. Also the mesh-file reader (trimesh)
and the inside test for `Mesh` morphs (generalised winding number, Van Oosterom & Strackee 1983 solid angle).

All arrays are NumPy float64; positions in metres, shapes `(n, 3)`.
"""

from __future__ import annotations

import numpy as np

from ..._mesh import check_file, load_merged
from ...errors import InvalidInputError
from ...morphs import Box, Cylinder, Mesh, Sphere
from ...tools import progress

__all__ = ["sample_morph", "load_mesh", "winding_number"]

_LONG_PAIRS = 10_000_000  #: point-triangle pairs (~0.3 us each, measured) above which the inside test shows progress


def _quat_to_mat(q) -> np.ndarray:
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def load_mesh(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (nv, 3) float64, faces (nf, 3) int64) of a mesh file read by trimesh (all submeshes together; the
    formats of `genesis_torch._mesh.MESH_FORMATS`), without a Z-up turn or scale."""
    return load_merged(check_file("load_mesh", path))


def winding_number(points: np.ndarray, tris: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """Generalised winding number of a closed triangle soup `tris (t, 3, 3)` at `points (m, 3)`: ~1 inside, ~0
    outside. Solid angle of a triangle seen from p (Van Oosterom & Strackee 1983):
    tan(Omega/2) = a.(b x c) / (|a||b||c| + (a.b)|c| + (a.c)|b| + (b.c)|a|), with a, b, c the corners minus p."""
    out = np.empty(len(points))
    step = max(1, chunk // max(len(tris), 1))
    starts = range(0, len(points), step)
    if len(points) * len(tris) > _LONG_PAIRS:  # seconds of work: a progress bar (on a terminal only)
        starts = progress(starts, desc=f"inside test, {len(points):,} points x {len(tris):,} triangles", unit="chunk")
    for s in starts:
        rel = tris[None] - points[s:s + step, None, None, :]  # (m, t, 3, 3)
        a, b, c = rel[..., 0, :], rel[..., 1, :], rel[..., 2, :]
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
        num = np.einsum("mti,mti->mt", a, np.cross(b, c))
        den = la * lb * lc + (a * b).sum(-1) * lc + (a * c).sum(-1) * lb + (b * c).sum(-1) * la
        out[s:s + step] = (2 * np.arctan2(num, den)).sum(-1) / (4 * np.pi)
    return out


def _lattice(half: np.ndarray, h: float) -> np.ndarray:
    """Lattice points of spacing h centred at 0 covering the box [-half, half] (at least one point per axis)."""
    axes = []
    for e in half:
        n = max(1, int(np.floor(2 * e / h + 1e-9)))
        axes.append((np.arange(n) - (n - 1) / 2) * h)
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def _inside(morph, q: np.ndarray, mesh) -> np.ndarray:
    if isinstance(morph, Box):
        return np.all(np.abs(q) <= np.asarray(morph.size) / 2 + 1e-12, axis=-1)
    if isinstance(morph, Sphere):
        return np.linalg.norm(q, axis=-1) <= morph.radius + 1e-12
    if isinstance(morph, Cylinder):
        return (np.linalg.norm(q[:, :2], axis=-1) <= morph.radius + 1e-12) & (np.abs(q[:, 2]) <= morph.height / 2)
    verts, faces = mesh
    return winding_number(q, verts[faces]) > 0.5


def _extent(morph, mesh) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half extents) of the morph's local bounding box."""
    if isinstance(morph, Box):
        return np.zeros(3), np.asarray(morph.size) / 2
    if isinstance(morph, Sphere):
        return np.zeros(3), np.full(3, morph.radius)
    if isinstance(morph, Cylinder):
        return np.zeros(3), np.array([morph.radius, morph.radius, morph.height / 2])
    verts = mesh[0]
    lo, hi = verts.min(0), verts.max(0)
    return (lo + hi) / 2, (hi - lo) / 2


def sample_morph(morph, particle_size: float, sampler: str, seed: int) -> np.ndarray:
    """World positions `(n, 3)` of the particles of `morph` (Box, Sphere, Cylinder or Mesh).

    "regular": lattice of spacing `particle_size` centred on the shape's bounding box; "random": uniform points in
    the bounding box, as many as lattice cells, kept where inside (seeded by `seed`). Raises if none is inside.
    """
    mesh = None
    if isinstance(morph, Mesh):
        mesh = load_merged(morph.file, morph.scale, morph.file_meshes_are_zup)
    centre, half = _extent(morph, mesh)
    if sampler == "regular":
        q = centre + _lattice(half, particle_size)
    else:
        rng = np.random.default_rng(seed)
        n = int(np.prod(np.maximum(1, np.floor(2 * half / particle_size))))
        q = centre - half + 2 * half * rng.random((n, 3))
    q = q[_inside(morph, q, mesh)]
    if len(q) == 0:
        raise InvalidInputError(f"{morph!r} holds no particle at particle_size={particle_size}; make it larger than "
                                "one particle or lower MPMOptions(particle_size=...).")
    return q @ _quat_to_mat(morph.quat).T + np.asarray(morph.pos)

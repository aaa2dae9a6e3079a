"""Particles of a morph at a spacing (DESIGN.md §8), for every particle solver: a regular lattice of spacing
`particle_size` centred on the shape's bounding box, or uniform random points in that box at the lattice's count
(a Poisson point process of the same mean density), kept where inside the shape, then placed at the morph's pose.

Primitives use their exact inside tests; a `Mesh` uses `surface.contains` (trimesh). All arrays NumPy float64,
positions in metres `(n, 3)`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..morphs import Box, Cylinder, Sphere
from .surface import check_solid, contains, local_surface, pose_matrix

__all__ = ["SAMPLERS", "sample_particles"]

SAMPLERS = ("regular", "random")


def _lattice(half: np.ndarray, h: float) -> np.ndarray:
    """Lattice points `(n, 3)` of spacing h centred at 0 covering the box [-half, half] (at least one per axis)."""
    axes = []
    for e in half:
        n = max(1, int(np.floor(2 * e / h + 1e-9)))
        axes.append((np.arange(n) - (n - 1) / 2) * h)
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def _inside(morph, q: np.ndarray, mesh) -> np.ndarray:
    """`(n,)` bool: local points `q (n, 3)` inside the morph (closed primitives; `mesh` for a Mesh)."""
    if isinstance(morph, Box):
        return np.all(np.abs(q) <= np.asarray(morph.size) / 2 + 1e-12, axis=-1)
    if isinstance(morph, Sphere):
        return np.linalg.norm(q, axis=-1) <= morph.radius + 1e-12
    if isinstance(morph, Cylinder):
        return (np.linalg.norm(q[:, :2], axis=-1) <= morph.radius + 1e-12) & (np.abs(q[:, 2]) <= morph.height / 2)
    return contains(mesh, q)


def _extent(morph, mesh) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half extents) `(3,), (3,)` of the morph's local bounding box, m."""
    if isinstance(morph, Box):
        return np.zeros(3), np.asarray(morph.size) / 2
    if isinstance(morph, Sphere):
        return np.zeros(3), np.full(3, morph.radius)
    if isinstance(morph, Cylinder):
        return np.zeros(3), np.array([morph.radius, morph.radius, morph.height / 2])
    verts = np.asarray(mesh.vertices)
    lo, hi = verts.min(0), verts.max(0)
    return (lo + hi) / 2, (hi - lo) / 2


def _check(morph, particle_size, sampler, seed) -> None:
    check_solid("sample_particles", morph)
    if isinstance(particle_size, bool) or not isinstance(particle_size, (int, float)) \
            or not math.isfinite(particle_size) or particle_size <= 0:
        raise InvalidInputError(f"sample_particles(particle_size={particle_size!r}): expected a positive spacing in m, "
                                "e.g. 0.01.")
    if sampler not in SAMPLERS:
        raise InvalidInputError(f"sample_particles(sampler={sampler!r}): expected one of {SAMPLERS}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"sample_particles(seed={seed!r}): expected an int >= 0.")


def sample_particles(morph, particle_size: float, *, sampler: str = "regular", seed: int = 0) -> np.ndarray:
    """World positions `(n, 3)` float64 m of the particles of `morph` (Box, Sphere, Cylinder or Mesh).

    "regular": lattice of spacing `particle_size` (m) centred on the shape's bounding box; "random": uniform points
    in the bounding box, as many as lattice cells, kept where inside (seeded by `seed`, the same points for the same
    seed). Raises `InvalidInputError` if no particle is inside.
    """
    _check(morph, particle_size, sampler, seed)
    mesh = None if isinstance(morph, (Box, Sphere, Cylinder)) else local_surface(morph)
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
                                "one particle or lower the solver's particle_size (MPMOptions(particle_size=...)).")
    return q @ pose_matrix(morph).T + np.asarray(morph.pos)

"""Flat triangulated square grids: the cloth meshes of tests and benchmarks, and the bundled `meshes/cloth.obj`."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError

__all__ = ["square_grid"]


def square_grid(n_cells: int, lower=(-0.5, -0.5), upper=(0.5, 0.5)) -> tuple[np.ndarray, np.ndarray]:
    """(vertices ((n_cells+1)^2, 3) float64 m in z = 0, faces (2 n_cells^2, 3) int64) of the rectangle `lower`..`upper`
    (m) cut into n_cells x n_cells cells of two triangles, every triangle counter-clockwise seen from +z. Vertex
    (i, j) (i along x) is row i (n_cells + 1) + j."""
    if not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
        raise InvalidInputError(f"square_grid(n_cells={n_cells!r}): n_cells must be a positive integer, e.g. 8.")
    n = int(n_cells)
    X, Y = np.meshgrid(np.linspace(lower[0], upper[0], n + 1), np.linspace(lower[1], upper[1], n + 1), indexing="ij")
    verts = np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], 1)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (i * (n + 1) + j).ravel()
    faces = np.concatenate([np.stack([a, a + n + 1, a + 1], 1), np.stack([a + 1, a + n + 1, a + n + 2], 1)])
    return verts, faces.astype(np.int64)


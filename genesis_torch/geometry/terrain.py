"""Height fields of `gs.morphs.Terrain`: Genesis 1.4.5's subterrain generators and their tiling.

Every generator fills a grid `(width, length)` of heights in *vertical units* (metres / `vertical_scale`): row
`i` lies at x = i * horizontal_scale, column `j` at y = j * horizontal_scale (Genesis' `SubTerrain`, whose
generators are Isaac Gym's `terrain_utils`). They are written here from their formulas (the Isaac Gym / Genesis
documentation of each generator): lengths are converted to whole grid cells and heights to whole vertical units
by truncation toward zero (Python's `int`), as Genesis does, and random draws are made with NumPy's legacy
`RandomState` calls in Genesis' order, so a generator given the same `RandomState` gives Genesis' grid.

`terrain_height_field` tiles `n_subterrains` of them: subterrain (i, j) covers rows i*(rows-1) .. (i+1)*(rows-1)
and columns j*(cols-1) .. (j+1)*(cols-1) (rows = subterrain_size[0] / horizontal_scale + 1, cols likewise), so
neighbours share their boundary row / column, which keeps the higher of the two values. With `randomize=False`
every subterrain draws from a fresh `RandomState(0)` (Genesis seeds NumPy's global generator with 0 for each and
restores it afterwards); with `randomize=True` they draw from NumPy's global generator (`np.random.seed` makes
them reproducible).

Genesis computes in float32 by default; these grids are float64. Integer-valued generators (stairs, obstacles,
stones, random uniform) give the same integers; the others differ from Genesis' float32 grid by its rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from ..errors import InvalidInputError

EPS = float(np.finfo(np.float32).eps)  # Genesis' gs.EPS at its default float32 precision

# Genesis' subterrain types and the parameters each generator takes, with Genesis' defaults (Terrain.default_params)
DEFAULT_PARAMS: dict[str, dict] = {
    "flat_terrain": {},
    "fractal_terrain": {"levels": 8, "scale": 5.0},
    "random_uniform_terrain": {"min_height": -0.1, "max_height": 0.1, "step": 0.1, "downsampled_scale": 0.5},
    "sloped_terrain": {"slope": -0.5},
    "pyramid_sloped_terrain": {"slope": -0.1},
    "discrete_obstacles_terrain": {"max_height": 0.05, "min_size": 1.0, "max_size": 5.0, "num_rects": 20},
    "wave_terrain": {"num_waves": 2.0, "amplitude": 0.1},
    "stairs_terrain": {"step_width": 0.75, "step_height": -0.1},
    "pyramid_stairs_terrain": {"step_width": 0.75, "step_height": -0.1},
    "stepping_stones_terrain": {"stone_size": 1.0, "stone_distance": 0.25, "max_height": 0.2, "platform_size": 0.0},
}
SUBTERRAIN_TYPES = tuple(DEFAULT_PARAMS)


# ------------------------------------------------------------------------------------------------ generators
# Each takes the grid shape, the scales (m per cell, m per vertical unit), a RandomState and its parameters, and
# returns a (width, length) float64 array in vertical units.

def flat(shape, hs, vs, rng):
    """All zero."""
    return np.zeros(shape)


def fractal(shape, hs, vs, rng, levels=8, scale=5.0):
    """Midpoint-displacement fractal: at level l = 1..levels the grid points on a lattice of step 2**(levels-l)
    not yet set get the mean of their lattice neighbours (the points one step away along the lattice directions
    that exist, with NumPy slicing semantics) plus scale * 2**-l * U(-1, 1) metres; heights / vs at the end."""
    width, length = shape
    h = np.zeros(shape)
    for level in range(1, levels + 1):
        step = 2 ** (levels - level)
        for y in range(0, width, step):
            odd_y = (1 + y // step) % 2  # 1 on the lattice rows skipped by the previous level
            for x in range(step * odd_y, length, step * (1 + odd_y)):
                odd_x = (1 + x // step) % 2
                dx, dy = step * (1 - odd_x), step * (1 - odd_y)
                mean = h[y - dy:y + dy + 1:2 * step, x - dx:x + dx + 1:2 * step].mean()
                h[y, x] = mean + scale * (2.0 ** -level) * rng.uniform(-1, 1)
    return h / vs


def _spline(x, values, xq):
    """Not-a-knot cubic spline through (x, values) along axis 0, evaluated at xq (Genesis' `cubic_spline_1d`)."""
    if len(x) < 4:
        raise InvalidInputError(
            f"random_uniform_terrain: only {len(x)} random samples along an axis; Genesis' not-a-knot spline needs "
            "at least 4. Lower downsampled_scale or enlarge subterrain_size.")
    return CubicSpline(x, values, axis=0, bc_type="not-a-knot")(xq)


def random_uniform(shape, hs, vs, rng, min_height=-0.1, max_height=0.1, step=0.1, downsampled_scale=0.5):
    """Heights drawn uniformly from min_height, min_height + step, ..., max_height (m, each truncated to whole
    vertical units) on a coarse grid of spacing `downsampled_scale` (m; int(width * hs / downsampled_scale) samples
    spread evenly over [0, width * hs], likewise along y), interpolated to the grid by not-a-knot cubic splines
    (along y, then x) and rounded to whole units."""
    width, length = shape
    ds = hs if downsampled_scale is None else downsampled_scale
    sx, sy = width * hs, length * hs
    lo, hi, st = int(min_height / vs), int(max_height / vs), int(step / vs)
    if st <= 0:
        raise InvalidInputError(f"random_uniform_terrain(step={step}): the step must be at least one vertical unit "
                                f"({vs} m).")
    levels = np.arange(lo, hi + st, st)
    coarse = rng.choice(levels, (int(sx / ds), int(sy / ds))).astype(np.float64)
    x, y = np.linspace(0, sx, coarse.shape[0]), np.linspace(0, sy, coarse.shape[1])
    along_y = _spline(y, coarse.T, np.linspace(0, sy, length)).T  # (nx coarse, length)
    return np.rint(_spline(x, along_y, np.linspace(0, sx, width)))


def sloped(shape, hs, vs, rng, slope=-0.5):
    """A ramp along x: row i at int(slope * hs / vs * width) * i / width units."""
    width, length = shape
    top = int(slope * (hs / vs) * width)
    return np.repeat((top * np.arange(width) / width)[:, None], length, 1)


def pyramid_sloped(shape, hs, vs, rng, slope=-0.1, platform_size=1.0):
    """A four-sided pyramid: top * (1 - |cx - i| / cx) * (1 - |cy - j| / cy) with cx = int(width / 2), cy likewise
    and top = int(slope * hs / vs * width / 2), clipped to [min(0, p), max(0, p)] where p is its value at the
    corner (width // 2 - k, length // 2 - k) of the central platform, k = int(platform_size / hs / 2)."""
    width, length = shape
    cx, cy = int(width / 2), int(length / 2)
    fx = (cx - np.abs(cx - np.arange(width))) / cx
    fy = (cy - np.abs(cy - np.arange(length))) / cy
    top = int(slope * (hs / vs) * (width / 2))
    h = top * fx[:, None] * fy[None, :]
    k = int(platform_size / hs / 2)
    p = h[width // 2 - k, length // 2 - k]
    return np.clip(h, min(p, 0), max(p, 0))


def discrete_obstacles(shape, hs, vs, rng, max_height=0.05, min_size=1.0, max_size=5.0, num_rects=20,
                       platform_size=1.0):
    """`num_rects` rectangles, each with a width and length drawn from min_size .. max_size (cells, step 4), a
    height drawn from (-H, -H // 2, H // 2, H) with H = int(max_height / vs), and a corner drawn on a 4-cell
    lattice; later ones overwrite earlier ones. Then a zero platform of int(platform_size / hs) cells at the
    centre."""
    width, length = shape
    H = int(max_height / vs)
    lo, hi, plat = int(min_size / hs), int(max_size / hs), int(platform_size / hs)
    widths = np.arange(min(lo, width - 1), min(hi, width - 1) + 1, 4)
    lengths = np.arange(min(lo, length - 1), min(hi, length - 1) + 1, 4)
    heights = [-H, -H // 2, H // 2, H]
    h = np.zeros(shape)
    for _ in range(num_rects):
        w, l, z = rng.choice(widths), rng.choice(lengths), rng.choice(heights)
        x0, y0 = rng.choice(range(0, width - w, 4)), rng.choice(range(0, length - l, 4))
        h[x0:x0 + w, y0:y0 + l] = z
    h[(width - plat) // 2:(width + plat) // 2, (length - plat) // 2:(length + plat) // 2] = 0
    return h


def wave(shape, hs, vs, rng, num_waves=2.0, amplitude=0.1):
    """a * cos(j / d) + a * sin(i / d) units, a = amplitude / 2 / vs, d = length / (2 pi num_waves); flat when
    num_waves <= 0."""
    width, length = shape
    h = np.zeros(shape)
    if num_waves > 0:
        a, d = 0.5 * amplitude / vs, length / (num_waves * 2 * np.pi)
        h += a * np.cos(np.arange(length)[None, :] / d) + a * np.sin(np.arange(width)[:, None] / d)
    return h


def stairs(shape, hs, vs, rng, step_width=0.75, step_height=-0.1):
    """Steps along x: with w = int(step_width / hs) cells and s = int(step_height / vs) units, rows
    k*w .. (k+1)*w - 1 are at (k + 1) * s for k < width // w; the remaining rows stay 0."""
    width, length = shape
    w, s = int(step_width / hs), int(step_height / vs)
    if w <= 0:
        raise InvalidInputError(f"stairs_terrain(step_width={step_width}): narrower than one cell ({hs} m).")
    h = np.zeros(shape)
    for k in range(width // w):
        h[k * w:(k + 1) * w, :] = (k + 1) * s
    return h


def pyramid_stairs(shape, hs, vs, rng, step_width=0.75, step_height=-0.1, platform_size=1.0):
    """Concentric square steps: while the remaining square is wider than int(platform_size / hs) cells in both
    directions, it shrinks by w = int(step_width / hs) cells on every side and is raised to the next multiple of
    s = int(step_height / vs) units (the border ring stays 0)."""
    width, length = shape
    w, s, plat = int(step_width / hs), int(step_height / vs), int(platform_size / hs)
    if w <= 0:
        raise InvalidInputError(f"pyramid_stairs_terrain(step_width={step_width}): narrower than one cell ({hs} m).")
    h = np.zeros(shape)
    x0, x1, y0, y1, z = 0, width, 0, length, 0
    while x1 - x0 > plat and y1 - y0 > plat:
        x0, x1, y0, y1, z = x0 + w, x1 - w, y0 + w, y1 - w, z + s
        h[x0:x1, y0:y1] = z
    return h


def stepping_stones(shape, hs, vs, rng, stone_size=1.0, stone_distance=0.25, max_height=0.2, platform_size=0.0,
                    depth=-10.0):
    """Square stones of int(stone_size / hs) cells separated by gaps of int(stone_distance / hs) cells at
    int(depth / vs) units; rows of stones along the longer side (y when length >= width), each row starting at a
    random offset in [0, stone size) (the part before it is one more stone), every stone at a height drawn from
    -H - 1 .. H - 1 units (H = int(max_height / vs)). Then a zero platform of int(platform_size / hs) cells at the
    centre."""
    width, length = shape
    size, gap = int(stone_size / hs), int(stone_distance / hs)
    H, plat = int(max_height / vs), int(platform_size / hs)
    if size <= 0:
        raise InvalidInputError(f"stepping_stones_terrain(stone_size={stone_size}): smaller than one cell ({hs} m).")
    levels = np.arange(-H - 1, H, step=1)
    h = np.full(shape, float(int(depth / vs)))
    along_y = length >= width
    g = h if along_y else h.T  # rows of stones along the second axis of g
    n_across, n_along = (width, length) if along_y else (length, width)
    a = 0
    while a < n_along:
        a1 = min(n_along, a + size)
        b = rng.randint(0, size)
        g[0:max(0, b - gap), a:a1] = rng.choice(levels)  # the partial stone before the first one
        while b < n_across:
            g[b:min(n_across, b + size), a:a1] = rng.choice(levels)
            b += size + gap
        a += size + gap
    h[(width - plat) // 2:(width + plat) // 2, (length - plat) // 2:(length + plat) // 2] = 0
    return h


GENERATORS = {
    "flat_terrain": flat, "fractal_terrain": fractal, "random_uniform_terrain": random_uniform,
    "sloped_terrain": sloped, "pyramid_sloped_terrain": pyramid_sloped,
    "discrete_obstacles_terrain": discrete_obstacles, "wave_terrain": wave, "stairs_terrain": stairs,
    "pyramid_stairs_terrain": pyramid_stairs, "stepping_stones_terrain": stepping_stones,
}


def subterrain_shape(subterrain_size, horizontal_scale) -> tuple[int, int]:
    """Grid points of one subterrain: (int(size_x / hs + EPS) + 1, int(size_y / hs + EPS) + 1)."""
    return tuple(int(s / horizontal_scale + EPS) + 1 for s in subterrain_size)


def terrain_height_field(n_subterrains, subterrain_size, horizontal_scale, vertical_scale, subterrain_types,
                         subterrain_parameters, randomize: bool) -> np.ndarray:
    """The tiled height field `(n0 * (rows - 1) + 1, n1 * (cols - 1) + 1)` float64 in vertical units (module
    docstring). `subterrain_types` is a 2D list `(n0, n1)` of names, `subterrain_parameters` maps every name to
    its full parameter dict (arguments validated by `gs.morphs.Terrain`)."""
    rows, cols = subterrain_shape(subterrain_size, horizontal_scale)
    n0, n1 = n_subterrains
    field = np.full((n0 * (rows - 1) + 1, n1 * (cols - 1) + 1), -np.inf)
    for i in range(n0):
        for j in range(n1):
            kind = subterrain_types[i][j]
            rng = np.random.mtrand._rand if randomize else np.random.RandomState(0)
            data = GENERATORS[kind]((rows, cols), horizontal_scale, vertical_scale, rng,
                                    **subterrain_parameters[kind])
            block = field[i * (rows - 1):(i + 1) * (rows - 1) + 1, j * (cols - 1):(j + 1) * (cols - 1) + 1]
            np.maximum(block, data, out=block)
    return field


def surface_height(height_m: np.ndarray, horizontal_scale: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (m) of the terrain surface at terrain-frame points (x, y) (m, any equal shapes): the two triangles of
    each cell split along the diagonal from grid point (i+1, j) to (i, j+1), as Genesis' terrain mesh and the
    compiled MuJoCo height field (`morphs.Terrain.to_spec`); points outside the grid are clamped to its edge."""
    nx, ny = height_m.shape
    u = np.clip(np.asarray(x, dtype=np.float64) / horizontal_scale, 0, nx - 1)
    v = np.clip(np.asarray(y, dtype=np.float64) / horizontal_scale, 0, ny - 1)
    i, j = np.minimum(np.floor(u).astype(np.int64), nx - 2), np.minimum(np.floor(v).astype(np.int64), ny - 2)
    fu, fv = u - i, v - j
    h00, h10, h01, h11 = height_m[i, j], height_m[i + 1, j], height_m[i, j + 1], height_m[i + 1, j + 1]
    lower = fu + fv <= 1  # triangle (i, j), (i+1, j), (i, j+1)
    return np.where(lower, h00 + fu * (h10 - h00) + fv * (h01 - h00),
                    h11 + (1 - fu) * (h01 - h11) + (1 - fv) * (h10 - h11))


def is_multiple(value: float, step: float) -> bool:
    """Whether `value` is an integer multiple of `step` to 1e-7 (Genesis' `is_approx_multiple`)."""
    r = value % step
    return abs(r) < 1e-7 or abs(step - r) < 1e-7


__all__ = ["DEFAULT_PARAMS", "SUBTERRAIN_TYPES", "GENERATORS", "terrain_height_field", "subterrain_shape",
           "surface_height", "is_multiple"]

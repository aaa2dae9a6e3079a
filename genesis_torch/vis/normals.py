"""Surface normals from a depth image and the camera that rendered it, in Genesis' normal-map encoding.

Genesis' rasterizer writes world-frame unit normals `n` as colours `(n + 1) / 2` read back as uint8 `(H, W, 3)`;
`encode_normals` / `decode_normal_map` convert between the two (background: 0, which decodes to a zero vector).
"""

from __future__ import annotations

import numpy as np

__all__ = ["pixel_rays", "normals_from_depth", "encode_normals", "decode_normal_map", "normal_map"]

_SMOOTH = 2.0  #: neighbours' depth jumps within this ratio are taken as one smooth surface (central difference)


def pixel_rays(glcam, res) -> np.ndarray:
    """Per pixel, the world-frame vector `r` with `P = cam_pos + depth * r` for a point at `depth` (m along the view
    axis): `forward + tan_x * right + tan_y * up`, `(H, W, 3)`, row 0 at the top of the image.

    `glcam` is MuJoCo's `MjvGLCamera` of the render (pos, forward, up, frustum); as in `mjr_render`, a zero
    `frustum_width` means the horizontal half-width is the vertical one times the aspect ratio `W / H`."""
    w, h = res
    fwd, up = np.asarray(glcam.forward, np.float64), np.asarray(glcam.up, np.float64)
    right = np.cross(fwd, up)
    near, bottom, top = glcam.frustum_near, glcam.frustum_bottom, glcam.frustum_top
    half_w = glcam.frustum_width / 2 if glcam.frustum_width > 0 else (top - bottom) / 2 * w / h
    x = (glcam.frustum_center + half_w * ((np.arange(w) + 0.5) / w * 2 - 1)) / near  # tan of the angle, per column
    y = (bottom + (top - bottom) * (1 - (np.arange(h) + 0.5) / h)) / near  # per row, top row first
    return fwd + x[None, :, None] * right + y[:, None, None] * up


def _shift(a, k, axis, fill):
    """`a[i + k]` along `axis` (k = +1 or -1), `fill` past the edge."""
    out = np.full_like(a, fill)
    src, dst = [slice(None)] * a.ndim, [slice(None)] * a.ndim
    src[axis], dst[axis] = (slice(1, None), slice(None, -1)) if k > 0 else (slice(None, -1), slice(1, None))
    out[tuple(dst)] = a[tuple(src)]
    return out


def _difference(points, depth, valid, axis):
    """Per pixel, the surface tangent along `axis` `(H, W, 3)` and whether it is known `(H, W)`.

    Central difference `(P[i+1] - P[i-1]) / 2` where both neighbours are valid and their depth jumps agree within
    `_SMOOTH` (the same smooth surface: second-order accurate); otherwise the one-sided difference on the side with
    the smaller jump (at a silhouette that is the pixel's own surface); unknown where neither neighbour is valid."""
    nxt, prv = _shift(points, 1, axis, 0.0), _shift(points, -1, axis, 0.0)
    jump_n = np.where(valid & _shift(valid, 1, axis, False), np.abs(_shift(depth, 1, axis, 0.0) - depth), np.inf)
    jump_p = np.where(valid & _shift(valid, -1, axis, False), np.abs(depth - _shift(depth, -1, axis, 0.0)), np.inf)
    lo, hi = np.minimum(jump_n, jump_p), np.maximum(jump_n, jump_p)
    central = np.isfinite(hi) & (hi <= _SMOOTH * lo + 1e-6 * depth)
    one_sided = np.where((jump_n <= jump_p)[..., None], nxt - points, points - prv)
    return np.where(central[..., None], (nxt - prv) / 2, one_sided), np.isfinite(lo)


def normals_from_depth(depth, background, glcam, res):
    """World-frame unit normals `(H, W, 3)` float64 (zero where unknown) and their validity mask `(H, W)`.

    depth: `(H, W)` m along the view axis, top row first; background: `(H, W)` bool (nothing drawn there)."""
    valid = ~np.asarray(background, bool)
    rays = pixel_rays(glcam, res)
    points = np.asarray(glcam.pos, np.float64) + np.asarray(depth, np.float64)[..., None] * rays
    du, ok_u = _difference(points, depth, valid, axis=1)
    dv, ok_v = _difference(points, depth, valid, axis=0)
    n = np.cross(du, dv)
    n = np.where((np.einsum("hwi,hwi->hw", n, rays) > 0)[..., None], -n, n)  # face the camera
    norm = np.linalg.norm(n, axis=-1)
    ok = valid & ok_u & ok_v & (norm > 0)
    return np.where(ok[..., None], n / np.where(norm > 0, norm, 1.0)[..., None], 0.0), ok


def encode_normals(normals, ok) -> np.ndarray:
    """Genesis' encoding: `round((n + 1) / 2 * 255)` as uint8 `(H, W, 3)`, 0 where not `ok`."""
    code = np.round((np.asarray(normals) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    return np.where(np.asarray(ok)[..., None], code, 0).astype(np.uint8)


def decode_normal_map(image) -> np.ndarray:
    """Unit normals `(H, W, 3)` float32 from a normal map `(H, W, 3)` uint8 (`render(normal=True)`); background
    pixels (all channels 0) give zero vectors."""
    img = np.asarray(image)
    n = img.astype(np.float32) / 127.5 - 1.0
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return np.where((img.reshape(*img.shape[:-1], -1) != 0).any(-1, keepdims=True), n / np.maximum(norm, 1e-12), 0.0
                    ).astype(np.float32)


def normal_map(depth, background, glcam, res) -> np.ndarray:
    """`render(normal=True)`'s image: the encoded world-frame normals of a depth image, `(H, W, 3)` uint8."""
    return encode_normals(*normals_from_depth(depth, background, glcam, res))

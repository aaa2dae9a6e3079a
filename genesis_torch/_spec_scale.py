"""Uniform scaling of a whole MJCF/URDF model as an MjSpec edit (docs/rigid.md, "Scaling and merging").

MuJoCo's compiler does the scaling: the worldbody's contents are moved into one `<frame scale="s">` (MuJoCo >= 4.0,
`scaling="similar"`, `massscale` left at its default s^3), so every quantity is multiplied by s^a m^b for its
dimension L^a M^b T^c with m = s^3 (densities kept): positions, sizes, mesh vertices, slide ranges and tendon lengths
by s, explicit masses by s^3, rotational inertias by s^5, forces by s^4, torques by s^5; angles and times unchanged.
External references to scaled elements (actuators, tendons, equalities, keyframes, mesh assets) follow.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from .errors import InvalidInputError

__all__ = ["check_scale", "scale_spec"]


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_scale(owner: str, value) -> float:
    """The uniform scale factor from a positive finite number or 3 equal ones (Genesis' MJCF/URDF `scale`)."""
    items = [value] if _is_number(value) else list(np.ravel(value)) if isinstance(value, (list, tuple, np.ndarray)) \
        else None
    arr = np.array(items, dtype=np.float64) if items and all(_is_number(v) for v in items) else None
    if arr is None or arr.shape not in ((1,), (3,)) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InvalidInputError(f"{owner}(scale={value!r}): expected a positive finite number (or 3 equal ones), "
                                "e.g. scale=0.5.")
    if np.ptp(arr) > 1e-12 * arr.max():
        raise InvalidInputError(f"{owner}(scale={value!r}): anisotropic scaling is not supported for articulated "
                                "models (as in Genesis); give one number, or scale a gs.morphs.Mesh per axis.")
    return float(arr[0])


def scale_spec(spec: mujoco.MjSpec, scale: float) -> None:
    """Scale the freshly loaded `spec` by `scale` (> 0) about the model's origin, in place; scale 1 leaves it as is.

    Only the worldbody's direct contents move into the scaling frame; contents of the file's own top-level frames
    keep their frame, which is scaled with them.
    """
    if scale == 1.0:
        return
    if not math.isfinite(scale) or scale <= 0:
        raise InvalidInputError(f"scale_spec(scale={scale!r}): expected a positive finite number.")
    world = spec.worldbody
    top = [e for e in (*world.bodies, *world.geoms, *world.sites, *world.cameras, *world.lights, *world.frames)
           if e.frame is None]
    frame = world.add_frame()
    frame.scale = [scale] * 3
    frame.scaling = mujoco.mjtScaling.mjSCALING_SIMILAR
    for element in top:
        element.set_frame(frame)

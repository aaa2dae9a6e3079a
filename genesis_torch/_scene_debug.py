"""Genesis' debug-drawing methods of the Scene (`draw_debug_*`, `clear_debug_object(s)`), accepted and ignored.

genesis-torch has no viewer, so nothing is drawn; each call validates its arguments as Genesis would use them
(finite positions of the right shape, positive sizes, RGB/RGBA colours) and returns a handle that
`clear_debug_object` accepts, so Genesis scripts that draw targets or paths run unchanged (docs/genesis_compat.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .errors import InvalidInputError


@dataclasses.dataclass(frozen=True, eq=False)
class DebugObject:
    """Handle of a debug drawing (nothing is drawn without a viewer)."""

    kind: str


def _array(what: str, value, last: int | None) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what}: expected numbers, got {value!r}.") from None
    if last is not None and (arr.ndim == 0 or arr.shape[-1] != last):
        raise InvalidInputError(f"{what}: expected a last dimension of {last}, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{what}: values must be finite (no NaN or inf).")
    return arr


def _positive(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) \
            or value <= 0:
        raise InvalidInputError(f"{what}={value!r}: expected a positive finite number.")


def _color(what: str, color) -> None:
    c = _array(what, color, None)
    if c.shape not in ((3,), (4,)) and not (c.ndim == 2 and c.shape[-1] in (3, 4)):
        raise InvalidInputError(f"{what}: expected RGB or RGBA values, got shape {c.shape}.")


class DebugDraw:
    """Scene mixin: Genesis' `draw_debug_*` methods, validated, with nothing drawn."""

    def _debug_handle(self, kind: str) -> DebugObject:
        handles = self.__dict__.setdefault("_debug_objects", set())
        obj = DebugObject(kind)
        handles.add(obj)
        return obj

    def draw_debug_line(self, start, end, radius=0.002, color=(1.0, 0.0, 0.0, 0.5)) -> DebugObject:
        _array("draw_debug_line(start)", start, 3)
        _array("draw_debug_line(end)", end, 3)
        _positive("draw_debug_line(radius)", radius)
        _color("draw_debug_line(color)", color)
        return self._debug_handle("line")

    def draw_debug_arrow(self, pos, vec=(0, 0, 1), radius=0.01, color=(1.0, 0.0, 0.0, 0.5)) -> DebugObject:
        _array("draw_debug_arrow(pos)", pos, 3)
        _array("draw_debug_arrow(vec)", vec, 3)
        _positive("draw_debug_arrow(radius)", radius)
        _color("draw_debug_arrow(color)", color)
        return self._debug_handle("arrow")

    def draw_debug_sphere(self, pos, radius=0.01, color=(1.0, 0.0, 0.0, 0.5)) -> DebugObject:
        _array("draw_debug_sphere(pos)", pos, 3)
        _positive("draw_debug_sphere(radius)", radius)
        _color("draw_debug_sphere(color)", color)
        return self._debug_handle("sphere")

    def draw_debug_spheres(self, poss, radius=0.01, color=(1.0, 0.0, 0.0, 0.5)) -> DebugObject:
        _array("draw_debug_spheres(poss)", poss, 3)
        _positive("draw_debug_spheres(radius)", radius)
        _color("draw_debug_spheres(color)", color)
        return self._debug_handle("spheres")

    def draw_debug_points(self, poss, colors=(1.0, 0.0, 0.0, 0.5)) -> DebugObject:
        _array("draw_debug_points(poss)", poss, 3)
        _color("draw_debug_points(colors)", colors)
        return self._debug_handle("points")

    def draw_debug_box(self, bounds, color=(1.0, 0.0, 0.0, 1.0), wireframe=True, wireframe_radius=0.0015):
        b = _array("draw_debug_box(bounds)", bounds, 3)
        if b.shape[-2:] != (2, 3) or np.any(b[..., 0, :] > b[..., 1, :]):
            raise InvalidInputError("draw_debug_box(bounds): expected [[min x, y, z], [max x, y, z]] with min <= max.")
        _color("draw_debug_box(color)", color)
        _positive("draw_debug_box(wireframe_radius)", wireframe_radius)
        if not isinstance(wireframe, bool):
            raise InvalidInputError(f"draw_debug_box(wireframe={wireframe!r}): expected True or False.")
        return self._debug_handle("box")

    def draw_debug_frame(self, T, axis_length=1.0, origin_size=0.015, axis_radius=0.01) -> DebugObject:
        if _array("draw_debug_frame(T)", T, 4).shape[-2:] != (4, 4):
            raise InvalidInputError("draw_debug_frame(T): expected a 4x4 homogeneous transform.")
        for name, v in (("axis_length", axis_length), ("origin_size", origin_size), ("axis_radius", axis_radius)):
            _positive(f"draw_debug_frame({name})", v)
        return self._debug_handle("frame")

    def draw_debug_path(self, qposs, entity, link_idx=-1, density=0.3, frame_scaling=1.0) -> DebugObject:
        q = _array("draw_debug_path(qposs)", qposs, None)
        n_qs = getattr(entity, "n_qs", None)
        if n_qs is None or q.ndim != 2 or q.shape[1] != n_qs:
            raise InvalidInputError(f"draw_debug_path: expected qposs shaped (n_waypoints, entity.n_qs) and a rigid "
                                    f"entity, got {q.shape} for {entity!r}.")
        _positive("draw_debug_path(density)", density)
        _positive("draw_debug_path(frame_scaling)", frame_scaling)
        return self._debug_handle("path")

    def clear_debug_object(self, object) -> None:  # noqa: A002 (Genesis' argument name)
        handles = self.__dict__.setdefault("_debug_objects", set())
        if object not in handles:
            raise InvalidInputError(f"clear_debug_object({object!r}): not a debug object of this scene (or cleared).")
        handles.discard(object)

    def clear_debug_objects(self) -> None:
        self.__dict__["_debug_objects"] = set()

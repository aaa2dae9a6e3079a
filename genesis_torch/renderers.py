"""`gs.renderers`: Genesis 1.4.5's renderer options (`gs.Scene(renderer=...)`), with Genesis' names and defaults.

A renderer option says which backend draws the images of the scene's cameras (`scene.add_camera`); it never changes
the physics. genesis-torch has one backend, MuJoCo's OpenGL rasteriser (`genesis_torch/vis/camera.py`), so:

- `Rasterizer()` (Genesis' default, no parameters) is accepted: cameras render as without a `renderer` argument.
- `RayTracer(...)` and `BatchRenderer(...)` are validated with Genesis' fields and defaults, and a Scene given one
  raises `UnsupportedFeatureError` naming why (no path tracer / no batched GPU renderer here) and what to use
  (`gs.renderers.Rasterizer()`, or leave `renderer` out).
"""

from __future__ import annotations

import dataclasses
import math

from .errors import InvalidInputError, UnsupportedFeatureError
from .options import _check_like_default, _check_number, _check_vec3, _Options

__all__ = ["RendererOptions", "Rasterizer", "RayTracer", "BatchRenderer", "SphereLight"]

_LOGGING_LEVELS = ("debug", "info", "warning")


def _check_int(owner: str, name: str, value, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(f"{owner}({name}={value!r}): expected an int >= {low}"
                                f"{' or None' if allow_none else ''}.")


@dataclasses.dataclass(frozen=True, init=False)
class RendererOptions(_Options):
    """Base of the `gs.renderers.*` options (Genesis' `RendererOptions`): a renderer configuration, not a renderer.

    `supported` says whether genesis-torch draws with it; `why_unsupported` is the reason a Scene refuses it."""

    supported = True
    why_unsupported = ""

    def _validate(self) -> None:
        pass


@dataclasses.dataclass(frozen=True, init=False)
class Rasterizer(RendererOptions):
    """Genesis' rasteriser, which has no parameter. Cameras render with MuJoCo's OpenGL rasteriser (offscreen,
    EGL): rgb, depth, segmentation and normal maps as `genesis_torch.vis.Camera.render` documents. Lights, shadows
    and colours are Genesis' `gs.options.VisOptions`, accepted and ignored here (docs/genesis_compat.md)."""


@dataclasses.dataclass(frozen=True, init=False)
class SphereLight(_Options):
    """A sphere light of Genesis' ray tracer: `pos (3,)` m, `color (3,)` (HDR, not limited to [0, 1]), `intensity`
    multiplier, `radius` m. Validated and kept; only `RayTracer` reads it, which genesis-torch does not provide."""

    pos: tuple = (0.0, 0.0, 10.0)
    color: tuple = (1.0, 1.0, 1.0)
    intensity: float = 1.0
    radius: float = 4.0

    def _validate(self) -> None:
        owner = "SphereLight"
        object.__setattr__(self, "pos", _check_vec3(owner, "pos", self.pos))
        object.__setattr__(self, "color", _check_vec3(owner, "color", self.color))
        _check_number(owner, "intensity", self.intensity)
        _check_number(owner, "radius", self.radius, low=0.0, strict_low=True)


def _default_lights() -> tuple:
    return (SphereLight(pos=(0.0, 0.0, 10.0), color=(1.0, 1.0, 1.0), intensity=10.0, radius=4.0),)


@dataclasses.dataclass(frozen=True, init=False)
class RayTracer(RendererOptions):
    """Genesis' path tracer (LuisaRender) with its fields and defaults: `device_index` (None: Genesis' device),
    `logging_level` ("debug" | "info" | "warning"), `state_limit` 2**25, `tracing_depth` 32, `rr_depth` 0 and
    `rr_threshold` 0.95 (Russian roulette), the environment sphere (`env_surface` None, `env_radius` 1000 m,
    `env_pos` (3,) m, `env_euler` (3,) degrees or `env_quat` (4,) wxyz, not both), `lights` (`SphereLight`s; one of
    intensity 10 at (0, 0, 10) by default) and `normal_diff_clamp` in [0, 180] degrees.

    Validated, then refused by `gs.Scene(renderer=...)`: genesis-torch has no path tracer."""

    supported = False
    why_unsupported = ("genesis-torch has no path tracer (Genesis' RayTracer is LuisaRender, a CUDA renderer); "
                       "cameras render with MuJoCo's OpenGL rasteriser: use renderer=gs.renderers.Rasterizer() or "
                       "leave renderer out (the camera's spp / denoise / aperture are accepted and ignored)")

    device_index: int | None = None
    logging_level: str = "warning"
    state_limit: int = 2 ** 25
    tracing_depth: int = 32
    rr_depth: int = 0
    rr_threshold: float = 0.95
    env_surface: object = None
    env_radius: float = 1000.0
    env_pos: tuple = (0.0, 0.0, 0.0)
    env_euler: tuple | None = None
    env_quat: tuple | None = None
    lights: tuple | None = None  #: None: Genesis' default light (`_default_lights`)
    normal_diff_clamp: float = 180.0

    def _validate(self) -> None:
        owner = "RayTracer"
        _check_int(owner, "device_index", self.device_index, 0, allow_none=True)
        if self.logging_level not in _LOGGING_LEVELS:
            raise InvalidInputError(f"RayTracer(logging_level={self.logging_level!r}): use one of {_LOGGING_LEVELS}.")
        for name, low in (("state_limit", 1), ("tracing_depth", 1), ("rr_depth", 0)):
            _check_int(owner, name, getattr(self, name), low)
        _check_number(owner, "rr_threshold", self.rr_threshold, low=0.0, strict_low=True)
        _check_number(owner, "env_radius", self.env_radius, low=0.0, strict_low=True)
        _check_number(owner, "normal_diff_clamp", self.normal_diff_clamp, low=0.0, high=180.0)
        object.__setattr__(self, "env_pos", _check_vec3(owner, "env_pos", self.env_pos))
        if self.env_euler is not None and self.env_quat is not None:
            raise InvalidInputError("RayTracer: 'env_euler' and 'env_quat' cannot both be set; give one.")
        if self.env_euler is not None:
            object.__setattr__(self, "env_euler", _check_vec3(owner, "env_euler", self.env_euler))
        if self.env_quat is not None:
            _check_like_default(owner, "env_quat", self.env_quat, (1.0, 0.0, 0.0, 0.0))
            if abs(math.sqrt(sum(float(v) ** 2 for v in self.env_quat)) - 1.0) > 1e-6:
                raise InvalidInputError(f"RayTracer(env_quat={self.env_quat!r}): expected a unit quaternion (w, x, y, z).")
        if self.env_surface is not None:
            from .surfaces import Surface
            if not isinstance(self.env_surface, Surface):
                raise InvalidInputError(f"RayTracer(env_surface={self.env_surface!r}): expected a gs.surfaces.Surface "
                                        "or None.")
        lights = _default_lights() if self.lights is None else self.lights
        try:
            lights = tuple(SphereLight(**light) if isinstance(light, dict) else light for light in lights)
        except TypeError:
            raise InvalidInputError(f"RayTracer(lights={self.lights!r}): expected a list of gs.renderers.SphereLight "
                                    "(or dicts of their fields).") from None
        if not all(isinstance(light, SphereLight) for light in lights):
            raise InvalidInputError(f"RayTracer(lights={self.lights!r}): expected a list of gs.renderers.SphereLight "
                                    "(or dicts of their fields).")
        object.__setattr__(self, "lights", lights)


@dataclasses.dataclass(frozen=True, init=False)
class BatchRenderer(RendererOptions):
    """Genesis' batched renderer (Madrona; one image per env and camera in one pass): `use_rasterizer` (False: its
    ray tracer). Validated, then refused by `gs.Scene(renderer=...)`: genesis-torch has no batched renderer."""

    supported = False
    why_unsupported = ("genesis-torch has no batched renderer (Genesis' BatchRenderer is Madrona, a CUDA renderer "
                       "drawing every env at once); use renderer=gs.renderers.Rasterizer() or leave renderer out, and "
                       "render each env with a camera of its own env_idx (scene.add_camera(env_idx=i))")

    use_rasterizer: bool = False

    def _validate(self) -> None:
        if not isinstance(self.use_rasterizer, bool):
            raise InvalidInputError(f"BatchRenderer(use_rasterizer={self.use_rasterizer!r}): expected True or False.")


for _cls in (RendererOptions, Rasterizer, SphereLight, RayTracer, BatchRenderer):
    _cls.__setattr__ = _Options.__setattr__


def check_renderer(renderer) -> RendererOptions:
    """The renderer a Scene keeps: `Rasterizer()` for None; raises `InvalidInputError` for anything but a
    `gs.renderers` option and `UnsupportedFeatureError` for one genesis-torch does not draw with."""
    if renderer is None:
        return Rasterizer()
    if not isinstance(renderer, RendererOptions):
        raise InvalidInputError(f"Scene(renderer={renderer!r}): expected gs.renderers.Rasterizer() (or None).")
    if not renderer.supported:
        raise UnsupportedFeatureError(f"Scene(renderer=gs.renderers.{type(renderer).__name__}(...)): "
                                      f"{renderer.why_unsupported}.")
    return renderer


def _register_as_options_renderers() -> None:
    """Genesis also exposes these classes as `gs.options.renderers` (`from genesis.options.renderers import
    BatchRenderer`): the same module under that name."""
    import sys

    from . import options

    options.renderers = sys.modules[__name__]
    sys.modules.setdefault(f"{__package__}.options.renderers", sys.modules[__name__])


_register_as_options_renderers()

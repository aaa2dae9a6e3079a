"""`gs.surfaces`: Genesis' surface (appearance) options, with Genesis' class names, parameters and defaults.

`scene.add_entity(morph, material, surface=...)` stores the surface on the entity (`entity.surface`; default
`Default()`). What is honoured: the colour. A rigid entity whose surface gives a colour has every geom drawn in it by
the cameras (the geom `rgba` of the compiled model the renderer draws; a geom material/texture of the asset is replaced,
as Genesis lets a surface's own colour win over the asset's). `Surface.rgba` is that colour. Everything else
(roughness, metalness, index of refraction, textures' physics, `vis_mode`, smoothing, foam, reconstruction) only
matters to Genesis' ray tracer and particle renderer; it is validated, stored and not rendered. MPM particles are not
drawn by the cameras at all (docs/genesis_compat.md).

Colours are `(r, g, b)` or `(r, g, b, a)` in [0, 1]. Texture arguments (`diffuse_texture=...`) must be None: textures
are not rendered here (`gs.textures` does not exist); give a `color` instead.
"""

from __future__ import annotations

import dataclasses
import math

from .errors import InvalidInputError, UnsupportedFeatureError
from .options import _check_number, _Options

__all__ = ["Surface", "Default", "BSDF", "Plastic", "Rough", "Smooth", "Reflective", "Collision", "Glass", "Water",
           "Metal", "Iron", "Aluminium", "Copper", "Gold", "Emission"]

VIS_MODES = (None, "visual", "collision", "particle", "sdf", "recon")
RECON_BACKENDS = ("splashsurf", "openvdb")
METAL_TYPES = ("aluminium", "gold", "copper", "brass", "iron", "titanium", "vanadium", "lithium")


def _color(owner: str, name: str, value, high: float | None = 1.0):
    """`value` as a tuple of 3 or 4 floats in [0, high] (None passes through)."""
    if value is None:
        return None
    rng = "[0, 1]" if high == 1.0 else ">= 0"
    fix = (f"{owner}({name}=...): expected (r, g, b) or (r, g, b, a) with values {rng}, e.g. (0.8, 0.2, 0.2); for "
           "0-255 values divide by 255")
    try:
        rgba = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{fix}; got {value!r}.") from None
    if isinstance(value, str) or any(isinstance(v, bool) for v in value) or len(rgba) not in (3, 4):
        raise InvalidInputError(f"{fix}; got {value!r}.")
    if not all(math.isfinite(v) and v >= 0 and (high is None or v <= high) for v in rgba):
        raise InvalidInputError(f"{fix}; got {value!r}.")
    return rgba


def _check_choice(owner: str, name: str, value, choices) -> None:
    if value not in choices:
        raise InvalidInputError(f"{owner}({name}={value!r}): use one of {list(choices)}.")


def _check_bool(owner: str, name: str, value, allow_none=False) -> None:
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected True or False" +
                                (" or None." if allow_none else "."))


@dataclasses.dataclass(frozen=True, init=False)
class Surface(_Options):
    """Base of the surfaces (Genesis' `Surface`; use a subclass). Frozen after construction.

    Attributes (Genesis' meaning; only `color`/`opacity`/`emissive` reach the image here, see the module docstring):
        color: (3,) or (4,) in [0, 1]; the base colour (Genesis' shortcut for the primary texture).
        opacity: in [0, 1]; alpha when `color` has 3 values.
        roughness, metallic: in [0, 1].
        emissive: (3,) or (4,) >= 0, emitted colour; drawn as the colour when `color` is absent or black.
        ior: index of refraction (> 0) or None.
        default_roughness: in [0, 1]; takes `roughness` when only that is given (Genesis' rule).
        vis_mode: None, "visual", "collision", "particle", "sdf" or "recon".
        smooth, double_sided, cutoff, normal_diff_clamp, recon_backend, generate_foam, foam_options: Genesis'
            shading, reconstruction and foam settings (foam_options must be None: no foam is generated).
    """

    color: tuple | None = None
    opacity: float | None = None
    roughness: float | None = None
    metallic: float | None = None
    emissive: tuple | None = None
    ior: float | None = None
    default_roughness: float = 1.0
    vis_mode: str | None = None
    smooth: bool = True
    double_sided: bool | None = None
    cutoff: float = 180.0
    normal_diff_clamp: float = 180.0
    recon_backend: str = "splashsurf"
    generate_foam: bool = False
    foam_options: object = None
    _COLOR_HIGH = 1.0  # upper bound of `color` values (class constant, not a field)

    def __init__(self, **kwargs):
        roughness = kwargs.get("roughness", type(self).__dataclass_fields__["roughness"].default)
        if "default_roughness" not in kwargs and roughness is not None:  # Genesis mirrors roughness into it
            kwargs["default_roughness"] = roughness
        super().__init__(**kwargs)

    def _validate(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "color", _color(name, "color", self.color, high=self._COLOR_HIGH))
        object.__setattr__(self, "emissive", _color(name, "emissive", self.emissive, high=None))
        for field in ("opacity", "roughness", "metallic"):
            _check_number(name, field, getattr(self, field), low=0.0, high=1.0, allow_none=True)
        _check_number(name, "default_roughness", self.default_roughness, low=0.0, high=1.0)
        _check_number(name, "ior", self.ior, low=0.0, strict_low=True, allow_none=True)
        _check_number(name, "cutoff", self.cutoff)
        _check_number(name, "normal_diff_clamp", self.normal_diff_clamp)
        _check_choice(name, "vis_mode", self.vis_mode, VIS_MODES)
        _check_choice(name, "recon_backend", self.recon_backend, RECON_BACKENDS)
        for field in ("smooth", "generate_foam"):
            _check_bool(name, field, getattr(self, field))
        _check_bool(name, "double_sided", self.double_sided, allow_none=True)
        if self.foam_options is not None:
            raise UnsupportedFeatureError(f"{name}(foam_options=...): foam particles are not generated here; leave "
                                          "foam_options as None.")
        for field in dataclasses.fields(self):
            if field.name.endswith("_texture") and getattr(self, field.name) is not None:
                raise UnsupportedFeatureError(
                    f"{name}({field.name}=...): textures are not rendered by genesis-torch; pass color=(r, g, b) "
                    "instead (or leave the texture out).")

    @property
    def rgba(self) -> tuple | None:
        """The colour the cameras draw, (4,) in [0, 1], or None to keep the asset's own colours: `color` unless absent
        or black, else `emissive` (clipped to 1); alpha from a 4th value, else `opacity`, else 1."""
        base = self.color
        if (base is None or not any(base[:3])) and self.emissive is not None:
            base = tuple(min(v, 1.0) for v in self.emissive)
        if base is None:
            return None
        alpha = base[3] if len(base) == 4 else (1.0 if self.opacity is None else float(self.opacity))
        return (*base[:3], alpha)


@dataclasses.dataclass(frozen=True, init=False)
class BSDF(Surface):
    """Genesis' principled (Disney) BSDF surface."""

    ior: float | None = 1.0
    diffuse_texture: object = None
    opacity_texture: object = None
    roughness_texture: object = None
    metallic_texture: object = None
    normal_texture: object = None
    emissive_texture: object = None
    specular_trans: float = 0.0
    diffuse_trans: float = 0.0

    def _validate(self) -> None:
        super()._validate()
        for field in ("specular_trans", "diffuse_trans"):
            _check_number(type(self).__name__, field, getattr(self, field))


@dataclasses.dataclass(frozen=True, init=False)
class Default(BSDF):
    """Genesis' default surface (a `BSDF`); what an entity gets when `add_entity` is given no surface."""


@dataclasses.dataclass(frozen=True, init=False)
class Plastic(Surface):
    """Genesis' plastic surface."""

    ior: float | None = 1.0
    diffuse_texture: object = None
    specular_texture: object = None
    opacity_texture: object = None
    roughness_texture: object = None
    normal_texture: object = None
    emissive_texture: object = None


@dataclasses.dataclass(frozen=True, init=False)
class Rough(Plastic):
    """Rough plastic (roughness 1, ior 1.5)."""

    roughness: float | None = 1.0
    ior: float | None = 1.5


@dataclasses.dataclass(frozen=True, init=False)
class Smooth(Plastic):
    """Smooth plastic (roughness 0.1, ior 1.5)."""

    roughness: float | None = 0.1
    ior: float | None = 1.5


@dataclasses.dataclass(frozen=True, init=False)
class Reflective(Plastic):
    """Reflective plastic (roughness 0.01, ior 2)."""

    roughness: float | None = 0.01
    ior: float | None = 2.0


@dataclasses.dataclass(frozen=True, init=False)
class Collision(Plastic):
    """Genesis' surface of collision geometry: grey by default."""

    color: tuple | None = (0.5, 0.5, 0.5)


@dataclasses.dataclass(frozen=True, init=False)
class Glass(Surface):
    """Genesis' glass surface (specular reflection and transmission); `color` is its specular colour."""

    roughness: float | None = 0.0
    ior: float | None = 1.5
    thickness: float | None = None
    subsurface: bool = False
    specular_texture: object = None
    diffuse_texture: object = None
    transmission_texture: object = None
    thickness_texture: object = None
    roughness_texture: object = None
    normal_texture: object = None
    emissive_texture: object = None

    def _validate(self) -> None:
        super()._validate()
        _check_bool(type(self).__name__, "subsurface", self.subsurface)
        _check_number(type(self).__name__, "thickness", self.thickness, low=0.0, strict_low=True, allow_none=True)


@dataclasses.dataclass(frozen=True, init=False)
class Water(Glass):
    """Water: a glass surface of colour (0.61, 0.98, 0.93), roughness 0.2, ior 1.2."""

    color: tuple | None = (0.61, 0.98, 0.93)
    roughness: float | None = 0.2
    ior: float | None = 1.2


@dataclasses.dataclass(frozen=True, init=False)
class Metal(Surface):
    """Genesis' metal surface; `metal_type` picks the metal's index of refraction in Genesis' ray tracer."""

    roughness: float | None = 0.1
    metal_type: str = "iron"
    diffuse_texture: object = None
    opacity_texture: object = None
    roughness_texture: object = None
    normal_texture: object = None
    emissive_texture: object = None

    def _validate(self) -> None:
        super()._validate()
        _check_choice(type(self).__name__, "metal_type", self.metal_type, METAL_TYPES)


@dataclasses.dataclass(frozen=True, init=False)
class Iron(Metal):
    """Metal with `metal_type="iron"`."""


@dataclasses.dataclass(frozen=True, init=False)
class Aluminium(Metal):
    """Metal with `metal_type="aluminium"`."""

    metal_type: str = "aluminium"


@dataclasses.dataclass(frozen=True, init=False)
class Copper(Metal):
    """Metal with `metal_type="copper"`."""

    metal_type: str = "copper"


@dataclasses.dataclass(frozen=True, init=False)
class Gold(Metal):
    """Metal with `metal_type="gold"`."""

    metal_type: str = "gold"


@dataclasses.dataclass(frozen=True, init=False)
class Emission(Surface):
    """A light-emitting surface; `color` is the emitted colour (Genesis routes it to the emission texture)."""

    emissive_texture: object = None
    _COLOR_HIGH = None  # an emitted colour may exceed 1 (light intensity)

    @property
    def rgba(self) -> tuple | None:
        base = self.color if self.color is not None else self.emissive
        if base is None:
            return None
        base = tuple(min(v, 1.0) for v in base)
        return (*base[:3], base[3] if len(base) == 4 else 1.0)



# frozen dataclasses get a `__setattr__` raising FrozenInstanceError; use the options' one (says what to do)
for _cls in (Surface, BSDF, Default, Plastic, Rough, Smooth, Reflective, Collision, Glass, Water, Metal, Iron,
             Aluminium, Copper, Gold, Emission):
    _cls.__setattr__ = _Options.__setattr__


def for_entity(surface) -> Surface:
    """The surface `add_entity` stores: `surface` itself, or `Default()` when None; anything else raises."""
    if surface is None:
        return Default()
    if not isinstance(surface, Surface):
        raise InvalidInputError(f"add_entity(surface={surface!r}): expected a gs.surfaces.* object such as "
                                "gs.surfaces.Default(color=(0.8, 0.2, 0.2)), or None.")
    return surface


def paint_geoms(spec, surface: Surface) -> None:
    """Give every geom of the MuJoCo spec `spec` the surface's colour (`surface.rgba`), dropping its material so the
    colour is what is drawn; no-op when the surface gives no colour. Visual only: no physics reads `rgba`."""
    rgba = surface.rgba
    if rgba is None:
        return
    for geom in spec.geoms:
        geom.rgba, geom.material = list(rgba), ""

"""The options Genesis' base `Morph` (and its MJCF / URDF file morphs) give every rigid morph, with Genesis 1.4.5's
names and defaults (genesis/options/morphs.py): what each does here, or why it is refused.

- `visualization=False`: the entity's geoms go to MuJoCo geom group 3, which cameras do not draw (collision only);
  `collision=False`: its geoms get `contype = conaffinity = 0` (seen, never touched; masses unchanged). Not both.
- `requires_jac_and_IK`, `is_free`: deprecated in Genesis and without effect there; accepted with Genesis' warning.
- `batch_fixed_verts`, `enable_custom_vverts`: Genesis' memory layout and custom-visual-vertex switches; fixed
  geometry is not batched here and vertices are not customisable: validated, no effect.
- `offset_pos` / `offset_euler` / `offset_quat`: accepted at the identity only (a non-identity offset would have to be
  stripped by every pose getter, which is not implemented; fold it into `pos` / `quat`).
- MJCF / URDF mesh processing (`decimate`, `decimate_face_num`, `decimate_aggressiveness`, `watertighten`, `align`,
  `file_meshes_are_zup`, `coacd_options`, `decompose_*_error_threshold`, `prioritize_urdf_material`): MuJoCo's
  compiler loads the file's meshes as they are and collides with their convex hulls: validated, no effect;
  `convexify` accepts None or True (convex hulls are what MuJoCo collides), False raises.
- `recompute_inertia=True`: MuJoCo's `inertiafromgeom="true"` (masses and inertias from the geoms, ignoring the
  file's inertials), as Genesis recomputes them from the geometry.
- `exclude_ground_plane=True` (MJCF): the file's plane geoms on the world body are removed (a scene adds its own).
- `xacro_args` (URDF): only `{}` (xacro files are not expanded here).
"""

from __future__ import annotations

import logging
import math

import mujoco

from .errors import InvalidInputError, UnsupportedFeatureError

logger = logging.getLogger("genesis_torch")

HIDDEN_GROUP = 3  # MuJoCo's default mjvOption draws geom groups 0-2 only
_DEPRECATED = ("requires_jac_and_IK", "is_free")
_LAYOUT = {"batch_fixed_verts", "enable_custom_vverts"}


def _number(low: float, integer: bool = False):
    def check(v) -> bool:
        kind = int if integer else (int, float)
        return isinstance(v, kind) and not isinstance(v, bool) and not math.isnan(v) and v >= low
    return check


# file-morph options without effect here: name -> (check, what is expected)
_FILE_NO_EFFECT = {
    "decimate": (lambda v: v is None or isinstance(v, bool), "None, True or False"),
    "decimate_face_num": (_number(1, integer=True), "an int >= 1"),
    "decimate_aggressiveness": (lambda v: _number(0, integer=True)(v) and v <= 8, "an int in 0..8"),
    "watertighten": (_number(0, integer=True), "an int >= 0"),
    "align": (lambda v: v is None, "None"),
    "file_meshes_are_zup": (lambda v: isinstance(v, bool), "True or False"),
    "coacd_options": (lambda v: v is None, "None (file meshes are not decomposed)"),
    "decompose_object_error_threshold": (_number(0.0), "a number >= 0"),
    "decompose_robot_error_threshold": (_number(0.0), "a number >= 0 (inf: never)"),
}


def _bool(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected True or False.")
    return value


def take_common(morph, owner: str, kwargs: dict, *, file_morph: bool = False, urdf: bool = False,
                mjcf: bool = False) -> dict:
    """Validate and store the base-Morph options in `kwargs` on `morph` (attributes `visualization`, `collision`,
    and for file morphs `recompute_inertia`, `exclude_ground_plane`); returns the other keyword arguments."""
    kw = dict(kwargs)
    vis = _bool(owner, "visualization", kw.pop("visualization", True))
    col = _bool(owner, "collision", kw.pop("collision", True))
    if not vis and not col:
        raise InvalidInputError(f"{owner}(visualization=False, collision=False): the entity would be neither seen nor "
                                "touched; keep one of them True.")
    for name in _DEPRECATED:
        if kw.pop(name, None) is not None:
            logger.warning("'%s' is deprecated and has no effect.", name)  # Genesis' warning
    for name in _LAYOUT & set(kw):
        _bool(owner, name, kw.pop(name))
    for name in ("offset_pos", "offset_euler", "offset_quat"):
        if name in kw:
            value = kw.pop(name)
            identity = value is None or (len(value) in (3, 4) and all(
                float(v) == (1.0 if (name == "offset_quat" and i == 0) else 0.0) for i, v in enumerate(value)))
            if not identity:
                raise UnsupportedFeatureError(f"{owner}({name}={value!r}) is not supported: pose offsets are not "
                                              "stripped by the getters here; fold the offset into pos / euler / quat.")
    object.__setattr__(morph, "visualization", vis)
    object.__setattr__(morph, "collision", col)
    if file_morph:
        for name, (check, expected) in _FILE_NO_EFFECT.items():
            if name in kw and not check(kw.pop(name)):
                raise InvalidInputError(f"{owner}({name}={kwargs[name]!r}): expected {expected}.")
        if urdf and "prioritize_urdf_material" in kw:
            _bool(owner, "prioritize_urdf_material", kw.pop("prioritize_urdf_material"))
        convexify = kw.pop("convexify", None)
        if convexify is not None and convexify is not True:
            raise UnsupportedFeatureError(f"{owner}(convexify={convexify!r}) is not supported: MuJoCo collides with "
                                          "the convex hulls of a file's meshes; use None or True.")
        object.__setattr__(morph, "recompute_inertia", _bool(owner, "recompute_inertia",
                                                              kw.pop("recompute_inertia", False)))
        if mjcf:
            object.__setattr__(morph, "exclude_ground_plane", _bool(owner, "exclude_ground_plane",
                                                                     kw.pop("exclude_ground_plane", False)))
        if urdf:
            xacro = kw.pop("xacro_args", {})
            if xacro:
                raise UnsupportedFeatureError(f"{owner}(xacro_args={xacro!r}) is not supported: xacro files are not "
                                              "expanded here; expand it to a URDF (e.g. with the xacro tool) first.")
    return kw


def apply_common(spec: mujoco.MjSpec, morph) -> None:
    """Apply `morph`'s base options to its fresh `spec`: hidden / contact-free geoms, recomputed inertia, the
    file's ground plane removed."""
    if getattr(morph, "exclude_ground_plane", False):
        for geom in list(spec.worldbody.geoms):
            if geom.type == mujoco.mjtGeom.mjGEOM_PLANE:
                spec.delete(geom)
    if getattr(morph, "recompute_inertia", False):
        spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
    for geom in spec.geoms:
        if not getattr(morph, "collision", True):
            geom.contype, geom.conaffinity = 0, 0
        if not getattr(morph, "visualization", True):
            geom.group = HIDDEN_GROUP


def fingerprint_common(morph, d: dict) -> dict:
    """`d` with the base options that differ from Genesis' defaults (a default morph keeps its fingerprint)."""
    for name, default in (("visualization", True), ("collision", True), ("recompute_inertia", False),
                          ("exclude_ground_plane", False)):
        value = getattr(morph, name, default)
        if value != default:
            d[name] = value
    return d

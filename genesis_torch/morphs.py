"""Morphs: the geometry and source of an entity (no physics). Validated at construction.

Rigid morphs become MuJoCo specs (`to_spec`) that the scene attaches into one model and compiles once.
"""

from __future__ import annotations

import dataclasses
import math
import os
from importlib import resources

import mujoco
import numpy as np

from ._morph_options import apply_common, fingerprint_common, take_common
from .errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["MJCF", "URDF", "Plane", "Box", "Sphere", "Cylinder", "Mesh", "Terrain", "identifier", "resolve_asset",
           "GENESIS_ASSETS"]


# Genesis' asset paths (relative to `genesis/assets`) with an equivalent model bundled here. Equivalent means the same
# robot with the same body, joint and actuator names and dof order, so a Genesis script indexes it the same way; the
# numbers are this project's own model (genesis_torch/assets/README.md), not Genesis' file.
GENESIS_ASSETS = {
    "xml/franka_emika_panda/panda.xml": "franka.xml",
    "urdf/go2/urdf/go2.urdf": "go2.urdf",
    "urdf/plane/plane.urdf": "plane.xml",
    "meshes/cloth.obj": "meshes/cloth.obj",
    "meshes/sphere.obj": "meshes/sphere.obj",
    "meshes/axis.obj": "meshes/axis.obj",
    "xml/four_bar_linkage.xml": "four_bar_linkage.xml",
    "xml/four_bar_linkage_weld.xml": "four_bar_linkage_weld.xml",
}


def resolve_asset(file: str) -> str:
    """An existing path as given; else a Genesis asset path with a bundled equivalent (`GENESIS_ASSETS`, e.g.
    "xml/franka_emika_panda/panda.xml" -> franka.xml); else the bundled asset of that name (e.g. "franka.xml");
    else `InvalidInputError` naming the file."""
    if not isinstance(file, (str, os.PathLike)):
        raise InvalidInputError(f"file={file!r} must be a path string, e.g. 'franka.xml'.")
    path = os.fspath(file)
    if os.path.isfile(path):
        return os.path.abspath(path)
    assets = resources.files("genesis_torch") / "assets"
    key = _asset_key(path)
    if key in GENESIS_ASSETS:
        return str(assets / GENESIS_ASSETS[key])
    names = sorted(p.name for p in assets.iterdir() if p.name.endswith((".xml", ".urdf")))
    if _is_genesis_asset(path):
        raise InvalidInputError(
            f"file {path!r} is a Genesis asset that genesis-torch does not bundle; Genesis asset paths with a bundled "
            f"equivalent: {sorted(GENESIS_ASSETS)}; bundled assets: {names}. Pass the path of your own copy of "
            f"{os.path.basename(path)!r} (e.g. from the Genesis repository's genesis/assets/{key}).")
    for candidate in (assets / path, assets / os.path.basename(path)):
        if candidate.is_file():
            return str(candidate)
    raise InvalidInputError(f"file {path!r} does not exist and is not a bundled asset; bundled assets: {names}.")


def identifier(morph) -> str:
    """The stem of Genesis 1.4.5's default entity name for `morph`: the model's name for MJCF (`<mujoco model=...>`)
    and URDF (`<robot name=...>`) files, else the file's stem; a Mesh's file stem; a Terrain's `name`; "heterogeneous"
    for a list of morphs; else the morph type in lower case ("box", "sphere", "cylinder", "plane", "terrain")."""
    if isinstance(morph, (tuple, list)):
        return "heterogeneous"
    if isinstance(morph, MJCF):
        import xml.etree.ElementTree as ET

        try:
            root = ET.parse(morph.file).getroot()
            model = root.get("name" if isinstance(morph, URDF) else "model")
        except (ET.ParseError, OSError):
            model = None
        return model or os.path.splitext(os.path.basename(morph.file))[0]
    if isinstance(morph, Mesh):
        return os.path.splitext(os.path.basename(morph.file))[0]
    if isinstance(morph, Terrain) and morph.name:
        return morph.name
    return type(morph).__name__.lower()


def _asset_key(file) -> str:
    return os.fspath(file).replace(os.sep, "/").lstrip("./")


def _is_genesis_asset(file) -> bool:
    """Whether `file` is written as a path inside Genesis' `genesis/assets` folder (e.g. "meshes/cloth.obj")."""
    return _asset_key(file).split("/", 1)[0] in ("xml", "urdf", "meshes", "usd")


def _vec(owner, name, value, n):
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected {n} numbers.") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected {n} finite numbers.")
    return tuple(float(v) for v in arr)


def _positive(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{owner}({name}={value!r}): expected a positive finite number.")
    return float(value)


def _orientation(owner, euler, quat):
    """wxyz quaternion from `euler` (degrees, extrinsic x-y-z as Genesis) or `quat` (wxyz)."""
    if euler is not None and quat is not None:
        raise InvalidInputError(f"{owner}: give euler or quat, not both.")
    if quat is not None:
        q = np.array(_vec(owner, "quat", quat, 4))
        n = np.linalg.norm(q)
        if n < 1e-9:
            raise InvalidInputError(f"{owner}(quat={quat!r}): the quaternion must be non-zero (wxyz).")
        return tuple(float(v) for v in q / n)
    e = np.radians(_vec(owner, "euler", euler if euler is not None else (0, 0, 0), 3))
    out = np.zeros(4)
    mujoco.mju_euler2Quat(out, e, "XYZ")
    return tuple(float(v) for v in out)


def _with_file_hash(d: dict, path: str) -> dict:
    """`d` with the file's SHA-256 and its base name (so a moved, identical file keeps the fingerprint)."""
    import hashlib

    with open(path, "rb") as fh:
        d["file_sha256"] = hashlib.sha256(fh.read()).hexdigest()
    d["file"] = os.path.basename(path)
    return d


@dataclasses.dataclass(frozen=True)
class _Morph:
    def fingerprint(self) -> dict:
        d = {"type": type(self).__name__}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        return fingerprint_common(self, d)


@dataclasses.dataclass(frozen=True, init=False)
class MJCF(_Morph):
    """A MuJoCo MJCF file compiled by MuJoCo. `pos` (m) and `euler` (deg) / `quat` (wxyz) place its root; `scale` (a
    positive number, or 3 equal ones) resizes the whole model about its origin before `pos` applies, as a change of
    the units of length and mass (densities kept; docs/rigid.md, "Scaling and merging"). `default_armature` (kg m^2,
    or None) is Genesis' default rotor inertia: every hinge or slide joint that moves a body on its own (the body's
    only joint) and has armature 0 in the file gets it, after scaling. None (the default for MJCF files, which state
    their armature for MuJoCo) keeps the file's, as Genesis does with `RigidOptions(enable_mujoco_compatibility=True)`;
    Genesis' default otherwise is 0.1, which `URDF` takes (docs/decisions.md).
    """

    file: str
    pos: tuple
    quat: tuple
    scale: float
    default_armature: float | None

    _ARGS = "file, pos, euler, quat, scale, default_armature"

    def __init__(self, file, pos=(0.0, 0.0, 0.0), euler=None, quat=None, scale=1.0, default_armature=None,
                 visualization=True, collision=True, **unknown):
        from ._spec_scale import check_scale

        name = type(self).__name__
        unknown = take_common(self, name, {**unknown, "visualization": visualization, "collision": collision},
                              file_morph=True, urdf=name == "URDF", mjcf=name == "MJCF")
        if unknown:
            raise InvalidInputError(f"{name} got unknown argument(s) {sorted(unknown)}; use {self._ARGS} (or "
                                    "Genesis' Morph options: visualization, collision, ...).")
        object.__setattr__(self, "file", resolve_asset(file))
        object.__setattr__(self, "pos", _vec(name, "pos", pos, 3))
        object.__setattr__(self, "quat", _orientation(name, euler, quat))
        object.__setattr__(self, "scale", check_scale(name, scale))
        if default_armature is not None and (isinstance(default_armature, bool) or not isinstance(
                default_armature, (int, float)) or not math.isfinite(default_armature) or default_armature < 0):
            raise InvalidInputError(f"{name}(default_armature={default_armature!r}): expected None or a finite "
                                    "number >= 0 (kg m^2; Genesis' default is 0.1).")
        object.__setattr__(self, "default_armature", None if default_armature is None else float(default_armature))

    def to_spec(self) -> mujoco.MjSpec:
        """A fresh spec of the file, scaled by `scale` (`genesis_torch._spec_scale.scale_spec`), then
        `default_armature` applied."""
        from ._spec_scale import scale_spec

        spec = mujoco.MjSpec.from_file(self.file)
        scale_spec(spec, self.scale)
        _apply_default_armature(spec, self.default_armature, self.scale)
        apply_common(spec, self)
        return spec

    def fingerprint(self) -> dict:
        """As `_Morph` with the file's hash; `default_armature` only when set (fingerprints and checkpoints of
        morphs without it stay as before it existed)."""
        d = super().fingerprint()
        if d["default_armature"] is None:
            del d["default_armature"]
        return _with_file_hash(d, self.file)


def _apply_default_armature(spec: mujoco.MjSpec, value: float | None, scale: float) -> None:
    """Genesis' default rotor inertia (genesis-world 1.4.5 rigid_solver: links with one dof whose joint is revolute or
    prismatic and whose armature is 0 get `default_armature`, in the built model's units): the same on the spec's
    bodies with a single hinge or slide joint, divided by what the compiler's scaling frame multiplies armatures by
    (`_spec_scale`: a hinge's, kg m^2, by scale^5; a slide's, kg, by scale^3)."""
    if not value:
        return
    power = {mujoco.mjtJoint.mjJNT_HINGE: 5, mujoco.mjtJoint.mjJNT_SLIDE: 3}
    for body in spec.bodies:
        joints = body.joints
        if len(joints) == 1 and joints[0].type in power and joints[0].armature == 0:
            joints[0].armature = value / scale ** power[joints[0].type]


def _urdf_links(path: str) -> list:
    """The link names of a URDF file (its bodies as MuJoCo's importer reads them)."""
    try:
        spec = mujoco.MjSpec.from_file(path)
    except Exception as exc:  # MuJoCo's parser names the problem
        raise InvalidInputError(f"URDF({os.path.basename(path)!r}): MuJoCo could not read the file: {exc}") from None
    return [b.name for b in spec.bodies if b.name != "world"]


def _links_to_keep(path: str, value) -> tuple:
    """Validated `links_to_keep` as a sorted tuple of link names of the file."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)) \
            or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"URDF(links_to_keep={value!r}): expected a list of link names, e.g. ['hand'].")
    if not value:
        return ()
    links = _urdf_links(path)
    missing = sorted(set(value) - set(links))
    if missing:
        raise InvalidInputError(f"URDF(links_to_keep={sorted(value)!r}): no link named {missing} in "
                                f"{os.path.basename(path)}; its links: {links}.")
    return tuple(sorted(set(value)))


@dataclasses.dataclass(frozen=True, init=False)
class URDF(MJCF):
    """A URDF file, compiled by MuJoCo's URDF importer. `fixed=True` welds the root link to the world (the root stays
    a link); else it gets a free joint. `merge_fixed_links=True` (Genesis' default) merges each link attached by a fixed
    joint into its parent (MuJoCo's `fusestatic`), except the links named in `links_to_keep`; `scale` as `MJCF`."""

    fixed: bool
    merge_fixed_links: bool
    links_to_keep: tuple

    _ARGS = "file, pos, euler, quat, scale, default_armature, fixed, merge_fixed_links, links_to_keep"

    def __init__(self, file, pos=(0.0, 0.0, 0.0), euler=None, quat=None, scale=1.0, fixed=False,
                 merge_fixed_links=True, links_to_keep=(), default_armature=0.1, visualization=True, collision=True,
                 **unknown):
        super().__init__(file, pos=pos, euler=euler, quat=quat, scale=scale, default_armature=default_armature,
                         visualization=visualization, collision=collision, **unknown)
        for name, value in (("fixed", fixed), ("merge_fixed_links", merge_fixed_links)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"URDF({name}={value!r}): expected True or False.")
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "merge_fixed_links", merge_fixed_links)
        object.__setattr__(self, "links_to_keep", _links_to_keep(self.file, links_to_keep))

    def to_spec(self) -> mujoco.MjSpec:
        """A fresh spec: static bodies fused unless kept (`body.fuse = 0`: the fixed root and `links_to_keep`), the
        root freed unless `fixed`, then scaled."""
        from ._spec_scale import scale_spec

        spec = mujoco.MjSpec.from_file(self.file)
        spec.compiler.fusestatic = self.merge_fixed_links
        for name in self.links_to_keep:
            spec.body(name).fuse = 0
        root = spec.worldbody.first_body()
        if root is not None and self.fixed:
            root.fuse = 0  # Genesis keeps a fixed base as a link; MuJoCo would fuse it into the world
        elif root is not None and not any(j.type == mujoco.mjtJoint.mjJNT_FREE for j in root.joints):
            taken = any(j.name == "root_joint" for j in spec.joints)
            root.add_freejoint(**({} if taken else {"name": "root_joint"}))  # Genesis' name for the added joint
        if self.merge_fixed_links:
            # Genesis merges a fixed link by adding its <inertial> to the parent's; a link without one adds no mass
            # (genesis/utils/urdf.py merge_fixed_links), where MuJoCo would give its geoms density-1000 mass
            for body in spec.bodies:
                if body.name != "world" and body.fuse != 0 and not body.joints and not body.explicitinertial:
                    for geom in body.geoms:
                        geom.density = 0.0
        scale_spec(spec, self.scale)
        _apply_default_armature(spec, self.default_armature, self.scale)
        apply_common(spec, self)
        return spec


# Genesis' tetrahedralisation options of the solid morphs (its `TetGenMixin`, used by FEM and PBD.Elastic bodies): kept
# as attributes (not dataclass fields, so rigid fingerprints are unchanged); the solvers that mesh volumes read them
_TET_OPTIONS = dict(order=1, mindihedral=10, minratio=1.1, nobisect=True, quality=True, maxvolume=-1.0, verbose=0,
                    force_retet=False)


def _take_tet_options(morph, owner: str, kwargs: dict) -> dict:
    """Set `morph`'s tetrahedralisation options from `kwargs` (Genesis' defaults for those not given), validated;
    returns the other keyword arguments."""
    tet = {k: kwargs.get(k, v) for k, v in _TET_OPTIONS.items()}
    for name in ("nobisect", "quality", "force_retet"):
        _flag(owner, name, tet[name])
    _int_in(owner, "order", tet["order"], 1)
    _int_in(owner, "mindihedral", tet["mindihedral"], 0)
    _int_in(owner, "verbose", tet["verbose"], 0, 2)
    _positive(owner, "minratio", tet["minratio"])
    if isinstance(tet["maxvolume"], bool) or not isinstance(tet["maxvolume"], (int, float)) \
            or not math.isfinite(tet["maxvolume"]):
        raise InvalidInputError(f"{owner}(maxvolume={tet['maxvolume']!r}): expected a number in m^3 (-1: no limit).")
    for k, v in tet.items():
        object.__setattr__(morph, k, v)
    return {k: v for k, v in kwargs.items() if k not in _TET_OPTIONS}


@dataclasses.dataclass(frozen=True, init=False)
class _Primitive(_Morph):
    pos: tuple
    quat: tuple
    fixed: bool
    contype: int  #: MuJoCo geom contype bitmask (Genesis' default 0xFFFF)
    conaffinity: int  #: MuJoCo geom conaffinity bitmask (Genesis' default 0xFFFF)

    def _init_pose(self, pos, euler, quat, fixed, contype=0xFFFF, conaffinity=0xFFFF):
        name = type(self).__name__
        object.__setattr__(self, "pos", _vec(name, "pos", pos, 3))
        object.__setattr__(self, "quat", _orientation(name, euler, quat))
        if not isinstance(fixed, bool):
            raise InvalidInputError(f"{name}(fixed={fixed!r}): expected True or False.")
        object.__setattr__(self, "fixed", fixed)
        # two geoms collide when contype of one and conaffinity of the other share a bit (MuJoCo, Genesis)
        object.__setattr__(self, "contype", _int_in(name, "contype", contype, 0, 0xFFFFFFFF))
        object.__setattr__(self, "conaffinity", _int_in(name, "conaffinity", conaffinity, 0, 0xFFFFFFFF))

    def fingerprint(self) -> dict:
        """As `_Morph`, with `contype` / `conaffinity` only when not Genesis' default 0xFFFF (the fingerprint of a
        default primitive, and so its checkpoints, stay as before these existed)."""
        d = super().fingerprint()
        for name in ("contype", "conaffinity"):
            if d[name] == 0xFFFF:
                del d[name]
        return d

    def _geom(self) -> dict:
        raise NotImplementedError

    def to_spec(self, density: float = 200.0) -> mujoco.MjSpec:
        """A spec with one body (free joint unless fixed) holding the geom; mass from `density` (kg/m^3). Link and
        joint named as Genesis names them ("box_baselink", "box_baselink_joint")."""
        spec = mujoco.MjSpec()
        kind = type(self).__name__.lower()
        body = spec.worldbody.add_body(name=f"{kind}_baselink")
        if not self.fixed:
            body.add_freejoint(name=f"{kind}_baselink_joint")
        body.add_geom(density=density, contype=self.contype, conaffinity=self.conaffinity, **self._geom())
        apply_common(spec, self)
        return spec


def _corners_to_pose(pos, size, lower, upper) -> tuple[tuple, tuple]:
    """(pos, size) of a Box given by its corners (Genesis: pos = (lower + upper) / 2, size = upper - lower), checking
    that `pos` / `size`, if given too, agree with them."""
    lo, hi = np.array(_vec("Box", "lower", lower, 3)), np.array(_vec("Box", "upper", upper, 3))
    if not np.all(hi > lo):
        raise InvalidInputError(f"Box(lower={lower!r}, upper={upper!r}): upper must exceed lower along every axis.")
    derived = {"pos": tuple(((lo + hi) / 2).tolist()), "size": tuple((hi - lo).tolist())}
    for name, given in (("pos", pos), ("size", size)):
        if given is not None and not np.allclose(_vec("Box", name, given, 3), derived[name], rtol=1e-9, atol=1e-12):
            raise InvalidInputError(f"Box({name}={given!r}, lower=..., upper=...): the corners give {name}="
                                    f"{derived[name]}; give pos and size, or lower and upper.")
    return derived["pos"], derived["size"]


@dataclasses.dataclass(frozen=True, init=False)
class Box(_Primitive):
    """A box of full side lengths `size` (m) centred at `pos` (m), or spanning the corners `lower`..`upper` (m, before
    `euler`/`quat` turn it about its centre), free unless `fixed`. As Genesis, the corners are given together and
    define `pos` and `size`; given with `pos` or `size` as well, those must agree with them (Genesis would ignore
    them). `Box()` is the unit cube at the origin. `lower` and `upper` read back `pos -/+ size / 2`."""

    size: tuple

    _ARGS = "pos, size (or lower, upper), euler, quat, fixed, contype, conaffinity"

    def __init__(self, pos=None, size=None, euler=None, quat=None, fixed=False, lower=None, upper=None,
                 contype=0xFFFF, conaffinity=0xFFFF, visualization=True, collision=True,
                 **unknown):
        unknown = _take_tet_options(self, "Box", unknown)
        unknown = take_common(self, "Box", {**unknown, "visualization": visualization, "collision": collision})
        if unknown:
            raise InvalidInputError(f"Box got unknown argument(s) {sorted(unknown)}; use {self._ARGS}.")
        if (lower is None) != (upper is None):
            raise InvalidInputError(f"Box(lower={lower!r}, upper={upper!r}): give both corners, or pos and size.")
        if lower is not None:
            pos, size = _corners_to_pose(pos, size, lower, upper)
        self._init_pose((0.0, 0.0, 0.0) if pos is None else pos, euler, quat, fixed, contype, conaffinity)
        size = _vec("Box", "size", (1.0, 1.0, 1.0) if size is None else size, 3)
        for s in size:
            _positive("Box", "size", s)
        object.__setattr__(self, "size", size)

    @property
    def lower(self) -> tuple:
        """The corner `pos - size / 2` (m) of the unturned box."""
        return tuple(p - s / 2 for p, s in zip(self.pos, self.size))

    @property
    def upper(self) -> tuple:
        """The corner `pos + size / 2` (m) of the unturned box."""
        return tuple(p + s / 2 for p, s in zip(self.pos, self.size))

    def _geom(self):
        return {"type": mujoco.mjtGeom.mjGEOM_BOX, "size": [s / 2 for s in self.size]}


@dataclasses.dataclass(frozen=True, init=False)
class Sphere(_Primitive):
    """A sphere of `radius` (m), free unless `fixed`."""

    radius: float

    def __init__(self, pos=(0.0, 0.0, 0.0), radius=0.5, euler=None, quat=None, fixed=False, contype=0xFFFF,
                 conaffinity=0xFFFF, visualization=True, collision=True,
                 **unknown):
        unknown = _take_tet_options(self, "Sphere", unknown)
        unknown = take_common(self, "Sphere", {**unknown, "visualization": visualization, "collision": collision})
        if unknown:
            raise InvalidInputError(f"Sphere got unknown argument(s) {sorted(unknown)}; use pos, radius, euler, quat, "
                                    "fixed, contype, conaffinity.")
        self._init_pose(pos, euler, quat, fixed, contype, conaffinity)
        object.__setattr__(self, "radius", _positive("Sphere", "radius", radius))

    def _geom(self):
        return {"type": mujoco.mjtGeom.mjGEOM_SPHERE, "size": [self.radius, 0, 0]}


@dataclasses.dataclass(frozen=True, init=False)
class Cylinder(_Primitive):
    """A cylinder of `radius` and full `height` (m) along its local z, free unless `fixed`."""

    radius: float
    height: float

    def __init__(self, pos=(0.0, 0.0, 0.0), radius=0.5, height=1.0, euler=None, quat=None, fixed=False,
                 contype=0xFFFF, conaffinity=0xFFFF, visualization=True, collision=True,
                 **unknown):
        unknown = _take_tet_options(self, "Cylinder", unknown)
        unknown = take_common(self, "Cylinder", {**unknown, "visualization": visualization, "collision": collision})
        if unknown:
            raise InvalidInputError(f"Cylinder got unknown argument(s) {sorted(unknown)}; use pos, radius, height, "
                                    "euler, quat, fixed, contype, conaffinity.")
        self._init_pose(pos, euler, quat, fixed, contype, conaffinity)
        object.__setattr__(self, "radius", _positive("Cylinder", "radius", radius))
        object.__setattr__(self, "height", _positive("Cylinder", "height", height))

    def _geom(self):
        return {"type": mujoco.mjtGeom.mjGEOM_CYLINDER, "size": [self.radius, self.height / 2, 0]}


@dataclasses.dataclass(frozen=True, init=False)
class Plane(_Morph):
    """An infinite ground plane through `pos` with normal `normal` (one static link "plane_baselink"). Genesis'
    `plane_size` and `tile_size` (m, the drawn extent and checker tiles) only change the drawing (contacts are with
    the infinite plane, as in Genesis): the MuJoCo geom's half-extents and grid spacing; `fixed` is accepted (a plane
    is static); `contype` / `conaffinity` are the geom's bitmasks."""

    pos: tuple
    normal: tuple
    contype: int
    conaffinity: int
    plane_size: tuple
    tile_size: tuple

    def __init__(self, pos=(0.0, 0.0, 0.0), normal=(0.0, 0.0, 1.0), plane_size=(1000.0, 1000.0), tile_size=(1.0, 1.0),
                 fixed=False, contype=0xFFFF, conaffinity=0xFFFF, euler=None, quat=None, visualization=True,
                 collision=True, **unknown):
        unknown = take_common(self, "Plane", {**unknown, "visualization": visualization, "collision": collision})
        if unknown:
            raise InvalidInputError(f"Plane got unknown argument(s) {sorted(unknown)}; use pos, normal, plane_size, "
                                    "tile_size, contype, conaffinity.")
        if euler is not None or quat is not None:
            raise InvalidInputError("Plane(euler=..., quat=...): orient a plane with normal=(nx, ny, nz).")
        for name, value in (("plane_size", plane_size), ("tile_size", tile_size)):
            for v in _vec("Plane", name, value, 2):
                _positive("Plane", name, v)
            object.__setattr__(self, name, _vec("Plane", name, value, 2))
        if not isinstance(fixed, bool):
            raise InvalidInputError(f"Plane(fixed={fixed!r}): expected True or False.")
        object.__setattr__(self, "contype", _int_in("Plane", "contype", contype, 0, 0xFFFFFFFF))
        object.__setattr__(self, "conaffinity", _int_in("Plane", "conaffinity", conaffinity, 0, 0xFFFFFFFF))
        object.__setattr__(self, "pos", _vec("Plane", "pos", pos, 3))
        n = np.array(_vec("Plane", "normal", normal, 3))
        if np.linalg.norm(n) < 1e-9:
            raise InvalidInputError(f"Plane(normal={normal!r}) must be non-zero.")
        object.__setattr__(self, "normal", tuple(float(v) for v in n / np.linalg.norm(n)))

    @property
    def quat(self):
        q = np.zeros(4)
        mujoco.mju_quatZ2Vec(q, np.array(self.normal))
        return tuple(float(v) for v in q)

    def fingerprint(self) -> dict:
        """As `_Morph`, with `contype` / `conaffinity` only when not Genesis' default 0xFFFF, and without the drawing
        sizes (no effect on the physics: a checkpoint loads into a scene drawing its plane larger)."""
        d = super().fingerprint()
        del d["plane_size"], d["tile_size"]
        for name in ("contype", "conaffinity"):
            if d[name] == 0xFFFF:
                del d[name]
        return d

    def to_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        # a static link as in Genesis (its link 0 when added first: scripts index links scene-wide after it)
        body = spec.worldbody.add_body(name="plane_baselink")
        # drawn size: MuJoCo sizes a zero-size plane off the world body by the model's extent, not infinitely
        size = [self.plane_size[0] / 2, self.plane_size[1] / 2, self.tile_size[0]]
        body.add_geom(name="plane", type=mujoco.mjtGeom.mjGEOM_PLANE, size=size, contype=self.contype,
                      conaffinity=self.conaffinity)
        apply_common(spec, self)
        return spec


# Genesis' Mesh arguments that only affect rendering, FEM tetrahedralisation or memory layout: validated, no effect here
_MESH_ACCEPTED_BOOLS = ("batch_fixed_verts", "enable_custom_vverts", "recompute_inertia", "nobisect", "quality",
                        "force_retet")
_MESH_ACCEPTED = dict(batch_fixed_verts=False, enable_custom_vverts=False, recompute_inertia=False, align=None,
                      watertighten=5, order=1, mindihedral=10, minratio=1.1, nobisect=True, quality=True,
                      maxvolume=-1.0, verbose=0, force_retet=False)
_MESH_REFUSED = {
    "decompose_nonconvex": "deprecated in Genesis; use convexify and decompose_object_error_threshold",
    "parse_glb_with_zup": "deprecated in Genesis; use file_meshes_are_zup",
}


def _flag(owner, name, value, allow_none=False):
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected True or False{' or None' if allow_none else ''}.")
    return value


def _int_in(owner, name, value, low, high=None, allow_none=False):
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
            or (high is not None and value > high):
        rng = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidInputError(f"{owner}({name}={value!r}): expected an int {rng}.")
    return int(value)


def _threshold(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise InvalidInputError(f"{owner}({name}={value!r}): expected a number >= 0 (0 always decomposes, "
                                "float('inf') never).")
    return float(value)


def _check_accepted(owner, accepted: dict) -> None:
    """Validate Genesis' accepted-and-ignored Mesh arguments (their types and ranges, as Genesis does)."""
    for name in _MESH_ACCEPTED_BOOLS:
        _flag(owner, name, accepted[name])
    _flag(owner, "align", accepted["align"], allow_none=True)
    _int_in(owner, "watertighten", accepted["watertighten"], 0, 8, allow_none=True)
    _int_in(owner, "order", accepted["order"], 1)
    _int_in(owner, "mindihedral", accepted["mindihedral"], 0)
    _int_in(owner, "verbose", accepted["verbose"], 0, 2)
    _positive(owner, "minratio", accepted["minratio"])
    if isinstance(accepted["maxvolume"], bool) or not isinstance(accepted["maxvolume"], (int, float)):
        raise InvalidInputError(f"{owner}(maxvolume={accepted['maxvolume']!r}): expected a number (-1: no limit).")


def _coacd_options(value) -> tuple:
    """CoACD settings as sorted (name, value) pairs: None, or a dict with names of Genesis' `CoacdOptions`."""
    from ._mesh import COACD_DEFAULTS

    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidInputError(f"Mesh(coacd_options={value!r}): pass a dict of CoACD settings named as Genesis' "
                                f"CoacdOptions fields ({sorted(COACD_DEFAULTS)}), or None.")
    unknown = sorted(set(value) - set(COACD_DEFAULTS))
    if unknown:
        raise InvalidInputError(f"Mesh(coacd_options=...): unknown setting(s) {unknown}; valid: {sorted(COACD_DEFAULTS)}.")
    if value.get("pca"):
        raise InvalidInputError("Mesh(coacd_options={'pca': True}): refused, as in Genesis (CoACD leaves the PCA "
                                "transform on its hulls); leave pca False.")
    for k, v in value.items():
        if type(v) is not type(COACD_DEFAULTS[k]) and not (isinstance(COACD_DEFAULTS[k], float)
                                                          and isinstance(v, int) and not isinstance(v, bool)):
            raise InvalidInputError(f"Mesh(coacd_options={{{k!r}: {v!r}}}): expected a "
                                    f"{type(COACD_DEFAULTS[k]).__name__} like the default {COACD_DEFAULTS[k]!r}.")
    return tuple(sorted(value.items()))


@dataclasses.dataclass(frozen=True, init=False)
class Mesh(_Morph):
    """A triangle mesh file read by trimesh (.obj, .stl, .ply, .off, .glb, .gltf; a file with several submeshes gives
    several parts), scaled by `scale` (a number or 3 numbers, along the Z-up axes), placed at `pos` (m) with
    `euler` (deg) / `quat` (wxyz). Genesis' names and defaults.

    As a particle entity (MPM) the closed surface is sampled. As a rigid body (material `gs.materials.Rigid` or
    None): one body (free unless `fixed`) at the file's origin, mass from the material's `rho` and the mesh volume,
    inertia from the mesh (MuJoCo's exact mesh inertia); collision shapes as `genesis_torch._mesh` describes:
    `convexify` (None = True) collides each part as its convex hull unless the hull's relative volume error exceeds
    `decompose_object_error_threshold` (0.15), when CoACD (`coacd_options`, Genesis' `CoacdOptions` names as a dict)
    splits it into convex pieces; `convexify=False` always splits (MuJoCo collides only convex meshes; Genesis keeps
    a non-convex signed-distance collider). `collision=False` makes the mesh contact-free; `visualization=False`
    puts it in MuJoCo geom group 3 (not drawn by cameras). `contype` / `conaffinity` are the geoms' bitmasks
    (Genesis' 0xFFFF). `group_by_material` merges submeshes of one material, `merge_submeshes_for_collision` all of
    them. `file_meshes_are_zup` (None: False for glTF/GLB, else True) turns a Y-up file Z-up. `decimate=True` with more
    faces than `decimate_face_num` raises (no decimator is installed; MuJoCo's convex hull is exact). The arguments
    only Genesis' renderer, FEM or memory layout use are validated and have no effect (docs/genesis_compat.md).
    `decompose_robot_error_threshold` applies to articulated robots only, never to a Mesh.
    """

    file: str
    pos: tuple
    quat: tuple
    scale: tuple
    fixed: bool
    convexify: bool
    decompose_object_error_threshold: float
    coacd_options: tuple
    collision: bool
    visualization: bool
    contype: int
    conaffinity: int
    file_meshes_are_zup: bool
    group_by_material: bool
    merge_submeshes_for_collision: bool

    def __init__(self, file, pos=(0.0, 0.0, 0.0), euler=None, quat=None, scale=1.0, fixed=False, convexify=None,
                 decimate=None, decimate_face_num=500, decimate_aggressiveness=5,
                 decompose_object_error_threshold=0.15, decompose_robot_error_threshold=float("inf"),
                 coacd_options=None, collision=True, visualization=True, contype=0xFFFF, conaffinity=0xFFFF,
                 file_meshes_are_zup=None, group_by_material=False, merge_submeshes_for_collision=False, **others):
        from .geometry.mesh_io import check_file, is_y_up

        vis_col = {"collision": collision, "visualization": visualization}
        others = take_common(self, "Mesh", {**others, **vis_col})  # deprecated flags, identity offsets
        refused = sorted(set(others) & set(_MESH_REFUSED))
        if refused:
            raise InvalidInputError(f"Mesh({refused[0]}=...): {_MESH_REFUSED[refused[0]]}.")
        unknown = sorted(set(others) - set(_MESH_ACCEPTED))
        if unknown:
            raise InvalidInputError(f"Mesh got unknown argument(s) {unknown}; see help(gs.morphs.Mesh) for Genesis' "
                                    "Mesh arguments.")
        _check_accepted("Mesh", {**_MESH_ACCEPTED, **others})
        _take_tet_options(self, "Mesh", others)
        if isinstance(file, (str, os.PathLike)) and _is_genesis_asset(file):
            file = resolve_asset(file)  # the user's file if it exists, else a bundled equivalent or an error
        path = check_file("Mesh", file)
        sc = (scale,) * 3 if isinstance(scale, (int, float)) and not isinstance(scale, bool) else scale
        sc = _vec("Mesh", "scale", sc, 3)
        for v in sc:
            _positive("Mesh", "scale", v)
        for name, value in (("fixed", fixed), ("collision", collision), ("visualization", visualization),
                            ("group_by_material", group_by_material),
                            ("merge_submeshes_for_collision", merge_submeshes_for_collision)):
            _flag("Mesh", name, value)
        for name, value in (("convexify", convexify), ("decimate", decimate),
                            ("file_meshes_are_zup", file_meshes_are_zup)):
            _flag("Mesh", name, value, allow_none=True)
        if not collision and not visualization:
            raise InvalidInputError("Mesh(collision=False, visualization=False): the mesh would be neither seen nor "
                                    "touched; keep one of them True.")
        _int_in("Mesh", "decimate_face_num", decimate_face_num, 1)
        _int_in("Mesh", "decimate_aggressiveness", decimate_aggressiveness, 0, 8)
        _threshold("Mesh", "decompose_robot_error_threshold", decompose_robot_error_threshold)
        for name, value in (("contype", contype), ("conaffinity", conaffinity)):
            _int_in("Mesh", name, value, 0, 0xFFFFFFFF)
        values = dict(
            file=path, pos=_vec("Mesh", "pos", pos, 3), quat=_orientation("Mesh", euler, quat), scale=sc,
            fixed=fixed, convexify=True if convexify is None else convexify,
            decompose_object_error_threshold=_threshold("Mesh", "decompose_object_error_threshold",
                                                        decompose_object_error_threshold),
            coacd_options=_coacd_options(coacd_options), collision=collision, visualization=visualization,
            contype=int(contype), conaffinity=int(conaffinity),
            file_meshes_are_zup=not is_y_up(path) if file_meshes_are_zup is None else file_meshes_are_zup,
            group_by_material=group_by_material, merge_submeshes_for_collision=merge_submeshes_for_collision)
        if decimate:
            self._refuse_decimation(path, decimate_face_num)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @staticmethod
    def _refuse_decimation(path, face_num) -> None:
        from .geometry.mesh_io import load_merged

        n_faces = len(load_merged(path)[1])
        if n_faces > face_num:
            raise UnsupportedFeatureError(
                f"Mesh(decimate=True): {os.path.basename(path)} has {n_faces} faces > decimate_face_num={face_num}, "
                "and genesis-torch has no mesh decimator; simplify the file beforehand or leave decimate=None "
                "(MuJoCo collides the exact convex hull).")

    def to_spec(self, density: float = 200.0) -> mujoco.MjSpec:
        """The rigid body's spec (`genesis_torch._mesh.mesh_spec`); `density` kg/m^3."""
        from ._mesh import mesh_spec

        return mesh_spec(self, density)

    def fingerprint(self) -> dict:
        return _with_file_hash(super().fingerprint(), self.file)


_TERRAIN_ARGS = ("pos, euler, quat, n_subterrains, subterrain_size, horizontal_scale, vertical_scale, subterrain_types, "
                 "height_field, randomize, subterrain_parameters, name, from_stored, uv_scale, visualization, "
                 "collision, batch_fixed_verts, enable_custom_vverts")
_TERRAIN_CACHE: dict = {}  # name + options -> height field (Genesis' `name` cache, kept per process here)


@dataclasses.dataclass(frozen=True, init=False)
class Terrain(_Morph):
    """A fixed rigid terrain: a height field tiled from Genesis' subterrain generators, or given as `height_field`.
    Genesis 1.4.5's arguments and defaults; generators and tiling in `genesis_torch.geometry.terrain`.

    `height_field` (2D array, vertical units) replaces the generated one (n_subterrains, subterrain_size,
    subterrain_types and subterrain_parameters are then ignored, as Genesis). `subterrain_types` is one name for
    every subterrain or a 2D list shaped `n_subterrains`; `subterrain_parameters` overrides Genesis' defaults per
    type (an unknown type or parameter raises). `randomize=False` draws each subterrain from NumPy's
    `RandomState(0)`; `randomize=True` from NumPy's global generator. `name` makes the field generated once per
    process for given options (Genesis caches it on disk across runs; here the cache lives as long as the
    process). `from_stored` is Genesis' deprecated alias of `name`.

    Placement (Genesis'): grid point (i, j) of the field lies at x = i * horizontal_scale, y = j *
    horizontal_scale, z = height * vertical_scale in the terrain frame, whose origin is `pos` (m) turned by
    `euler` (deg) / `quat` (wxyz): `pos` is the corner of grid point (0, 0) at height 0, the field extends along +x
    and +y. The surface splits each cell along the diagonal from (i+1, j) to (i, j+1), as Genesis' terrain mesh;
    it is compiled to a MuJoCo `hfield` geom (`to_spec`) with a 1 m thick base below its lowest point (Genesis'
    watertight mesh bottom), contype = conaffinity = 1 as Genesis' terrain geom. `collision=False` makes it
    contact-free, `visualization=False` puts it in geom group 3 (not drawn); not both. `uv_scale`,
    `batch_fixed_verts` and `enable_custom_vverts` are validated and have no effect (texture coordinates and
    Genesis' memory layout); the other base-Morph options as on every rigid morph (`genesis_torch._morph_options`:
    `offset_*` at the identity only, `requires_jac_and_IK` / `is_free` deprecated).
    """

    pos: tuple
    quat: tuple
    n_subterrains: tuple
    subterrain_size: tuple
    horizontal_scale: float
    vertical_scale: float
    subterrain_types: tuple
    randomize: bool
    subterrain_parameters: dict
    name: str | None
    uv_scale: float
    visualization: bool
    collision: bool
    batch_fixed_verts: bool
    enable_custom_vverts: bool
    height_field: np.ndarray = dataclasses.field(repr=False)  # (nx, ny) float64, vertical units (given or generated)

    def __init__(self, pos=(0.0, 0.0, 0.0), euler=None, quat=None, n_subterrains=(3, 3),
                 subterrain_size=(12.0, 12.0), horizontal_scale=0.25, vertical_scale=0.005, subterrain_types=None,
                 height_field=None, randomize=False, subterrain_parameters=None, name=None, from_stored=None,
                 uv_scale=1.0, visualization=True, collision=True, batch_fixed_verts=False,
                 enable_custom_vverts=False, **others):
        from ._morph_options import logger, take_common
        from .geometry import terrain as tg

        # Genesis' base-Morph options as on every rigid morph (_morph_options.py): offsets at identity only,
        # requires_jac_and_IK / is_free deprecated (warned), the layout switches validated
        rest = take_common(self, "Terrain", dict(others, visualization=visualization, collision=collision,
                                                 batch_fixed_verts=batch_fixed_verts,
                                                 enable_custom_vverts=enable_custom_vverts))
        if rest:
            raise InvalidInputError(f"Terrain got unknown argument(s) {sorted(rest)}; use {_TERRAIN_ARGS}.")
        for flag, value in (("randomize", randomize), ("batch_fixed_verts", batch_fixed_verts),
                            ("enable_custom_vverts", enable_custom_vverts)):
            _flag("Terrain", flag, value)
        if from_stored is not None:
            if name is not None and name != from_stored:
                raise InvalidInputError(f"Terrain(name={name!r}, from_stored={from_stored!r}): from_stored is the "
                                        "deprecated name of `name`; give only name.")
            logger.warning("'from_stored' is deprecated. Use 'name' instead.")  # Genesis' warning
            name = from_stored
        if name is not None and not isinstance(name, str):
            raise InvalidInputError(f"Terrain(name={name!r}): expected a string or None.")
        values = dict(pos=_vec("Terrain", "pos", pos, 3), quat=_orientation("Terrain", euler, quat),
                      horizontal_scale=_positive("Terrain", "horizontal_scale", horizontal_scale),
                      vertical_scale=_positive("Terrain", "vertical_scale", vertical_scale),
                      uv_scale=_positive("Terrain", "uv_scale", uv_scale), randomize=randomize, name=name,
                      visualization=visualization, collision=collision, batch_fixed_verts=batch_fixed_verts,
                      enable_custom_vverts=enable_custom_vverts)
        n = tuple(_int_in("Terrain", "n_subterrains", v, 1) for v in _seq("Terrain", "n_subterrains", n_subterrains, 2))
        size = _vec("Terrain", "subterrain_size", subterrain_size, 2)
        for s in size:
            _positive("Terrain", "subterrain_size", s)
        # as Genesis, a given height_field makes the subterrain options unused (and unchecked, but for their types)
        types = _terrain_types(n, subterrain_types) if height_field is None else subterrain_types
        params = _terrain_params(subterrain_parameters)
        values.update(n_subterrains=n, subterrain_size=size, subterrain_types=types, subterrain_parameters=params)
        if height_field is not None:
            field = _height_field(height_field)
        else:
            hs = values["horizontal_scale"]
            bad = [s for s in size if not tg.is_multiple(s, hs)]
            if bad:
                raise InvalidInputError(f"Terrain(subterrain_size={size}, horizontal_scale={hs}): subterrain_size "
                                        "should be divisible by horizontal_scale.")
            key = None if name is None else (name, n, size, hs, values["vertical_scale"], types,
                                             repr(sorted(params.items())))
            field = _TERRAIN_CACHE.get(key) if key is not None else None
            if field is None:
                field = tg.terrain_height_field(n, size, hs, values["vertical_scale"], types, params, randomize)
                if key is not None:
                    _TERRAIN_CACHE[key] = field
        field.setflags(write=False)
        values["height_field"] = field
        for k, v in values.items():
            object.__setattr__(self, k, v)

    @property
    def height_field_m(self) -> np.ndarray:
        """(nx, ny) float64 m: the heights of the grid points (Genesis' `entity.terrain_hf`)."""
        return self.height_field * self.vertical_scale

    def to_spec(self) -> mujoco.MjSpec:
        """A spec with one fixed body `baselink` holding the hfield geom. MuJoCo's hfield lays row r, column c at
        (c dx - size[0], r dy - size[1]) and splits cells along (c, r)-(c+1, r+1); turning the geom by +90 deg
        about z and storing row r = grid row nx-1-r puts grid point (i, j) at (i hs, j hs) and gives Genesis'
        diagonal (i+1, j)-(i, j+1). Elevations are stored normalised to [0, 1] (as MuJoCo does) with size[2] the
        height range and the geom lifted to the lowest height."""
        h = self.height_field_m
        nx, ny = h.shape
        hs = self.horizontal_scale
        lo, rng = float(h.min()), float(h.max() - h.min())
        data = (h[::-1] - lo) / rng if rng > 0 else np.zeros_like(h)
        spec = mujoco.MjSpec()
        spec.add_hfield(name="terrain", nrow=nx, ncol=ny, userdata=data.ravel().tolist(),
                        size=[(ny - 1) * hs / 2, (nx - 1) * hs / 2, rng if rng > 0 else self.vertical_scale, 1.0])
        body = spec.worldbody.add_body(name="baselink")
        c = math.sqrt(0.5)
        body.add_geom(name="terrain", type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname="terrain",
                      pos=[(nx - 1) * hs / 2, (ny - 1) * hs / 2, lo], quat=[c, 0.0, 0.0, c],
                      contype=1 if self.collision else 0, conaffinity=1 if self.collision else 0,
                      group=0 if self.visualization else 3)
        return spec

    def fingerprint(self) -> dict:
        import hashlib

        d = super().fingerprint()
        d["height_field"] = hashlib.sha256(np.ascontiguousarray(self.height_field).tobytes()).hexdigest()
        d["height_field_shape"] = list(self.height_field.shape)
        return d


def _seq(owner, name, value, n):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != n:
        raise InvalidInputError(f"{owner}({name}={value!r}): expected {n} values.")
    return tuple(value)


def _terrain_types(n, types) -> tuple:
    """`subterrain_types` as an (n0, n1) tuple of tuples of Genesis' type names (None: Genesis' default grid)."""
    from .geometry.terrain import SUBTERRAIN_TYPES

    if types is None:
        types = [["flat_terrain", "random_uniform_terrain", "stepping_stones_terrain"],
                 ["pyramid_sloped_terrain", "discrete_obstacles_terrain", "wave_terrain"],
                 ["random_uniform_terrain", "pyramid_stairs_terrain", "sloped_terrain"]]
    if isinstance(types, str):
        types = [[types] * n[1] for _ in range(n[0])]
    try:
        grid = tuple(tuple(row) for row in types) if not isinstance(types, str) else None
    except TypeError:
        grid = None
    if grid is None or len(grid) != n[0] or any(len(row) != n[1] for row in grid) \
            or not all(isinstance(t, str) for row in grid for t in row):
        raise InvalidInputError(f"Terrain(subterrain_types={types!r}): expected a type name or a 2D list of names "
                                f"shaped n_subterrains={n}.")
    bad = sorted({t for row in grid for t in row} - set(SUBTERRAIN_TYPES))
    if bad:
        raise InvalidInputError(f"Terrain(subterrain_types=...): unsupported subterrain type(s) {bad}; use one of "
                                f"{list(SUBTERRAIN_TYPES)}.")
    return grid


def _terrain_params(custom) -> dict:
    """Genesis' default parameters of every type, overridden by `custom` ({type: {parameter: value}})."""
    from .geometry.terrain import DEFAULT_PARAMS

    if custom is None:
        custom = {}
    if not isinstance(custom, dict) or not all(isinstance(v, dict) for v in custom.values()):
        raise InvalidInputError(f"Terrain(subterrain_parameters={custom!r}): expected a dict of dicts, e.g. "
                                "{'stairs_terrain': {'step_height': -0.05}}.")
    out = {k: dict(v) for k, v in DEFAULT_PARAMS.items()}
    for kind, given in custom.items():
        if kind not in DEFAULT_PARAMS:
            raise InvalidInputError(f"Terrain(subterrain_parameters={{{kind!r}: ...}}): unknown subterrain type; "
                                    f"use one of {list(DEFAULT_PARAMS)}.")
        unknown = sorted(set(given) - set(DEFAULT_PARAMS[kind]))
        if unknown:
            raise InvalidInputError(f"Terrain(subterrain_parameters={{{kind!r}: ...}}): unknown parameter(s) "
                                    f"{unknown}; {kind} takes {sorted(DEFAULT_PARAMS[kind])}.")
        for k, v in given.items():
            integer = k in ("levels", "num_rects")
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
                    or (integer and int(v) != v):
                raise InvalidInputError(f"Terrain(subterrain_parameters={{{kind!r}: {{{k!r}: {v!r}}}}}): expected a "
                                        f"finite {'integer' if integer else 'number'}.")
            out[kind][k] = int(v) if integer else float(v)
    return out


def _height_field(value) -> np.ndarray:
    try:
        arr = np.array(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("Terrain(height_field=...): expected a 2D array of heights in vertical units.") from None
    if arr.ndim != 2 or min(arr.shape) < 2 or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"Terrain(height_field=array of shape {arr.shape}): expected a 2D array of finite "
                                "heights (vertical units), at least 2 x 2.")
    return arr

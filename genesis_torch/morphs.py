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

from .errors import InvalidInputError

__all__ = ["MJCF", "URDF", "Plane", "Box", "Sphere", "Cylinder", "Mesh", "resolve_asset", "GENESIS_ASSETS"]


# Genesis' asset paths (relative to `genesis/assets`) with an equivalent model bundled here. Equivalent means the same
# robot with the same body, joint and actuator names and dof order, so a Genesis script indexes it the same way; the
# numbers are this project's own model (genesis_torch/assets/README.md), not Genesis' file.
GENESIS_ASSETS = {
    "xml/franka_emika_panda/panda.xml": "franka.xml",
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
    key = path.replace(os.sep, "/").lstrip("./")
    if key in GENESIS_ASSETS:
        return str(assets / GENESIS_ASSETS[key])
    names = sorted(p.name for p in assets.iterdir() if p.name.endswith(".xml"))
    if key.split("/", 1)[0] in ("xml", "urdf", "meshes", "usd"):
        raise InvalidInputError(
            f"file {path!r} is a Genesis asset that genesis-torch does not bundle; Genesis asset paths with a bundled "
            f"equivalent: {sorted(GENESIS_ASSETS)}; bundled assets: {names}. Pass the path of your own copy of "
            f"{os.path.basename(path)!r} (e.g. from the Genesis repository's genesis/assets/{key}).")
    for candidate in (assets / path, assets / os.path.basename(path)):
        if candidate.is_file():
            return str(candidate)
    raise InvalidInputError(f"file {path!r} does not exist and is not a bundled asset; bundled assets: {names}.")


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
        return d


@dataclasses.dataclass(frozen=True, init=False)
class MJCF(_Morph):
    """A MuJoCo MJCF file compiled by MuJoCo. `pos` (m) and `euler` (deg) / `quat` (wxyz) place its root."""

    file: str
    pos: tuple
    quat: tuple

    def __init__(self, file, pos=(0.0, 0.0, 0.0), euler=None, quat=None, **unknown):
        if unknown:
            raise InvalidInputError(f"MJCF got unknown argument(s) {sorted(unknown)}; use file, pos, euler, quat.")
        object.__setattr__(self, "file", resolve_asset(file))
        object.__setattr__(self, "pos", _vec("MJCF", "pos", pos, 3))
        object.__setattr__(self, "quat", _orientation("MJCF", euler, quat))

    def to_spec(self) -> mujoco.MjSpec:
        return mujoco.MjSpec.from_file(self.file)

    def fingerprint(self) -> dict:
        return _with_file_hash(super().fingerprint(), self.file)


@dataclasses.dataclass(frozen=True, init=False)
class URDF(MJCF):
    """A URDF file, compiled by MuJoCo's URDF importer. `fixed=True` welds the root link to the world."""

    fixed: bool

    def __init__(self, file, pos=(0.0, 0.0, 0.0), euler=None, quat=None, fixed=False, **unknown):
        super().__init__(file, pos=pos, euler=euler, quat=quat, **unknown)
        if not isinstance(fixed, bool):
            raise InvalidInputError(f"URDF(fixed={fixed!r}): expected True or False.")
        object.__setattr__(self, "fixed", fixed)

    def to_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec.from_file(self.file)
        if not self.fixed:
            root = spec.worldbody.first_body()
            if root is not None and not any(j.type == mujoco.mjtJoint.mjJNT_FREE for j in root.joints):
                root.add_freejoint()
        return spec


@dataclasses.dataclass(frozen=True, init=False)
class _Primitive(_Morph):
    pos: tuple
    quat: tuple
    fixed: bool

    def _init_pose(self, pos, euler, quat, fixed):
        name = type(self).__name__
        object.__setattr__(self, "pos", _vec(name, "pos", pos, 3))
        object.__setattr__(self, "quat", _orientation(name, euler, quat))
        if not isinstance(fixed, bool):
            raise InvalidInputError(f"{name}(fixed={fixed!r}): expected True or False.")
        object.__setattr__(self, "fixed", fixed)

    def _geom(self) -> dict:
        raise NotImplementedError

    def to_spec(self, density: float = 200.0) -> mujoco.MjSpec:
        """A spec with one body (free joint unless fixed) holding the geom; mass from `density` (kg/m^3)."""
        spec = mujoco.MjSpec()
        body = spec.worldbody.add_body(name=type(self).__name__.lower())
        if not self.fixed:
            body.add_freejoint()
        body.add_geom(density=density, **self._geom())
        return spec


@dataclasses.dataclass(frozen=True, init=False)
class Box(_Primitive):
    """A box of full side lengths `size` (m), free unless `fixed`."""

    size: tuple

    def __init__(self, pos=(0.0, 0.0, 0.0), size=(1.0, 1.0, 1.0), euler=None, quat=None, fixed=False, **unknown):
        if unknown:
            raise InvalidInputError(f"Box got unknown argument(s) {sorted(unknown)}; use pos, size, euler, quat, fixed.")
        self._init_pose(pos, euler, quat, fixed)
        size = _vec("Box", "size", size, 3)
        for s in size:
            _positive("Box", "size", s)
        object.__setattr__(self, "size", size)

    def _geom(self):
        return {"type": mujoco.mjtGeom.mjGEOM_BOX, "size": [s / 2 for s in self.size]}


@dataclasses.dataclass(frozen=True, init=False)
class Sphere(_Primitive):
    """A sphere of `radius` (m), free unless `fixed`."""

    radius: float

    def __init__(self, pos=(0.0, 0.0, 0.0), radius=0.5, euler=None, quat=None, fixed=False, **unknown):
        if unknown:
            raise InvalidInputError(f"Sphere got unknown argument(s) {sorted(unknown)}; use pos, radius, fixed.")
        self._init_pose(pos, euler, quat, fixed)
        object.__setattr__(self, "radius", _positive("Sphere", "radius", radius))

    def _geom(self):
        return {"type": mujoco.mjtGeom.mjGEOM_SPHERE, "size": [self.radius, 0, 0]}


@dataclasses.dataclass(frozen=True, init=False)
class Cylinder(_Primitive):
    """A cylinder of `radius` and full `height` (m) along its local z, free unless `fixed`."""

    radius: float
    height: float

    def __init__(self, pos=(0.0, 0.0, 0.0), radius=0.5, height=1.0, euler=None, quat=None, fixed=False, **unknown):
        if unknown:
            raise InvalidInputError(f"Cylinder got unknown argument(s) {sorted(unknown)}; use pos, radius, height.")
        self._init_pose(pos, euler, quat, fixed)
        object.__setattr__(self, "radius", _positive("Cylinder", "radius", radius))
        object.__setattr__(self, "height", _positive("Cylinder", "height", height))

    def _geom(self):
        return {"type": mujoco.mjtGeom.mjGEOM_CYLINDER, "size": [self.radius, self.height / 2, 0]}


@dataclasses.dataclass(frozen=True, init=False)
class Plane(_Morph):
    """An infinite ground plane through `pos` with normal `normal` (a static geom of the world)."""

    pos: tuple
    normal: tuple

    def __init__(self, pos=(0.0, 0.0, 0.0), normal=(0.0, 0.0, 1.0), **unknown):
        if unknown:
            raise InvalidInputError(f"Plane got unknown argument(s) {sorted(unknown)}; use pos, normal.")
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

    def to_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        spec.worldbody.add_geom(name="plane", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
        return spec


@dataclasses.dataclass(frozen=True, init=False)
class Mesh(_Morph):
    """A closed triangle mesh from an `.obj` or `.stl` file, scaled by `scale` (a number or 3 numbers), placed at
    `pos` (m) with `euler` (deg) / `quat` (wxyz). Used for particle entities (MPM); as a rigid body it is refused."""

    file: str
    pos: tuple
    quat: tuple
    scale: tuple

    def __init__(self, file, pos=(0.0, 0.0, 0.0), euler=None, quat=None, scale=1.0, **unknown):
        if unknown:
            raise InvalidInputError(f"Mesh got unknown argument(s) {sorted(unknown)}; use file, pos, euler, quat, "
                                    "scale.")
        if not isinstance(file, (str, os.PathLike)) or not os.path.isfile(os.fspath(file)):
            raise InvalidInputError(f"Mesh(file={file!r}): no such file; pass the path of an .obj or .stl mesh.")
        if os.path.splitext(os.fspath(file))[1].lower() not in (".obj", ".stl"):
            raise InvalidInputError(f"Mesh(file={file!r}): only .obj and .stl files are read; convert the mesh.")
        object.__setattr__(self, "file", os.path.abspath(os.fspath(file)))
        object.__setattr__(self, "pos", _vec("Mesh", "pos", pos, 3))
        object.__setattr__(self, "quat", _orientation("Mesh", euler, quat))
        sc = (scale,) * 3 if isinstance(scale, (int, float)) and not isinstance(scale, bool) else scale
        sc = _vec("Mesh", "scale", sc, 3)
        for v in sc:
            _positive("Mesh", "scale", v)
        object.__setattr__(self, "scale", sc)

    def fingerprint(self) -> dict:
        return _with_file_hash(super().fingerprint(), self.file)

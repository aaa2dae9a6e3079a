"""docs/genesis_compat.md cannot drift from the code: every row is checked against what the package exposes."""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import re

import pytest

import genesis_torch as gs
from genesis_torch.entities.fem_entity import FEMEntity
from genesis_torch.entities.pbd_entity import PBDEntity
from genesis_torch.entities.rigid_joint import RigidGeom
from genesis_torch.entities.rigid_queries import GenesisQueries
from genesis_torch.entities.sph_entity import SPHEntity
from genesis_torch.entities.terrain_entity import TerrainEntity
from genesis_torch.errors import InvalidInputError
from genesis_torch.morphs import GENESIS_ASSETS, resolve_asset
from genesis_torch.solvers.rigid.solver import RigidSolver
from genesis_torch.vis import Camera
from genesis_torch._runtime import DTYPE_ALIASES, is_initialized

from .conftest import cpu_runtime

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "genesis_compat.md"
STATUSES = ("same", "partial", "accepted", "missing")
NAMESPACE = {"gs": gs, "Scene": gs.Scene, "RigidEntity": gs.RigidEntity, "RigidLink": gs.RigidLink,
             "RigidJoint": gs.RigidJoint, "RigidGeom": RigidGeom, "Camera": Camera, "RigidSolver": RigidSolver,
             "TerrainEntity": TerrainEntity, "PBDEntity": PBDEntity, "FEMEntity": FEMEntity,
             "SPHEntity": SPHEntity}
ROW = re.compile(r"^\| `(?P<api>[^`]+)` \| (?P<status>\w+) \|(?P<notes>.*)\|$")
ASSET = re.compile(r'^gs\.morphs\.(MJCF|URDF)\(file="(?P<path>[^"]+)"\)$')


def rows():
    out = []
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            out.append((m["api"], m["status"], m["notes"].strip()))
    return out


def resolve(dotted: str):
    """The object `dotted` names (e.g. "RigidEntity.get_joint"), or None when it does not exist."""
    head, *rest = dotted.split(".")
    obj = NAMESPACE.get(head)
    for part in rest:
        if obj is None:
            return None
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and part in {f.name for f in dataclasses.fields(obj)}:
            return dataclasses.fields(obj)  # a dataclass field (no class attribute without a default)
        found = getattr(obj, part, None) if inspect.ismodule(obj) else inspect.getattr_static(obj, part, None)
        if found is None and obj is gs and part in DTYPE_ALIASES and not is_initialized():
            with cpu_runtime():  # gs.tc_float, ...: set by gs.init / auto-init, as in Genesis
                found = getattr(gs, part, None)
        if found is None and obj is gs.Scene and part in vars(gs.Scene()):  # instance attribute set in __init__
            found = part
        obj = found
    return obj


def accepted_names(obj) -> set[str]:
    """Explicitly named parameters of a callable (a class: its constructor; option dataclasses: their fields)."""
    names = set()
    target = obj
    if isinstance(obj, (staticmethod, classmethod)):
        target = obj.__func__
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            names |= {f.name for f in dataclasses.fields(obj)}
        target = obj.__init__
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return names
    return names | {n for n, p in sig.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def parse(api: str):
    m = re.match(r"^(?P<name>[\w.]+)(?:\((?P<args>.*)\))?$", api)
    assert m, f"cannot parse table entry {api!r}"
    args = [a.strip() for a in (m["args"] or "").split(",") if a.strip()]
    return m["name"], args


TABLE = rows()


def test_table_is_well_formed_and_counted():
    assert len(TABLE) > 80
    assert len({api for api, _, _ in TABLE}) == len(TABLE), "an API is listed twice"
    for api, status, notes in TABLE:
        assert status in STATUSES, f"{api}: unknown status {status!r}"
        if status in ("missing", "partial", "accepted"):
            assert len(notes) > 10, f"{api}: a {status} entry must say why / what differs"
    counts = {s: sum(st == s for _, st, _ in TABLE) for s in STATUSES}
    line = f"Totals: {counts['same']} same, {counts['partial']} partial, {counts['accepted']} accepted, " \
           f"{counts['missing']} missing."
    assert line in DOC.read_text(), f"update the totals line of docs/genesis_compat.md to: {line}"


@pytest.mark.parametrize("api,status,notes", [r for r in TABLE if not ASSET.match(r[0])], ids=lambda x: str(x)[:60])
def test_row_matches_the_code(api, status, notes):
    name, args = parse(api)
    obj = resolve(name)
    if status == "missing":
        if obj is None:
            return
        unaccepted = [a for a in args if "=" not in a and a not in accepted_names(obj)]
        assert args and unaccepted, f"{api} is listed as missing but exists and accepts {args}; update the table"
        return
    assert obj is not None, f"{api} is listed as {status} but {name} does not exist"
    if args:
        missing = [a for a in args if a not in accepted_names(obj)]
        assert not missing, f"{api}: {name} does not accept {missing}"


@pytest.mark.parametrize("api,status", [(a, s) for a, s, _ in TABLE if ASSET.match(a)])
def test_asset_rows(api, status):
    path = ASSET.match(api)["path"]
    if status == "same":
        assert pathlib.Path(resolve_asset(path)).name == GENESIS_ASSETS[path]
    else:
        with pytest.raises(InvalidInputError, match=re.escape(path)):
            resolve_asset(path)


def test_every_genesis_method_added_here_is_listed():
    listed = {parse(api)[0] for api, _, _ in TABLE}
    public = [n for n in vars(GenesisQueries) if not n.startswith("_")]
    unlisted = [n for n in public if f"RigidEntity.{n}" not in listed and n not in ("get_friction",)]
    assert not unlisted, f"add these RigidEntity methods to docs/genesis_compat.md: {unlisted}"
    for cls in (gs.RigidJoint, gs.RigidLink):
        names = [f.name for f in dataclasses.fields(cls) if f.name != "entity"] + \
                [n for n, v in vars(cls).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))]
        unlisted = [n for n in names if f"{cls.__name__}.{n}" not in listed and n not in ("dof_start", "q_start")]
        assert not unlisted, f"add these {cls.__name__} members to docs/genesis_compat.md: {unlisted}"

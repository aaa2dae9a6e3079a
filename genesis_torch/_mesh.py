"""Mesh files (read with `trimesh`, DESIGN.md §8) and the MuJoCo spec of a rigid `Mesh` morph.

Collision shapes follow Genesis' `convexify` / `decompose_object_error_threshold` meaning with MuJoCo's mesh geoms,
which MuJoCo collides as their convex hulls: a part whose hull is close enough to it (relative volume error at most
the threshold) is one mesh geom; any other part is split into convex pieces by CoACD (the optional `coacd` package,
extra `genesis-torch[mesh]`). Mass and inertia always come from the part itself (MuJoCo's exact mesh inertia at the
material's density); convex pieces, when there are any, carry the collision and no mass.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

from .errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["MESH_FORMATS", "load_parts", "load_merged", "mesh_spec"]

MESH_FORMATS = (".obj", ".stl", ".ply", ".off", ".glb", ".gltf")  # surface meshes trimesh reads without extras
_Y_UP_FORMATS = (".glb", ".gltf")  # Y-up by the glTF standard
# CoACD's settings with Genesis' `CoacdOptions` defaults (seeded: the same mesh gives the same pieces)
COACD_DEFAULTS = dict(threshold=0.1, max_convex_hull=-1, preprocess_mode="auto", preprocess_resolution=30,
                      resolution=1000, mcts_nodes=20, mcts_iterations=100, mcts_max_depth=3, pca=False, merge=True,
                      decimate=False, max_ch_vertex=256, extrude=False, extrude_margin=0.1, apx_mode="ch", seed=0)


def check_file(owner: str, file) -> str:
    """The absolute path of an existing mesh file of a format in `MESH_FORMATS`, else `InvalidInputError`."""
    if not isinstance(file, (str, os.PathLike)) or not os.path.isfile(os.fspath(file)):
        raise InvalidInputError(f"{owner}(file={file!r}): no such file; pass the path of a mesh file "
                                f"({', '.join(MESH_FORMATS)}).")
    ext = os.path.splitext(os.fspath(file))[1].lower()
    if ext not in MESH_FORMATS:
        raise InvalidInputError(f"{owner}(file={file!r}): {ext or 'no extension'} is not a mesh format read here; "
                                f"convert it to one of {', '.join(MESH_FORMATS)}.")
    return os.path.abspath(os.fspath(file))


def is_y_up(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in _Y_UP_FORMATS


def load_parts(path: str, scale=(1.0, 1.0, 1.0), zup: bool = True) -> list:
    """The submeshes of `path` as `trimesh.Trimesh` (scene transforms applied, vertices as stored, no merging), each
    with `metadata["material"]` (its material's name, or None). Y-up files (`zup=False`) are turned Z-up
    ((x, y, z) -> (x, -z, y)) before `scale` (3,) is applied along the Z-up axes. Raises `InvalidInputError` when
    the file cannot be read or has no triangles."""
    import trimesh

    try:
        scene = trimesh.load_scene(path, process=False)
    except Exception as exc:  # trimesh's own message names the problem in the file
        raise InvalidInputError(f"mesh file {path!r} could not be read by trimesh: {exc}") from exc
    parts = []
    for name, geom in _scene_geometries(scene):
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        verts = np.asarray(geom.vertices, np.float64)
        if not zup:
            verts = np.stack([verts[:, 0], -verts[:, 2], verts[:, 1]], axis=1)
        part = trimesh.Trimesh(verts * np.asarray(scale, np.float64), np.asarray(geom.faces, np.int64),
                               process=False)
        material = getattr(getattr(geom, "visual", None), "material", None)
        part.metadata["material"] = getattr(material, "name", None)
        part.metadata["name"] = name
        parts.append(part)
    if not parts:
        raise InvalidInputError(f"mesh file {path!r} has no triangles.")
    return parts


def _scene_geometries(scene):
    """(node name, geometry with its scene transform applied) for every geometry instance of a trimesh Scene."""
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name].copy()
        geom.apply_transform(transform)
        yield node, geom


def load_merged(path: str, scale=(1.0, 1.0, 1.0), zup: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (nv, 3) float64 m, faces (nf, 3) int64) of all submeshes of `path` together (see `load_parts`)."""
    parts = load_parts(path, scale, zup)
    verts, faces, offset = [], [], 0
    for p in parts:
        verts.append(np.asarray(p.vertices))
        faces.append(np.asarray(p.faces) + offset)
        offset += len(p.vertices)
    return np.concatenate(verts), np.concatenate(faces)


def collision_groups(parts: list, group_by_material: bool, merge: bool) -> list:
    """Parts as collision meshes: all in one (`merge`), one per material name (`group_by_material`), or as given."""
    import trimesh

    if merge:
        return [trimesh.util.concatenate(parts)]
    if not group_by_material:
        return parts
    groups: dict = {}
    for p in parts:
        groups.setdefault(p.metadata.get("material"), []).append(p)
    return [g[0] if len(g) == 1 else trimesh.util.concatenate(g) for g in groups.values()]


def _hull_volume(verts: np.ndarray) -> float:
    """Volume (m^3) of the convex hull of `verts` (n, 3) as MuJoCo builds it (qhull) for collision."""
    spec = mujoco.MjSpec()
    spec.add_mesh(name="hull", uservert=np.asarray(verts, np.float64).reshape(-1).tolist(),
                  inertia=mujoco.mjtMeshInertia.mjMESH_INERTIA_CONVEX)
    spec.worldbody.add_body().add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="hull", density=1.0)
    try:
        return float(spec.compile().body_mass[1])
    except Exception:  # a flat or degenerate point set has no volume
        return 0.0


def hull_volume_error(part) -> float:
    """|V(hull) / |V(part)| - 1| (Genesis' measure for choosing decomposition); inf when the volume is ill-defined
    (a surface that is not consistently wound or encloses no volume)."""
    volume = abs(float(part.volume)) if part.is_winding_consistent else 0.0
    if volume < 1e-12:
        return float("inf")
    return abs(_hull_volume(part.vertices) / volume - 1.0)


def convex_pieces(part, options: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """CoACD's convex decomposition of `part`: [(vertices (n, 3), faces (m, 3)), ...]."""
    try:
        import coacd
    except ImportError:
        raise UnsupportedFeatureError(
            "this Mesh needs a convex decomposition (convexify=False, or its convex hull differs from it by more than "
            "decompose_object_error_threshold), which uses the optional 'coacd' package: pip install "
            "'genesis-torch[mesh]' (or pass decompose_object_error_threshold=float('inf') to collide with the convex "
            "hull).") from None
    coacd.set_log_level("error")
    result = coacd.run_coacd(coacd.Mesh(np.asarray(part.vertices, np.float64), np.asarray(part.faces, np.int64)),
                             **{**COACD_DEFAULTS, **options})
    return [(np.asarray(v, np.float64), np.asarray(f, np.int64)) for v, f in result]


def _add_mesh_geom(spec, body, name: str, verts, faces, density: float, collide: bool, group: int, morph) -> None:
    mesh = spec.add_mesh(name=name, uservert=np.asarray(verts, np.float64).reshape(-1).tolist(),
                         userface=np.asarray(faces, np.int64).reshape(-1).tolist())
    mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_EXACT
    contype, conaffinity = (morph.contype, morph.conaffinity) if collide else (0, 0)
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=name, density=density, contype=contype,
                  conaffinity=conaffinity, group=group)


def mesh_spec(morph, density: float) -> mujoco.MjSpec:
    """The spec of a rigid `Mesh` morph: one body named "mesh" (free joint unless `fixed`) whose frame is the file's
    origin, with the mesh geoms described in this module's docstring; `density` kg/m^3."""
    parts = load_parts(morph.file, morph.scale, morph.file_meshes_are_zup)
    spec = mujoco.MjSpec()
    body = spec.worldbody.add_body(name="mesh")
    if not morph.fixed:
        body.add_freejoint()
    for i, part in enumerate(collision_groups(parts, morph.group_by_material, morph.merge_submeshes_for_collision)):
        decompose = morph.collision and (not morph.convexify
                                         or hull_volume_error(part) > morph.decompose_object_error_threshold)
        _add_mesh_geom(spec, body, f"mesh{i}", part.vertices, part.faces, density,
                       morph.collision and not decompose, 0 if morph.visualization else 3, morph)
        if decompose:  # collision only (MuJoCo group 3, not drawn by default), no mass
            for k, (v, f) in enumerate(convex_pieces(part, dict(morph.coacd_options))):
                _add_mesh_geom(spec, body, f"mesh{i}_piece{k}", v, f, 0.0, True, 3, morph)
    return spec

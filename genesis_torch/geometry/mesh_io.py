"""Mesh files read with `trimesh` (DESIGN.md §8): the one loader of every solver (rigid meshes, particle sampling,
surfaces). Vertices are float64 metres `(nv, 3)`, faces int64 `(nf, 3)`; nothing is merged or repaired.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InvalidInputError

__all__ = ["MESH_FORMATS", "check_file", "is_y_up", "load_parts", "load_merged"]

MESH_FORMATS = (".obj", ".stl", ".ply", ".off", ".glb", ".gltf")  # surface meshes trimesh reads without extras
_Y_UP_FORMATS = (".glb", ".gltf")  # Y-up by the glTF standard


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

"""The MuJoCo spec of a rigid `Mesh` morph (its file read by `genesis_torch.geometry.mesh_io`).

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

from .errors import UnsupportedFeatureError
from .geometry.mesh_io import load_parts

__all__ = ["COACD_DEFAULTS", "mesh_spec"]

# CoACD's settings with Genesis' `CoacdOptions` defaults (seeded: the same mesh gives the same pieces)
COACD_DEFAULTS = dict(threshold=0.1, max_convex_hull=-1, preprocess_mode="auto", preprocess_resolution=30,
                      resolution=1000, mcts_nodes=20, mcts_iterations=100, mcts_max_depth=3, pca=False, merge=True,
                      decimate=False, max_ch_vertex=256, extrude=False, extrude_margin=0.1, apx_mode="ch", seed=0)


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
    """The spec of a rigid `Mesh` morph: one body named "<file name>_baselink" (free joint unless `fixed`) whose frame is the file's
    origin, with the mesh geoms described in this module's docstring; `density` kg/m^3."""
    parts = load_parts(morph.file, morph.scale, morph.file_meshes_are_zup)
    spec = mujoco.MjSpec()
    stem = os.path.basename(morph.file).replace(".", "_")  # Genesis' link name: "<file name>_baselink"
    body = spec.worldbody.add_body(name=f"{stem}_baselink")
    if not morph.fixed:
        body.add_freejoint(name=f"{stem}_baselink_joint")
    for i, part in enumerate(collision_groups(parts, morph.group_by_material, morph.merge_submeshes_for_collision)):
        decompose = morph.collision and (not morph.convexify
                                         or hull_volume_error(part) > morph.decompose_object_error_threshold)
        _add_mesh_geom(spec, body, f"mesh{i}", part.vertices, part.faces, density,
                       morph.collision and not decompose, 0 if morph.visualization else 3, morph)
        if decompose:  # collision only (MuJoCo group 3, not drawn by default), no mass
            for k, (v, f) in enumerate(convex_pieces(part, dict(morph.coacd_options))):
                _add_mesh_geom(spec, body, f"mesh{i}_piece{k}", v, f, 0.0, True, 3, morph)
    return spec

"""PBD test helpers: cloth meshes written with trimesh, small scenes on the current runtime."""

from __future__ import annotations

import os
import tempfile

import numpy as np

import genesis_torch as gs
from genesis_torch.geometry.grid_mesh import square_grid

PBD = gs.materials.PBD
_DIR = tempfile.mkdtemp(prefix="pbd_meshes_")


def grid_obj(n: int = 8, size: float = 1.0) -> str:
    """Path of an .obj square of `size` m in the xy plane centred at 0: (n+1)^2 vertices, 2 n^2 triangles."""
    import trimesh

    path = os.path.join(_DIR, f"grid{n}_{size}.obj")
    if not os.path.exists(path):
        verts, faces = square_grid(n, (-size / 2, -size / 2), (size / 2, size / 2))
        trimesh.Trimesh(verts, faces, process=False).export(path)
    return path


def box_obj(size: float = 0.2, subdivisions: int = 2) -> str:
    """Path of an .obj cube of edge `size` m centred at 0, its faces subdivided (a closed surface for tetgen)."""
    import trimesh

    path = os.path.join(_DIR, f"box{size}_{subdivisions}.obj")
    if not os.path.exists(path):
        m = trimesh.creation.box(extents=(size, size, size))
        for _ in range(subdivisions):
            m = m.subdivide()
        m.export(path)
    return path


def cloth_scene(n_envs=0, *, n=6, dt=4e-3, iters=4, pinned=True, sphere=False, **cloth):
    """A square cloth (1 m, n x n cells) at z = 1 m, two corners pinned (or draped over a fixed ball); returns
    (scene, cloth, [pinned particle indices])."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt),
                     pbd_options=gs.options.PBDOptions(max_stretch_solver_iterations=iters,
                                                       lower_bound=(-2.0, -2.0, -2.0 if pinned else 0.0), upper_bound=(2.0, 2.0, 3.0)))
    if sphere:
        scene.add_entity(gs.morphs.Sphere(pos=(0.0, 0.0, 0.5), radius=0.3, fixed=True))
    ent = scene.add_entity(gs.morphs.Mesh(file=grid_obj(n), pos=(0.0, 0.0, 1.0)), material=PBD.Cloth(**cloth))
    scene.build(n_envs=n_envs)
    pins = []
    if pinned:
        pins = [ent.find_closest_particle((-0.5, -0.5, 1.0)), ent.find_closest_particle((0.5, -0.5, 1.0))]
        pins = [int(p) if np.ndim(p) == 0 else int(p[0]) for p in pins]
        ent.fix_particles(pins)
    return scene, ent, pins

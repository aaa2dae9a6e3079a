"""FEM test helpers: small scenes on the current runtime."""

from __future__ import annotations

import genesis_torch as gs

FEM = gs.materials.FEM


def box_scene(n_envs=0, *, dt=1e-3, gravity=(0.0, 0.0, -9.81), size=(0.2, 0.1, 0.1), pos=(0.0, 0.0, 0.3),
              cells=None, material=None, rigid=False, **fem):
    """One FEM box (structured tets; `cells` sets its maxvolume-free resolution) and optionally a fixed rigid sphere
    below it; returns (scene, entity)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt, gravity=gravity),
                     fem_options=gs.options.FEMOptions(**fem))
    if rigid:
        scene.add_entity(gs.morphs.Sphere(pos=(pos[0], pos[1], pos[2] - 0.2), radius=0.08, fixed=True))
    ent = scene.add_entity(gs.morphs.Box(pos=pos, size=size),
                           material=material or FEM.Elastic(E=2e4, nu=0.3, rho=500.0, model="linear_corotated"))
    if cells is not None:
        remesh(ent, cells)
    scene.build(n_envs=n_envs)
    return scene, ent


def remesh(entity, cells):
    """Give an unbuilt entity's Box the structured mesh of `cells` (nx, ny, nz)."""
    from genesis_torch.geometry.volume import box_tets

    entity.rest_verts, entity.rest_elems = box_tets(entity.morph, cells)

"""SPH test helpers: small scenes on the current runtime."""

from __future__ import annotations

import genesis_torch as gs

SPH = gs.materials.SPH


def tank_scene(n_envs=0, *, solver="WCSPH", dt=2e-3, substeps=2, rigid=True, **sph):
    """A dam of water (0.14 x 0.2 x 0.16 m, 560 particles at particle_size 0.02) in a 0.3 x 0.2 x 0.3 m tank, a free
    rigid box (0.06 m) on a ground plane in its way (`rigid`); returns (scene, [entities]) (water last)."""
    opts = dict(particle_size=0.02, lower_bound=(0.0, 0.0, 0.0), upper_bound=(0.3, 0.2, 0.3), pressure_solver=solver)
    opts.update(sph)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt, substeps=substeps),
                     sph_options=gs.options.SPHOptions(**opts))
    ents = []
    if rigid:
        ents.append(scene.add_entity(gs.morphs.Plane()))
        ents.append(scene.add_entity(gs.morphs.Box(pos=(0.185, 0.1, 0.032), size=(0.06, 0.06, 0.06))))
    ents.append(scene.add_entity(gs.morphs.Box(lower=(0.0, 0.0, 0.0), upper=(0.14, 0.2, 0.16)),
                                 material=SPH.Liquid()))
    scene.build(n_envs=n_envs)
    return scene, ents

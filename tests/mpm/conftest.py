"""MPM test helpers: small scenes on the current runtime."""

from __future__ import annotations

import genesis_torch as gs

MPM = gs.materials.MPM


def small_scene(n_envs=0, *, dt=2e-3, gravity=(0.0, 0.0, -9.81), boundary="separate", coupled=False, sand=None,
                **mpm):
    """Two entities (an elastic box and a liquid sphere) in a 1 m cube at 16 cells/m, optionally a rigid ball above
    them (coupled) and a `sand` material (an `MPM.Sand`) box falling onto them, added first; returns (scene,
    [entities])."""
    opts = dict(lower_bound=(0.0, 0.0, 0.0), upper_bound=(1.0, 1.0, 1.0), grid_density=16, particle_size=1 / 32,
                boundary=boundary)
    opts.update(mpm)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt, gravity=gravity),
                     mpm_options=gs.options.MPMOptions(**opts))
    ents = []
    if sand is not None:
        ents.append(scene.add_entity(gs.morphs.Box(pos=(0.42, 0.5, 0.5), size=(0.12, 0.12, 0.1)), material=sand))
    if coupled:
        ents.append(scene.add_entity(gs.morphs.Sphere(pos=(0.5, 0.5, 0.62), radius=0.08)))
    ents.append(scene.add_entity(gs.morphs.Box(pos=(0.4, 0.5, 0.35), size=(0.16, 0.16, 0.12)),
                                 material=MPM.Elastic(E=2e4, nu=0.3, rho=500.0)))
    ents.append(scene.add_entity(gs.morphs.Sphere(pos=(0.62, 0.5, 0.4), radius=0.07),
                                 material=MPM.Liquid(E=2e4, rho=800.0)))
    scene.build(n_envs=n_envs)
    return scene, ents

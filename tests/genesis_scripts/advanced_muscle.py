"""A Genesis-style muscle tutorial (written for this project after the pattern of Genesis' tutorial
`examples/tutorials/advanced_muscle.py`; only the import and the step count differ from a Genesis script): two soft
spheres of the same muscle tissue side by side above a floor without gravity, one simulated by MPM and one by FEM,
both driven by the same slowly oscillating activation of their single muscle group (fibres along +z, the default)."""

import numpy as np

import genesis_torch as gs

gs.init(backend=gs.cpu, precision="32", logging_level="warning")

substep_dt = 5e-4
scene = gs.Scene(
    sim_options=gs.options.SimOptions(substeps=10, gravity=(0, 0, 0)),
    mpm_options=gs.options.MPMOptions(dt=substep_dt, lower_bound=(-1.0, -1.0, -0.2), upper_bound=(1.0, 1.0, 1.0)),
    fem_options=gs.options.FEMOptions(dt=substep_dt, damping=45.0),
    vis_options=gs.options.VisOptions(show_world_frame=False),
    viewer_options=gs.options.ViewerOptions(camera_pos=(1.5, 0, 0.8), camera_lookat=(0.0, 0.0, 0.0), camera_fov=40),
    show_viewer=False,
)
scene.add_entity(morph=gs.morphs.Plane())

E, nu, rho = 3.0e4, 0.45, 1000.0
robot_mpm = scene.add_entity(
    morph=gs.morphs.Sphere(pos=(0.5, 0.2, 0.3), radius=0.1),
    material=gs.materials.MPM.Muscle(E=E, nu=nu, rho=rho, model="neohooken"),
)
robot_fem = scene.add_entity(
    morph=gs.morphs.Sphere(pos=(0.5, -0.2, 0.3), radius=0.1),
    material=gs.materials.FEM.Muscle(E=E, nu=nu, rho=rho, model="stable_neohookean"),
)
scene.build(n_envs=0)

mpm_start = robot_mpm.get_particles_pos().clone()
fem_start = robot_fem.get_state().pos.clone()
horizon = 20  # (Genesis' tutorial: 1000)
scene.reset()
for i in range(horizon):
    actu = [0.2 * (0.5 + np.sin(0.01 * np.pi * i))]
    robot_mpm.set_actuation(actu)
    robot_fem.set_actuation(actu)
    scene.step()
mpm_final = robot_mpm.get_particles_pos()
fem_final = robot_fem.get_state().pos

"""A Genesis-style position-based liquid script (written for this project after the pattern of Genesis'
deformable PBD liquid example; only the import differs from a Genesis script): a regular block of light liquid
(rho = 1) in a unit box, 10 density iterations, fully relaxed, no viscosity."""

import genesis_torch as gs

gs.init(backend=gs.cpu, precision="32", logging_level="warning")

scene = gs.Scene(
    sim_options=gs.options.SimOptions(dt=2e-3),
    pbd_options=gs.options.PBDOptions(
        lower_bound=(0.0, 0.0, 0.0),
        upper_bound=(1.0, 1.0, 1.0),
        max_density_solver_iterations=10,
        max_viscosity_solver_iterations=1,
    ),
    viewer_options=gs.options.ViewerOptions(camera_pos=(3.5, 1.0, 2.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
    show_viewer=False,
)
liquid = scene.add_entity(
    material=gs.materials.PBD.Liquid(sampler="regular", rho=1.0, density_relaxation=1.0, viscosity_relaxation=0.0),
    morph=gs.morphs.Box(lower=(0.2, 0.1, 0.1), upper=(0.4, 0.3, 0.5)),
)
scene.build(n_envs=0)

start = liquid.get_particles_pos().clone()
horizon = 5  # (Genesis' example: 4000)
for i in range(horizon):
    scene.step()
final = liquid.get_particles_pos()

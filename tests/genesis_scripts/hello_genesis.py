"""Genesis' hello_genesis tutorial, ported by changing the import: a Franka on a plane, stepped."""

import genesis_torch as gs

gs.init(backend=gs.gpu, logging_level="info")  # no GPU here: falls back to the CPU with a warning

scene = gs.Scene(
    viewer_options=gs.options.ViewerOptions(camera_pos=(3.5, 0.0, 2.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
    vis_options=gs.options.VisOptions(show_world_frame=True, world_frame_size=1.0, plane_reflection=True,
                                      ambient_light=(0.1, 0.1, 0.1)),
    show_viewer=True,
)
plane = scene.add_entity(gs.morphs.Plane())
franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
scene.build(n_envs=2, env_spacing=(1.0, 1.0))

for i in range(50):
    scene.step()

"""Genesis' hello_genesis tutorial, ported by changing the import: a Franka on a plane, stepped."""

import genesis_torch as gs

gs.init(backend=gs.cpu)

scene = gs.Scene(show_viewer=True)
plane = scene.add_entity(gs.morphs.Plane())
franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
scene.build()

for i in range(50):
    scene.step()

"""Genesis' control_your_robot tutorial (joint handles, gains, hard reset, PD control, force readouts), ported by
changing the import. Shortened; the velocity/force-control phases are left out because the bundled Franka's dofs are
driven by MJCF position actuators (docs/genesis_compat.md)."""

import numpy as np

import genesis_torch as gs

gs.init(backend=gs.cpu)

scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False)
plane = scene.add_entity(gs.morphs.Plane())
franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
scene.build()

jnt_names = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "finger_joint1", "finger_joint2"]
dofs_idx = [franka.get_joint(name).dofs_idx_local[0] for name in jnt_names]

franka.set_dofs_kp(kp=np.array([4500, 4500, 3500, 3500, 2000, 2000, 2000, 100, 100]), dofs_idx_local=dofs_idx)
franka.set_dofs_kv(kv=np.array([450, 450, 350, 350, 200, 200, 200, 10, 10]), dofs_idx_local=dofs_idx)
franka.set_dofs_force_range(
    lower=np.array([-87, -87, -87, -87, -12, -12, -12, -100, -100]),
    upper=np.array([87, 87, 87, 87, 12, 12, 12, 100, 100]),
    dofs_idx_local=dofs_idx,
)

# hard reset
for i in range(15):
    if i < 5:
        franka.set_dofs_position(np.array([1, 1, 0, -1, 0, 1, 0, 0.04, 0.04]), dofs_idx)
    elif i < 10:
        franka.set_dofs_position(np.array([-1, 0.8, 1, -2, 1, 0.5, -0.5, 0.04, 0.04]), dofs_idx)
    else:
        franka.set_dofs_position(np.array([0, 0, 0, -1, 0, 1, 0, 0, 0]), dofs_idx)
    scene.step()

# PD control
target = np.array([1, 0.5, 0, -1.5, 0, 1.5, 0.5, 0.04, 0.04])
for i in range(150):
    if i == 0:
        franka.control_dofs_position(target, dofs_idx)
    control_force = franka.get_dofs_control_force(dofs_idx)
    internal_force = franka.get_dofs_force(dofs_idx)
    scene.step()
final_position = franka.get_dofs_position(dofs_idx)

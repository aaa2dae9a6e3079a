"""Franka pick-and-place, written the Genesis way (a port of Genesis' franka_cube / IK_motion_planning_grasp
tutorials). Only the import differs from a Genesis script: plane, cube, IK to a pre-grasp pose above the cube, down to
the grasp pose, close the gripper, lift."""

import numpy as np

import genesis_torch as gs

gs.init(backend=gs.cpu, precision="32")

scene = gs.Scene(
    viewer_options=gs.options.ViewerOptions(
        camera_pos=(3, -1, 1.5),
        camera_lookat=(0.0, 0.0, 0.5),
        camera_fov=30,
        res=(960, 640),
        max_FPS=60,
    ),
    sim_options=gs.options.SimOptions(dt=0.01),
    rigid_options=gs.options.RigidOptions(box_box_detection=True),
    show_viewer=True,
)
plane = scene.add_entity(gs.morphs.Plane())
cube = scene.add_entity(gs.morphs.Box(size=(0.04, 0.04, 0.04), pos=(0.65, 0.0, 0.02)))
franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"), visualize_contact=True)
scene.build()

motors_dof = np.arange(7)
fingers_dof = np.arange(7, 9)
franka.set_dofs_kp(np.array([4500, 4500, 3500, 3500, 2000, 2000, 2000, 100, 100]))
franka.set_dofs_kv(np.array([450, 450, 350, 350, 200, 200, 200, 10, 10]))
franka.set_dofs_force_range(
    np.array([-87, -87, -87, -87, -12, -12, -12, -100, -100]),
    np.array([87, 87, 87, 87, 12, 12, 12, 100, 100]),
)
franka.set_qpos(np.array([0, -0.785, 0, -2.356, 0, 1.571, 0.785, 0.04, 0.04]))
franka.control_dofs_position(np.array([0, -0.785, 0, -2.356, 0, 1.571, 0.785, 0.04, 0.04]))

end_effector = franka.get_link("hand")

# move to the pre-grasp pose, gripper open
qpos = franka.inverse_kinematics(link=end_effector, pos=np.array([0.65, 0.0, 0.25]), quat=np.array([0, 1, 0, 0]))
qpos[-2:] = 0.04
franka.control_dofs_position(qpos)
for i in range(100):
    scene.step()
pregrasp_hand_pos = end_effector.get_pos()

# reach
qpos = franka.inverse_kinematics(link=end_effector, pos=np.array([0.65, 0.0, 0.130]), quat=np.array([0, 1, 0, 0]))
franka.control_dofs_position(qpos[:-2], motors_dof)
for i in range(100):
    scene.step()

# grasp
franka.control_dofs_position(qpos[:-2], motors_dof)
franka.control_dofs_position(np.array([0.0, 0.0]), fingers_dof)
for i in range(100):
    scene.step()
grasp_width = franka.get_dofs_position(fingers_dof).sum()
finger_contacts = franka.get_contacts(with_entity=cube)

# lift
qpos = franka.inverse_kinematics(link=end_effector, pos=np.array([0.65, 0.0, 0.28]), quat=np.array([0, 1, 0, 0]))
franka.control_dofs_position(qpos[:-2], motors_dof)
for i in range(200):
    scene.step()

cube_pos = cube.get_pos()
hand_pos = end_effector.get_pos()
print("cube lifted to", cube_pos.tolist(), "hand at", hand_pos.tolist())

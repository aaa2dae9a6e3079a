"""Plan, then grasp: a port of Genesis' IK_motion_planning_grasp tutorial, written for genesis-torch (only the import
differs from a Genesis script). The Franka starts at its model pose, `plan_path` gives a collision-free joint path to
an IK pre-grasp pose above the cube, the arm tracks it waypoint by waypoint with position control, then descends,
squeezes the cube with a finger force and lifts it."""

import numpy as np
import torch

import genesis_torch as gs

gs.init(backend=gs.cpu)

scene = gs.Scene(
    sim_options=gs.options.SimOptions(dt=0.01),
    viewer_options=gs.options.ViewerOptions(camera_pos=(3, -1, 1.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=30),
    show_viewer=False,
)
plane = scene.add_entity(gs.morphs.Plane())
cube = scene.add_entity(gs.morphs.Box(size=(0.04, 0.04, 0.04), pos=(0.65, 0.0, 0.02)))
franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
scene.build()

arm = np.arange(7)
fingers = np.arange(7, 9)
franka.set_dofs_kp(np.array([4500, 4500, 3500, 3500, 2000, 2000, 2000, 100, 100]))
franka.set_dofs_kv(np.array([450, 450, 350, 350, 200, 200, 200, 10, 10]))
franka.set_dofs_force_range(
    np.array([-87, -87, -87, -87, -12, -12, -12, -100, -100]),
    np.array([87, 87, 87, 87, 12, 12, 12, 100, 100]),
)
hand = franka.get_link("hand")
start_qpos = franka.get_qpos().clone()

# a collision-free path to the pre-grasp pose, fingers open
torch.manual_seed(0)  # the planners draw their samples from torch's global generator
pregrasp = franka.inverse_kinematics(link=hand, pos=np.array([0.65, 0.0, 0.25]), quat=np.array([0, 1, 0, 0]))
pregrasp[-2:] = 0.04
path, path_ok = franka.plan_path(qpos_goal=pregrasp, num_waypoints=200, return_valid_mask=True)
marker = scene.draw_debug_path(path, franka)
for waypoint in path:  # 2 s of tracking
    franka.control_dofs_position(waypoint)
    scene.step()
scene.clear_debug_object(marker)
for _ in range(100):  # settle on the last waypoint
    scene.step()
pregrasp_hand_pos = hand.get_pos().clone()

# down to the cube
reach = franka.inverse_kinematics(link=hand, pos=np.array([0.65, 0.0, 0.13]), quat=np.array([0, 1, 0, 0]))
franka.control_dofs_position(reach[:-2], arm)
for _ in range(100):
    scene.step()

# squeeze with a constant finger force
franka.control_dofs_position(reach[:-2], arm)
franka.control_dofs_force(np.array([-0.5, -0.5]), fingers)
for _ in range(100):
    scene.step()
grasp_width = franka.get_dofs_position(fingers).sum()

# lift
lift = franka.inverse_kinematics(link=hand, pos=np.array([0.65, 0.0, 0.28]), quat=np.array([0, 1, 0, 0]))
franka.control_dofs_position(lift[:-2], arm)
for _ in range(200):
    scene.step()
cube_pos = cube.get_pos()
hand_pos = hand.get_pos()

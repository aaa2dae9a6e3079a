"""Genesis' rigid/diffik_controller example, ported by changing the import (the panda configuration, the bundled
Franka; 400 steps instead of 2000; no argparse): a differential IK controller (damped least squares on the link
Jacobian) drives a Kinematic Franka ghost's finger along a circle, pointing down."""

import numpy as np

import genesis_torch as gs

config = {"panda": {"mjcf_file": "xml/franka_emika_panda/panda.xml", "end_effector_link": "left_finger"}}

gs.init(backend=gs.cpu)

scene = gs.Scene(
    viewer_options=gs.options.ViewerOptions(camera_pos=(0.0, -2, 1.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
    show_viewer=False,
    show_FPS=False,
)
plane = scene.add_entity(gs.morphs.Plane(), material=gs.materials.Kinematic())
robot_config = config["panda"]
robot = scene.add_entity(gs.morphs.MJCF(file=robot_config["mjcf_file"]), material=gs.materials.Kinematic())
target_entity = scene.add_entity(
    gs.morphs.Mesh(file="meshes/axis.obj", scale=0.10),
    material=gs.materials.Kinematic(),
    surface=gs.surfaces.Default(color=(1, 0.5, 0.5, 1)),
)
scene.build()
print("links=", robot.links)  # Genesis prints them before build; here links exist from build on

target_quat = np.array([0, 1, 0, 0])
center = np.array([0.5, 0, 0.5])
r = 0.1
damping = 1e-4
diag = damping * np.eye(6)

ee_link = robot.get_link(robot_config["end_effector_link"])

errors = []
for i in range(0, 400):
    target_pos = center + np.array([np.cos(i / 360 * np.pi), np.sin(i / 360 * np.pi), 0]) * r
    target_entity.set_qpos(np.concatenate([target_pos, target_quat]))

    error_pos = target_pos - ee_link.get_pos().cpu().numpy()  # position error
    ee_quat = ee_link.get_quat().cpu().numpy()  # orientation error
    error_quat = gs.transform_quat_by_quat(gs.inv_quat(ee_quat), target_quat)
    error_rotvec = gs.quat_to_rotvec(error_quat)
    error = np.concatenate([error_pos, error_rotvec])
    errors.append(np.abs(error).max())

    jac = robot.get_jacobian(link=ee_link).cpu().numpy()
    dq = jac.T @ np.linalg.solve(jac @ jac.T + diag, error)
    q = robot.get_qpos().cpu().numpy() + dq
    robot.set_qpos(q)
    scene.visualizer.update(force=True)

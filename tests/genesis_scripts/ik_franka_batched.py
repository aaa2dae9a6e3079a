"""Genesis' rigid/ik_franka_batched example, ported by changing the import (4 envs instead of 64, 6 steps instead of
720, CPU, no viewer loop): a Kinematic Franka ghost follows a circle per env by batched IK, a Kinematic axis mesh
marks the target; nothing is simulated."""

import numpy as np

import genesis_torch as gs

gs.init(backend=gs.cpu, precision="32", logging_level="info")
np.set_printoptions(precision=7, suppress=True)

scene = gs.Scene(
    viewer_options=gs.options.ViewerOptions(camera_pos=(0.0, -2, 1.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
    show_viewer=False,
)
plane = scene.add_entity(gs.morphs.Plane(), material=gs.materials.Kinematic())
robot = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"), material=gs.materials.Kinematic())
target_entity = scene.add_entity(
    gs.morphs.Mesh(file="meshes/axis.obj", scale=0.15),
    material=gs.materials.Kinematic(),
    surface=gs.surfaces.Default(color=(1, 0.5, 0.5, 1)),
)

n_envs = 4
scene.build(n_envs=n_envs, env_spacing=(1.0, 1.0))

target_quat = np.tile(np.array([0, 1, 0, 0]), [n_envs, 1])  # pointing downwards
center = np.tile(np.array([0.4, -0.2, 0.25]), [n_envs, 1])
angular_speed = np.random.default_rng(0).uniform(-10, 10, n_envs)
r = 0.1

ee_link = robot.get_link("hand")

errors, z_axis_down, marker_errors = [], [], []
for i in range(6):
    target_pos = np.zeros([n_envs, 3])
    target_pos[:, 0] = center[:, 0] + np.cos(i / 360 * np.pi * angular_speed) * r
    target_pos[:, 1] = center[:, 1] + np.sin(i / 360 * np.pi * angular_speed) * r
    target_pos[:, 2] = center[:, 2]
    target_q = np.hstack([target_pos, target_quat])

    target_entity.set_qpos(target_q)
    q = robot.inverse_kinematics(
        link=ee_link,
        pos=target_pos,
        quat=target_quat,
        rot_mask=[False, False, True],  # for demo purpose: only restrict direction of z-axis
    )
    robot.set_qpos(q)
    scene.visualizer.update(force=True)
    errors.append(np.linalg.norm(ee_link.get_pos().numpy() - target_pos, axis=-1).max())
    R = gs.quat_to_R(ee_link.get_quat().numpy())
    z_axis_down.append(float(R[:, 2, 2].max()))  # the hand's z axis . world z: -1 when pointing down
    marker_errors.append(float(np.abs(target_entity.get_pos().numpy() - target_pos).max()))

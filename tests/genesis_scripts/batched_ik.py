"""Genesis' batched_IK tutorial, ported by changing the import (fewer envs and steps): every env's hand follows its
own circle, pointing down, by IK on all envs at once."""

import numpy as np

import genesis_torch as gs

gs.init(backend=gs.cpu)

scene = gs.Scene(
    viewer_options=gs.options.ViewerOptions(camera_pos=(0.0, -2, 1.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
    rigid_options=gs.options.RigidOptions(enable_joint_limit=False),
)
plane = scene.add_entity(gs.morphs.Plane())
robot = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))

n_envs = 4
scene.build(n_envs=n_envs, env_spacing=(1.0, 1.0))

target_quat = np.tile(np.array([0, 1, 0, 0]), [n_envs, 1])  # pointing downwards
center = np.tile(np.array([0.4, -0.2, 0.25]), [n_envs, 1])
angular_speed = np.random.default_rng(0).uniform(-10, 10, n_envs)
r = 0.1
ee_link = robot.get_link("hand")

errors = []
for i in range(4):
    target_pos = np.zeros([n_envs, 3])
    target_pos[:, 0] = center[:, 0] + np.cos(i / 360 * np.pi * angular_speed) * r
    target_pos[:, 1] = center[:, 1] + np.sin(i / 360 * np.pi * angular_speed) * r
    target_pos[:, 2] = center[:, 2]

    q = robot.inverse_kinematics(link=ee_link, pos=target_pos, quat=target_quat, rot_mask=[False, False, True])
    robot.set_qpos(q)
    errors.append(np.linalg.norm(ee_link.get_pos().numpy() - target_pos, axis=-1).max())
    scene.step()

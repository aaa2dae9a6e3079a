"""A Genesis-style locomotion RL environment (the structure of Genesis' go2 / locomotion examples), ported by changing
the import; the bundled ant stands in for the Go2 (Genesis' `urdf/go2/urdf/go2.urdf` is not bundled). Batched envs,
joint handles, PD gains, base pose and velocity getters, actions as PD targets, and resets of selected envs."""

import torch

import genesis_torch as gs

gs.init(backend=gs.cpu, precision="32", logging_level="warning")


class AntEnv:
    def __init__(self, num_envs):
        self.num_envs = num_envs
        self.dt = 0.02
        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=self.dt, substeps=2),
            viewer_options=gs.options.ViewerOptions(max_FPS=int(0.5 / self.dt), camera_pos=(2.0, 0.0, 2.5),
                                                    camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
            vis_options=gs.options.VisOptions(rendered_envs_idx=list(range(1))),
            rigid_options=gs.options.RigidOptions(constraint_solver=gs.constraint_solver.Newton, enable_collision=True,
                                                  enable_joint_limit=True),
            show_viewer=False,
        )
        self.scene.add_entity(gs.morphs.Plane())
        self.base_init_pos = torch.tensor([0.0, 0.0, 0.5], device=gs.device)
        self.base_init_quat = torch.tensor([1.0, 0.0, 0.0, 0.0], device=gs.device)
        self.robot = self.scene.add_entity(gs.morphs.MJCF(file="ant.xml", pos=self.base_init_pos.tolist()))
        self.scene.build(n_envs=num_envs)

        joint_names = ["fl_hip", "fl_knee", "bl_hip", "bl_knee", "br_hip", "br_knee", "fr_hip", "fr_knee"]
        self.motors_dof_idx = [self.robot.get_joint(name).dof_start for name in joint_names]
        self.robot.set_dofs_kp([200.0] * 8, self.motors_dof_idx)
        self.robot.set_dofs_kv([4.0] * 8, self.motors_dof_idx)
        self.default_dof_pos = torch.tensor([0.0, 0.3] * 4, device=gs.device)
        self.episode_length = torch.zeros(num_envs, dtype=torch.int64, device=gs.device)
        self.reset_idx(torch.arange(num_envs, device=gs.device))

    def step(self, actions):
        target = self.default_dof_pos + 0.25 * actions.clamp(-1, 1)
        self.robot.control_dofs_position(target, self.motors_dof_idx)
        self.scene.step()
        self.episode_length += 1
        self.base_pos = self.robot.get_pos()
        self.base_quat = self.robot.get_quat()
        self.base_lin_vel = self.robot.get_vel()
        self.base_ang_vel = self.robot.get_ang()
        self.dof_pos = self.robot.get_dofs_position(self.motors_dof_idx)
        self.dof_vel = self.robot.get_dofs_velocity(self.motors_dof_idx)
        done = (self.episode_length >= 10) | (self.base_pos[:, 2] < 0.15)
        self.reset_idx(done.nonzero(as_tuple=False).flatten())
        obs = torch.cat([self.base_lin_vel, self.base_ang_vel, self.dof_pos - self.default_dof_pos, self.dof_vel], -1)
        return obs, done

    def reset_idx(self, envs_idx):
        if len(envs_idx) == 0:
            return
        self.robot.set_dofs_position(self.default_dof_pos.expand(len(envs_idx), -1), self.motors_dof_idx,
                                     zero_velocity=True, envs_idx=envs_idx)
        self.robot.set_pos(self.base_init_pos.expand(len(envs_idx), -1), zero_velocity=False, envs_idx=envs_idx)
        self.robot.set_quat(self.base_init_quat.expand(len(envs_idx), -1), zero_velocity=False, envs_idx=envs_idx)
        self.robot.zero_all_dofs_velocity(envs_idx)
        self.episode_length[envs_idx] = 0


env = AntEnv(num_envs=4)
generator = torch.Generator().manual_seed(0)
observations, dones = [], []
for i in range(12):
    env.episode_length[0] = max(int(env.episode_length[0]), 5)  # env 0 ends its episodes early
    obs, done = env.step(torch.rand(4, 8, generator=generator) * 2 - 1)
    observations.append(obs)
    dones.append(done)

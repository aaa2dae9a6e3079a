"""Reinforcement learning on the bundled Go2 (issue 14, "RL training"): the quadruped Genesis' locomotion examples
load as `urdf/go2/urdf/go2.urdf`, a Go2-env-like velocity-tracking task on 64 envs, trained for a few iterations by a
minimal PPO written here (actor-critic MLP, GAE, clipped surrogate) and, when installed, by rsl-rl's OnPolicyRunner.

The task follows Genesis' examples/locomotion/go2_env.py: 50 Hz control (dt 0.02 s, 2 substeps), PD position control
of the 12 joints through `control_dofs_position` (kp 20, kv 0.5, actions scaled by 0.25 about the default pose), a
45-number observation (body-frame angular velocity, projected gravity, command, joint offsets and velocities, last
action), its six reward terms and scales (times dt), and resets of terminated envs (roll or pitch over 10 degrees,
time-out) by `scene.reset(envs_idx=...)` plus `set_qpos(..., zero_velocity=True)`. Envs that
`scene.rigid_solver.get_error_envs_mask()` flags (NaN / inf state) are reset too; the tests make one diverge.
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
import torch
from torch import nn

import genesis_torch as gs
from genesis_torch.morphs import resolve_asset
from genesis_torch.utils.geom import inv_quat, quat_to_xyz, transform_by_quat

from .conftest import cpu_runtime

# Genesis' go2_train.py: motor order and default joint angles (rad)
JOINTS = [f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")]
DEFAULT = {**{f"{leg}_hip_joint": 0.0 for leg in ("FR", "FL", "RR", "RL")},
           **{f"{leg}_thigh_joint": 0.8 for leg in ("FR", "FL")}, **{f"{leg}_thigh_joint": 1.0 for leg in ("RR", "RL")},
           **{f"{leg}_calf_joint": -1.5 for leg in ("FR", "FL", "RR", "RL")}}
REWARD_SCALES = {"tracking_lin_vel": 1.0, "tracking_ang_vel": 0.2, "lin_vel_z": -1.0, "base_height": -50.0,
                 "action_rate": -0.005, "similar_to_default": -0.1}
N_ENVS = 64


class Go2Task:
    """Genesis' Go2 walking task (module docstring) on `n_envs` envs; `step(actions (B, 12))` returns
    (obs (B, 45), reward (B,), done (B,) bool, info) where info["time_outs"] (B,) and info["diverged"] (B,) are masks
    of this step."""

    num_obs, num_actions, dt = 45, 12, 0.02

    def __init__(self, n_envs: int, episode_steps: int = 1000, command=(0.5, 0.0, 0.0), seed: int = 0):
        self.n = n_envs
        self.max_episode_length = episode_steps
        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=self.dt, substeps=2, on_divergence="ignore"),
            rigid_options=gs.options.RigidOptions(constraint_solver=gs.constraint_solver.Newton,
                                                  enable_collision=True, enable_joint_limit=True),
            show_viewer=False)
        self.scene.add_entity(gs.morphs.URDF(file="urdf/plane/plane.urdf", fixed=True))
        # Genesis' default rotor inertia (default_armature=0.1) applies, as in Genesis' go2_env
        self.robot = self.scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0.0, 0.0, 0.42)),
                                           name="go2")
        self.scene.build(n_envs=n_envs)
        self.dofs = [self.robot.get_joint(name).dof_start for name in JOINTS]
        self.robot.set_dofs_kp([20.0] * 12, self.dofs)
        self.robot.set_dofs_kv([0.5] * 12, self.dofs)
        f = gs.tc_float
        self.default = torch.tensor([DEFAULT[name] for name in JOINTS], dtype=f)
        qpos0 = self.robot.get_qpos()[0].clone()  # base at (0, 0, 0.42), identity quat, joints 0
        qpos0[[self.robot.get_joint(name).q_start for name in JOINTS]] = self.default
        self.qpos0 = qpos0
        self.command = torch.tensor(command, dtype=f).expand(n_envs, 3)
        self.commands_scale = torch.tensor([2.0, 2.0, 0.25], dtype=f)  # lin_vel, lin_vel, ang_vel obs scales
        self.episode_length = torch.zeros(n_envs, dtype=gs.tc_int)
        self.actions = torch.zeros(n_envs, 12, dtype=f)
        self.last_actions = torch.zeros_like(self.actions)
        self.resets = torch.zeros(n_envs, dtype=torch.long)  # how often each env was reset
        self.reset_idx(torch.arange(n_envs))
        self.obs = self._observe()

    def reset_idx(self, envs_idx: torch.Tensor) -> None:
        """Envs `envs_idx` (int tensor) back to the build state, then the default pose at rest."""
        if len(envs_idx) == 0:
            return
        self.scene.reset(envs_idx=envs_idx)
        self.robot.set_qpos(self.qpos0.expand(len(envs_idx), -1), envs_idx=envs_idx, zero_velocity=True)
        self.episode_length[envs_idx] = 0
        self.actions[envs_idx] = 0.0
        self.last_actions[envs_idx] = 0.0
        self.resets[envs_idx] += 1

    def _base(self):
        quat = self.robot.get_quat()
        inv = inv_quat(quat)
        gravity = torch.tensor([0.0, 0.0, -1.0], dtype=quat.dtype).expand(self.n, 3)
        return (self.robot.get_pos(), quat, transform_by_quat(self.robot.get_vel(), inv),
                transform_by_quat(self.robot.get_ang(), inv), transform_by_quat(gravity, inv))

    def _observe(self) -> torch.Tensor:
        _, _, _, ang, grav = self._base()
        q = self.robot.get_dofs_position(self.dofs)
        dq = self.robot.get_dofs_velocity(self.dofs)
        return torch.cat([ang * 0.25, grav, self.command * self.commands_scale, q - self.default, dq * 0.05,
                          self.actions], dim=-1)

    def _reward(self, pos, lin, ang, q) -> torch.Tensor:
        terms = {
            "tracking_lin_vel": torch.exp(-((self.command[:, :2] - lin[:, :2]) ** 2).sum(-1) / 0.25),
            "tracking_ang_vel": torch.exp(-(self.command[:, 2] - ang[:, 2]) ** 2 / 0.25),
            "lin_vel_z": lin[:, 2] ** 2,
            "base_height": (pos[:, 2] - 0.3) ** 2,
            "action_rate": ((self.last_actions - self.actions) ** 2).sum(-1),
            "similar_to_default": (q - self.default).abs().sum(-1),
        }
        return sum(terms[k] * REWARD_SCALES[k] * self.dt for k in REWARD_SCALES)

    def step(self, actions: torch.Tensor):
        self.actions = actions.clamp(-100.0, 100.0)
        # Genesis' 1-step action latency: the previous action drives the joints
        self.robot.control_dofs_position(self.last_actions * 0.25 + self.default, self.dofs)
        self.scene.step()
        self.episode_length += 1
        pos, quat, lin, ang, _ = self._base()
        q = self.robot.get_dofs_position(self.dofs)
        diverged = self.scene.rigid_solver.get_error_envs_mask().clone()
        rew = torch.where(diverged, 0.0, self._reward(pos, lin, ang, q))
        rpy = quat_to_xyz(quat, rpy=True, degrees=True)
        time_outs = self.episode_length > self.max_episode_length
        done = time_outs | (rpy[:, 0].abs() > 10) | (rpy[:, 1].abs() > 10) | diverged
        self.last_actions = self.actions.clone()
        self.reset_idx(done.nonzero().flatten())
        self.obs = self._observe()
        return self.obs, rew, done, {"time_outs": time_outs & ~diverged, "diverged": diverged}


# ---------------------------------------------------------------------------------------------------- minimal PPO
class ActorCritic(nn.Module):
    def __init__(self, n_obs: int, n_act: int, hidden: int = 64, init_std: float = 0.5):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(n_obs, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                   nn.Linear(hidden, n_act))
        self.critic = nn.Sequential(nn.Linear(n_obs, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                    nn.Linear(hidden, 1))
        self.log_std = nn.Parameter(torch.full((n_act,), math.log(init_std)))

    def dist(self, obs):
        return torch.distributions.Normal(self.actor(obs), self.log_std.exp())

    def value(self, obs):
        return self.critic(obs).squeeze(-1)


def gae(rewards, values, dones, last_value, gamma=0.99, lam=0.95):
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16): A_t = sum_l (gamma lam)^l delta_{t+l},
    delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t). Inputs (T, B); returns (advantages, returns)."""
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    for t in reversed(range(rewards.shape[0])):
        next_value = last_value if t == rewards.shape[0] - 1 else values[t + 1]
        not_done = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        running = delta + gamma * lam * not_done * running
        adv[t] = running
    return adv, adv + values


def ppo_loss(model, obs, actions, old_logp, adv, returns, clip=0.2, value_coef=1.0, entropy_coef=0.01):
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7) + value loss - entropy bonus."""
    dist = model.dist(obs)
    logp = dist.log_prob(actions).sum(-1)
    ratio = torch.exp(logp - old_logp)
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
    value_loss = (model.value(obs) - returns).pow(2).mean()
    return -surrogate + value_coef * value_loss - entropy_coef * dist.entropy().sum(-1).mean()


def train_ppo(task: Go2Task, iterations: int, steps: int, diverge_at=None, epochs=2, minibatches=4, seed=0):
    """Train with PPO; at (iteration, step) `diverge_at` env 3 gets a 1e30 rad/s joint velocity (overflows to inf
    in the next step). Returns a record of what happened."""
    torch.manual_seed(seed)
    model = ActorCritic(task.num_obs, task.num_actions)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = {"mean_reward": [], "diverged_steps": [], "loss_before": [], "loss_after": [], "finite_obs": True}
    obs = task.obs
    for it in range(iterations):
        buf = {k: [] for k in ("obs", "act", "logp", "val", "rew", "done")}
        with torch.no_grad():
            for t in range(steps):
                if diverge_at == (it, t):
                    task.robot.set_dofs_velocity(torch.full((1, 12), 1e30), task.dofs, envs_idx=[3])
                    rec["resets_before"] = task.resets.clone()
                    rec["other_qpos_before"] = task.robot.get_qpos().clone()
                dist = model.dist(obs)
                act = dist.sample()
                nxt, rew, done, info = task.step(act)
                if info["diverged"].any():
                    rec["diverged_steps"].append((it, t, info["diverged"].nonzero().flatten().tolist()))
                    rec["resets_after"] = task.resets.clone()
                    rec["other_qpos_after"] = task.robot.get_qpos().clone()
                    rec["mask_after_reset"] = task.scene.rigid_solver.get_error_envs_mask().clone()
                rec["finite_obs"] &= bool(torch.isfinite(nxt).all())
                # time-outs bootstrap from the value of the state they left (Pardo et al. 2018)
                rew = rew + 0.99 * model.value(obs) * info["time_outs"]
                for k, v in zip(buf, (obs, act, dist.log_prob(act).sum(-1), model.value(obs), rew, done)):
                    buf[k].append(v)
                obs = nxt
            last_value = model.value(obs)
        b = {k: torch.stack(v) for k, v in buf.items()}
        adv, ret = gae(b["rew"], b["val"], b["done"], last_value)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        flat = [x.flatten(0, 1) for x in (b["obs"], b["act"], b["logp"], adv, ret)]
        rec["mean_reward"].append(float(b["rew"].mean()))
        with torch.no_grad():
            rec["loss_before"].append(float(ppo_loss(model, *flat)))
        n = flat[0].shape[0]
        for _ in range(epochs):
            for idx in torch.randperm(n).chunk(minibatches):
                loss = ppo_loss(model, *(x[idx] for x in flat))
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
        with torch.no_grad():
            rec["loss_after"].append(float(ppo_loss(model, *flat)))
    rec["model"] = model
    return rec


# ---------------------------------------------------------------------------------------------------------- tests
GENESIS_GO2 = {  # Unitree's published Go2 figures (genesis_torch/assets/README.md): mass (kg) per link kind
    "base": 6.921, "hip": 0.678, "thigh": 1.152, "calf": 0.154, "foot": 0.04, "head": 0.001}


def test_bundled_go2_has_unitree_names_order_limits_and_masses():
    """What Genesis' go2 examples read: base link "base", joint names, dof order (per `dof_start`), limits; masses
    and inertias as published; `links_to_keep` keeps the feet as links, merging otherwise folds them into the calves."""
    path = resolve_asset("urdf/go2/urdf/go2.urdf")
    assert path.endswith("go2.urdf")
    root = ET.parse(path).getroot()
    assert not root.findall(".//mesh") and not root.findall(".//visual"), "primitives only"
    with cpu_runtime("64"):
        scene = gs.Scene(show_viewer=False)
        plane = scene.add_entity(gs.morphs.URDF(file="urdf/plane/plane.urdf", fixed=True))
        merged = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0, 0, 0.42)))
        feet = [f"{leg}_foot" for leg in ("FL", "FR", "RL", "RR")]
        kept = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(1, 0, 0.42), links_to_keep=feet))
        scene.build()
        assert [link.name for link in plane.links] == ["planeLink"] and plane.n_dofs == 0
        legs = [f"{leg}_{part}" for leg in ("FL", "FR", "RL", "RR") for part in ("hip", "thigh", "calf")]
        assert [link.name for link in merged.links] == ["base", *legs]
        assert [link.name for link in kept.links] == ["base", *[n for leg in ("FL", "FR", "RL", "RR") for n in (
            f"{leg}_hip", f"{leg}_thigh", f"{leg}_calf", f"{leg}_foot")]]
        assert merged.n_dofs == 18 and merged.get_link("base").get_pos().tolist() == [0.0, 0.0, 0.42]
        # the file's joint order FL, FR, RL, RR (Genesis' depth-first order too); go2_train.py asks by name
        assert merged.joints[0].name == "root_joint"  # Genesis' name of the free joint it adds to a URDF
        names = [j.name for j in merged.joints][1:]
        assert names == [f"{leg}_{p}_joint" for leg in ("FL", "FR", "RL", "RR") for p in ("hip", "thigh", "calf")]
        assert [merged.get_joint(n).dof_start for n in JOINTS] == [9, 10, 11, 6, 7, 8, 15, 16, 17, 12, 13, 14]
        assert [merged.get_joint(n).dofs_idx_local for n in JOINTS[:3]] == [[9], [10], [11]]
        lo, hi = merged.get_dofs_limit()
        want = {"hip": (-1.0472, 1.0472), "thigh": (-1.5708, 3.4907), "calf": (-2.7227, -0.83776)}
        for n in JOINTS:
            d, (leg, part) = merged.get_joint(n).dof_start, n.split("_")[:2]
            w = (-0.5236, 4.5379) if part == "thigh" and leg[0] == "R" else want[part]
            assert (float(lo[d]), float(hi[d])) == w, n
        m = scene.rigid_solver.mj_model
        jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{merged._mj_prefix}FR_calf_joint")
        assert m.jnt_actfrcrange[jid].tolist() == [-35.55, 35.55]  # URDF effort, as MuJoCo compiles it
        # masses: merging keeps the total (15.019 kg); the calf carries its foot (0.154 + 0.04) and the base the head
        total = GENESIS_GO2["base"] + 4 * sum(GENESIS_GO2[k] for k in ("hip", "thigh", "calf", "foot")) + 0.002
        assert abs(sum(link.get_mass() for link in merged.links) - total) < 1e-12
        assert abs(sum(link.get_mass() for link in kept.links) - total) < 1e-12
        assert abs(merged.get_link("FR_calf").get_mass() - 0.194) < 1e-12
        assert abs(kept.get_link("FR_calf").get_mass() - 0.154) < 1e-12
        assert abs(merged.get_link("base").get_mass() - 6.923) < 1e-12
        body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{kept._mj_prefix}FR_thigh")
        # the published inertia (ixx iyy izz 0.00584 0.0058 0.00103, ixy -8.72e-5, ixz -2.89e-4, iyz -8.08e-4 on
        # the right leg) has the principal moments MuJoCo compiles
        full = np.array([[0.00584, -8.72e-05, -0.000289], [-8.72e-05, 0.0058, -0.000808], [-0.000289, -0.000808,
                                                                                             0.00103]])
        np.testing.assert_allclose(np.sort(m.body_inertia[body]), np.linalg.eigvalsh(full), rtol=1e-9)


def test_default_armature_is_genesis_rotor_inertia():
    """`default_armature` (Genesis' morph option) sets the armature of every hinge/slide joint that is its body's
    only joint and has none in the file, after scaling; authored armatures (the ant's 0.02) and the free joint keep
    theirs; None changes nothing; a URDF gets Genesis' 0.1 by default, an MJCF None; a negative value raises."""
    go2 = gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", default_armature=0.1, scale=2.0).to_spec().compile()
    assert go2.dof_armature.tolist() == [0.0] * 6 + [0.1] * 12
    assert gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf").to_spec().compile().dof_armature.tolist() == \
        [0.0] * 6 + [0.1] * 12  # Genesis' default
    plain = gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", default_armature=None).to_spec().compile()
    assert plain.dof_armature.tolist() == [0.0] * 18
    assert gs.morphs.MJCF(file="ant.xml").default_armature is None
    ant = gs.morphs.MJCF(file="ant.xml", default_armature=0.5).to_spec().compile()
    assert np.allclose(ant.dof_armature[6:], 0.02) and np.all(ant.dof_armature[:6] == 0)
    assert "default_armature" not in gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", default_armature=None).fingerprint()
    assert gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf").fingerprint()["default_armature"] == 0.1
    with pytest.raises(gs.errors.InvalidInputError, match="default_armature"):
        gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", default_armature=-1.0)


def test_go2_drop_matches_mujoco():
    """The bundled Go2 dropped on the bundled plane (float64, 3 envs, random joint offsets, passive): 20 steps of
    2 substeps (it lands within 10; contacts of feet, calves and base with the plane) equal MuJoCo 4.0.1 on the
    scene's model."""
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.02, substeps=2),
                         rigid_options=gs.options.RigidOptions(constraint_solver=gs.constraint_solver.Newton),
                         show_viewer=False)
        scene.add_entity(gs.morphs.URDF(file="urdf/plane/plane.urdf", fixed=True))
        robot = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0, 0, 0.42)))
        scene.build(n_envs=3)
        dofs = [robot.get_joint(n).dof_start for n in JOINTS]
        rng = np.random.default_rng(0)
        q = torch.tensor([DEFAULT[n] for n in JOINTS], dtype=torch.float64)
        q = q + torch.tensor(rng.uniform(-0.2, 0.2, (3, 12)))
        robot.set_dofs_position(q, dofs, zero_velocity=True)
        m = scene.rigid_solver.mj_model
        datas = [mujoco.MjData(m) for _ in range(3)]
        for d, qpos in zip(datas, robot.get_qpos().numpy()):
            d.qpos[:] = qpos
        ncon = 0
        for _ in range(20):
            scene.step()
            for d in datas:
                mujoco.mj_step(m, d, 2)
                ncon = max(ncon, d.ncon)
        assert ncon >= 3, "the drop should end on the plane with several contacts"
        for b, d in enumerate(datas):
            np.testing.assert_allclose(robot.get_qpos()[b].numpy(), d.qpos, rtol=0, atol=1e-10)
            np.testing.assert_allclose(robot.get_dofs_velocity()[b].numpy(), d.qvel, rtol=0, atol=1e-9)


def test_go2_stands_under_pd_control_at_the_default_pose():
    """kp 20 / kv 0.5 holding Genesis' default pose (zero actions) after the 0.42 m drop: no env tips over 10 degrees
    in 1.2 s, and the base bounces about the 0.3 m height the reward asks for (mean of the last 0.5 s)."""
    with cpu_runtime("32"):
        task = Go2Task(2)
        heights = []
        for _ in range(60):
            _, _, done, _ = task.step(torch.zeros(2, 12))
            assert not done.any()
            heights.append(task.robot.get_pos()[:, 2])
        z = torch.stack(heights[-25:]).mean(0)
        assert bool(((z > 0.25) & (z < 0.31)).all()), z


def test_diverged_env_is_flagged_reset_and_the_others_continue_unchanged():
    """A 1e30 rad/s joint velocity in env 3 (float32): the next step flags env 3 alone in
    `get_error_envs_mask()`; the other envs' states equal a step without it; the task resets env 3 to the default
    pose, which clears the mask, and stepping goes on with finite observations."""
    with cpu_runtime("32"):
        task = Go2Task(6)
        for _ in range(3):
            task.step(torch.zeros(6, 12))
        scene, robot = task.scene, task.robot
        before = scene.get_state()
        robot.control_dofs_position(task.default.expand(6, 12), task.dofs)
        scene.step()
        ref_qpos, ref_vel = robot.get_qpos().clone(), robot.get_dofs_velocity().clone()
        scene.reset(state=before)
        robot.set_dofs_velocity(torch.full((1, 12), 1e30), task.dofs, envs_idx=[3])
        robot.control_dofs_position(task.default.expand(6, 12), task.dofs)
        scene.step()
        mask = scene.rigid_solver.get_error_envs_mask()
        assert mask.tolist() == [False, False, False, True, False, False]
        assert not bool(torch.isfinite(robot.get_dofs_velocity()[3]).all())
        others = [0, 1, 2, 4, 5]
        assert torch.equal(robot.get_qpos()[others], ref_qpos[others])
        assert torch.equal(robot.get_dofs_velocity()[others], ref_vel[others])
        # through the task: the step that finds the mask resets env 3 only
        scene.reset(state=before)
        robot.set_dofs_velocity(torch.full((1, 12), 1e30), task.dofs, envs_idx=[3])
        resets = task.resets.clone()
        obs, rew, done, info = task.step(torch.zeros(6, 12))
        assert info["diverged"].tolist() == mask.tolist() and bool(done[3])
        assert (task.resets - resets).tolist() == [0, 0, 0, 1, 0, 0]
        assert not scene.rigid_solver.get_error_envs_mask().any()
        torch.testing.assert_close(robot.get_qpos()[3], task.qpos0, rtol=0, atol=0)
        assert bool(torch.isfinite(obs).all() and torch.isfinite(rew).all())
        for _ in range(3):
            obs, rew, done, _ = task.step(torch.zeros(6, 12))
        assert bool(torch.isfinite(obs).all()) and not done.any()


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_minimal_ppo_trains_go2_on_64_envs_and_resets_a_diverged_env():
    """3 PPO iterations x 16 steps on 64 envs; env 3 diverges at iteration 1, step 5. Checked: that env alone is
    flagged and reset (the others keep their state), observations stay finite, the mean reward is finite, each
    update lowers the clipped-surrogate loss on its batch and changes the parameters."""
    with cpu_runtime("32"):
        start = time.perf_counter()
        task = Go2Task(N_ENVS, episode_steps=1000)
        torch.manual_seed(0)
        init = _params(ActorCritic(task.num_obs, task.num_actions))
        rec = train_ppo(task, iterations=3, steps=16, diverge_at=(1, 5), seed=0)
        elapsed = time.perf_counter() - start
    assert rec["diverged_steps"] == [(1, 5, [3])], rec["diverged_steps"]
    assert rec["finite_obs"]
    assert (rec["resets_after"] - rec["resets_before"])[3] == 1
    assert not rec["mask_after_reset"].any()
    # envs reset in that same step for falling over are the only other ones whose state jumped
    fell = ((rec["resets_after"] - rec["resets_before"]) > 0).nonzero().flatten().tolist()
    moved = (rec["other_qpos_after"] - rec["other_qpos_before"]).abs().amax(-1)
    kept = [b for b in range(N_ENVS) if b not in fell]
    assert len(kept) > N_ENVS // 2 and float(moved[kept].max()) < 0.1, "the other envs continue from their state"
    assert all(math.isfinite(r) for r in rec["mean_reward"]), rec["mean_reward"]
    assert all(after < before for before, after in zip(rec["loss_before"], rec["loss_after"])), rec
    assert not torch.equal(_params(rec["model"]), init), "the update changed no parameter"
    assert elapsed < 120, f"{elapsed:.1f} s"  # measured 13 s on one thread (2 cores at load average 7-10)


def test_rsl_rl_on_policy_runner_trains_go2_for_two_iterations(tmp_path):
    """rsl-rl's OnPolicyRunner (rsl-rl-lib >= 5, the optional extra `rl`) on the same task through its VecEnv
    interface (TensorDict observations, as Genesis' go2_train.py): 2 iterations on 64 envs with finite losses and
    changed actor parameters."""
    pytest.importorskip("rsl_rl")
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    class VecGo2:
        def __init__(self, task):
            self.task, self.num_envs, self.num_actions = task, task.n, task.num_actions
            self.max_episode_length, self.device, self.cfg = task.max_episode_length, gs.device, {}
            self.episode_length_buf = task.episode_length

        def get_observations(self):
            return TensorDict({"policy": self.task.obs}, batch_size=[self.num_envs])

        def step(self, actions):
            self.task.episode_length = self.episode_length_buf  # the runner may replace the buffer
            obs, rew, done, info = self.task.step(actions)
            self.episode_length_buf = self.task.episode_length
            extras = {"time_outs": info["time_outs"].to(gs.tc_float), "log": {}}
            return self.get_observations(), rew, done.long(), extras

    cfg = {
        "algorithm": {"class_name": "PPO", "clip_param": 0.2, "desired_kl": 0.01, "entropy_coef": 0.01,
                      "gamma": 0.99, "lam": 0.95, "learning_rate": 0.001, "max_grad_norm": 1.0,
                      "num_learning_epochs": 2, "num_mini_batches": 4, "schedule": "adaptive",
                      "use_clipped_value_loss": True, "value_loss_coef": 1.0},
        "actor": {"class_name": "MLPModel", "hidden_dims": [64, 64], "activation": "elu",
                  "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0, "std_type": "scalar"}},
        "critic": {"class_name": "MLPModel", "hidden_dims": [64, 64], "activation": "elu"},
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "num_steps_per_env": 12, "save_interval": 100, "run_name": "go2", "logger": "tensorboard",
    }
    with cpu_runtime("32"):
        torch.manual_seed(0)
        env = VecGo2(Go2Task(N_ENVS, episode_steps=1000))
        runner = OnPolicyRunner(env, cfg, log_dir=None, device=str(gs.device))
        before = _params(runner.alg.get_policy())
        runner.learn(num_learning_iterations=2, init_at_random_ep_len=True)
        after = _params(runner.alg.get_policy())
        assert runner.current_learning_iteration == 1
        assert bool(torch.isfinite(after).all()) and not torch.equal(before, after)
        assert bool(torch.isfinite(env.task.obs).all())

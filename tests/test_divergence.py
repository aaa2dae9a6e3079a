"""A diverging simulation never passes silently (issue 12 §7): CFL warning at build, per-env error masks, the
raise / warn / ignore policies, particles kept in the MPM domain, checkpoints that refuse NaN unless asked."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import CheckpointError, InvalidInputError, SimulationDivergedError

from .conftest import cpu_runtime

MPM = gs.materials.MPM
PENDULUM = """<mujoco><worldbody><body pos="0 0 1"><joint type="hinge" axis="0 1 0"/>
  <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.05"/></body></worldbody></mujoco>"""


def issue_scene(n_envs=0, sim=None, E=3e5):
    """The scene of the issue: a default Elastic box in a 1 m tall domain, default SimOptions unless `sim`."""
    scene = gs.Scene(sim_options=sim or gs.options.SimOptions(),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0)))
    box = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.3), size=(0.2, 0.2, 0.2)), material=MPM.Elastic(E=E))
    scene.build(n_envs=n_envs)
    return scene, box


def in_domain(scene, pos):
    m = scene.mpm_solver.model
    return bool(((pos >= m.pos_lo) & (pos <= m.pos_hi)).all())


def pendulum_scene(tmp_path, n_envs, **sim):
    path = tmp_path / "pendulum.xml"
    path.write_text(PENDULUM)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, **sim))
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=n_envs)
    return scene, robot


def test_cfl_warning_names_options_that_work(caplog):
    with cpu_runtime("32"), caplog.at_level(logging.WARNING, logger="genesis_torch"):
        issue_scene()
        (record,) = [r for r in caplog.records if "stable bound" in r.message]
        # c = sqrt((lam + 2 mu) / rho) = 18.26 m/s for E = 3e5, nu = 0.2, rho = 1000; dx = 1/64 m
        assert "c = 18.3 m/s" in record.message and "SimOptions(dt=0.01, substeps=24)" in record.message
        assert "MPMOptions(dt=0.01 / 24)" in record.message
        caplog.clear()
        issue_scene(sim=gs.options.SimOptions(dt=4e-3, substeps=10))  # the tutorial's setting: 0.47 of the bound
        assert not [r for r in caplog.records if "stable bound" in r.message]


def test_issue_scene_raises_and_particles_stay_in_the_domain():
    with cpu_runtime("32"):
        scene, box = issue_scene()
        with pytest.raises(SimulationDivergedError, match=r"MPMSolver envs \[0\].*on_divergence") as err:
            for _ in range(20):
                pos = scene.get_state()["MPMSolver"].pos
                assert torch.isfinite(pos).all() and in_domain(scene, pos)  # clamped, never 2.5 m below the floor
                scene.step()
        assert torch.equal(err.value.envs_mask, torch.tensor([True]))
        assert 3 <= scene.t <= 12, scene.t  # NaN after 7 steps (float32, measured)
        assert torch.equal(scene.mpm_solver.get_error_envs_mask(), torch.tensor([True]))
        with pytest.raises(SimulationDivergedError):  # every later step says so again until a reset
            scene.step()
        scene.reset()
        assert not scene.mpm_solver.get_error_envs_mask().any()


def test_stable_setting_keeps_fast_particles_in_the_domain():
    with cpu_runtime("32"):
        scene, box = issue_scene(sim=gs.options.SimOptions(dt=4e-3, substeps=10))
        box.set_velocity(torch.tensor([0.0, 0.0, -10.0]))  # 10 m/s into the floor wall
        m = scene.mpm_solver.model
        for _ in range(10):
            scene.step()
            st = scene.get_state()["MPMSolver"]
            assert torch.isfinite(st.pos).all() and in_domain(scene, st.pos)
            on_floor = st.pos[..., 2] <= m.pos_lo[2]
            assert bool((st.vel[..., 2][on_floor] >= 0).all()), "a particle on the floor keeps moving into it"
        assert bool((st.pos[..., 2] <= m.pos_lo[2] + 2 * m.dx).any()), "the box should have reached the floor"


def test_blow_up_in_one_env_stays_there_and_warns_once(caplog):
    sim = gs.options.SimOptions(dt=4e-3, substeps=10, on_divergence="warn")
    with cpu_runtime("64"):
        scene, box = issue_scene(3, sim=sim)
        ref, ref_box = issue_scene(3, sim=sim)
        box.set_material_params(E=torch.tensor([1e9]), envs_idx=[1])  # c = 1054 m/s: 27x over the bound in env 1
        with caplog.at_level(logging.WARNING, logger="genesis_torch"):
            for _ in range(6):
                scene.step()
                ref.step()
        warned = [r for r in caplog.records if "diverged" in r.message]
        assert len(warned) == 1 and "MPMSolver envs [1]" in warned[0].message
        assert torch.equal(scene.mpm_solver.get_error_envs_mask(), torch.tensor([False, True, False]))
        got, want = scene.get_state()["MPMSolver"], ref.get_state()["MPMSolver"]
        for name, t in got.tensors().items():
            assert torch.equal(t[[0, 2]], getattr(want, name)[[0, 2]]), f"{name} of a neighbour changed"
        assert in_domain(scene, got.pos[[0, 2]])
        scene.reset(envs_idx=scene.mpm_solver.get_error_envs_mask())
        assert not scene.mpm_solver.get_error_envs_mask().any()
        for name, t in scene.get_state()["MPMSolver"].tensors().items():
            assert torch.equal(t[[0, 2]], getattr(got, name)[[0, 2]]), f"the reset touched {name} of a neighbour"


def test_rigid_policies_and_check_interval(tmp_path, caplog):
    with cpu_runtime("64"):
        scene, robot = pendulum_scene(tmp_path, 3, divergence_check_interval=4)
        robot.set_dofs_velocity(torch.tensor([1e200], dtype=torch.float64), envs_idx=[2])  # squares overflow to inf in the first step
        for _ in range(3):  # checked every 4th step only
            scene.step()
        assert torch.equal(scene.rigid_solver.get_error_envs_mask(), torch.tensor([False, False, True]))
        with pytest.raises(SimulationDivergedError, match=r"RigidSolver envs \[2\]"):
            scene.step()
        assert scene.t == 4
        assert torch.isfinite(robot.get_dofs_position()[:2]).all()

        quiet, q_robot = pendulum_scene(tmp_path, 2, on_divergence="ignore")
        q_robot.set_dofs_velocity(torch.tensor([1e200], dtype=torch.float64), envs_idx=[0])
        with caplog.at_level(logging.WARNING, logger="genesis_torch"):
            for _ in range(3):
                quiet.step()
        assert not [r for r in caplog.records if "diverged" in r.message]
        assert torch.equal(quiet.rigid_solver.get_error_envs_mask(), torch.tensor([True, False]))


def test_checkpoints_refuse_nonfinite_unless_asked(tmp_path):
    with cpu_runtime("64"):
        scene, robot = pendulum_scene(tmp_path, 2, on_divergence="ignore")
        robot.set_dofs_velocity(torch.tensor([1e200], dtype=torch.float64), envs_idx=[1])
        scene.step()
        path = tmp_path / "run.safetensors"
        with pytest.raises(SimulationDivergedError, match=r"RigidSolver envs \[1\].*allow_nonfinite=True"):
            scene.save_checkpoint(path)
        assert not path.exists() and list(tmp_path.glob(".run*")) == []
        with pytest.raises(InvalidInputError, match="allow_nonfinite"):
            scene.save_checkpoint(path, allow_nonfinite="yes")
        scene.save_checkpoint(path, allow_nonfinite=True)
        saved = scene.get_state()["RigidSolver"]

        other, _ = pendulum_scene(tmp_path, 2)  # on_divergence is not part of the fingerprint
        before = other.get_state()["RigidSolver"]
        with pytest.raises(CheckpointError, match="NaN/inf.*allow_nonfinite=True"):
            other.load_checkpoint(path)
        assert torch.equal(other.get_state()["RigidSolver"].qpos, before.qpos)  # nothing changed
        other.load_checkpoint(path, allow_nonfinite=True)
        loaded = other.get_state()["RigidSolver"]
        for name, t in saved.tensors().items():
            assert np.array_equal(t.numpy().view(np.uint8), getattr(loaded, name).numpy().view(np.uint8)), name
        assert torch.equal(other.rigid_solver.get_error_envs_mask(), torch.tensor([False, True]))


@pytest.mark.parametrize("kwargs,match", [({"on_divergence": "explode"}, "on_divergence"),
                                          ({"divergence_check_interval": 0}, "divergence_check_interval"),
                                          ({"divergence_check_interval": 2.5}, "divergence_check_interval")])
def test_options_are_validated(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        gs.options.SimOptions(**kwargs)


def test_error_mask_needs_a_built_scene():
    from genesis_torch.solvers.base import SolverBase

    with pytest.raises(gs.errors.SceneStateError, match="build"):
        SolverBase().get_error_envs_mask()

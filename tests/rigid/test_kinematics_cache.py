"""The rigid solver's kinematics cache is keyed on the scene's state epoch (`Scene._write_states`,
`RigidSolver.kinematics`): the step and entity setters keep it, every other state write starts a new epoch, and a
result is reused only for the same unmodified qpos tensor and body frames."""

from __future__ import annotations

import collections

import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.rigid import pipeline, solver as solver_mod
from genesis_torch.solvers.rigid.kinematics import forward_kinematics

from ..conftest import cpu_runtime

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def counted(monkeypatch):
    """(scene, robot, calls): a 2-env Franka scene; calls["step"] / calls["other"] count forward-kinematics runs of
    the step's finish stage / of everything else (the step's start and queries)."""
    calls = collections.Counter()

    def wrap(key, fn):
        def run(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)
        return run

    monkeypatch.setattr(pipeline, "forward_kinematics", wrap("step", pipeline.forward_kinematics))
    monkeypatch.setattr(solver_mod, "forward_kinematics", wrap("other", solver_mod.forward_kinematics))
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002, substeps=2))
        robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build(n_envs=2)
        yield scene, robot, calls


def _fresh(scene):
    s = scene.rigid_solver
    p = s.params
    return forward_kinematics(s.model, scene.get_state()["RigidSolver"].qpos, p.body_ipos, p.body_pos, p.body_quat,
                              p.body_iquat)


def test_step_and_setters_keep_the_kinematics(counted):
    scene, robot, calls = counted
    scene.step()
    calls.clear()
    for _ in range(3):
        robot.control_dofs_position(torch.full((2, 9), 0.1))  # a setter that keeps qpos
        scene.step()
        robot.get_links_pos()
    assert calls == {"step": 6}  # one per substep, the start of each step and the queries reuse them


def test_writes_start_a_new_epoch(counted):
    scene, robot, calls = counted
    scene.step()
    solver = scene.rigid_solver
    state = scene.get_state()
    calls.clear()
    scene._states = dict(scene._states)  # a direct write (gs.rollout's): same tensors, new epoch
    scene.step()
    assert calls == {"step": 2, "other": 1}
    calls.clear()
    scene.reset(state)
    scene.step()
    assert calls["other"] == 1
    calls.clear()
    robot.set_dofs_position(torch.full((2, 9), 0.2))  # a setter that replaces qpos
    kin = solver.kinematics(scene.get_state()["RigidSolver"].qpos)
    assert torch.equal(kin.xpos, _fresh(scene).xpos)


def test_in_place_edit_is_not_served_from_the_cache(counted):
    scene, robot, calls = counted
    scene.step()
    qpos = scene.get_state()["RigidSolver"].qpos
    solver = scene.rigid_solver
    before = solver.kinematics(qpos).xpos.clone()
    with torch.no_grad():
        qpos.add_(0.3)
    after = solver.kinematics(qpos).xpos
    assert not torch.equal(before, after)
    assert torch.equal(after, _fresh(scene).xpos)

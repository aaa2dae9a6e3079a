"""Vertex constraints (Genesis' names): a hard-constrained vertex follows its moving target exactly (bitwise) in the
explicit and the implicit solver; a soft one (a critically damped spring of stiffness k per unit mass) settles at the
spring's static error g / k under gravity; removing constraints frees the vertices."""

from __future__ import annotations

import math

import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import box_scene

FEM = gs.materials.FEM


@pytest.mark.parametrize("implicit", [False, True])
def test_hard_constraint_follows_a_moving_target_exactly(implicit):
    with cpu_runtime("64"):
        dt = 4e-3 if implicit else 1e-3
        scene, ent = box_scene(n_envs=2, dt=dt, cells=(3, 1, 1), use_implicit_solver=implicit,
                               enable_vertex_constraints=True, n_pcg_iterations=40)
        X = ent.init_positions
        left = torch.nonzero(X[:, 0] < X[:, 0].min() + 1e-9)[:, 0]
        ent.set_vertex_constraints(left)
        for i in range(30):
            t = (i + 1) * dt
            target = X[left] + torch.tensor([0.0, 0.05 * math.sin(20 * t), 0.02 * t], dtype=torch.float64)
            ent.update_constraint_targets(left, target, envs_idx=[1])
            scene.step()
            pos = ent.get_pos()
            assert torch.equal(pos[1, left], target), f"step {i}"
            assert torch.equal(pos[0, left], X[left])  # env 0 keeps its own (unmoved) targets
        free = torch.ones(ent.n_vertices, dtype=torch.bool)
        free[left] = False
        assert float((pos[1, free] - pos[0, free]).abs().max()) > 1e-3  # the rest of the body was dragged along
        ent.remove_vertex_constraints(left, envs_idx=[1])
        scene.step()
        assert not torch.equal(ent.get_pos()[1, left], target)


@pytest.mark.parametrize("implicit", [False, True])
def test_soft_constraints_settle_at_the_static_error(implicit):
    """Every vertex softly held at its rest position: the body sags rigidly by g / k (elastic forces vanish for a
    translation) — within 1% after the critically damped transient."""
    with cpu_runtime("64"):
        k = 400.0
        dt = 1e-2 if implicit else 1e-3
        scene, ent = box_scene(dt=dt, cells=(2, 1, 1), use_implicit_solver=implicit, enable_vertex_constraints=True,
                               n_pcg_iterations=30, damping_alpha=0.0, damping_beta=0.0)
        ent.set_vertex_constraints(range(ent.n_vertices), is_soft_constraint=True, stiffness=k)
        for _ in range(int(0.6 / dt)):
            scene.step()
        sag = ent.init_positions[:, 2] - ent.get_pos()[:, 2]
        assert torch.allclose(sag, torch.full_like(sag, 9.81 / k), rtol=1e-2, atol=0)
        assert float(ent.get_vel().abs().max()) < 1e-3


@pytest.mark.parametrize("implicit", [False, True])
def test_constraints_follow_a_rigid_link(implicit):
    """Vertices constrained with `link=`: their targets keep their place in the link's frame while the link falls and
    spins (one-way: a free rigid box), hard ones exactly on them, in every env; checkpoints keep the link binding."""
    with cpu_runtime("64"):
        dt = 4e-3 if implicit else 1e-3
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt),
                         fem_options=gs.options.FEMOptions(use_implicit_solver=implicit, enable_vertex_constraints=True,
                                                           n_pcg_iterations=30))
        box = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 1.0), size=(0.1, 0.1, 0.1)))
        ent = scene.add_entity(gs.morphs.Box(pos=(0.2, 0.0, 1.0), size=(0.2, 0.1, 0.1)),
                               material=FEM.Elastic(E=2e4, nu=0.3, rho=500.0, model="linear_corotated"))
        from .conftest import remesh

        remesh(ent, (2, 1, 1))
        scene.build(n_envs=2)
        box.set_dofs_velocity(torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]],
                                           dtype=torch.float64))
        X = ent.init_positions
        near = torch.nonzero(X[:, 0] < X[:, 0].min() + 1e-9)[:, 0]
        ent.set_vertex_constraints(near, link=box.links[0])
        p0, R0 = box.get_pos(), box.get_quat()
        from genesis_torch.math.quat import quat_to_mat

        local = (X[near][None] - p0[:, None]) @ quat_to_mat(R0)  # R0^T (x - p0), per env
        for _ in range(25):
            scene.step()
        p, R = box.get_pos(), quat_to_mat(box.get_quat())
        want = p[:, None] + local @ R.transpose(-1, -2)
        torch.testing.assert_close(ent.get_pos()[:, near], want, rtol=0, atol=1e-12)
        assert float((want[0] - X[near]).abs().max()) > 5e-3  # the link moved (and turned) them
        assert float(scene.get_state()["FEMSolver"].vel.abs().max()) > 0
        ent.remove_vertex_constraints()
        assert int((scene.get_state()["FEMSolver"].vc_link >= 0).sum()) == 0

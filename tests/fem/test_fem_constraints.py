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

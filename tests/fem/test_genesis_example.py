"""Genesis 1.4.5's examples/deformable/fem_hard_and_soft_constraint.py, its simulation part as written there (camera
and debug drawing left out): a plane, a soft sphere and a stiff cube of linear-corotated FEM, implicit solver with
vertex constraints; the sphere's vertex 0 softly held at its rest position (stiffness 1e4), the cube's vertex 0 hard
pinned to a target moving on a circle. Checks: the pinned vertex is on its target after every step, the softly held
one stays near its target while the sphere sags, everything finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime

pytest.importorskip("tetgen")
SCENE_POS = np.array([0.5, 0.5, 1.0])


def test_fem_hard_and_soft_constraint_example():
    with cpu_runtime("32"):
        dt = 1e-3
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt, substeps=1, gravity=(0, 0, -9.81)),
                         fem_options=gs.options.FEMOptions(use_implicit_solver=True, enable_vertex_constraints=True,
                                                           n_pcg_iterations=20))  # Genesis' 500 made short here
        scene.add_entity(gs.morphs.Plane())
        blob = scene.add_entity(
            morph=gs.morphs.Sphere(pos=SCENE_POS + np.array([-0.3, -0.3, 0]), radius=0.1),
            material=gs.materials.FEM.Elastic(E=1.0e4, nu=0.45, rho=1000.0, model="linear_corotated"))
        cube = scene.add_entity(
            morph=gs.morphs.Box(pos=SCENE_POS + np.array([0.3, 0.3, 0]), size=(0.2, 0.2, 0.2)),
            material=gs.materials.FEM.Elastic(E=1.0e6, nu=0.45, rho=1000.0, model="linear_corotated"))
        scene.build()
        pinned_idx = [0]
        circle_radius, angle_step, current_angle = 0.3, 2 * np.pi * dt / 10.0, 0.0
        initial_vertex_pos = cube.init_positions[pinned_idx]
        circle_center = initial_vertex_pos - torch.tensor(
            [-circle_radius * np.cos(current_angle), -circle_radius * np.sin(current_angle), 0.0],
            device=cube.init_positions.device, dtype=cube.init_positions.dtype)

        def get_next_circle_position():
            nonlocal current_angle
            offset = torch.tensor([-circle_radius * np.cos(current_angle), -circle_radius * np.sin(current_angle), 0.0],
                                  device=cube.init_positions.device, dtype=cube.init_positions.dtype)
            current_angle += angle_step
            return circle_center + offset

        target_positions = blob.init_positions[pinned_idx]
        blob.set_vertex_constraints(pinned_idx, target_positions, is_soft_constraint=True, stiffness=1e4)
        cube.set_vertex_constraints(pinned_idx, get_next_circle_position())
        for _ in range(10):
            new_pos = get_next_circle_position()
            cube.update_constraint_targets(pinned_idx, new_pos)
            scene.step()
            assert torch.equal(cube.get_state().pos[pinned_idx], new_pos)
        st = blob.get_state()
        assert torch.isfinite(st.pos).all() and torch.isfinite(cube.get_state().pos).all()
        assert float((st.pos[0] - target_positions[0]).norm()) < 1e-3  # the soft pin holds
        assert float(st.pos[:, 2].mean()) < float(blob.init_positions[:, 2].mean())  # the rest sags

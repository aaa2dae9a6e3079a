"""`gs.materials.Kinematic` ghosts (solvers/kinematic_solver.py): posed like rigid entities, never simulated, never
in contact; the rigid scene next to them is bitwise unchanged; their state follows the state contract."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError
from genesis_torch.solvers import registry

from .conftest import PILE_XML, cpu_runtime


def _pile_scene(folder, ghost: bool, n_envs: int = 0):
    (folder / "pile.xml").write_text(PILE_XML)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    pile = scene.add_entity(gs.morphs.MJCF(file=str(folder / "pile.xml")))
    g = None
    if ghost:  # overlapping the resting boxes and the floor: a rigid box there would throw the pile apart
        g = scene.add_entity(gs.morphs.Box(size=(0.3, 0.3, 0.3), pos=(0.0, 0.0, 0.1)),
                             material=gs.materials.Kinematic())
        scene.add_entity(gs.morphs.MJCF(file="franka.xml"), material=gs.materials.Kinematic())
    scene.build(n_envs=n_envs)
    return scene, pile, g


def test_ghost_leaves_the_rigid_pile_bitwise_unchanged_and_stays_put(tmp_path):
    with cpu_runtime("64"):
        runs = []
        for ghost in (False, True):
            scene, pile, g = _pile_scene(tmp_path, ghost)
            qs = []
            for _ in range(30):
                scene.step()
                qs.append(pile.get_qpos().clone())
            runs.append(torch.stack(qs))
            if ghost:
                assert torch.equal(g.get_pos(), torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64))
                assert torch.equal(g.get_dofs_velocity(), torch.zeros(6, dtype=torch.float64))
                assert scene.kinematic_solver.contact_model is None or \
                    scene.kinematic_solver.mj_model.geom_contype.max() == 0
        assert torch.equal(runs[0], runs[1])
        # the pile without ghosts is the MuJoCo-checked scene (tests/rigid): it did move under gravity and contacts
        assert not torch.equal(runs[0][0], runs[0][-1])


def test_ghost_franka_forward_kinematics_match_mujoco():
    with cpu_runtime("64"):
        scene = gs.Scene()
        arm = scene.add_entity(gs.morphs.MJCF(file="franka.xml", pos=(0.2, -0.1, 0.3)),
                               material=gs.materials.Kinematic())
        scene.build(n_envs=2)
        rng = np.random.default_rng(0)
        q = torch.as_tensor(rng.uniform(-1, 1, (2, arm.n_qs)))
        arm.set_qpos(q)
        scene.step()  # no dynamics: the pose stays
        assert torch.equal(arm.get_qpos(), q)
        m = scene.kinematic_solver.mj_model
        d = mujoco.MjData(m)
        for b in range(2):
            d.qpos[:] = q[b].numpy()
            mujoco.mj_kinematics(m, d)
            np.testing.assert_allclose(arm.get_links_pos()[b].numpy(), d.xpos[1:], atol=1e-12)
        arm.set_dofs_position(torch.zeros(2, 2), dofs_idx_local=[7, 8])
        assert torch.equal(arm.get_qpos()[:, 7:], torch.zeros(2, 2, dtype=torch.float64))


def test_ghost_inverse_kinematics_reaches_the_target():
    with cpu_runtime("64"):
        scene = gs.Scene()
        arm = scene.add_entity(gs.morphs.MJCF(file="franka.xml"), material=gs.materials.Kinematic())
        scene.build()
        hand = arm.get_link("hand")
        target = torch.tensor([0.45, 0.1, 0.45], dtype=torch.float64)
        q = arm.inverse_kinematics(link=hand, pos=target, quat=torch.tensor([0.0, 1.0, 0.0, 0.0]))
        arm.set_qpos(q)
        assert float((hand.get_pos() - target).norm()) < 5e-4


def test_ghost_state_contract_get_reset_save_load(tmp_path):
    with cpu_runtime("64"):
        scene, pile, g = _pile_scene(tmp_path, True, n_envs=2)
        g.set_pos(torch.tensor([[0.5, 0.0, 1.0], [0.0, 0.5, 1.0]], dtype=torch.float64))
        s0 = scene.get_state()
        assert {"RigidSolver", "KinematicSolver"} <= set(s0.solvers)
        scene.save_checkpoint(tmp_path / "a.npz")
        g.set_pos(torch.zeros(2, 3, dtype=torch.float64))
        for _ in range(3):
            scene.step()
        scene.reset(s0)
        assert torch.equal(g.get_pos(), torch.tensor([[0.5, 0.0, 1.0], [0.0, 0.5, 1.0]], dtype=torch.float64))
        for _ in range(3):
            scene.step()
        after = scene.get_state()
        scene.load_checkpoint(tmp_path / "a.npz")
        for _ in range(3):
            scene.step()
        again = scene.get_state()
        for key in ("RigidSolver", "KinematicSolver"):
            for name, t in after.solvers[key].tensors().items():
                assert torch.equal(t, again.solvers[key].tensors()[name]), (key, name)


def test_kinematic_material_options_and_routing_errors():
    with pytest.raises(InvalidInputError, match="use_visual_raycasting"):
        gs.materials.Kinematic(use_visual_raycasting=1)
    with pytest.raises(InvalidInputError, match="IK_max_targets"):
        gs.options.KinematicOptions(IK_max_targets=0)
    with cpu_runtime("32"):
        with pytest.raises(InvalidInputError, match="kinematic_options"):
            gs.Scene(kinematic_options=gs.options.RigidOptions())
        scene = gs.Scene()
        scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.1)))
        scene.build()
        kin = next(s for s in scene._solvers if s.kind == "kinematic")
        assert kin.fingerprint() == {} and scene.kinematic_solver is None  # scenes without ghosts are unchanged
    assert any(cls.kind == "kinematic" for cls in registry.SOLVERS)


def test_ghost_is_no_collider_for_mpm_particles():
    """A Kinematic box through an MPM block falling on the floor: the particles are bitwise those without it."""
    with cpu_runtime("64"):
        out = []
        for ghost in (False, True):
            scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3),
                             mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                               grid_density=16, particle_size=1 / 32))
            block = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.3), size=(0.125, 0.125, 0.125)),
                                     material=gs.materials.MPM.Elastic(E=5e3, nu=0.3, rho=400.0))
            if ghost:
                scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.25), size=(0.3, 0.3, 0.1)),
                                 material=gs.materials.Kinematic())
            scene.build()
            for _ in range(20):
                scene.step()
            out.append(block.get_particles_pos().clone())
        assert torch.equal(out[0], out[1])
        assert float(out[0][:, 2].mean()) < 0.3 - 1e-3  # the block did fall (through where the ghost is)

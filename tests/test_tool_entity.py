"""`gs.materials.Tool` (solvers/tool/): a kinematic mesh driven by set_position / set_quaternion / set_velocity that
pushes MPM matter one way through the MPM mesh colliders, differentiably in its velocity and pose (FD float64,
20 steps: d/d vel rel 1.3e-7, d/d pos 2.2e-6, d/d ang 3.9e-6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError
from genesis_torch.math.quat import quat_mul

from .conftest import cpu_runtime

F64 = torch.float64


@pytest.fixture
def paddle(tmp_path):
    path = tmp_path / "paddle.obj"
    trimesh.creation.box(extents=(0.05, 0.2, 0.2)).export(path)
    return str(path)


def _scene(paddle, requires_grad=False, n_envs=0, friction=0.0):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, gravity=(0, 0, 0), requires_grad=requires_grad),
                     mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1), grid_density=16,
                                                       particle_size=1 / 32))
    block = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.125, 0.125, 0.125)),
                             material=gs.materials.MPM.Elastic(E=5e3, nu=0.3, rho=400.0))
    tool = scene.add_entity(gs.morphs.Mesh(file=paddle, pos=(0.38, 0.5, 0.5)),
                            material=gs.materials.Tool(friction=friction))
    scene.build(n_envs=n_envs)
    return scene, block, tool


def test_tool_pushes_the_block_in_the_push_direction(paddle):
    with cpu_runtime("64"):
        scene, block, tool = _scene(paddle)
        x0 = block.get_particles_pos().clone()
        tool.set_velocity(vel=torch.tensor([0.8, 0.0, 0.0]))
        for _ in range(30):
            scene.step()
        # the tool advances by vel * t exactly (no dynamics), from 0.38 to 0.428 m
        assert torch.allclose(tool.get_pos(), torch.tensor([0.38 + 0.8 * 0.06, 0.5, 0.5], dtype=F64), atol=1e-12)
        d = (block.get_particles_pos() - x0).mean(0)
        assert float(d[0]) > 3e-3 and abs(float(d[1])) < 1e-9 and abs(float(d[2])) < 1e-9  # measured 6.0e-3 m
        # no particle is inside the paddle (its face at x = 0.428 + 0.025, half an MPM cell of slack)
        inside = (block.get_particles_pos()[:, 0] < tool.get_pos()[0] + 0.025 - 0.5 / 16)
        assert not bool(inside.any())


def test_tool_at_rest_leaves_the_block_at_rest(paddle):
    with cpu_runtime("64"):
        scene, block, tool = _scene(paddle)
        x0 = block.get_particles_pos().clone()
        for _ in range(10):
            scene.step()
        assert torch.equal(block.get_particles_pos(), x0)


def _fd(loss, x, eps=1e-6):
    return torch.stack([(loss(x + eps * e) - loss(x - eps * e)) / (2 * eps) for e in torch.eye(len(x), dtype=F64)])


def test_gradient_of_a_particle_loss_wrt_tool_velocity_and_pose_matches_fd(paddle):
    with cpu_runtime("64"):
        scene, block, tool = _scene(paddle, requires_grad=True)
        init = scene.get_state()
        w = torch.randn(block.n_particles, 3, generator=torch.Generator().manual_seed(0), dtype=F64)

        def loss(vel, pos=None, ang=None):
            scene.reset(state=init)
            if pos is not None:
                tool.set_position(pos)
            tool.set_velocity(vel=vel, ang=ang)
            for _ in range(20):
                scene.step()
            return (block.get_particles_pos() * w).sum()

        v = torch.tensor([0.8, 0.05, -0.03], dtype=F64, requires_grad=True)
        p = torch.tensor([0.38, 0.5, 0.49], dtype=F64, requires_grad=True)
        a = torch.tensor([0.3, -0.2, 0.5], dtype=F64, requires_grad=True)
        gv, gp, ga = torch.autograd.grad(loss(v, p, a), (v, p, a))
        with torch.no_grad():
            for g, fd in ((gv, _fd(lambda x: loss(x, p, a), v.detach())),
                          (gp, _fd(lambda x: loss(v, x, a), p.detach())),
                          (ga, _fd(lambda x: loss(v, p, x), a.detach()))):
                rel = float((g - fd).norm() / fd.norm())
                assert float(g.norm()) > 1e-4  # the tool did push the block (norms measured 1e-3 .. 1e-1)
                assert rel < 1e-4, (g, fd)


def test_tool_state_contract_get_reset_save_load(paddle, tmp_path):
    with cpu_runtime("64"):
        scene, block, tool = _scene(paddle, n_envs=2)
        tool.set_velocity(vel=torch.tensor([[0.8, 0.0, 0.0], [0.5, 0.1, 0.0]]), ang=torch.tensor([0.0, 0.0, 1.0]))
        for _ in range(5):
            scene.step()
        s0 = scene.get_state()
        assert "ToolSolver" in s0.solvers
        scene.save_checkpoint(tmp_path / "t.npz")
        for _ in range(5):
            scene.step()
        after = scene.get_state()
        for restore in (lambda: scene.reset(s0), lambda: scene.load_checkpoint(tmp_path / "t.npz")):
            restore()
            for _ in range(5):
                scene.step()
            again = scene.get_state()
            for key in ("ToolSolver", "MPMSolver"):
                for name, t in after.solvers[key].tensors().items():
                    assert torch.equal(t, again.solvers[key].tensors()[name]), (key, name)


def test_tool_errors(paddle):
    with pytest.raises(InvalidInputError, match="friction"):
        gs.materials.Tool(friction=-1.0)
    with pytest.raises(InvalidInputError, match="floor_height"):
        gs.options.ToolOptions(floor_height="low")
    with cpu_runtime("64"):
        scene = gs.Scene()
        with pytest.raises(InvalidInputError, match="gs.morphs.Mesh"):
            scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.1)), material=gs.materials.Tool())
        scene.add_entity(gs.morphs.Mesh(file=paddle), material=gs.materials.Tool())
        scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.1), pos=(1, 0, 0)))
        with pytest.raises(UnsupportedFeatureError, match="cannot share a scene"):
            scene.build()
        scene, block, tool = _scene(paddle)
        with pytest.raises(InvalidInputError, match="shape"):
            tool.set_position(torch.zeros(2))
        with pytest.raises(InvalidInputError, match="zero quaternion"):
            tool.set_quaternion(torch.zeros(4))
        before = tool.get_pos().clone()
        with pytest.raises(InvalidInputError, match="finite"):
            tool.set_position(torch.tensor([np.nan, 0.0, 0.0]))
        with pytest.raises(InvalidInputError, match="expected numbers"):
            tool.set_velocity(vel="fast")
        assert torch.equal(tool.get_pos(), before)  # a failed call changes nothing


def test_tool_advect_floor_and_rotation(paddle):
    """Genesis' advect: pos += vel dt kept at z >= floor_height; quat <- quat * exp(ang dt / 2), tool-frame ang."""
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), tool_options=gs.options.ToolOptions(
            floor_height=0.2))
        tool = scene.add_entity(gs.morphs.Mesh(file=paddle, pos=(0.0, 0.0, 0.5), euler=(90, 0, 0)),
                                material=gs.materials.Tool())
        scene.build()
        q0 = tool.get_quat().clone()
        tool.set_velocity(vel=torch.tensor([0.1, 0.0, -1.0]), ang=torch.tensor([0.0, 0.0, 2.0]))
        for _ in range(50):
            scene.step()
        assert torch.allclose(tool.get_pos(), torch.tensor([0.05, 0.0, 0.2], dtype=F64), atol=1e-12)
        # 1 rad about the tool's own z axis (world -y after the 90 deg roll about x)
        half = torch.tensor(0.5, dtype=F64)
        dq = torch.stack((half.cos(), torch.zeros((), dtype=F64), torch.zeros((), dtype=F64), half.sin()))
        assert torch.allclose(tool.get_quat(), quat_mul(q0, dq), atol=1e-12)
        with pytest.raises(InvalidInputError, match="ToolOptions"):
            gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), tool_options=gs.options.ToolOptions(dt=0.02))

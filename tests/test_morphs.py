"""Morphs other than the bundled MJCF: URDF (fixed or floating), primitives with density-based mass, the plane;
and the runtime's GPU fallback."""

import logging
import math

import pytest
import torch

import genesis_torch as gs

URDF = """<?xml version="1.0"?>
<robot name="two_link">
  <link name="base"><inertial><mass value="1.0"/>
    <inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="arm"><inertial><origin xyz="0 0 0.25"/><mass value="0.5"/>
    <inertia ixx="0.01" iyy="0.01" izz="0.001" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="arm"/><origin xyz="0 0 0.05"/>
    <axis xyz="0 1 0"/><limit lower="-1.5" upper="1.5" effort="10" velocity="3"/></joint>
</robot>
"""


@pytest.fixture(autouse=True)
def _f64():
    gs.init(backend=gs.cpu, precision="64")
    yield
    gs.destroy()


def test_urdf_fixed_and_floating(tmp_path):
    path = tmp_path / "two_link.urdf"
    path.write_text(URDF)
    fixed = gs.Scene()
    arm = fixed.add_entity(gs.morphs.URDF(file=str(path), fixed=True))
    fixed.build()
    assert arm.n_dofs == 1 and arm.n_qs == 1 and arm.n_links == 2  # the fixed base stays a link, as in Genesis
    floating = gs.Scene()
    robot = floating.add_entity(gs.morphs.URDF(file=str(path), fixed=False))
    floating.build()
    assert robot.n_dofs == 7 and robot.n_qs == 8 and robot.n_links == 2
    for _ in range(10):
        floating.step()
    # free fall of the whole robot: the base's vertical velocity is -g t (no contacts yet)
    assert robot.get_dofs_velocity()[2].item() == pytest.approx(-9.81 * 0.1, rel=1e-9)


def test_primitive_masses_follow_density_and_plane_is_static():
    scene = gs.Scene()
    plane = scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 1), size=(0.2, 0.4, 0.5)), material=gs.materials.Rigid(rho=500))
    ball = scene.add_entity(gs.morphs.Sphere(pos=(1, 0, 1), radius=0.1))
    can = scene.add_entity(gs.morphs.Cylinder(pos=(2, 0, 1), radius=0.1, height=0.3, fixed=True))
    scene.build(n_envs=2)
    m = scene.rigid_solver.mj_model
    assert plane.n_dofs == 0 and can.n_dofs == 0 and box.n_dofs == 6 and ball.n_dofs == 6
    assert m.body_mass[box.link_start + 1] == pytest.approx(500 * 0.2 * 0.4 * 0.5)
    assert m.body_mass[ball.link_start + 1] == pytest.approx(200 * 4 / 3 * math.pi * 0.1 ** 3)
    before = can.get_links_pos().clone()
    for _ in range(5):
        scene.step()
    assert torch.equal(can.get_links_pos(), before)
    assert (box.get_links_pos()[:, 0, 2] < 1.0).all()


def test_gpu_request_without_cuda_falls_back_to_cpu(caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with caplog.at_level(logging.WARNING, logger="genesis_torch"):
        runtime = gs.init(backend=gs.gpu)
    assert runtime.device.type == "cpu"
    assert "no CUDA device" in caplog.text

"""`RigidOptions(compile=True)` gives the eager step's results (to rounding: fused kernels may contract a*b+c).

Compiling takes minutes on a 2-core CPU the first time (inductor caches it on disk afterwards), hence `slow`.
"""

import pytest
import torch

import genesis_torch as gs

HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04, 0.04]


def _scene(compiled: bool, integrator):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(compile=compiled, integrator=integrator))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=3)
    return scene, robot


def _run(compiled: bool, integrator, checkpoint=None):
    scene, robot = _scene(compiled, integrator)
    robot.set_dofs_position(HOME)
    # env 2 starts past the finger limits, so the constraint solve runs between the compiled stages
    robot.set_dofs_position([0.045, 0.045], dofs_idx_local=[7, 8], envs_idx=[2])
    robot.control_dofs_position(torch.tensor(HOME, dtype=torch.float64) + 0.2)
    states = []
    for _ in range(10):
        scene.step()
        states.append(scene.get_state()["RigidSolver"])
    if checkpoint is not None:
        scene.save_checkpoint(checkpoint)
    return states


@pytest.mark.slow
@pytest.mark.parametrize("integrator", [gs.integrator.implicitfast, gs.integrator.Euler])
def test_compiled_step_matches_eager(integrator, tmp_path):
    gs.init(backend=gs.cpu, precision="64")
    try:
        eager, compiled = _run(False, integrator), _run(True, integrator, tmp_path / "c.safetensors")
        # a compiled run's checkpoint loads into an eager scene of the same configuration, bit for bit
        other, _ = _scene(False, integrator)
        other.load_checkpoint(tmp_path / "c.safetensors")
        loaded = other.get_state()["RigidSolver"]
        for name in loaded.field_names():
            assert torch.equal(getattr(loaded, name), getattr(compiled[-1], name)), name
    finally:
        gs.destroy()
    for e, c in zip(eager, compiled):
        for name in e.field_names():
            a, b = getattr(e, name), getattr(c, name)
            if a.is_floating_point():
                torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9, msg=f"{name} differs")
            else:
                assert torch.equal(a, b), name


@pytest.mark.slow
def test_compiled_forward_kinematics_matches_eager():
    """`forward_kinematics` under torch.compile equals eager on random Franka configurations (an FK rewrite once
    traced to frames 0.47 m off while eager stayed exact)."""
    from genesis_torch.solvers.rigid.kinematics import forward_kinematics

    gs.init(backend=gs.cpu, precision="64")
    try:
        scene = gs.Scene()
        scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build(n_envs=3)
        s = scene.rigid_solver
        p = s.params
        q = torch.randn(3, s.model.nq, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5
        fk = lambda q: forward_kinematics(s.model, q, p.body_ipos, p.body_pos, p.body_quat)  # noqa: E731
        eager, compiled = fk(q), torch.compile(fk, dynamic=False)(q)
        for name in ("xpos", "xquat", "xipos"):
            torch.testing.assert_close(getattr(compiled, name), getattr(eager, name), rtol=1e-12, atol=1e-12)
    finally:
        gs.destroy()

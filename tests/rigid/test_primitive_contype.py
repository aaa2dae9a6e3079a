"""Primitive morphs' `contype` / `conaffinity` (Genesis' names and defaults 0xFFFF) are the geoms' MuJoCo bitmasks: a
box whose bits do not match a fixed box's falls through it onto the plane, in float64 parity with MuJoCo on the same
compiled model (qpos/qvel every step, 3 envs); with matching bits it lands on the box."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

from genesis_torch.errors import InvalidInputError

STEPS = 300  # 0.6 s: fall from 0.5 m, touch-down and rest
PARITY = 1e-6  # qpos / qvel vs MuJoCo over a contact run, as tests/rigid/test_contact_validation.py
BOX_ON_BOX = 1e-5  # box-box resting contact (MuJoCo's box-box collider, 4 points): measured 1.4e-6
TOL = 1e-12


def _drop(gs, fixed_bits, falling_bits):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(tolerance=TOL, iterations=100))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.1), size=(0.2, 0.2, 0.2), fixed=True,
                                   contype=fixed_bits[0], conaffinity=fixed_bits[1]))
    scene.add_entity(gs.morphs.Box(pos=(0.01, 0, 0.5), size=(0.1, 0.1, 0.1), euler=(0, 0, 10),
                                   contype=falling_bits[0], conaffinity=falling_bits[1]))
    scene.build(n_envs=3)
    m = copy.copy(scene.rigid_solver.mj_model)
    m.opt.tolerance, m.opt.iterations = TOL, 100
    d = mujoco.MjData(m)
    err = 0.0
    for _ in range(STEPS):
        scene.step()
        mujoco.mj_step(m, d)
        s = scene.get_state().solvers["RigidSolver"]
        err = max(err, np.abs(s.qpos.numpy() - d.qpos).max(), np.abs(s.dofs_vel.numpy() - d.qvel).max())
    return scene.rigid_solver.mj_model, err, s.qpos.numpy()


def test_defaults_are_genesis():
    import genesis_torch as gs
    for morph in (gs.morphs.Box(), gs.morphs.Sphere(), gs.morphs.Cylinder()):
        assert (morph.contype, morph.conaffinity) == (0xFFFF, 0xFFFF)
        g = morph.to_spec().geoms[0]
        assert (g.contype, g.conaffinity) == (0xFFFF, 0xFFFF)
    assert "contype" not in gs.morphs.Box().fingerprint()  # defaults: the fingerprint of before
    assert gs.morphs.Box(contype=2).fingerprint()["contype"] == 2
    with pytest.raises(InvalidInputError, match="contype"):
        gs.morphs.Sphere(contype=-1)
    with pytest.raises(InvalidInputError, match="conaffinity"):
        gs.morphs.Cylinder(conaffinity=2 ** 32)


def test_nonmatching_bits_pass_through(gs64, single_thread):
    """Fixed box 2/2, falling box 1/1: 1 & 2 = 0 both ways, so no contact between them; the plane (1/1) still catches
    the falling box, centre at half its side (minus MuJoCo's soft penetration) inside the fixed box."""
    m, err, qpos = _drop(gs64, (2, 2), (1, 1))
    assert list(m.geom_contype[1:]) == [2, 1] and list(m.geom_conaffinity[1:]) == [2, 1]
    assert err <= PARITY, f"qpos/qvel differ from MuJoCo by {err:.3g}"
    assert np.all(np.abs(qpos[:, 2] - 0.05) < 1e-3), qpos[:, 2]


def test_matching_bits_collide(gs64, single_thread):
    """Genesis' defaults (0xFFFF both): the falling box rests on the fixed one (top at 0.2 m)."""
    m, err, qpos = _drop(gs64, (0xFFFF, 0xFFFF), (0xFFFF, 0xFFFF))
    assert err <= BOX_ON_BOX, f"qpos/qvel differ from MuJoCo by {err:.3g}"
    assert np.all(np.abs(qpos[:, 2] - 0.25) < 1e-3), qpos[:, 2]

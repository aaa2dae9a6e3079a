"""The Newton solve over each env's rows in use (`ConstraintRows.packed`, `newton._buckets`): an env solved alone
gives bitwise the numbers it gets in a batch of 70 grouped by row counts, float32 and float64; the rows left out
change no bit; the packed solve is the slot-order solve's solution (float64)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.rigid import newton

pytestmark = pytest.mark.usefixtures("single_thread")

B = 70


def humanoid_rows(precision: str):
    """(rows, M, qacc_smooth, warm, options) of one forward pass of 70 humanoids lying on a plane (MuJoCo's state
    after 1 s from the keyframe-free start), hinge angles and velocities perturbed per env (seeded) so that the envs'
    contact and limit rows differ."""
    gs.init(backend=gs.cpu, precision=precision)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005))
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file="humanoid.xml"))
    scene.build(n_envs=B)
    m = scene.rigid_solver.mj_model
    d = mujoco.MjData(m)
    for _ in range(200):
        mujoco.mj_step(m, d)
    rng = np.random.default_rng(3)
    qpos = np.tile(d.qpos, (B, 1))
    qvel = np.tile(d.qvel, (B, 1))
    qpos[:, 7:] += rng.uniform(-0.4, 0.4, (B, m.nq - 7))
    qpos[:, 2] += rng.uniform(-0.05, 0.02, B)
    qvel += rng.normal(0.0, 0.5, qvel.shape)
    robot.set_qpos(torch.tensor(qpos))
    robot.set_dofs_velocity(torch.tensor(qvel))
    state = scene.get_state()["RigidSolver"]
    fwd = scene.rigid_solver.forward(state)
    return fwd.rows, fwd.smooth.qM, fwd.smooth.qacc_smooth, state.qacc_warmstart, scene.rigid_solver.options


def solve(rows, M, a0, warm, o):
    return newton.solve(rows, M, a0, warm, o.iterations, o.tolerance, o.ls_iterations, o.ls_tolerance)


@pytest.mark.parametrize("precision", ["32", "64"])
def test_an_env_alone_is_the_env_in_a_grouped_batch(precision, monkeypatch):
    try:
        rows, M, a0, warm, o = humanoid_rows(precision)
        monkeypatch.setattr(newton, "BUCKET_MIN_ENVS", 16)
        monkeypatch.setattr(newton, "BUCKET_MIN_GROUP", 8)
        groups = newton._buckets(rows)
        assert groups is not None and len(groups) >= 2, "the batch must be solved in several groups"
        counts = rows.valid.sum(1)
        assert int(counts.min()) < int(counts.max())
        qacc, force = solve(rows, M, a0, warm, o)
        assert not torch.isnan(qacc).any()
        monkeypatch.setattr(newton, "BUCKET_MIN_ENVS", 10**9)
        ungrouped = solve(rows, M, a0, warm, o)
        assert torch.equal(ungrouped[0], qacc) and torch.equal(ungrouped[1], force)
        for i in (0, 13, 42, int(counts.argmax()), int(counts.argmin()), B - 1):
            idx = torch.tensor([i])
            pick = lambda x: x.index_select(0, idx)  # noqa: E731
            q1, f1 = solve(rows.take(idx), pick(M), pick(a0), pick(warm), o)
            assert torch.equal(q1[0], qacc[i]), f"env {i}: qacc alone != in the batch"
            assert torch.equal(f1[0], force[i]), f"env {i}: efc_force alone != in the batch"
    finally:
        gs.destroy()


def test_packed_rows_are_valid_first_and_trailing_rows_change_no_bit():
    try:
        rows, M, a0, warm, o = humanoid_rows("64")
        packed, perm = rows.packed()
        full, perm_full = rows.packed(truncate=False)
        lo, hi = rows.ne + rows.nf, rows.nr - 3 * rows.nc
        n_valid = rows.valid[:, lo:hi].sum(1)
        assert packed.nr == lo + int(n_valid.max()) + (rows.nr - hi) < rows.nr
        assert full.nr == rows.nr
        for env in range(B):  # valid rows first, in slot order
            k = int(n_valid[env])
            assert bool(full.valid[env, lo:lo + k].all()) and not bool(full.valid[env, lo + k:hi].any())
            assert bool((perm_full[env, lo:lo + k].diff() > 0).all())
        assert torch.equal(packed.J, full.J[:, :packed.nr])
        # the solve over the truncated rows (eager) is the solve over all of them (the traced form's)
        q, f = solve(rows, M, a0, warm, o)
        from genesis_torch.solvers.rigid.constraints import ConstraintRows
        orig = ConstraintRows.packed
        try:
            ConstraintRows.packed = lambda self, truncate=None: orig(self, False)
            qf, ff = solve(rows, M, a0, warm, o)
            ConstraintRows.packed = lambda self, truncate=None: (self, None)  # slot order, every slot
            qs, fs = solve(rows, M, a0, warm, o)
        finally:
            ConstraintRows.packed = orig
        assert torch.equal(q, qf) and torch.equal(f, ff)
        assert bool((f[~rows.valid] == 0).all())
        scale = qs.abs().max()
        assert float((q - qs).abs().max()) <= 1e-9 * float(scale)
        assert float((f - fs).abs().max()) <= 1e-9 * float(fs.abs().max())
    finally:
        gs.destroy()

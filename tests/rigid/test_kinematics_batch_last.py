"""The wide-batch forms of the eager step (batch-last kinematics tail, vectorised cross products, products with the
nonzero entries of constant model matrices) give the bits of the narrow-batch forms they stand in for: an env's
kinematics and smooth dynamics are the same alone (narrow forms) and in a batch of 70 (wide forms)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.options import RigidOptions
from genesis_torch.solvers.rigid import kinematics, sparse_products
from genesis_torch.solvers.rigid.kinematics import forward_kinematics
from genesis_torch.solvers.rigid.linalg import vecmat
from genesis_torch.solvers.rigid.pipeline import smooth_stage
from genesis_torch.solvers.rigid.solver import RigidSolver
from genesis_torch.solvers.rigid.spatial import WIDE_CROSS, cross

from .mjcf_random import random_mjcf, random_state

pytestmark = pytest.mark.usefixtures("single_thread")

FIELDS = ("xpos", "xquat", "xmat", "xipos", "ximat", "xanchor", "xaxis", "cdof")
B = 70  # above kinematics.WIDE_FK and sparse_products.SPARSE_MIN_ENVS


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_equals_torch_cross_bitwise(dtype):
    g = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    cases = [(rnd(10, 3, 4096), rnd(10, 3, 4096), 1), (rnd(10, 3, 1), rnd(10, 3, 500), 1),
             (rnd(7, 6, 300)[:, 3:], rnd(7, 6, 300)[:, :3], 1), (rnd(4096, 3), rnd(4096, 3), -1),
             (rnd(2, 3), rnd(2, 3), -1)]
    for a, b, dim in cases:
        assert max(a.numel(), b.numel()) >= 3 * WIDE_CROSS or a.shape == (2, 3)
        assert torch.equal(cross(a, b, dim), torch.linalg.cross(a, b, dim=dim))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_products_equal_dense_bitwise(dtype):
    g = torch.Generator().manual_seed(1)
    for trial in range(10):
        A = torch.randn(8, 9, generator=g, dtype=dtype) * (torch.rand(8, 9, generator=g) < 0.25)
        A[:, 0] = 0  # an empty column
        A[1:3, 4] = torch.tensor([0.5, -2.0], dtype=dtype)  # two terms
        A[0:4, 5] = 1.5  # four terms: the dense form is taken
        x, y, d = (torch.randn(B, n, generator=g, dtype=dtype) for n in (8, 9, 8))
        assert torch.equal(sparse_products.sparse_vecmat(x, A), vecmat(x, A))
        assert torch.equal(sparse_products.sparse_vecmat(y, A.T), vecmat(y, A.T))
        A2 = A.clone()
        A2[0:4, 5] = 0  # at most 2 terms per entry of A^T diag(d) A: the sparse form is taken
        for M in (A, A2):
            assert torch.equal(sparse_products.sparse_outer_sum(d, M), ((M.T * d[:, None, :])[..., None] * M).sum(-2))
    # an arm's actuators (joint transmissions, one two-dof tendon, gears): the sparse path (at most 2 terms an entry)
    A = torch.zeros(8, 9, dtype=dtype)
    A[torch.arange(7), torch.arange(7)] = torch.linspace(0.5, 2.0, 7, dtype=dtype)
    A[7, 7:] = torch.tensor([0.5, 0.5], dtype=dtype)
    x, d = torch.randn(B, 8, generator=g, dtype=dtype), torch.randn(B, 8, generator=g, dtype=dtype)
    assert torch.equal(sparse_products.sparse_outer_sum(d, A), ((A.T * d[:, None, :])[..., None] * A).sum(-2))
    assert torch.equal(sparse_products.sparse_vecmat(x, A), vecmat(x, A))
    assert sparse_products._sparse_plan("outer", A, d, None).K == 1

def _solver(xml: str, dtype) -> RigidSolver:
    m = mujoco.MjModel.from_xml_string(xml)
    return RigidSolver(m, RigidOptions(), m.opt.timestep, m.opt.gravity, "cpu", dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 3, 7])
def test_wide_batch_kinematics_and_dynamics_equal_each_env_alone(seed, dtype):
    """A random tree (free base, hinge/slide/ball joints, actuators): forward kinematics and the smooth stage of a
    70-env batch (batch-last tail, wide cross products, sparse actuator products) equal each env computed alone."""
    solver = _solver(random_mjcf(seed), dtype)
    model, p = solver.model, solver.params
    m = mujoco.MjModel.from_xml_string(random_mjcf(seed))
    rng = np.random.default_rng(seed)
    states = [random_state(m, rng) for _ in range(B)]
    qpos, qvel, ctrl = (torch.tensor(np.stack([s[i] for s in states]), dtype=dtype) for i in range(3))
    assert B >= kinematics.WIDE_FK
    wide = forward_kinematics(model, qpos)
    for f in ("xipos", "ximat", "cdof"):  # the batch-last copies handed to the dynamics
        assert torch.equal(getattr(wide, f + "_bl"), getattr(wide, f).movedim(0, -1)), f
    act = torch.zeros(B, model.na, dtype=dtype)
    zeros = torch.zeros(B, model.nv, dtype=dtype)
    mode = torch.zeros(B, model.nv, dtype=torch.int8)
    run = lambda s: smooth_stage(model, p, solver.gravity, solver.dt, solver.options.integrator,  # noqa: E731
                                 qpos[s], qvel[s], ctrl[s], act[s], mode[s], zeros[s], zeros[s])
    batch = run(slice(None))
    for e in (0, 33, B - 1):
        one = forward_kinematics(model, qpos[e:e + 1])
        assert one.cdof_bl is None  # the narrow form
        for f in FIELDS:
            assert torch.equal(getattr(wide, f)[e:e + 1], getattr(one, f)), f
        alone = run(slice(e, e + 1))
        for f in ("qM", "qfrc_bias", "qfrc_passive", "qfrc_smooth", "qacc_smooth", "H"):
            a, b = getattr(batch, f), getattr(alone, f)
            if a is None:
                assert b is None
                continue
            assert torch.equal(a[e:e + 1], b), f


_CONTACT_XML = """<mujoco><worldbody><geom type="plane" size="2 2 .1"/>
  <body pos="0 0 .2"><freejoint/><geom type="box" size=".1 .08 .06"/></body>
  <body pos=".15 0 .25"><freejoint/><geom type="capsule" size=".05 .1"/></body>
  <body pos="0 .15 .3"><freejoint/><geom type="sphere" size=".07"/></body>
  <body pos=".1 .1 .4"><freejoint/><geom type="cylinder" size=".06 .05"/></body></worldbody></mujoco>"""


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wide_batch_geom_poses_and_contacts_equal_the_batch_first_forms(dtype):
    """Detection of a 70-env batch with the batch-last kinematics (geom poses and the bounding-sphere / plane test
    batch-last) gives the bits of the batch-first forms: every geom pose and every field of the contact set."""
    import dataclasses

    from genesis_torch.solvers.rigid.collision import detect

    solver = _solver(_CONTACT_XML, dtype)
    g = torch.Generator().manual_seed(1)
    m = mujoco.MjModel.from_xml_string(_CONTACT_XML)
    qpos = torch.tensor(np.tile(m.qpos0, (B, 1)), dtype=dtype)
    for k in range(4):  # random drops: positions +- 0.1 m, random orientations
        qpos[:, 7 * k:7 * k + 3] += 0.1 * (2 * torch.rand(B, 3, generator=g, dtype=dtype) - 1)
        quat = torch.randn(B, 4, generator=g, dtype=dtype)
        qpos[:, 7 * k + 3:7 * k + 7] = quat / quat.norm(dim=-1, keepdim=True)
    wide = forward_kinematics(solver.model, qpos)
    assert wide.xmat_bl is not None
    for f in ("xpos", "xquat", "xmat"):
        assert torch.equal(wide.batch_last(f), getattr(wide, f).movedim(0, -1)), f
    narrow = dataclasses.replace(wide, xpos_bl=None, xquat_bl=None, xmat_bl=None)
    cm = solver.contact_model
    for a, b in zip(detect.geom_poses(cm, wide), detect.geom_poses(cm, narrow)):
        assert torch.equal(a, b)
    c_wide, c_narrow = detect.detect(cm, wide), detect.detect(cm, narrow)
    assert int(c_wide.valid.sum()) > B  # contacts in most envs
    for f in dataclasses.fields(c_wide):
        a, b = getattr(c_wide, f.name), getattr(c_narrow, f.name)
        assert (torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b), f.name

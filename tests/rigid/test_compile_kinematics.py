"""`forward_kinematics` under torch.compile (inductor) equals eager on trees with every joint type.

Compiling takes ~15 s a model on the 2-core CPU, hence `slow`. Guards the workaround in `forward_kinematics` for
torch 2.13's inductor writing `index_copy` into an expanded intermediate through its zero strides (docs/rigid.md
"torch.compile pitfalls"): on Franka the frames were up to 0.47 m off while eager was exact.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.options import RigidOptions
from genesis_torch.solvers.rigid.kinematics import forward_kinematics
from genesis_torch.solvers.rigid.solver import RigidSolver

from .mjcf_random import random_mjcf, random_state

pytestmark = pytest.mark.usefixtures("single_thread")

MODELS = {
    "random5": lambda: random_mjcf(5),  # a tree with a free base, hinge/slide/ball joints
    # a free body carrying three welded bodies: the first joint slot skips bodies while the frames are still the
    # shared offsets' broadcast view (where inductor's index_copy went wrong)
    "lone_free": lambda: random_mjcf(7, n_bodies=4, joint_types=("free",), float_base=True),
    "multi": lambda: random_mjcf(11, n_bodies=7, joint_types=("hinge", "slide"), float_base=True),
}
FIELDS = ("xpos", "xquat", "xmat", "xipos", "ximat", "xanchor", "xaxis", "cdof")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("per_env", [False, True])
def test_compiled_forward_kinematics_matches_eager_on_trees(name, per_env):
    m = mujoco.MjModel.from_xml_string(MODELS[name]())
    solver = RigidSolver(m, RigidOptions(), m.opt.timestep, m.opt.gravity, "cpu", torch.float64)
    model = solver.model
    rng = np.random.default_rng(0)
    qpos = torch.tensor(np.stack([random_state(m, rng)[0] for _ in range(3)]), dtype=torch.float64)
    # body offsets shared by the envs (1, nb, 3|4) or per env (3, nb, 3|4), as RigidParams hold them
    reps = 3 if per_env else 1
    bpos = model.body_pos[None].repeat(reps, 1, 1) + (0.01 * torch.arange(reps, dtype=torch.float64))[:, None, None]
    bquat = model.body_quat[None].repeat(reps, 1, 1)
    fk = lambda q: forward_kinematics(model, q, None, bpos, bquat)  # noqa: E731
    eager = fk(qpos)
    torch._dynamo.reset()
    compiled = torch.compile(fk, dynamic=False)(qpos)
    for f in FIELDS:
        a, b = getattr(eager, f), getattr(compiled, f)
        assert a.shape == b.shape, f
        # to rounding: inductor may contract a*b+c and reassociate within a fused kernel
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12, msg=f"{name}: {f} differs")

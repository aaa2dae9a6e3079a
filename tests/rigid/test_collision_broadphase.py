"""Broad phase of `collision/detect.py`: the two-pass filter (`_near_all`: plane / bounding-sphere test on every
candidate pair, then the bounding-box test on the sphere survivors) against the per-group filter (`_near`), and
its safety: no pair the filter skips has a contact in any env (the narrow phase run on every candidate pair).

Model: a plane, 5 free boxes, 2 capsules and 2 spheres (plane-box/capsule/sphere, box-box, capsule-box, sphere-box,
capsule-capsule, sphere-capsule, sphere-sphere groups), posed at seeded random positions in a 0.8 m cube above the
plane with random orientations, 16 envs, float64 and float32.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.solvers.rigid.collision import detect as D
from genesis_torch.solvers.rigid.collision.types import GeomBatch

pytestmark = pytest.mark.usefixtures("single_thread")

XML = """<mujoco><worldbody><geom type="plane" size="0 0 1"/>
  <body><freejoint/><geom type="box" size="0.1 0.05 0.02"/></body>
  <body><freejoint/><geom type="box" size="0.08 0.08 0.08"/></body>
  <body><freejoint/><geom type="box" size="0.2 0.03 0.05" margin="0.01"/></body>
  <body><freejoint/><geom type="box" size="0.05 0.05 0.15"/></body>
  <body><freejoint/><geom type="box" size="0.12 0.04 0.04"/></body>
  <body><freejoint/><geom type="capsule" size="0.03 0.1"/></body>
  <body><freejoint/><geom type="capsule" size="0.05 0.05"/></body>
  <body><freejoint/><geom type="sphere" size="0.06"/></body>
  <body><freejoint/><geom type="sphere" size="0.04"/></body>
</worldbody></mujoco>"""


def _poses(m, B, rng, dtype):
    """World geom positions (B, ng, 3) and rotations (B, ng, 3, 3): the plane at the origin (tilted a little),
    the other geoms in [-0.4, 0.4]^2 x [0, 0.5] m with random orientations."""
    ng = m.ngeom
    pos = np.concatenate((np.zeros((B, 1, 3)), rng.uniform([-0.4, -0.4, 0.0], [0.4, 0.4, 0.5], (B, ng - 1, 3))), 1)
    quat = rng.normal(size=(B, ng, 4))
    quat[:, 0] = (1.0, 0.02, -0.01, 0.0)
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    mat = np.zeros((B, ng, 9))
    for b in range(B):
        for g in range(ng):
            mujoco.mju_quat2Mat(mat[b, g], quat[b, g])
    t = lambda x: torch.as_tensor(x, dtype=dtype)  # noqa: E731
    return t(pos), t(mat.reshape(B, ng, 3, 3))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_two_pass_filter_matches_per_group_and_keeps_every_contact(dtype):
    m = mujoco.MjModel.from_xml_string(XML)
    cm = D.build_contact_model(m, 150, None, "cpu", dtype)
    rng = np.random.default_rng(7)
    for trial in range(3):
        gpos, gmat = _poses(m, 16, rng, dtype)
        flags = D._near_all(cm, D.GeomPoses.given(gpos, gmat))
        ref = [on for g in cm.groups for on in D._near(cm, g, gpos, gmat).any(0).tolist()]
        assert flags == ref
        assert 0 < sum(flags) < len(flags)  # the poses leave some pairs near and some apart
        # every pair with a contact in some env is kept: run the narrow phase on all candidate pairs
        has_contact, offset = [], 0
        for g in cm.groups:
            side = lambda ids, hull: GeomBatch(gpos.index_select(1, ids), gmat.index_select(1, ids),  # noqa: E731
                                               cm.geom_size[ids], *(hull if hull is not None else (None, None)))
            c = g.fn(side(g.geom1, g.hull1), side(g.geom2, g.hull2), g.margin)
            P = g.geom1.shape[0]
            margin = cm.pair_includemargin[offset:offset + P]
            has_contact += (c.valid & (c.dist < margin[:, None])).any(-1).any(0).tolist()
            offset += P
        assert any(has_contact), trial
        skipped_with_contact = [k for k, (on, hit) in enumerate(zip(flags, has_contact)) if hit and not on]
        assert not skipped_with_contact

"""A joint's force limit (a URDF's `<limit effort>`, MuJoCo's `actuatorfrcrange`) is Genesis' dof force range: read by
`get_dofs_force_range` and clipping the dof controller's force, as in Genesis."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import torch

import genesis_torch as gs
from genesis_torch.morphs import resolve_asset


def test_urdf_effort_is_the_dof_force_range(gs64):
    path = resolve_asset("urdf/go2/urdf/go2.urdf")
    effort = {j.get("name"): float(j.find("limit").get("effort")) for j in ET.parse(path).getroot().iter("joint")
              if j.get("type") in ("revolute", "prismatic")}
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005))
    go2 = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", fixed=True))
    scene.build(n_envs=2)
    names = [j.name for j in go2.joints if j.name in effort]
    dofs = [go2.get_joint(n).dof_start for n in names]
    lo, hi = go2.get_dofs_force_range(dofs)
    want = torch.tensor([effort[n] for n in names], dtype=lo.dtype)
    assert torch.equal(hi[0], want) and torch.equal(lo[0], -want)
    go2.set_dofs_kp(torch.full((len(dofs),), 1e4), dofs)
    go2.control_dofs_position(torch.full((2, len(dofs)), 2.0), dofs)  # far targets: the force saturates
    scene.step()
    force = go2.get_dofs_control_force(dofs)
    np.testing.assert_allclose(force.abs().numpy(), want.expand(2, -1).numpy(), rtol=0, atol=1e-12)

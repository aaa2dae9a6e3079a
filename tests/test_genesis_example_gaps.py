"""Small Genesis 1.4.5 names that its example scripts use, found by running them (docs/genesis_compat.md intro):
`gs.friction_cone`, `gs.use_zerocopy`, `genesis.utils.misc.tensor_to_array`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.utils.misc import tensor_to_array, tensor_to_cpu

from .conftest import cpu_runtime


def test_friction_cone_members_select_the_cone():
    """Genesis' IntEnum values; RigidOptions(friction_cone=member) is MuJoCo's cone of that name (with the MJCF's
    `cone` the same after build: examples/rigid/rolling_coast.py's spelling)."""
    assert (int(gs.friction_cone.pyramidal), int(gs.friction_cone.elliptic)) == (0, 1)
    with cpu_runtime("64"):
        scene = gs.Scene(rigid_options=gs.options.RigidOptions(friction_cone=gs.friction_cone.elliptic))
        scene.add_entity(gs.morphs.Plane())
        scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.2)))
        scene.build()
        assert scene.rigid_options.cone == "elliptic"
        assert scene.rigid_solver.mj_model.opt.cone == 1  # mjCONE_ELLIPTIC
        assert gs.options.RigidOptions(friction_cone=gs.friction_cone.pyramidal).cone == "pyramidal"
        with pytest.raises(gs.errors.InvalidInputError):
            gs.options.RigidOptions(friction_cone=gs.friction_cone.elliptic, cone="pyramidal")


def test_use_zerocopy_is_false_before_init_then_true():
    gs.destroy()
    assert gs.use_zerocopy is False
    with cpu_runtime("32"):
        assert gs.use_zerocopy is True


def test_tensor_to_array():
    t = torch.arange(6.0, requires_grad=True).reshape(2, 3) * 2
    a = tensor_to_array(t)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and np.array_equal(a, [[0, 2, 4], [6, 8, 10]])
    assert tensor_to_array(t, dtype=np.float64).dtype == np.float64
    assert np.array_equal(tensor_to_array([1, 2]), [1, 2])
    assert tensor_to_cpu(3) == 3 and not tensor_to_cpu(t).requires_grad

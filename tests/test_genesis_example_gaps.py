"""Small Genesis 1.4.5 names that its example scripts use, found by running them (docs/genesis_compat.md intro):
`gs.use_zerocopy`, `genesis.utils.misc.tensor_to_array`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.utils.misc import tensor_to_array, tensor_to_cpu

from .conftest import cpu_runtime


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

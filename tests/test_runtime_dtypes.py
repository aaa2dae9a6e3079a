"""Genesis' top-level dtype aliases `gs.tc_float`, `gs.np_float`, `gs.tc_int`, ...: set by `gs.init(precision=...)` or
by auto-init, absent (AttributeError) before, as in Genesis, whose `init` defines them as module globals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch._runtime import DTYPE_ALIASES, get_runtime

EXPECTED = {
    "32": {"tc_float": torch.float32, "np_float": np.float32},
    "64": {"tc_float": torch.float64, "np_float": np.float64},
}
COMMON = {"tc_int": torch.int32, "np_int": np.int32, "tc_bool": torch.bool, "np_bool": np.bool_}


@pytest.fixture
def fresh():
    gs.destroy()
    yield
    gs.destroy()


def test_absent_before_init(fresh):
    for name in DTYPE_ALIASES:
        assert not hasattr(gs, name)
        with pytest.raises(AttributeError, match=rf"{name}.*gs\.init\(\)"):
            getattr(gs, name)
    exec("from genesis_torch import *", {})  # works before init: the aliases are not in __all__


@pytest.mark.parametrize("precision", ["32", "64"])
def test_set_by_init(fresh, precision):
    gs.init(backend=gs.cpu, precision=precision)
    for name, dtype in {**EXPECTED[precision], **COMMON}.items():
        assert getattr(gs, name) is dtype, name
    # as a Genesis RL environment uses them
    buf = torch.zeros((4, 3), dtype=gs.tc_float, device=gs.device)
    idx = torch.arange(4, dtype=gs.tc_int, device=gs.device)
    assert buf.dtype == get_runtime().dtype and idx.dtype == torch.int32
    assert np.zeros(3, dtype=gs.np_float).dtype == EXPECTED[precision]["np_float"]
    gs.destroy()
    assert not hasattr(gs, "tc_float")


def test_set_by_auto_init(fresh):
    gs.Scene()  # the first Scene initialises the defaults (float32)
    assert gs.tc_float is torch.float32 and gs.np_float is np.float32 and gs.tc_bool is torch.bool


def test_follow_a_second_init(fresh):
    gs.init(backend=gs.cpu, precision="32")
    gs.init(backend=gs.cpu, precision="64")
    assert gs.tc_float is torch.float64 and gs.np_float is np.float64

"""Fixtures shared by the rigid-solver tests."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for the module (the test machines are shared); restores the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def gs64():
    """`gs.init(backend=gs.cpu, precision="64")` for one test; the process-global runtime is destroyed after."""
    gs.init(backend=gs.cpu, precision="64")
    yield gs
    gs.destroy()

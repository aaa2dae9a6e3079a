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


def directional_fd_error(loss, x: torch.Tensor, direction: torch.Tensor, eps: float = 1e-6) -> float:
    """Relative error of autograd's directional derivative of the scalar `loss(x)` along `direction` against the
    central difference (loss(x + eps d) - loss(x - eps d)) / (2 eps); `x` requires grad (float64)."""
    (grad,) = torch.autograd.grad(loss(x), x)
    with torch.no_grad():
        fd = (loss(x + eps * direction) - loss(x - eps * direction)) / (2 * eps)
    return abs(float((grad * direction).sum()) - float(fd)) / abs(float(fd))

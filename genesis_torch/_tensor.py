"""`gs.tensor(data, dtype=None, requires_grad=False)`: Genesis' tensor constructor.

The result is a new leaf tensor (a copy, detached from any graph the data belonged to) on the runtime's device, of
class `gs.Tensor`: a `torch.Tensor` with Genesis' `zero_grad()`. Operations on it return plain `torch.Tensor`s (the
subclass adds no per-operation overhead and never spreads into simulation state).

dtypes follow Genesis: floating data and `float`, `torch.float32`, `torch.float64` give the runtime's float dtype
(`gs.init(precision=...)`); integer data and `int`, `torch.int32`, `torch.int64` give `torch.int32` (Genesis'
integer dtype); `bool` / `torch.bool` give `torch.bool`.
"""

from __future__ import annotations

import numpy as np
import torch

from ._runtime import get_runtime
from .errors import InvalidInputError

__all__ = ["Tensor", "tensor"]

_FLOATS = (float, torch.float32, torch.float64, torch.float16, torch.bfloat16)
_INTS = (int, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
_BOOLS = (bool, torch.bool)


class Tensor(torch.Tensor):
    """A leaf tensor made by `gs.tensor`, with Genesis' `zero_grad()`."""

    __torch_function__ = torch._C._disabled_torch_function_impl  # results of operations are plain tensors

    def zero_grad(self) -> None:
        """Zero the accumulated gradient in place (like `nn.Module.zero_grad(set_to_none=False)`); a gradient that is
        itself part of a graph (`backward(create_graph=True)`) is detached first. No-op before any backward."""
        if self.grad is None:
            return
        if self.grad.grad_fn is not None:
            self.grad.detach_()
        else:
            self.grad.requires_grad_(False)
        self.grad.zero_()


def _target_dtype(dtype, data_dtype: torch.dtype) -> torch.dtype:
    if dtype is None:
        dtype = data_dtype
    if dtype in _FLOATS:
        return get_runtime().dtype
    if dtype in _BOOLS:
        return torch.bool
    if dtype in _INTS:
        return torch.int32
    raise InvalidInputError(f"gs.tensor(dtype={dtype!r}): use float, int or bool (or torch.float32/float64, "
                            "torch.int32/int64, torch.bool).")


def _as_torch(data) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        return data.detach()
    arr = np.asarray(data)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InvalidInputError(f"gs.tensor(data=...): expected numbers or bools (nested lists, a NumPy array or a "
                                f"tensor), got an array of {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise InvalidInputError("gs.tensor(data=...): complex numbers are not supported; pass real values.")
    return torch.from_numpy(np.array(arr, order="C"))  # a writable C-ordered copy, 0-d kept 0-d


def tensor(data, dtype=None, requires_grad=False) -> Tensor:
    """A new leaf `gs.Tensor` holding a copy of `data` on the runtime's device (dtype rules in the module docstring).

    `requires_grad=True` needs a float result; then `.grad` accumulates through `backward()` and `zero_grad()` resets
    it."""
    if not isinstance(requires_grad, bool):
        raise InvalidInputError(f"gs.tensor(requires_grad={requires_grad!r}): expected True or False.")
    src = _as_torch(data)
    target = _target_dtype(dtype, src.dtype)
    if requires_grad and not target.is_floating_point:
        raise InvalidInputError(f"gs.tensor(requires_grad=True) needs floating-point values, but the result is "
                                f"{target}; pass float data or dtype=float.")
    out = src.to(device=get_runtime().device, dtype=target, copy=True).as_subclass(Tensor)
    return out.requires_grad_(requires_grad)

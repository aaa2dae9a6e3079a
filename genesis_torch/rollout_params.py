"""Model parameters that carry gradients across optimisation iterations (docs/gradients.md, "Parameters").

Parameter setters (`set_dofs_kp`, `set_mass_shift`, `set_friction_ratio`, `MPMEntity.set_material_params`, ...) write
out of place: the new parameter tensor is `index_put(old, values)`, so a setter called with a tensor that requires
grad puts the parameter in the autograd graph, and a second setter call in the same iteration builds on the first
(both stay differentiable). Parameters are not state: `scene.reset()` keeps them. In an optimisation loop

    for it in range(n):
        scene.reset(); robot.set_mass_shift(shift); <rollout>; loss.backward()

the parameter set in iteration `it` is the `old` of iteration `it + 1`; its graph was freed by that iteration's
`backward()`, so building on it would raise "Trying to backward through the graph a second time" (and chain the
graphs of every iteration, a leak). `release_consumed` cuts exactly those: a parameter tensor whose gradient a
backward pass has computed (marked by the hook `track` registers) is replaced by its detached value (same numbers)
before a setter builds on it. A parameter set and not yet backpropagated keeps its graph, so partial writes within
an iteration and "set, then reset, then roll out" keep their gradients.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Callable

import torch

__all__ = ["release_consumed", "track"]


def _mark_consumed(ref: weakref.ref) -> Callable[[torch.Tensor], None]:
    def hook(grad: torch.Tensor) -> None:
        t = ref()
        if t is not None:
            t._gs_consumed = True  # a backward pass went through it: its graph is (normally) freed

    return hook


def _tensors(params) -> dict[str, torch.Tensor]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
            if isinstance(getattr(params, f.name), torch.Tensor)}


def track(params) -> None:
    """Register, on every parameter tensor of the dataclass `params` that is part of a graph (has a `grad_fn`), a
    hook marking it once a backward pass reaches it. Idempotent per tensor."""
    for t in _tensors(params).values():
        if t.grad_fn is not None and not getattr(t, "_gs_tracked", False):
            t._gs_tracked = True
            t.register_hook(_mark_consumed(weakref.ref(t)))


def release_consumed(params, names=None) -> dict[str, torch.Tensor]:
    """`{name: detached tensor}` for the fields of `params` (restricted to `names` when given) whose graph a backward
    pass consumed; the caller installs them (rigid: `RigidSolver.set_params`, which re-derives the dependent fields;
    MPM / FEM: `setattr`). Leaves (tensors the user owns) are never detached."""
    out = {}
    for name, t in _tensors(params).items():
        if (names is None or name in names) and t.grad_fn is not None and getattr(t, "_gs_consumed", False):
            out[name] = t.detach()
    return out

"""Validation of Genesis' muscle inputs, shared by the MPM and FEM muscle entities (`set_actuation`, `set_muscle`).

A muscle entity has `n` units (MPM particles or FEM elements), each in one of `G` groups with a unit fibre direction.
These functions take tensors already converted by the entity (its dtype and device, finite) and return them in the
shapes the solvers store, or raise `InvalidInputError` naming the fix; they change nothing.
"""

from __future__ import annotations

import torch

from ..errors import InvalidInputError

__all__ = ["actuation_per_group", "muscle_groups", "fibre_directions"]


def actuation_per_group(name: str, t: torch.Tensor, n_envs: int, G: int, unit: str) -> torch.Tensor:
    """`(n_envs, G)` activations from `()` (every group), `(G,)` (per group) or `(n_envs, G)` (per env and group)."""
    if t.dim() == 0:
        return t.expand(n_envs, G)
    if tuple(t.shape) == (G,):
        return t[None].expand(n_envs, G)
    if tuple(t.shape) != (n_envs, G):
        raise InvalidInputError(f"{name}.set_actuation: got shape {tuple(t.shape)}; expected (), ({G},) or "
                                f"({n_envs}, {G}) ({G} muscle groups, {n_envs} selected envs; per-{unit} activations "
                                "are not supported, as in Genesis).")
    return t


def muscle_groups(name: str, group: torch.Tensor, n: int, G: int, material: str) -> torch.Tensor:
    """`(n,)` int64 groups in [0, G) of the `n` units (`material`: the Muscle's name, for the message)."""
    if group.dtype == torch.bool or (group.dtype.is_floating_point and bool((group != group.round()).any())):
        raise InvalidInputError(f"{name}.set_muscle: muscle_group must be ints.")
    group = group.long()
    if tuple(group.shape) != (n,) or bool(((group < 0) | (group >= G)).any()):
        raise InvalidInputError(f"{name}.set_muscle: muscle_group must be ({n},) ints in [0, {G}) "
                                f"({material}(n_groups={G})), got shape {tuple(group.shape)}.")
    return group


def fibre_directions(name: str, fibre: torch.Tensor, n: int) -> torch.Tensor:
    """`(n, 3)` unit fibre directions from `(n, 3)` or `(3,)` (the same for every unit); |m| = 1 within 1e-5."""
    if tuple(fibre.shape) == (3,):
        fibre = fibre.expand(n, 3)
    if tuple(fibre.shape) != (n, 3):
        raise InvalidInputError(f"{name}.set_muscle: muscle_direction must have shape ({n}, 3) or (3,), "
                                f"got {tuple(fibre.shape)}.")
    if not bool(((fibre.detach().double().norm(dim=-1) - 1.0).abs() < 1e-5).all()):
        raise InvalidInputError(f"{name}.set_muscle: muscle_direction rows must be unit vectors "
                                "(|m| = 1 within 1e-5); normalise them.")
    return fibre

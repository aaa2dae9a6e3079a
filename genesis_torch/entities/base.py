"""What every entity handle shares: its scene, the `SceneSolver` it belongs to, and that solver's current state."""

from __future__ import annotations

import torch

from ..errors import InvalidInputError

__all__ = ["SolverEntity"]


class SolverEntity:
    """Base of the entity handles. Subclasses set `_scene` and `_scene_solver` (their solver's `SceneSolver`)."""

    @property
    def uid(self):
        """The entity's random unique id (Genesis' `entity.uid`, a `genesis_torch.utils.uid.UID`), set by
        `scene.add_entity`; `scene.get_entity(uid=uid.short())` finds the entity."""
        return self._uid

    @property
    def _solver(self):
        """The physics solver of this entity's `SceneSolver` (after build)."""
        return self._scene_solver.solver

    @property
    def _state(self):
        """The scene's current state of this entity's solver."""
        return self._scene._state(self._scene_solver.key)

    def _set_state(self, state) -> None:
        """Replace the scene's state of this entity's solver (a new value; earlier states are never written)."""
        self._scene._put_state(self._scene_solver.key, state)

    def _tensor(self, value, what: str, dtype=None) -> torch.Tensor:
        """`value` as a tensor of the scene's dtype (or `dtype`) and device, finite if floating; else
        `InvalidInputError` naming `what` (e.g. "set_actuation(actu=...)")."""
        try:
            t = torch.as_tensor(value, dtype=self._scene.dtype if dtype is None else dtype, device=self._scene.device)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{self.name}.{what}: expected numbers, got {value!r}.") from None
        if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
            raise InvalidInputError(f"{self.name}.{what}: values must be finite (no NaN or inf).")
        return t

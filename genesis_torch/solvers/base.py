"""What every solver shares with the scene that drives it (DESIGN.md §4).

For now: the link to the scene's current state of the solver, and Genesis' per-env divergence report built on it.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import SceneStateError
from ..state import SolverState

__all__ = ["SolverBase"]


class SolverBase:
    """Mixin of the solvers: `bind_state` (called by the scene at build) and `get_error_envs_mask`."""

    _current_state: Callable[[], SolverState] | None = None

    def bind_state(self, current_state: Callable[[], SolverState]) -> None:
        """Let the solver read the scene's current state of it (`current_state()`), e.g. for its error mask."""
        self._current_state = current_state

    def get_error_envs_mask(self) -> torch.Tensor:
        """`(B,)` bool, Genesis' name: the envs whose current state holds NaN or inf (diverged). Computed from the
        state on the device, without a host sync; a reset of those envs (to finite values) clears it."""
        if self._current_state is None:
            raise SceneStateError(f"{type(self).__name__}.get_error_envs_mask(): the solver is not part of a built "
                                  "scene; call scene.build() first.")
        return self._current_state().nonfinite_envs()

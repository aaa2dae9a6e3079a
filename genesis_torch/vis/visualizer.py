"""`scene.visualizer`: Genesis' visualizer handle, for the scripts that call `scene.visualizer.update()`.

Genesis' visualizer syncs its viewer and its cameras' renderers with the scene. genesis-torch has no viewer
(`scene.viewer` is None, as in Genesis with `show_viewer=False`) and its cameras draw the current state at each
`render()`, so there is nothing to sync: `update()` validates its arguments and returns.
"""

from __future__ import annotations

from ..errors import InvalidInputError

__all__ = ["Visualizer"]


class Visualizer:
    """The visualizer of one scene: its cameras (`cameras`), no viewer (`viewer` is None)."""

    def __init__(self, scene):
        self._scene = scene

    @property
    def cameras(self) -> list:
        """The scene's cameras, in the order added."""
        return list(self._scene.__dict__.get("cameras", ()))

    @property
    def viewer(self):
        """None: there is no interactive viewer."""
        return None

    def update(self, force: bool = True, auto=None) -> None:
        """Genesis' `Visualizer.update(force, auto)`: nothing to refresh here (no viewer; cameras render on demand)."""
        if not isinstance(force, bool):
            raise InvalidInputError(f"visualizer.update(force={force!r}): expected True or False.")
        if auto is not None and not isinstance(auto, bool):
            raise InvalidInputError(f"visualizer.update(auto={auto!r}): expected True, False or None.")

    def __repr__(self) -> str:
        return f"Visualizer(cameras={len(self.cameras)}, viewer=None)"

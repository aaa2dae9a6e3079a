"""The handle of a `gs.materials.Tool` entity (Genesis 1.4.5 `ToolEntity`): a mesh without dynamics whose pose and
velocity are its state (`solvers/tool/`), set by the user and advanced each substep; particles collide with it."""

from __future__ import annotations

import torch

from ..errors import InvalidInputError, SceneStateError
from .base import SolverEntity

__all__ = ["ToolEntity"]


class ToolEntity(SolverEntity):
    """Tool entity number `idx` in the scene; `tool_idx` is its row in the tool state (B, n_tools, ...)."""

    def __init__(self, scene, idx: int, morph, material, surface, solver, tool_idx: int):
        self._scene, self._scene_solver = scene, solver
        self.idx, self.morph, self.material, self.surface = idx, morph, material, surface
        self.tool_idx = tool_idx
        self.name = f"entity{idx}"

    def __repr__(self) -> str:
        return f"ToolEntity({self.name!r}, morph={type(self.morph).__name__})"

    def fingerprint(self) -> dict:
        m = self.material
        return {**self.morph.fingerprint(), "tool": {"friction": float(m.friction), "collision": m.collision}}

    # ----------------------------------------------------------------- state
    def _vec(self, name: str, value, n: int) -> torch.Tensor:
        """`value` as a `(B, n)` tensor of the scene's dtype (a `(n,)` value applies to every env); gradients kept."""
        scene = self._scene
        if not scene.is_built:
            raise SceneStateError(f"ToolEntity.{name}: the scene is not built; call scene.build() first.")
        B = scene.batch_size
        t = self._tensor(value, name)  # numbers, finite, in the scene's dtype and device
        if t.shape not in ((n,), (B, n)):
            raise InvalidInputError(f"ToolEntity.{name}: expected shape ({n},) or ({B}, {n}), got {tuple(t.shape)}.")
        return t.expand(B, n)

    def _put(self, **fields) -> None:
        st, i = self._state, self.tool_idx
        new = {k: torch.cat((getattr(st, k)[:, :i], v[:, None], getattr(st, k)[:, i + 1:]), 1)
               for k, v in fields.items()}
        self._set_state(st.replace(**new))

    def set_position(self, pos) -> None:
        """Tool position `(3,)` or `(B, 3)` m, world (Genesis' `set_position`)."""
        self._put(pos=self._vec("set_position(pos)", pos, 3))

    def set_quaternion(self, quat) -> None:
        """Tool orientation `(4,)` or `(B, 4)` wxyz (normalised here; Genesis' `set_quaternion`)."""
        q = self._vec("set_quaternion(quat)", quat, 4)
        if bool((q.detach().norm(dim=-1) < 1e-9).any()):
            raise InvalidInputError("ToolEntity.set_quaternion(quat): a zero quaternion has no orientation.")
        self._put(quat=q / q.norm(dim=-1, keepdim=True))

    def set_velocity(self, vel=None, ang=None) -> None:
        """Linear velocity `vel (3,)/(B, 3)` m/s (world) and angular velocity `ang (3,)/(B, 3)` rad/s (tool frame, as
        Genesis' `quat <- quat * rotvec_to_quat(ang dt)`), kept until set again; None leaves one unchanged."""
        if vel is None and ang is None:
            raise InvalidInputError("ToolEntity.set_velocity(vel=None, ang=None): give vel, ang or both.")
        fields = {}
        if vel is not None:
            fields["vel"] = self._vec("set_velocity(vel)", vel, 3)
        if ang is not None:
            fields["ang"] = self._vec("set_velocity(ang)", ang, 3)
        self._put(**fields)

    def _get(self, name: str) -> torch.Tensor:
        if not self._scene.is_built:
            raise SceneStateError(f"ToolEntity.get_{name}(): the scene is not built; call scene.build() first.")
        out = getattr(self._state, name)[:, self.tool_idx]
        return out[0] if self._scene.n_envs == 0 else out

    def get_pos(self) -> torch.Tensor:
        """`(B, 3)` m (`(3,)` with n_envs=0)."""
        return self._get("pos")

    def get_quat(self) -> torch.Tensor:
        """`(B, 4)` wxyz (`(4,)` with n_envs=0)."""
        return self._get("quat")

    def get_vel(self) -> torch.Tensor:
        """`(B, 3)` m/s (`(3,)` with n_envs=0)."""
        return self._get("vel")

    def get_ang(self) -> torch.Tensor:
        """`(B, 3)` rad/s, tool frame (`(3,)` with n_envs=0)."""
        return self._get("ang")

"""The entity of a `gs.morphs.Terrain`: a fixed rigid entity with Genesis' terrain accessors (`terrain_hf`,
`terrain_scale`, `get_terrain_height`)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidInputError
from ..math.quat import quat_to_mat
from .rigid_entity import RigidEntity

TILT_TOLERANCE = 1e-3  # rad: terrain tilt treated as numerical noise by the height query (Genesis' value)


class TerrainEntity(RigidEntity):
    """A rigid entity whose single fixed link `baselink` holds the terrain's height field."""

    @property
    def terrain_hf(self) -> np.ndarray:
        """(nx, ny) float64 m: the height of every grid point, the vertical scale applied (Genesis' `terrain_hf`)."""
        return self.morph.height_field_m

    @property
    def terrain_scale(self) -> np.ndarray:
        """(2,): horizontal size of a grid cell (m) and the vertical scale (m per unit), Genesis' `terrain_scale`."""
        return np.array((self.morph.horizontal_scale, self.morph.vertical_scale))

    def get_terrain_height(self, positions, envs_idx=None) -> torch.Tensor:
        """Terrain surface heights (m, world z) at world x-y `positions` (m), as Genesis' `get_terrain_height`.

        `positions`: (2,), (n_points, 2) shared by the selected envs, or (n_envs_selected, n_points, 2) (a leading
        1 is shared too). Heights follow the piecewise-planar surface bodies rest on (the cells split along the
        diagonal (i+1, j)-(i, j+1), `geometry.terrain.surface_height`) under the terrain's current pose in each env
        (translation and yaw); points up to one cell outside the grid are clamped to its edge, points farther out,
        non-finite points and terrains tilted by more than 1e-3 rad give NaN. Returns (n_envs_selected, n_points)
        (no env dim when n_envs == 0, no point dim for a (2,) input) in the scene dtype."""
        from ..geometry.terrain import surface_height

        envs = self._envs(envs_idx)
        try:
            p = torch.as_tensor(positions, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"get_terrain_height(positions={positions!r}): expected numbers shaped (2,), "
                                    "(n_points, 2) or (n_envs, n_points, 2).") from None
        single = p.dim() == 1
        if p.dim() not in (1, 2, 3) or p.shape[-1] != 2 or (p.dim() == 3 and p.shape[0] not in (1, len(envs))):
            raise InvalidInputError(f"get_terrain_height: positions of shape {tuple(p.shape)}; expected (2,), "
                                    f"(n_points, 2) or ({len(envs)}, n_points, 2).")
        p = p.reshape(1, 1, 2) if single else (p[None] if p.dim() == 2 else p)
        if p.shape[1] == 0:
            raise InvalidInputError("get_terrain_height: positions must contain at least one point.")
        p = p.expand(len(envs), *p.shape[1:]).numpy()
        link = self.base_link
        pos = self._state.links_pos[envs][:, link.idx].detach().double().cpu().numpy()  # (E, 3)
        mat = quat_to_mat(self._state.links_quat[envs][:, link.idx].detach().double()).cpu().numpy()  # (E, 3, 3)
        rel = p - pos[:, None, :2]
        x = mat[:, None, 0, 0] * rel[..., 0] + mat[:, None, 1, 0] * rel[..., 1]  # R^T (p - pos), yaw only
        y = mat[:, None, 0, 1] * rel[..., 0] + mat[:, None, 1, 1] * rel[..., 1]
        hs = self.morph.horizontal_scale
        hf = self.terrain_hf
        z = surface_height(hf, hs, np.nan_to_num(x), np.nan_to_num(y)) + pos[:, None, 2]
        ext_x, ext_y = (hf.shape[0] - 1) * hs, (hf.shape[1] - 1) * hs
        outside = (x < -hs) | (y < -hs) | (x > ext_x + hs) | (y > ext_y + hs) | ~np.isfinite(p).all(-1)
        tilted = np.arccos(np.clip(mat[:, 2, 2], -1, 1)) > TILT_TOLERANCE
        z = np.where(outside | tilted[:, None], np.nan, z)
        out = torch.as_tensor(z, dtype=self._scene.dtype, device=self._scene.device)
        out = out[:, 0] if single else out
        return self._out(out)

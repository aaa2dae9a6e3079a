"""Spatial-vector algebra on batched tensors (quaternions: `genesis_torch.math.quat`).

Spatial motion vectors are `(..., 6)` = [angular; linear] and spatial forces
`(..., 6)` = [torque; force], both expressed in the world frame at the world origin (Featherstone, "Rigid Body
Dynamics Algorithms", 2008, ch. 2; MuJoCo uses the same [rot; lin] order).
"""

from __future__ import annotations

import torch


def cross_motion(v: torch.Tensor, m: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Spatial motion cross product `v ×m m`, both 6-vectors [ang; lin] along `dim`."""
    vw, vv = v.narrow(dim, 0, 3), v.narrow(dim, 3, 3)
    mw, mv = m.narrow(dim, 0, 3), m.narrow(dim, 3, 3)
    cross = lambda a, b: torch.linalg.cross(a, b, dim=dim)  # noqa: E731
    return torch.cat((cross(vw, mw), cross(vw, mv) + cross(vv, mw)), dim=dim)


def cross_force(v: torch.Tensor, f: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Spatial force cross product `v ×f f`, motion `v` and force `f` [torque; force] 6-vectors along `dim`."""
    vw, vv = v.narrow(dim, 0, 3), v.narrow(dim, 3, 3)
    fn, ff = f.narrow(dim, 0, 3), f.narrow(dim, 3, 3)
    cross = lambda a, b: torch.linalg.cross(a, b, dim=dim)  # noqa: E731
    return torch.cat((cross(vw, fn) + cross(vv, ff), cross(vw, ff)), dim=dim)


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices `(..., 3, 3)` with `skew(a) @ b = a × b`."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), dim=-1).reshape(v.shape[:-1] + (3, 3))

"""Quaternion and spatial-vector algebra on batched tensors.

Quaternions are `(..., 4)` wxyz. Spatial motion vectors are `(..., 6)` = [angular; linear] and spatial forces
`(..., 6)` = [torque; force], both expressed in the world frame at the world origin (Featherstone, "Rigid Body
Dynamics Algorithms", 2008, ch. 2; MuJoCo uses the same [rot; lin] order).
"""

from __future__ import annotations

import torch


def _hamilton_table() -> torch.Tensor:
    """T (4, 4, 4) with (a * b)_k = sum_ij a_i T_ijk b_j for wxyz quaternions."""
    T = torch.zeros(4, 4, 4, dtype=torch.float64)
    # (i, j) -> (k, sign): products of basis elements 1, i, j, k
    table = {(0, 0): (0, 1), (0, 1): (1, 1), (0, 2): (2, 1), (0, 3): (3, 1),
             (1, 0): (1, 1), (1, 1): (0, -1), (1, 2): (3, 1), (1, 3): (2, -1),
             (2, 0): (2, 1), (2, 1): (3, -1), (2, 2): (0, -1), (2, 3): (1, 1),
             (3, 0): (3, 1), (3, 1): (2, 1), (3, 2): (1, -1), (3, 3): (0, -1)}
    for (i, j), (k, sign) in table.items():
        T[i, j, k] = sign
    return T


_HAMILTON = _hamilton_table()


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product `a * b` of wxyz quaternions, `(..., 4)` (a few large ops instead of 16 scalar products)."""
    T = _HAMILTON.to(dtype=a.dtype, device=a.device)
    left = (a[..., :, None, None] * T).sum(-3)  # (..., 4, 4): left-multiplication matrix of a, [j, k]
    return (b[..., :, None] * left).sum(-2)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors `v (..., 3)` by unit quaternions `q (..., 4)`: v + 2w(u×v) + 2u×(u×v)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * torch.linalg.cross(u, v)
    return v + w * t + torch.linalg.cross(u, t)


def quat_to_mat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices `(..., 3, 3)` of unit quaternions `(..., 4)`."""
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    rows = (
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    )
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def quat_normalize(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions; a zero quaternion becomes the identity (as MuJoCo's `mju_normalize4`)."""
    norm = torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    ident = torch.zeros_like(q)
    ident[..., 0] = 1.0
    return torch.where(norm > 1e-15, q / norm.clamp_min(1e-15), ident)


def axis_angle_quat(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Quaternion `(..., 4)` of a rotation by `angle (...)` rad about unit `axis (..., 3)`."""
    half = 0.5 * angle
    return torch.cat((torch.cos(half)[..., None], axis * torch.sin(half)[..., None]), dim=-1)


def quat_integrate(q: torch.Tensor, omega: torch.Tensor, dt: float) -> torch.Tensor:
    """Integrate unit quaternions `q (..., 4)` by local-frame angular velocity `omega (..., 3)` rad/s over `dt`.

    q' = normalize(q * exp(omega dt / 2)), as MuJoCo's `mju_quatIntegrate`. Differentiable at omega = 0.
    """
    theta2 = (omega * omega).sum(-1)
    safe = theta2 > 1e-30
    norm = torch.sqrt(torch.where(safe, theta2, torch.ones_like(theta2)))
    angle = norm * dt
    axis = omega / norm[..., None]
    dq = axis_angle_quat(axis, angle)
    ident = torch.zeros_like(dq)
    ident[..., 0] = 1.0
    dq = torch.where(safe[..., None], dq, ident)
    return quat_normalize(quat_mul(q, dq))


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

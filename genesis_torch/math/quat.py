"""Unit-quaternion algebra on batched tensors, shared by the solvers, entities and the scene.

Quaternions are `(..., 4)` wxyz (MuJoCo's and Genesis' order); vectors `(..., 3)`; rotation matrices `(..., 3, 3)`.
Functions with a `dim` argument also take the components along another dim (e.g. `(n, 4, B)` with `dim=1`).
"""

from __future__ import annotations

import torch

from .small import ordered_sum

__all__ = ["quat_mul", "quat_rotate", "quat_to_mat", "quat_normalize", "axis_angle_quat", "quat_integrate"]


def quat_mul(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Hamilton product `a * b` of wxyz quaternions, components along `dim` (-1: `(..., 4)`; 1: `(n, 4, B)`)."""
    aw, ax, ay, az = a.unbind(dim)
    bw, bx, by, bz = b.unbind(dim)
    return torch.stack((aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw), dim)


def quat_rotate(q: torch.Tensor, v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Rotate vectors `v` by unit quaternions `q`, components along `dim`: v + 2w(u×v) + 2u×(u×v)."""
    u = q.narrow(dim, 1, 3)
    t = 2.0 * torch.linalg.cross(u, v, dim=dim)
    return v + q.narrow(dim, 0, 1) * t + torch.linalg.cross(u, t, dim=dim)


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


def quat_normalize(q: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Unit quaternions (components along `dim`); a zero quaternion becomes the identity (MuJoCo's
    `mju_normalize4`). The norm is an ordered sum, so an env's bits do not depend on the batch layout."""
    norm = torch.sqrt(ordered_sum(q * q, dim)).unsqueeze(dim)
    ident = torch.zeros_like(q)
    ident.narrow(dim, 0, 1).fill_(1.0)
    return torch.where(norm > 1e-15, q / norm.clamp_min(1e-15), ident)


def axis_angle_quat(axis: torch.Tensor, angle: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Quaternion of a rotation by `angle` rad about unit `axis`, components along `dim` (`angle` lacks that dim)."""
    half = 0.5 * angle
    return torch.cat((torch.cos(half).unsqueeze(dim), axis * torch.sin(half).unsqueeze(dim)), dim=dim)


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
    # near omega = 0: the small-angle form (1 - |omega dt|^2 / 8, omega dt / 2), so d(q')/d(omega) = dt/2 there too
    small = torch.cat(((1.0 - theta2 * dt * dt / 8.0)[..., None], omega * (dt / 2.0)), -1)
    dq = torch.where(safe[..., None], dq, small)
    return quat_normalize(quat_mul(q, dq))

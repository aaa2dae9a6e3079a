"""Jacobians of points and orientations of bodies, from the dof motion subspaces (MuJoCo's `mj_jac`).

A unit velocity of dof j moves a point p of a body it drives with `cdof_lin[j] + cdof_ang[j] x p` and turns the
body with `cdof_ang[j]` (`cdof` is taken at the world origin); dof j drives body b when `body_dofmask[b, j]`.
"""

from __future__ import annotations

import torch

from .kinematics import Kinematics
from .model import RigidModel


def point_jacobian_difference(model: RigidModel, kin: Kinematics, body1, body2, point1, point2) -> torch.Tensor:
    """`J(body2, point2) - J(body1, point1)`, `(B, n, 3, nv)`: the relative velocity of two body-fixed points.

    body1, body2: (n,) or (B, n) body ids; point1, point2: (B, n, 3) world points, m.
    """
    ang, lin = kin.cdof[..., :3], kin.cdof[..., 3:]  # (B, nv, 3)

    def jac(body, point):
        mask = model.body_dofmask[body]  # (n, nv) or (B, n, nv)
        vel = lin[:, None] + torch.linalg.cross(ang[:, None], point[:, :, None].expand(-1, -1, ang.shape[1], -1))
        return (mask[..., None] * vel).transpose(-1, -2)

    return jac(body2, point2) - jac(body1, point1)


def frame_jacobian_difference(model: RigidModel, kin: Kinematics, body1, body2, point, frame) -> torch.Tensor:
    """`frame (J(body2, point) - J(body1, point))`, `(B, n, 3, nv)`: the relative velocity of two bodies at one
    world point, along the rows of `frame (B, n, 3, 3)` (e.g. a contact's normal and tangents).

    With a dof's motion `lin + ang x p`, a frame row f sees `f . lin + (p x f) . ang`, the same for both bodies; a dof
    contributes `+1` / `-1` times that when it drives body 2 / body 1 only (common ancestors cancel). Written
    component by component, x, y, z summed left to right (as `Tensor.sum` over 3 entries: the same bits), from 6
    products of `(B, n, 3, 1)` by `(B, 1, 1, nv)` instead of two `(B, n, 3, nv, 3)` products reduced over their
    inner dim (~3x less time at 1024 envs).
    """
    cdof = kin.cdof[:, None, None]  # (B, 1, 1, nv, 6): angular 0-2, linear 3-5
    pf = torch.linalg.cross(point[..., None, :].expand_as(frame), frame)  # (B, n, 3, 3): p x f per row
    f, q = frame[..., None], pf[..., None]  # (B, n, 3, 3, 1)
    lin = f[..., 0, :] * cdof[..., 3] + f[..., 1, :] * cdof[..., 4] + f[..., 2, :] * cdof[..., 5]
    ang = q[..., 0, :] * cdof[..., 0] + q[..., 1, :] * cdof[..., 1] + q[..., 2, :] * cdof[..., 2]
    sign = (model.body_dofmask[body2] - model.body_dofmask[body1]).to(lin.dtype)  # (n, nv) or (B, n, nv)
    return (lin + ang) * sign[..., None, :]


def frame_jacobian_columns(model: RigidModel, kin: Kinematics, body1, body2, point, frame, cols) -> torch.Tensor:
    """`frame_jacobian_difference` at the columns `cols (B, n, K)` only (int64, `nv` for padding, whose entries are
    0): `(B, n, 3, K)`, O(n K) work instead of O(n nv). body1, body2: (B, n) body ids; point (B, n, 3), frame
    (B, n, 3, 3) as there."""
    B, n, K = cols.shape
    cdof = kin.cdof.expand(B, -1, -1)
    picked = cdof.gather(1, cols.clamp(max=model.nv - 1).reshape(B, n * K, 1).expand(-1, -1, 6)).view(B, n, K, 6)
    ang, lin = picked[..., :3], picked[..., 3:]  # (B, n, K, 3)
    pf = torch.linalg.cross(point[..., None, :].expand_as(frame), frame)  # (B, n, 3, 3): p x f per row
    rows = (frame[..., :, None, :] * lin[:, :, None]).sum(-1) + (pf[..., :, None, :] * ang[:, :, None]).sum(-1)
    mask = torch.cat((model.body_dofmask, model.body_dofmask.new_zeros(model.body_dofmask.shape[0], 1)), 1)
    sign = (mask[body2] - mask[body1]).gather(-1, cols).to(rows.dtype)  # (B, n, K); padding: 0
    return rows * sign[..., None, :]


def rotation_jacobian_difference(model: RigidModel, kin: Kinematics, body1, body2) -> torch.Tensor:
    """`Jrot(body2) - Jrot(body1)`, `(B, n, 3, nv)`: the relative angular velocity of two bodies (world frame)."""
    mask = model.body_dofmask[body2] - model.body_dofmask[body1]  # (n, nv) or (B, n, nv)
    if mask.dim() == 2:
        mask = mask[None]
    return (mask[..., None] * kin.cdof[:, None, :, :3]).transpose(-1, -2)

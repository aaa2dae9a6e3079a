"""Signed distances of MuJoCo's primitive geoms in their own frame (torch, batched, differentiable almost
everywhere): what particle and mesh solvers collide with. Sizes are MuJoCo's `geom_size` (half extents, radius and
half height)."""

from __future__ import annotations

import torch

from .small import dot, safe_sqrt

__all__ = ["PRIMITIVES", "primitive_sdf", "norm3"]

PRIMITIVES = ("plane", "sphere", "capsule", "cylinder", "box")


def norm3(v: torch.Tensor) -> torch.Tensor:
    """|v| `(...)` of `(..., 3)` vectors, summed x, y, z in order (the bits never depend on the batch; gradient 0
    at v = 0)."""
    return safe_sqrt(dot(v, v))


def primitive_sdf(kind: str, q: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(signed distance `(...)` m, outward unit normal `(..., 3)`), both in the geom frame, of points `q (..., 3)` m:
    negative inside. `kind` one of `PRIMITIVES`; a plane is z = 0 with normal +z."""
    eps = 1e-12
    if kind == "plane":
        n = torch.zeros_like(q)
        n[..., 2] = 1.0
        return q[..., 2], n
    if kind == "sphere":
        r = norm3(q)
        return r - size[0], q / r.clamp_min(eps)[..., None]
    if kind == "capsule":
        seg = torch.stack((q[..., 0], q[..., 1], q[..., 2] - q[..., 2].clamp(-size[1], size[1])), -1)
        r = norm3(seg)
        return r - size[0], seg / r.clamp_min(eps)[..., None]
    if kind == "box":
        d = q.abs() - size
        outside = d.clamp_min(0.0)
        dist_out = norm3(outside)
        dmax, axis = d.max(-1)
        phi = dist_out + dmax.clamp_max(0.0)
        n_out = outside * torch.sign(q) / dist_out.clamp_min(eps)[..., None]
        n_in = torch.nn.functional.one_hot(axis, 3).to(q.dtype) * torch.sign(q)
        return phi, torch.where((dmax > 0)[..., None], n_out, n_in)
    if kind != "cylinder":
        raise ValueError(f"primitive_sdf: unknown kind {kind!r}; expected one of {PRIMITIVES}")
    rxy = safe_sqrt(q[..., 0] * q[..., 0] + q[..., 1] * q[..., 1])
    dr, dz = rxy - size[0], q[..., 2].abs() - size[1]
    radial = torch.cat((q[..., :2] / rxy.clamp_min(eps)[..., None], torch.zeros_like(q[..., :1])), -1)
    axial = torch.zeros_like(q)
    axial[..., 2] = torch.sign(q[..., 2])
    out = torch.stack((dr.clamp_min(0), dz.clamp_min(0)), -1)
    dist_out = safe_sqrt(out[..., 0] * out[..., 0] + out[..., 1] * out[..., 1])
    phi = dist_out + torch.maximum(dr, dz).clamp_max(0.0)
    n_out = (radial * out[..., :1] + axial * out[..., 1:]) / dist_out.clamp_min(eps)[..., None]
    n_in = torch.where((dr > dz)[..., None], radial, axial)
    return phi, torch.where((torch.maximum(dr, dz) > 0)[..., None], n_out, n_in)

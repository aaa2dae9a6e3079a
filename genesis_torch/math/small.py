"""3-vector and 3x3 arithmetic shared by the solvers (rigid narrow phase, MPM deformation gradients), written out
component by component: fixed summation order (an env's bits never depend on its batch) and MuJoCo's order of
operations (`mju_dot3`, `mju_mulMatVec3`, ...). Vectors are `(..., 3)`, matrices `(..., 3, 3)`, any leading dims."""

from __future__ import annotations

import torch

__all__ = ["ordered_sum", "dot", "cross", "safe_sqrt", "mv", "mtv", "mtm", "mm", "det"]


def ordered_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum over a short `dim`, left to right. `Tensor.sum` picks its summation order by memory layout (an inner
    reduction when the batch has one env, an outer one otherwise), which would make an env's bits depend on the
    batch size in batch-last code; explicit adds do not."""
    parts = x.unbind(dim)
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a · b` over the last dim (3), summed x, y, z in order."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a × b` over the last dim (3)."""
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx), -1)


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """`sqrt(x)` for `x >= 0`, with a finite gradient at 0 (where it is 0)."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def mv(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`m @ v` for `m (..., 3, 3)`, `v (..., 3)`."""
    return torch.stack([m[..., r, 0] * v[..., 0] + m[..., r, 1] * v[..., 1] + m[..., r, 2] * v[..., 2]
                        for r in range(3)], -1)


def mtv(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`m^T @ v` for `m (..., 3, 3)`, `v (..., 3)`."""
    return torch.stack([m[..., 0, c] * v[..., 0] + m[..., 1, c] * v[..., 1] + m[..., 2, c] * v[..., 2]
                        for c in range(3)], -1)


def mtm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a^T @ b` for `(..., 3, 3)` matrices."""
    rows = [torch.stack([a[..., 0, i] * b[..., 0, j] + a[..., 1, i] * b[..., 1, j] + a[..., 2, i] * b[..., 2, j]
                         for j in range(3)], -1) for i in range(3)]
    return torch.stack(rows, -2)


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a @ b` for `(..., 3, 3)` matrices, each entry summed over k = 0, 1, 2 in order (no BLAS: the rounding never
    depends on the batch)."""
    p = a[..., :, :, None] * b[..., None, :, :]  # (..., i, k, j)
    return p[..., 0, :] + p[..., 1, :] + p[..., 2, :]


def det(m: torch.Tensor) -> torch.Tensor:
    """Determinant of `(..., 3, 3)` matrices by cofactors along the first row, `(...)`."""
    return (m[..., 0, 0] * (m[..., 1, 1] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 1])
            - m[..., 0, 1] * (m[..., 1, 0] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 0])
            + m[..., 0, 2] * (m[..., 1, 0] * m[..., 2, 1] - m[..., 1, 1] * m[..., 2, 0]))

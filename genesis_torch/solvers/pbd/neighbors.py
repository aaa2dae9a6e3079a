"""Neighbour lists by sorted cell keys, batched over envs (DESIGN.md §8: sort/search ops, no loop over particles or
cells, no O(n^2) matrix); used by the liquid (liquid.py) and the particle collisions (collisions.py).

Particles get integer cells c = floor((x - lower_bound) / cell), clamped to the domain's `dims`, and the exact int64
key (c_x dims_y + c_y) dims_z + c_z. One stable sort per env orders the keys; the 27 cells around a particle are 9
columns (x, y) of 3 consecutive keys along z, so 9 runs of the sorted order, found by `searchsorted`. Candidates of
all runs (the longest run's length L, one host sync) within `radius` are packed, in sorted-key order, into a fixed
number K of slots by cumsum + scatter. An env's lists never depend on the other envs of the batch (padding only adds
invalid slots). More than K neighbours raises `ContactOverflowError`; nothing is dropped silently.
"""

from __future__ import annotations

import torch

from ...errors import ContactOverflowError

__all__ = ["find_neighbours"]


def find_neighbours(x: torch.Tensor, lo: torch.Tensor, cell: float, dims: tuple, radius: float, K: int, what: str,
                    rest: torch.Tensor | None = None, alike: torch.Tensor | None = None):
    """`(nb (B, m, K) long, valid (B, m, K) bool)`: for each of the m particles `x (B, m, 3)` (m), the others within
    `radius` (<= `cell`, m); invalid slots hold the particle itself. `lo (3,)` m and `dims` (3 ints): the cell grid.
    Optionally left out: pairs whose `rest (m, 3)` positions are within `radius` too, and pairs of two particles with
    `alike (m,)` True."""
    B, m = x.shape[:2]
    dev = x.device
    xd = x.detach()
    dim = torch.tensor(dims, device=dev)
    c = torch.minimum(((xd - lo) / cell).floor().long().clamp(min=0), dim - 1)
    key = (c[..., 0] * dim[1] + c[..., 1]) * dim[2] + c[..., 2]
    skey, order = torch.sort(key, dim=1, stable=True)
    off = torch.stack(torch.meshgrid(*[torch.arange(-1, 2, device=dev)] * 2, indexing="ij"), -1).reshape(9, 2)
    col = c[:, :, None, :2] + off  # (B, m, 9, 2)
    inside = ((col >= 0) & (col < dim[:2])).all(-1)
    base = (col[..., 0] * dim[1] + col[..., 1]) * dim[2]
    zlo, zhi = (c[..., 2:] - 1).clamp(min=0), (c[..., 2:] + 1).clamp(max=int(dims[2]) - 1)
    s = torch.searchsorted(skey, torch.where(inside, base + zlo, -1).reshape(B, -1))
    e = torch.searchsorted(skey, torch.where(inside, base + zhi, -1).reshape(B, -1), right=True)
    L = max(int((e - s).max()), 1) if m else 1
    slot = s[..., None] + torch.arange(L, device=dev)  # (B, m*9, L) positions in the sorted order
    ok = (slot < e[..., None]).reshape(B, m, -1)
    cand = order.gather(1, slot.clamp_max(max(m - 1, 0)).reshape(B, -1)).reshape(B, m, -1)
    d = xd[:, :, None] - torch.gather(xd, 1, cand.reshape(B, -1, 1).expand(-1, -1, 3)).reshape(B, m, -1, 3)
    own = torch.arange(m, device=dev)[None, :, None]
    ok = ok & (cand != own) & ((d * d).sum(-1) < radius * radius)
    if rest is not None:
        dr = rest[:, None] - rest[cand]
        ok = ok & ((dr * dr).sum(-1) > radius * radius)
    if alike is not None:
        ok = ok & ~(alike[:, None] & alike[cand])
    place = ok.long().cumsum(-1) - 1  # each neighbour's slot in the packed list
    most = int(place[..., -1].max()) + 1 if m else 0
    if most > K:
        raise ContactOverflowError(f"{what}: a particle has {most} neighbours within {radius:.4g} m, more than the "
                                   f"{K} slots (particles compressed far beyond their rest spacing); lower the substep "
                                   "or raise the solver iterations.")
    place = torch.where(ok, place, K)  # non-neighbours go to a spare column, dropped below
    own = own.expand(B, m, K + 1)
    nb = own.scatter(2, place, torch.where(ok, cand, own[..., :1]))[..., :K]
    valid = torch.zeros(B, m, K + 1, dtype=torch.bool, device=dev).scatter(2, place, ok)[..., :K]
    return nb, valid

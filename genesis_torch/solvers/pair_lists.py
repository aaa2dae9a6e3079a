"""Neighbour pairs by sorted cell keys, batched over envs, and Verlet lists of them (DESIGN.md §8: sort/search ops,
no loop over particles or cells, no O(n^2) matrix); shared by the particle solvers: PBD's liquid and particle
collisions (pbd/liquid.py, pbd/collisions.py) and SPH's Verlet lists (sph/solver.py).

`find_pairs`: particles get integer cells c = floor((x - lower_bound) / cell), clamped to the domain's `dims`, and
the exact int64 key (c_x dims_y + c_y) dims_z + c_z. One stable sort per env orders the keys; the 27 cells around a
particle are 9 columns (x, y) of 3 consecutive keys along z, so 9 runs of the sorted order, found by `searchsorted`.
The candidates of the runs within `radius` are the pairs, flat `(b, i, j)` in (env, particle, sorted-key) order.
An env's pairs and their order never depend on the other envs of the batch (the padding of the runs to the longest
only adds invalid candidates), and the queries are processed in chunks of particles to bound memory (same result).

`PairList` keeps Verlet lists (Verlet 1967; the skin criterion as in Allen & Tildesley, "Computer simulation of
liquids", §5.3): the pairs within `radius + skin` at reference positions `ref`, rebuilt for an env only when its
particles moved relative to each other by more than the skin allows (the active particles: an inactive one is in no
list). With u = x - ref and c any common shift (the
env's mean of u), |x_i - x_j| >= |ref_i - ref_j| - |u_i - u_j| >= |ref_i - ref_j| - 2 max_k |u_k - c|, so a pair
missing from the list (|ref_i - ref_j| >= radius + skin) stays beyond `radius` while max |u - c| < skin / 2: every
pair within `radius` at x is in the list. A rigidly moving env never rebuilds. `ref` is part of the solver state
(`PBDSolver.<name>_ref`) and the lists are a function of (ref, active) only, so a checkpoint, a reset or another
batch composition gives the same lists, hence bitwise the same continuation.
"""

from __future__ import annotations

import torch

__all__ = ["find_pairs", "PairList"]

#: candidates per chunk of query particles (bounds the memory of a search: ~40 bytes each)
CHUNK = 1 << 23


def _keys(x, lo, cell, dim, active):
    c = torch.minimum(((x - lo) / cell).floor().long().clamp(min=0), dim - 1)
    key = (c[..., 0] * dim[1] + c[..., 1]) * dim[2] + c[..., 2]
    if active is not None:  # inactive particles sort first under a key no query asks for
        key = torch.where(active, key, torch.full_like(key, -2))
    return c, key


def find_pairs(x: torch.Tensor, lo: torch.Tensor, cell: float, dims: tuple, radius: float,
               rest: torch.Tensor | None = None, rest_radius: float = 0.0, alike: torch.Tensor | None = None,
               active: torch.Tensor | None = None):
    """`(b, i, j)` long `(P,)`: every ordered pair i != j of the m particles `x (B, m, 3)` (m) closer than `radius`
    (<= `cell`, m), in (env, i, sorted-key) order. `lo (3,)` m and `dims` (3 ints): the cell grid. Left out: pairs
    whose `rest (m, 3)` positions are within `rest_radius` (m), pairs of two particles with `alike (m,)` True, and
    particles with `active (B, m)` False."""
    B, m = x.shape[:2]
    dev = x.device
    empty = torch.zeros(0, dtype=torch.long, device=dev)
    if m < 2 or B == 0:
        return empty, empty, empty
    xd = x.detach()
    dim = torch.tensor(dims, device=dev)
    c, key = _keys(xd, lo, cell, dim, active)
    skey, order = torch.sort(key, dim=1, stable=True)
    off = torch.stack(torch.meshgrid(*[torch.arange(-1, 2, device=dev)] * 2, indexing="ij"), -1).reshape(9, 2)
    col = c[:, :, None, :2] + off  # (B, m, 9, 2)
    inside = ((col >= 0) & (col < dim[:2])).all(-1)
    if active is not None:
        inside = inside & active[..., None]
    base = (col[..., 0] * dim[1] + col[..., 1]) * dim[2]
    zlo, zhi = (c[..., 2:] - 1).clamp(min=0), (c[..., 2:] + 1).clamp(max=int(dims[2]) - 1)
    s = torch.searchsorted(skey, torch.where(inside, base + zlo, -1).reshape(B, -1)).reshape(B, m, 9)
    e = torch.searchsorted(skey, torch.where(inside, base + zhi, -1).reshape(B, -1), right=True).reshape(B, m, 9)
    L = max(int((e - s).max()), 1)
    step = max(1, CHUNK // (B * 9 * L))
    r2 = radius * radius
    out_b, out_i, out_j = [], [], []
    for q0 in range(0, m, step):  # chunks of query particles (memory only: the pairs are the same)
        q1 = min(m, q0 + step)
        sq, eq = s[:, q0:q1], e[:, q0:q1]
        mq = q1 - q0
        slot = sq[..., None] + torch.arange(L, device=dev)  # (B, mq, 9, L) positions in the sorted order
        ok = (slot < eq[..., None]).reshape(B, mq, -1)
        cand = order.gather(1, slot.clamp_max(m - 1).reshape(B, -1)).reshape(B, mq, -1)
        xq = xd[:, q0:q1]
        d = xq[:, :, None] - torch.gather(xd, 1, cand.reshape(B, -1, 1).expand(-1, -1, 3)).reshape(B, mq, -1, 3)
        own = torch.arange(q0, q1, device=dev)[None, :, None]
        ok = ok & (cand != own) & ((d * d).sum(-1) < r2)
        if rest is not None:
            dr = rest[q0:q1, None] - rest[cand]
            ok = ok & ((dr * dr).sum(-1) > rest_radius * rest_radius)
        if alike is not None:
            ok = ok & ~(alike[q0:q1, None] & alike[cand])
        b, i, k = ok.nonzero(as_tuple=True)
        out_b.append(b)
        out_i.append(i + q0)
        out_j.append(cand[b, i, k])
    b, i, j = torch.cat(out_b), torch.cat(out_i), torch.cat(out_j)
    if len(out_b) > 1:  # chunks came particle range by particle range: back to (env, i, candidate) order
        o = torch.sort(b * m + i, stable=True)[1]
        b, i, j = b[o], i[o], j[o]
    return b, i, j


class PairList:
    """Verlet lists of one particle subset (the module docstring): pairs within `radius + skin`, from the reference
    positions in the state. `search(x (E, m, 3), active (E, m) | None) -> (b, i, j)` finds the pairs of E envs at
    radius + skin. The cached lists are reused while the state's `ref`/`active` are the ones they were made from."""

    def __init__(self, search, skin: float):
        self.search, self.skin = search, skin
        self._cache = None  # (ref, active, b, i, j)

    def _lists_for(self, ref, active):
        """The pairs of (ref, active), reusing the cached envs whose ref and active are bitwise the same."""
        B = ref.shape[0]
        c = self._cache
        if c is not None and c[0] is ref and c[1] is active:
            return c[2:]
        stale = torch.ones(B, dtype=torch.bool, device=ref.device)
        if c is not None and c[0].shape == ref.shape:
            same = (c[0] == ref).all(-1).all(-1)
            if active is not None or c[1] is not None:  # None: all active
                a0 = c[1] if c[1] is not None else torch.ones_like(active)
                a1 = active if active is not None else torch.ones_like(c[1])
                same = same & (a0 == a1).all(-1)
            stale = ~same
        return self._rebuild(c, stale, ref, active)

    def _rebuild(self, c, stale, x, active):
        envs = stale.nonzero().reshape(-1)
        if envs.numel() == 0:
            return c[2:]
        b, i, j = self.search(x[envs], None if active is None else active[envs])
        b = envs[b]
        if c is not None and envs.numel() < x.shape[0]:
            keep = ~stale[c[2]]
            b, i, j = torch.cat((c[2][keep], b)), torch.cat((c[3][keep], i)), torch.cat((c[4][keep], j))
            o = torch.sort(b, stable=True)[1]  # env order; within an env the pairs keep their order
            b, i, j = b[o], i[o], j[o]
        return b, i, j

    def get(self, x: torch.Tensor, ref: torch.Tensor, active: torch.Tensor | None):
        """`(ref', b, i, j)` for positions `x (B, m, 3)`: the pairs within radius + skin of `ref'`, which equals `ref`
        except in the envs whose particles moved too far relative to each other (their ref' = x, lists rebuilt).
        Every pair within `radius` at x is among them. One host sync."""
        b, i, j = self._lists_for(ref, active)
        u = x.detach() - ref
        if active is None:
            dev = ((u - u.mean(1, keepdim=True)) ** 2).sum(-1).amax(1) if u.shape[1] else u.new_zeros(u.shape[0])
        else:  # over the active particles only: an inactive one is in no list, wherever it is moved
            a = active[..., None]
            u = torch.where(a, u, torch.zeros_like(u))
            c = u.sum(1, keepdim=True) / a.sum(1, keepdim=True).clamp_min(1).to(u.dtype)
            dev = torch.where(active, ((u - c) ** 2).sum(-1), torch.zeros_like(u[..., 0])).amax(1) if u.shape[1] \
                else u.new_zeros(u.shape[0])
        need = dev >= (0.49 * self.skin) ** 2  # (a diverged env, NaN, keeps its lists: it is not stepped further)
        if bool(need.any()):
            new_ref = torch.where(need[:, None, None], x.detach(), ref)
            b, i, j = self._rebuild((ref, active, b, i, j), need, new_ref, active)
            ref = new_ref
        self._cache = (ref, active, b, i, j)
        return ref, b, i, j

"""Which grid nodes a substep works on: the dense grid of each env, the box around its particles, or only the
blocks the particles touch.

Dense: every env owns all `G = Gx Gy Gz` nodes; a particle's stencil rows are `b G + base . stride + offset`.

Box: each env keeps the smallest box of nodes holding its active particles' 3x3x3 stencils; every env gets a box of
the same size `E0 E1 E2` (the largest extent of any env per axis), placed at its own first node. Rows are computed
as on the dense grid with the box's strides (no lookup), so the layout costs what the dense one costs on a grid of
the box's size; the box's node positions and wall tables are gathered once and reused while the box stays put.

Sparse (blocks): the nodes are grouped in blocks of `BLOCK^3` (4^3) nodes; a block is kept when some active
particle's stencil reaches it (per axis the stencil spans the blocks of `base` and `base + 2`, so each particle marks
<= 8 blocks: the halo is exact, no fixed dilation). Env b's kept blocks are numbered in block order (a cumulative sum
over the block map, torch ops only) and every env gets the same row count, `K` = the largest number of kept blocks
of any env (envs with fewer keep padding blocks that no particle touches), so the grid stays `(B, N)` with N = 64 K.
A stencil row is its block's first row (a lookup) plus the node's place in the block. For bodies far apart (the box
would hold the empty space between them).

Bits: P2G scatters the same sources in the same (particle) order, so every node's sum is added in the same order as
on the dense grid, the grid update is elementwise per node, and G2P gathers the same node values: every layout gives
the dense path's results bitwise (tested). Particles are *not* reordered by block (that would change each node's
summation order and the bits); the scatter's cache locality is what is given up.

Rule (`choose_layout`, "auto"): the box when it holds under `SPARSE_MAX_FILL` of the dense nodes and at most
`BOX_PER_PARTICLE` nodes per particle (then no block map is built); otherwise the block map is built and the cheapest
of dense, box and blocks by the estimate `_NODE_COST` per dense node, `_BOX_NODE_COST` per box node,
`_NODE_COST` per block node + `_BLOCK_ROWS_COST` per particle. Measured: benchmarks/RESULTS.md ("MPM").
"""

from __future__ import annotations

import dataclasses

import torch

from ...errors import InvalidInputError

__all__ = ["BLOCK", "SPARSE_MAX_FILL", "BOX_PER_PARTICLE", "GridLayout", "index_dtype", "dense_layout", "box_extent",
           "box_layout", "block_map", "sparse_layout", "choose_layout"]

BLOCK = 4  #: nodes per block side (4^3 = 64 nodes); a particle touches 1..8 blocks
SHIFT = 2  #: log2(BLOCK): block and in-block coordinates by shifts and masks (int division measured 6x slower)
SPARSE_MAX_FILL = 0.5  #: the sparse layout is used while it keeps fewer than this share of the dense nodes
#: the box layout is taken without building the block map while its nodes per env are at most this many per particle
#: (a compact body at 2 particles per cell per axis fills its box with ~1/8 node per particle; the block map costs
#: ~200 int ops per particle, the grid ~15 float ops per node: below ~13 nodes per particle the box is cheaper whatever
#: the blocks would keep)
BOX_PER_PARTICLE = 8
MODES = ("auto", "dense", "box", "sparse")  #: the layouts `choose_layout` takes

#: estimated work per dense node, per box node (the dense work plus gathering its position and 6 wall tables) and
#: per particle for the block layout's rows (its 27 block lookups), for the choice in `choose_layout`
_NODE_COST, _BOX_NODE_COST, _BLOCK_ROWS_COST = 15.0, 22.0, 140.0


@dataclasses.dataclass
class GridLayout:
    """The nodes of one substep: `node (27, P)` flat grid rows of each particle's stencil (offsets x-major, env
    offset included), `n_nodes` rows per env (N), `node_pos (N, 3)` or `(B, N, 3)` m, and the wall tables
    `wall_min/wall_max/wall_keep (3, 1 or B, N)` of `MPMModel` (velocity bounds, 0/1 factors) for those rows."""

    node: torch.Tensor
    n_nodes: int
    node_pos: torch.Tensor
    wall_min: torch.Tensor
    wall_max: torch.Tensor
    wall_keep: torch.Tensor
    sparse: bool = False


def index_dtype(rows: int) -> torch.dtype:
    """int32 grid rows while they fit (elementwise int32 ops and int32-indexed gathers measured 2-5x faster than
    int64 on this CPU), else int64."""
    return torch.int32 if rows < 2 ** 31 else torch.long


def dense_layout(model, base: torch.Tensor, B: int) -> GridLayout:
    """All G nodes of every env, for stencil corners `base (3, P)` (int, cells from the grid's first node)."""
    P = base.shape[1]
    it = index_dtype(B * model.n_nodes)
    env = torch.arange(B, device=base.device, dtype=it).repeat_interleave(P // B) * model.n_nodes
    node = (env + (base.to(it) * model.stride.to(it)[:, None]).sum(0, dtype=it)) + model.offsets_flat.to(it)[:, None]
    return GridLayout(node=node, n_nodes=model.n_nodes, node_pos=model.node_pos, wall_min=model.wall_min[:, None],
                      wall_max=model.wall_max[:, None], wall_keep=model.wall_keep[:, None])


def box_extent(model, base: torch.Tensor, active: torch.Tensor, B: int, all_active: bool | None = None
               ) -> tuple[tuple, tuple[int, int, int]]:
    """The smallest box of nodes, the same size `E (3 ints)` in every env, holding the stencils of each env's active
    particles: its first node per env `lo` (B tuples of 3 ints, cells from the grid's first node) and `E`. From
    `base (3, P)`, `active (P,)`; an env without active particles gets the box at node 0. One host sync (E sets the
    grid's size; `all_active`: `active.all()` if known)."""
    b = base.reshape(3, B, -1)
    if bool(active.all()) if all_active is None else all_active:  # (the usual case: no masking)
        lo, hi = b.amin(2).tolist(), (b.amax(2) + 3).tolist()  # (3, B): first and one past the last stencil node
    else:
        a = active.reshape(1, B, -1)
        lo = torch.where(a, b, int(max(model.res))).amin(2)
        hi = torch.where(a, b, -1).amax(2) + 3
        lo_hi = torch.where(a.any(2), torch.stack((lo, hi)), torch.tensor([0, 3], dtype=lo.dtype)[:, None, None])
        lo, hi = lo_hi.tolist()
    E = tuple(min(max(h - l for l, h in zip(lo[d], hi[d])), model.res[d]) for d in range(3))
    lo = tuple(tuple(min(lo[d][e], model.res[d] - E[d]) for d in range(3)) for e in range(B))  # inside the grid
    return lo, E


def box_layout(model, base: torch.Tensor, active: torch.Tensor, B: int, box=None, cache: dict | None = None,
               all_active: bool | None = None) -> GridLayout:
    """The nodes of each env's box (`box_extent`): a dense grid of E0 E1 E2 nodes per env whose first node is env
    b's `lo[b]`, for stencil corners `base (3, P)`. Rows are computed like the dense layout's (no lookup), so it
    costs what the dense layout costs on a grid of the box's size. Inactive particles' stencils are clamped into
    their env's box (their weights are zero). `cache`: a dict kept by the caller; the node positions and wall tables
    of the last box are reused while the box stays where it was; `all_active`: `active.all()` if known."""
    all_active = bool(active.all()) if all_active is None else all_active
    lo, E = box_extent(model, base, active, B, all_active) if box is None else box
    P = base.shape[1]
    N = E[0] * E[1] * E[2]
    dev = base.device
    it = index_dtype(B * N)
    st = torch.tensor((E[1] * E[2], E[2], 1), device=dev, dtype=it)
    lo_t = torch.tensor(lo, device=dev, dtype=it).T  # (3, B)
    rel = (base.to(it).reshape(3, B, -1) - lo_t[:, :, None]).reshape(3, P)
    if not all_active:  # inactive particles may lie outside their env's box
        rel = torch.minimum(rel.clamp_min(0), torch.tensor(E, device=dev, dtype=it)[:, None] - 3)
    off = (model.offsets.to(it) * st).sum(1, dtype=it)  # (27,)
    env = torch.arange(B, device=dev, dtype=it)[:, None].expand(B, P // B).reshape(P)
    node = (env * N + (rel * st[:, None]).sum(0, dtype=it)) + off[:, None]
    key = (lo, E)
    if cache is not None and cache.get("model") is model and cache.get("key") == key:
        return dataclasses.replace(cache["layout"], node=node)
    # dense node of every box row: the env's first node + the row's place in the box
    i = torch.arange(N, device=dev)
    loc = torch.stack((i // (E[1] * E[2]), (i // E[2]) % E[1], i % E[2]))  # (3, N)
    dense = ((lo_t.long()[:, :, None] + loc[:, None]) * model.stride[:, None, None]).sum(0).reshape(-1)  # (B N,)
    layout = _with_tables(model, node, dense, B, N)
    if cache is not None:
        cache.update(model=model, key=key, layout=layout)
    return layout


def _blocks(model) -> tuple[int, int, int]:
    return tuple(-(-r // BLOCK) for r in model.res)


def block_map(model, base: torch.Tensor, active: torch.Tensor, B: int) -> torch.Tensor:
    """`(B, nbx nby nbz)` bool: the blocks reached by the stencils of the active particles (`base (3, P)` int,
    `active (P,)` bool)."""
    nb = _blocks(model)
    n_blocks = nb[0] * nb[1] * nb[2]
    P = base.shape[1]
    it = index_dtype(B * n_blocks + 1)
    b = base.to(it)
    lo, hi = b >> SHIFT, (b + 2) >> SHIFT  # (3, P): the stencil's first and last block per axis
    env = torch.arange(B, device=base.device, dtype=it).repeat_interleave(P // B) * n_blocks
    bx = torch.stack((lo[0], hi[0])) * (nb[1] * nb[2]) + env  # (2, P)
    by, bz = torch.stack((lo[1], hi[1])) * nb[2], torch.stack((lo[2], hi[2]))
    bid = bx[:, None, None] + by[None, :, None] + bz[None, None, :]  # (2, 2, 2, P)
    bid = torch.where(active, bid, B * n_blocks)  # inactive particles mark the spare entry past the last block
    hits = torch.zeros(B * n_blocks + 1, dtype=torch.int32, device=base.device)
    hits.index_add_(0, bid.reshape(-1), torch.ones_like(bid).reshape(-1))  # (index_fill_ needs int64 indices)
    return (hits[:-1] > 0).reshape(B, n_blocks)


def sparse_layout(model, base: torch.Tensor, flags: torch.Tensor, B: int, K: int | None = None) -> GridLayout:
    """The kept blocks `flags (B, n_blocks)` (from `block_map`) as a grid of N = 64 K rows per env, K the largest
    kept-block count of any env, for stencil corners `base (3, P)`."""
    nb = _blocks(model)
    n_blocks = nb[0] * nb[1] * nb[2]
    dev = base.device
    P = base.shape[1]
    K = max(int(flags.sum(1).max()), 1) if K is None else K
    N = K * BLOCK ** 3
    it = index_dtype(max(B * N, B * n_blocks))
    rank = flags.cumsum(1, dtype=it) - 1  # (B, n_blocks): a kept block's index among its env's kept blocks
    env = torch.arange(B, device=dev, dtype=it)
    # first grid row of each block (unkept blocks: their env's first row; only inactive particles look them up)
    first = ((env[:, None] * K + rank.clamp_min(0)) * BLOCK ** 3).reshape(-1)
    # stencil rows, separable in the offsets: first row of the node's block + the node's place in it
    c = base.to(it)[:, None] + torch.arange(3, device=dev, dtype=it)[:, None]  # (3 axes, 3 k, P)
    blk, loc = c >> SHIFT, c & (BLOCK - 1)
    pe = env.repeat_interleave(P // B) * n_blocks
    bid = ((blk[0] * (nb[1] * nb[2]) + pe)[:, None, None] + (blk[1] * nb[2])[None, :, None]
           + blk[2][None, None, :])  # (3, 3, 3, P)
    inner = (loc[0] * BLOCK ** 2)[:, None, None] + (loc[1] * BLOCK)[None, :, None] + loc[2][None, None, :]
    node = (first.index_select(0, bid.reshape(-1)).reshape(27, P) + inner.reshape(27, P))
    # dense node of every kept row: block coordinates * 4 + the node inside, clamped to the grid (rows past the
    # grid's upper faces exist only in blocks that straddle them; no stencil reaches them)
    b_idx, blk_idx = flags.nonzero(as_tuple=True)
    block_of = torch.zeros(B, K, dtype=torch.long, device=dev)  # padding rows: block 0, untouched
    block_of[b_idx, rank[b_idx, blk_idx].long()] = blk_idx
    i = torch.arange(BLOCK ** 3, device=dev)
    bi, bj, bk = block_of // (nb[1] * nb[2]), (block_of // nb[2]) % nb[1], block_of % nb[2]  # (B, K)
    coord = [(b[..., None] * BLOCK + li).clamp_max(model.res[a] - 1) for a, (b, li) in
             enumerate(((bi, i // BLOCK ** 2), (bj, (i // BLOCK) % BLOCK), (bk, i % BLOCK)))]
    dense = (coord[0] * model.stride[0] + coord[1] * model.stride[1] + coord[2]).reshape(-1)  # (B K 64,)
    return _with_tables(model, node, dense, B, N)


def _with_tables(model, node, dense, B, N) -> GridLayout:
    """A sparse layout of rows `node (27, P)` whose B N rows are the dense nodes `dense (B N,)`: their positions and
    wall tables gathered from the model's (1-D gathers: a 2-D one along dim 1 measured ~4x slower)."""
    rows = (torch.arange(3, device=dense.device)[:, None] * model.n_nodes + dense).reshape(-1)
    walls = [t.reshape(-1).index_select(0, rows).reshape(3, B, N)
             for t in (model.wall_min, model.wall_max, model.wall_keep)]
    return GridLayout(node=node, n_nodes=N, node_pos=model.node_pos.index_select(0, dense).reshape(B, N, 3),
                      wall_min=walls[0], wall_max=walls[1], wall_keep=walls[2], sparse=True)


def choose_layout(model, base: torch.Tensor, active: torch.Tensor, B: int, mode: str = "auto",
                  cache: dict | None = None) -> GridLayout:
    """The layout of one substep: `mode` "dense", "box", "sparse" (blocks) or "auto" (the module's rule: the box
    while it is under `SPARSE_MAX_FILL` of the grid and at most `BOX_PER_PARTICLE` nodes per particle, else the
    cheapest of dense, box and blocks by the per-node / per-particle cost estimate). All give the same results
    bitwise. `cache`: see `box_layout`."""
    if mode not in MODES:
        raise InvalidInputError(f"MPM grid_mode {mode!r} is not one of {MODES}; set MPMSolver.grid_mode to one of "
                                "them.")
    if mode == "dense":
        return dense_layout(model, base, B)
    active = active.reshape(-1)
    if mode == "box":
        return box_layout(model, base, active, B, cache=cache)
    if mode == "sparse":
        return sparse_layout(model, base, block_map(model, base, active, B), B)
    G = model.n_nodes
    all_active = bool(active.all())
    box = box_extent(model, base, active, B, all_active)
    n_box = box[1][0] * box[1][1] * box[1][2]
    n = base.shape[1] // B
    if n_box < SPARSE_MAX_FILL * G and n_box <= BOX_PER_PARTICLE * n:
        return box_layout(model, base, active, B, box, cache, all_active)
    flags = block_map(model, base, active, B)
    K = max(int(flags.sum(1).max()), 1)
    cost = {"dense": _NODE_COST * G, "box": _BOX_NODE_COST * n_box,
            "sparse": _NODE_COST * K * BLOCK ** 3 + _BLOCK_ROWS_COST * n}
    pick = min(cost, key=cost.get)
    if pick == "dense":
        return dense_layout(model, base, B)
    if pick == "box":
        return box_layout(model, base, active, B, box, cache, all_active)
    return sparse_layout(model, base, flags, B, K)

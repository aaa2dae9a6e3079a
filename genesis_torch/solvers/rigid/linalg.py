"""Small dense linear algebra written as elementwise ops and reductions over short dims.

Batched BLAS/LAPACK kernels (bmm, cholesky) round an env's numbers differently depending on its position in the
batch; these forms compute every env with the same sequence of operations, so env i's trajectory does not depend
on the batch it is in (DESIGN.md §2.5), and `torch.compile` can fuse them.
"""

from __future__ import annotations

import numpy as np
import torch

from ...math.small import ordered_sum


ROW_BLOCK = 8
# From this many dofs on, contact rows carry their columns (`slot_gram` forms J^T D J from them) and solves use
# LAPACK's triangular solves (position-independent too, checked by tests/rigid/test_linalg.py); below it, the
# elementwise forms (cheap there, and fused by `torch.compile`). A model-level choice (nv), so an env's bits do not
# depend on its batch.
SPARSE_MIN_DOFS = 32
# From this many envs on, `gram` adds each env's own weighted rows (`_gram_rows`), and from 16x as many
# `weighted_row_sum` skips each env's zero blocks: below, the dense forms' few large ops are faster than the
# per-row index ops (humanoid rows, 1 thread: gram 0.45 vs 0.78 ms at 16 envs, 6.3 vs 1.1 at 64; J^T f 0.47 vs
# 0.61 ms at 256, 6.3 vs 1.2 at 1024). The forms give the same bits, so the switch changes no env's result.
ROWS_MIN_ENVS = 32


def _row_blocks(x: torch.Tensor) -> torch.Tensor:
    """`x (B, n, *rest)` zero-padded to whole blocks of rows: `(B, ceil(n / ROW_BLOCK), ROW_BLOCK, *rest)`."""
    B, n = x.shape[:2]
    pad = (-n) % ROW_BLOCK
    if pad:
        x = torch.cat((x, x.new_zeros((B, pad) + x.shape[2:])), 1)
    return x.unflatten(1, (-1, ROW_BLOCK))


def row_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over dim 1 of `x (B, n, *rest)` that appending zero rows leaves bitwise unchanged.

    The number of constraint rows follows the most contacts any env of the batch has, so an env alone has fewer
    (zero) trailing rows than the same env in a batch; `Tensor.sum` regroups its additions with the length, so
    it would not give the env the same bits. Here rows are added in fixed blocks of `ROW_BLOCK` (explicit adds),
    and the block sums left to right (`cumsum` is sequential): trailing zero blocks add exact zeros.
    """
    return _block_sums(x).cumsum(1).select(1, -1)


def _block_sums(x: torch.Tensor) -> torch.Tensor:
    """The sums of each block of `ROW_BLOCK` rows of `x (B, n, *rest)`, rows added in order: `(B, ceil(n /
    ROW_BLOCK), *rest)`. The last, partial block adds its rows only (the zero padding of `_row_blocks` would add
    exact zeros: the same bits, without copying `x`)."""
    n = x.shape[1]
    full = n - n % ROW_BLOCK
    parts = [ordered_sum(x.narrow(1, 0, full).unflatten(1, (-1, ROW_BLOCK)), 2)] if full else []
    if full < n:
        parts.append(ordered_sum(x.narrow(1, full, n - full), 1).unsqueeze(1))
    return torch.cat(parts, 1) if len(parts) > 1 else parts[0]


def weighted_row_sum(J: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """`row_sum(w[..., None] * J)` = `J^T w` for rows `J (B, n, m)` and weights `w (B, n)` → `(B, m)`, the same bits.

    Run eagerly and without autograd for `w` (whose gradient at a zero weight, J_i, needs the row), each env sums
    only the blocks of rows in which it has a nonzero weight (a block of zero weights adds exact zeros): contact
    forces are zero outside a few active rows of many slots. One host sync per block in use; from 16 x
    `ROWS_MIN_ENVS` envs."""
    dense = J.shape[0] < 16 * ROWS_MIN_ENVS or torch.compiler.is_compiling()
    if dense or (w.requires_grad and torch.is_grad_enabled()):
        return row_sum(w[..., None] * J)
    B, n, m = J.shape
    acc = _cumsum_dtype(J)
    used = _block_sums((w != 0).to(torch.int32)).ne(0)  # (B, blocks)
    total = J.new_zeros((B, m), dtype=acc)
    for k, any_env in enumerate(used.any(0).tolist()):
        if not any_env:
            continue
        envs = torch.nonzero(used[:, k]).flatten()
        rows = slice(k * ROW_BLOCK, min((k + 1) * ROW_BLOCK, n))
        Jk, wk = J[:, rows], w[:, rows]
        if envs.numel() < B:
            Jk, wk = Jk.index_select(0, envs), wk.index_select(0, envs)
        part = ordered_sum(wk[..., None] * Jk, 1).to(acc)
        total = total + part if envs.numel() == B else total.index_add_(0, envs, part)
    return total.to(J.dtype)


def gram(J: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """`J^T diag(h) J` for rows `J (B, n, m)` and weights `h (B, n)` → `(B, m, m)`, summed as `row_sum` (invariant
    to trailing zero rows) without materialising the `(B, n, m, m)` outer products: each block of `ROW_BLOCK` rows
    adds its rows' outer products in row order, then the block sums add up left to right.

    A row weighted zero in an env adds exact zeros to that env's sums, so leaving it out changes no bit (but the
    sign of a zero). Run eagerly from `ROWS_MIN_ENVS` envs, each env adds only its own weighted rows
    (`_gram_rows`): a contact Hessian's cost follows the rows in use (humanoid at 4096 envs: a mean of 6 of 82
    rows, 710 -> 40 ms). Traced (the whole-step graph: no host sync, static shapes) or when autograd records `h`
    (the gradient at a zero weight, J_i^T G J_i, needs the row), every row of every env (`_gram_dense`); both forms
    give the same bits.
    """
    dense = J.shape[0] < ROWS_MIN_ENVS or torch.compiler.is_compiling()
    if dense or (h.requires_grad and torch.is_grad_enabled()):
        return _gram_dense(J, h)
    return _gram_rows(J, h)


def _gram_dense(J: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """`gram` over all rows of all envs: the products of each block's rows for every env `(B, n / ROW_BLOCK, m,
    m)`, added row by row, and the blocks' cumulative sum."""
    hJ, J = _row_blocks(h[..., None] * J), _row_blocks(J)
    Jb, hJb = J.unbind(2), hJ.unbind(2)
    blocks = hJb[0][..., :, None] * Jb[0][..., None, :]
    for a, b in zip(hJb[1:], Jb[1:]):
        blocks = blocks + a[..., :, None] * b[..., None, :]
    return blocks.cumsum(1).select(1, -1)


def _cumsum_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype CPU `cumsum` accumulates `x`'s dtype in (float64 for float32: torch adds a float32 cumsum in double
    and rounds each output once), for running totals that must give `row_sum`'s / `_gram_dense`'s bits."""
    return torch.float64 if x.dtype == torch.float32 and x.device.type == "cpu" else x.dtype


def _gram_rows(J: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """`gram` adding, for each env, only the rows it weights (h != 0), in `_gram_dense`'s order: block by block,
    the envs that weight some row of the block get that block's sum (its weighted rows' products added in row
    order into a zero block, `index_add_`), which is then added to their running total. Env by env the additions
    are `_gram_dense`'s less exact zeros, so the bits are its bits and do not depend on the batch (a host sync per
    block and per row in use: the envs that weight it). The running total is kept in the accumulation dtype of
    CPU `cumsum` (float64 for float32: torch accumulates a float32 cumsum in double and rounds each output once),
    as `_gram_dense`'s."""
    B, n, m = J.shape
    nz = h != 0  # (B, n)
    used = nz.any(0).tolist()  # rows some env weights
    acc = _cumsum_dtype(J)
    total = J.new_zeros((B, m, m), dtype=acc)
    for k in range(0, n, ROW_BLOCK):
        rs = [r for r in range(k, min(k + ROW_BLOCK, n)) if used[r]]
        if not rs:
            continue
        envs = torch.nonzero(nz[:, k:k + ROW_BLOCK].any(1)).flatten()
        whole = envs.numel() == B
        block = J.new_zeros((envs.numel(), m, m))
        for r in rs:
            col = nz[:, r] if whole else nz[:, r].index_select(0, envs)
            pos = torch.nonzero(col).flatten()  # positions in `envs` of the envs weighting row r
            at = pos if whole else envs.index_select(0, pos)
            # h_r J_r for these envs only (the same products as `_gram_dense`'s h J, which for all envs and rows
            # was 30 / 61 ms of a ~125 ms float32 / float64 Hessian, synthetic 4096 envs x 82 rows x 27 dofs, 1 thread)
            b = J[:, r].index_select(0, at)
            a = h[:, r].index_select(0, at)[:, None] * b
            # the outer products a_i b_j, broadcast (a bmm of inner size 1 gives the same bits but is 5-6x slower
            # below 16 columns: ant's step 10 % slower with it; 1.2x faster at 25); index_add_ adds slice by slice
            block.index_add_(0, pos, a[:, :, None] * b[:, None, :])
        total.index_add_(0, envs, block.to(acc))
    return total.to(J.dtype)


def slot_gram(Jc: torch.Tensor, h: torch.Tensor, cols: torch.Tensor, valid: torch.Tensor, nv: int,
              Hc: torch.Tensor | None = None) -> torch.Tensor:
    """`J^T diag(h) J (+ sum_s Js^T Hc_s Js)` → `(B, nv, nv)` for rows in S slots of `per` consecutive rows each
    (one contact), given by their entries `Jc (B, S, per, K)` at the slot's columns `cols (B, S, K)` (int64, `nv` for
    padding, whose entries are 0; J is zero elsewhere) and weights `h (B, S * per)` — O(S per K^2), not
    O(S per nv^2).

    Each slot's `K x K` block (its rows' outer products added in row order, then its cone's `Js^T Hc Js` with
    `Hc (B, S, 3, 3)` when given, elliptic contacts) is added into the matrix in slot order (`slot_scatter`): an
    entry is the sum over the slots that touch it, slot by slot. Invalid slots (`valid (B, S * per)` false in all
    their rows) and padding columns are discarded: trailing empty slots change no bit.
    """
    B, S, per, K = Jc.shape
    hJ = h.unflatten(1, (S, per))[..., None] * Jc
    blocks = hJ[:, :, 0, :, None] * Jc[:, :, 0, None, :]
    for r in range(1, per):
        blocks = blocks + hJ[:, :, r, :, None] * Jc[:, :, r, None, :]
    if Hc is not None:
        blocks = blocks + matmul(Jc.transpose(-1, -2), matmul(Hc, Jc))
    pad = cols >= nv
    idx = torch.where(pad[..., :, None] | pad[..., None, :], nv * nv, cols[..., :, None] * nv + cols[..., None, :])
    slot_valid = valid.unflatten(1, (S, per)).any(-1)
    return slot_scatter(blocks.flatten(2), idx.flatten(2), slot_valid, nv * nv).unflatten(1, (nv, nv))


def slot_scatter(x: torch.Tensor, idx: torch.Tensor, slot_valid: torch.Tensor, n: int) -> torch.Tensor:
    """`out[b, i] = sum of x[b, s, k] over idx[b, s, k] == i`, `x (B, S, k)` → `(B, n)`, added in (s, k) order
    (`scatter_add` runs each env's additions in index order: position independent); entries with `idx >= n` and
    slots with `slot_valid (B, S)` false are discarded."""
    B = x.shape[0]
    idx = torch.where(slot_valid[..., None], idx.clamp(max=n), n)
    return x.new_zeros(B, n + 1).scatter_add(1, idx.flatten(1), x.flatten(1))[:, :n]


def matvec(A: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`A @ x` for `A (..., n, m)`, `x (..., m)` → `(..., n)`."""
    return (A * x[..., None, :]).sum(-1)


def vecmat(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """`x @ A` for `x (..., n)`, `A (..., n, m)` → `(..., m)`."""
    return (x[..., :, None] * A).sum(-2)


def matmul(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """`A @ B` for `A (..., n, k)`, `B (..., k, m)` → `(..., n, m)`."""
    return (A[..., :, :, None] * B[..., None, :, :]).sum(-2)


_CONSTS: dict = {}


def const(value: float, like: torch.Tensor) -> torch.Tensor:
    """`value` as a cached 0-dim tensor of `like`'s dtype and device. In an op with a tensor of that dtype it gives
    the same numbers as the Python scalar (which torch converts to that dtype), without the conversion ops at every
    call. For the eagerly run stages only (constraint rows and solve), not for code traced by `torch.compile`."""
    if torch.compiler.is_compiling():  # traced (the whole-step graph): a graph constant, no cache to guard on
        return torch.tensor(value, dtype=like.dtype, device=like.device)
    key = (value, like.dtype, like.device)
    t = _CONSTS.get(key)
    if t is None:
        with torch.inference_mode(False):  # an inference tensor could not be saved for backward later
            t = _CONSTS[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
    return t


def padded_rows(mask: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    """For a 0/1 matrix `(p, q)`: column indices of each row's ones, padded, `(p, D)` int64, and their mask."""
    mask = np.asarray(mask, dtype=bool)
    width = max(1, int(mask.sum(1).max()) if mask.size else 1)
    idx = np.zeros((mask.shape[0], width), np.int64)
    valid = np.zeros((mask.shape[0], width), bool)
    for r in range(mask.shape[0]):
        cols = np.nonzero(mask[r])[0]
        idx[r, :len(cols)] = cols
        valid[r, :len(cols)] = True
    return PaddedRows(torch.as_tensor(idx, device=device), torch.as_tensor(valid, device=device),
                      all_valid=bool(valid.all()), identity=width == 1 and bool(valid.all()) and
                      bool((idx[:, 0] == np.arange(mask.shape[0])).all()))


class PaddedRows(tuple):
    """`(idx (p, D), valid (p, D))` of `padded_rows`, with what `gather_sum` can skip: `all_valid` (no padding) and
    `identity` (D = 1 and row r takes column r: the sum of x over rows is x itself when x has p entries)."""

    def __new__(cls, idx, valid, all_valid: bool = False, identity: bool = False):
        out = super().__new__(cls, (idx, valid))
        out.all_valid, out.identity, out.width = all_valid, identity, int(idx.shape[1]) if idx.dim() == 2 else 0
        return out

    def __getnewargs__(self):  # copy / pickle
        return (self[0], self[1], self.all_valid, self.identity)


def gather_sum(x: torch.Tensor, rows: tuple[torch.Tensor, torch.Tensor], dim: int = 1) -> torch.Tensor:
    """`out[r] = sum of x[c] over the columns c of row r`, indexing `x` along `dim` (1 for `(B, q, *k)`, 0 for
    batch-last `(q, *k, B)`), with `rows` from `padded_rows`."""
    idx, valid = rows
    if isinstance(rows, PaddedRows):  # the same numbers with fewer ops: no copy, no padding, or one column
        if rows.identity and x.shape[dim] == idx.shape[0]:
            return x
        if rows.all_valid and rows.width == 1:
            return x.index_select(dim, idx[:, 0])
    picked = x.index_select(dim, idx.reshape(-1)).unflatten(dim, idx.shape)  # D inserted after dim
    v = valid.reshape(valid.shape + (1,) * (x.dim() - dim - 1))
    return ordered_sum(torch.where(v, picked, 0.0), dim + 1)


def cholesky(H: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factor of SPD `H (B, n, n)` (NaN where not positive definite).

    LAPACK's batched factorisation runs the same routine on each matrix, so it is position-independent (checked by
    tests/rigid/test_linalg.py); batched triangular solves are not, hence `cholesky_solve` below.
    """
    L, info = torch.linalg.cholesky_ex(H)
    return torch.where((info == 0)[..., None, None], L, float("nan"))


def cholesky_solve(L: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve `L L^T x = b` for `L (B, n, n)` lower triangular and `b (B, n)`: LAPACK's when run eagerly or from
    `SPARSE_MIN_DOFS` on, else (traced by `torch.compile`, where it fuses) elementwise substitution (2n small
    steps); the two agree to rounding."""
    n = L.shape[-1]
    if not n:
        return b
    if n >= SPARSE_MIN_DOFS or not torch.compiler.is_compiling():
        # eager: LAPACK's (potrs per matrix: position independent, tests/rigid/test_linalg.py), 2 aten calls
        # instead of ~100 and no slower at 4096 envs; traced: the elementwise substitution below, which fuses
        return torch.cholesky_solve(b[..., None], L)[..., 0]
    # rows, columns and the diagonal of L as views taken once; the solved entries kept as one growing tensor (the
    # same numbers as stacking them at each step, in fewer ops; stacking the list at each step has fewer top-level
    # aten calls but is 8-24 % slower, measured at 1 / 1024 / 4096 envs, 9 dofs)
    Lrow, Lcol, diag, rhs = L.unbind(-2), L.unbind(-1), L.diagonal(dim1=-2, dim2=-1).unbind(-1), b.unbind(-1)
    y = (rhs[0] / diag[0]).unsqueeze(-1)  # (B, i): y_0 .. y_{i-1}
    ys = [y[..., 0]]
    for i in range(1, n):
        yi = (rhs[i] - (Lrow[i][..., :i] * y).sum(-1)) / diag[i]
        ys.append(yi)
        y = torch.cat((y, yi.unsqueeze(-1)), -1)
    x = (ys[n - 1] / diag[n - 1]).unsqueeze(-1)  # (B, n - i): x_i .. x_{n-1}
    for i in reversed(range(n - 1)):
        xi = (ys[i] - (Lcol[i][..., i + 1:] * x).sum(-1)) / diag[i]
        x = torch.cat((xi.unsqueeze(-1), x), -1)
    return x


def solve_spd(H: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`H^-1 b` for symmetric positive definite `H (B, n, n)` and `b (B, n)`."""
    return cholesky_solve(cholesky(H), b)


def lu_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`A^-1 b` for small, diagonally dominant `A (..., n, n)` by Gaussian elimination without pivoting."""
    n = A.shape[-1]
    rows = [A[..., i, :] for i in range(n)]
    rhs = [b[..., i] for i in range(n)]
    for k in range(n):
        for i in range(k + 1, n):
            f = rows[i][..., k] / rows[k][..., k]
            rows[i] = rows[i] - f[..., None] * rows[k]
            rhs[i] = rhs[i] - f * rhs[k]
    x: list[torch.Tensor] = [None] * n  # type: ignore[list-item]
    for i in reversed(range(n)):
        acc = rhs[i]
        for j in range(i + 1, n):
            acc = acc - rows[i][..., j] * x[j]
        x[i] = acc / rows[i][..., i]
    return torch.stack(x, -1)


def subtree_sum(model, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """`out[b] = sum of x[c] over the subtree of body b`, bodies along `dim` of `x`: children are added into their
    parents level by level from the leaves (O(nb) work; the world body 0 is level 0). A run of single-body levels
    (a chain) is one `cumsum` from its deepest body up: the same additions in the same order (x + s = s + x), 4 ops
    in all instead of 2 per level; Franka's sum 5x faster at 1 env, 2x at 1024, 1.07x at 4096 (float32 cumsum
    accumulates in double: rounding-level differences there, float64 bitwise)."""
    plan = _sum_plan(model, x.device)
    parts, cur, cur_done = [], _level_values(model, x, plan.depths - 1, dim), False
    for step in plan.up:
        if step[0] == "chain":  # cur (depth d) then depths d-1 .. k
            seg = torch.cat((cur, x.index_select(dim, step[1])), dim).cumsum(dim)
            parts.append(seg if not cur_done else seg.narrow(dim, 1, seg.shape[dim] - 1))
            cur, cur_done = seg.narrow(dim, seg.shape[dim] - 1, 1), True
        else:  # one level up: its own values plus its children's sums (gathers, ordered; inductor handles them)
            if not cur_done:
                parts.append(cur)
            cur = _level_values(model, x, step[1], dim) + gather_sum(cur, model.level_children[step[1]], dim)
            cur_done = False
    if not cur_done:
        parts.append(cur)
    return (torch.cat(parts, dim) if len(parts) > 1 else parts[0]).index_select(dim, plan.up_rows)


def _level_values(model, x: torch.Tensor, d: int, dim: int) -> torch.Tensor:
    """Rows of `x` along `dim` of the bodies at depth `d` (0: the world)."""
    return x.narrow(dim, 0, 1) if d == 0 else x.index_select(dim, model.levels[d - 1][0])


CHAIN_RUN = 3  # single-body levels in a row from which a tree sum takes them in one cumsum


class _SumPlan:
    """Index tables of `subtree_sum` for one model and device (built once): the levels grouped into runs of
    single-body levels (chains) and single levels, and the row of each body in the parts it concatenates.
    (`ancestor_sum` stays level by level: a cumsum down the chain along dim 0 was 1.3-1.7x slower from 1024 envs
    on, CPU cumsum over a non-innermost dim does not vectorise.)"""

    def __init__(self, model, dev):
        self.depths = D = len(model.levels) + 1
        bodies = [[0]] + [lvl[0].tolist() for lvl in model.levels]
        chain = _chain_levels(model)  # depth d -> d + 1 is a chain step
        i = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
        # upward (subtree_sum): from the deepest level; rows of the parts in the order they are appended
        self.up, rows, d, done = [], [], D - 1, False
        while d > 0:
            k = d
            while k > 0 and chain[k - 1]:
                k -= 1
            if d - k >= CHAIN_RUN:  # depths d-1 .. k in one cumsum after depth d
                run = [bodies[j][0] for j in range(d - 1, k - 1, -1)]
                self.up.append(("chain", i(run)))
                rows += ([] if done else bodies[d]) + run
                d, done = k, True
            else:
                self.up.append(("level", d - 1))
                rows += [] if done else bodies[d]
                d, done = d - 1, False
        rows += [] if done else bodies[0]
        self.up_rows = i(np.argsort(np.asarray(rows)))


def _sum_plan(model, dev) -> _SumPlan:
    cache = model.__dict__.setdefault("_sum_plans", {})
    plan = cache.get(dev)
    if plan is None:
        plan = cache[dev] = _SumPlan(model, dev)
    return plan


def _chain_levels(model) -> list[bool]:
    """Per level: it has one body, whose parent is the one body of the level above (a chain step: reading the
    parent level needs no gather)."""
    flags = model.__dict__.get("_chain_levels")
    if flags is None:
        sizes = [1] + [int(lvl[0].shape[0]) for lvl in model.levels]
        flags = [sizes[d] == 1 and sizes[d + 1] == 1 for d in range(len(model.levels))]
        model.__dict__["_chain_levels"] = flags
    return flags


def ancestor_sum(model, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """`out[b] = sum of x[a] over the ancestors-or-self a of body b`, bodies along `dim` of `x`, level by level
    from the root (O(nb) work)."""
    acc = [x.narrow(dim, 0, 1)]
    chain = _chain_levels(model)
    for d, lvl in enumerate(model.levels):
        parent = acc[-1] if chain[d] else acc[-1].index_select(dim, model.level_parent_pos[d])
        acc.append(parent + x.index_select(dim, lvl[0]))
    return torch.cat(acc, dim).index_select(dim, model.level_to_body)

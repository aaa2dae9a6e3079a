"""Products with constant model matrices from their nonzero entries only (actuator moment arms, tendon Jacobians),
with the bits of the dense forms in `linalg`: O(B m) instead of O(B n m) for 4096 envs of a 9-dof arm."""

from __future__ import annotations

import numpy as np
import torch

from ...math.small import ordered_sum
from .linalg import vecmat


class _Sparse:
    """The nonzero terms of a constant product, per output entry in the order the dense sum adds them, padded to the
    most terms any entry has (padding: index 0 with coefficients 0, added last: x + (+-0) = x)."""

    def __init__(self, idx, c1, c2=None):
        self.idx, self.c1, self.c2 = idx, c1, c2  # (K * E,) int64, (K, E), (K, E) or None
        self.K = int(c1.shape[0])


_SPARSE: dict = {}


def _sparse_plan(kind: str, A: torch.Tensor, like: torch.Tensor, build):
    """`build()`'s `_Sparse` for the constant `A` (or a view of it, e.g. `A.T` made anew at each call), cached by its
    memory, layout and version (the cache keeps `A`, so its memory is not reused for another tensor)."""
    key = (kind, A.data_ptr(), tuple(A.shape), A.stride(), A.dtype, like.dtype, like.device)
    hit = _SPARSE.get(key)
    if hit is not None and hit[1] == A._version:
        return hit[2]
    with torch.inference_mode(False):
        plan = build()
    _SPARSE[key] = (A, A._version, plan)
    return plan


def _terms(mask: np.ndarray, first: np.ndarray, A: np.ndarray, A2: np.ndarray | None, dev, dtype) -> _Sparse:
    """Per entry e (columns of `mask (n, E)`, rows in summation order): the summation indices n with a nonzero term."""
    E = mask.shape[1]
    K = max(1, int(mask.sum(0).max()) if mask.size else 1)
    idx, c1, c2 = np.zeros((K, E), np.int64), np.zeros((K, E)), np.zeros((K, E))
    for e in range(E):
        rows = np.nonzero(mask[:, e])[0]
        idx[:len(rows), e] = rows
        c1[:len(rows), e] = A[rows, e] if A2 is None else A[rows, first[e]]
        if A2 is not None:
            c2[:len(rows), e] = A2[rows, e]
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=dev)  # noqa: E731
    return _Sparse(torch.as_tensor(idx.reshape(-1), device=dev), t(c1), None if A2 is None else t(c2))


SPARSE_MIN_ENVS = 64  # below this many envs the dense products take fewer ops (the same bits either way)


def _dense(x: torch.Tensor, A: torch.Tensor) -> bool:
    """Whether `sparse_vecmat` / `sparse_outer_sum` take the dense form: traced, few envs, empty or non-constant."""
    return (torch.compiler.is_compiling() or x.dim() != 2 or A.dim() != 2 or x.shape[0] < SPARSE_MIN_ENVS or
            not A.numel() or A.requires_grad or A.is_inference())


def sparse_vecmat(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """`vecmat(x, A)` (`x (B, n)`, a constant model matrix `A (n, m)` -> `(B, m)`) from the nonzero entries of A
    only when every column has at most 2 (joint transmissions, two-dof tendons): a sum of at most two nonzero
    products and exact zeros is the same number whatever order the dense reduction adds them in (it is not
    sequential: measured), so the bits are the dense form's, in O(B m) instead of O(B n m). Otherwise, and traced
    (`torch.compile`, which fuses the dense form), the dense form."""
    if _dense(x, A):
        return vecmat(x, A)
    plan = _sparse_plan("vecmat", A, x, lambda: _terms(
        A.detach().cpu().numpy() != 0, None, A.detach().cpu().double().numpy(), None, x.device, x.dtype))
    if plan.K > 2:
        return vecmat(x, A)
    terms = x.index_select(1, plan.idx).unflatten(1, (plan.K, -1)) * plan.c1
    return ordered_sum(terms, 1)


def sparse_outer_sum(d: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """`((A.T * d[:, None, :])[..., None] * A).sum(-2)` = `A^T diag(d) A` (`d (B, n)`, a constant model matrix
    `A (n, m)` -> `(B, m, m)`) from the nonzero terms only: entry (i, j) is the sum over k of
    `(A[k, i] d[k]) A[k, j]` over the k with both factors nonzero when there are at most 2 per entry (the dense
    sum's other terms are exact zeros: the same bits, see `sparse_vecmat`). Otherwise, and traced, the dense form."""
    if _dense(d, A):
        return ((A.T * d[:, None, :])[..., None] * A).sum(-2)
    m = A.shape[1]

    def build():
        a = A.detach().cpu().double().numpy()
        nz = a != 0
        both = (nz[:, :, None] & nz[:, None, :]).reshape(a.shape[0], m * m)  # (n, m * m), entry i * m + j
        first = np.repeat(np.arange(m), m)
        second = np.tile(np.arange(m), m)
        return _terms(both, first, a, a[:, second], d.device, d.dtype)

    plan = _sparse_plan("outer", A, d, build)
    if plan.K > 2:
        return ((A.T * d[:, None, :])[..., None] * A).sum(-2)
    terms = d.index_select(1, plan.idx).unflatten(1, (plan.K, -1))
    return ordered_sum(plan.c1 * terms * plan.c2, 1).unflatten(1, (m, m))

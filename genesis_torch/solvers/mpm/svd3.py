"""Singular value decomposition of many 3x3 matrices with elementwise torch ops (no LAPACK call per matrix).

The method of McAdams, Selle, Tamstorf, Teran & Sifakis 2011, "Computing the Singular Value Decomposition of 3x3
matrices with minimal branching and elementary floating point operations" (UW-Madison TR1690), §2-4, with exact
rather than approximate Jacobi rotations:

1. the symmetric eigenproblem of A = F^T F by cyclic Jacobi sweeps over the pairs (0, 1), (0, 2), (1, 2), each
   rotation the exact one that zeroes a_pq (Golub & Van Loan, "Matrix Computations", 4th ed., §8.5.2, Algorithm
   8.5.1 sym.schur2: t = sign(d) e / (|d| + sqrt(d^2 + e^2)) with d = a_qq - a_pp, e = 2 a_pq; c = 1 / sqrt(1 + t^2),
   s = t c), accumulated into V;
2. the eigenvalues sorted in decreasing order, V's columns with them (a swap negates one column: det V stays +1);
3. B = F V, whose columns are orthogonal, reduced by three Givens rotations to an upper triangular R = U^T B (QR;
   McAdams et al. §4): the singular values are R's diagonal, the first two >= 0 and the last carrying sign(det F);
   U, the product of the rotations, has det U = +1. Computed from B rather than as F V / sigma, U stays accurate for
   tiny or zero singular values.

Every op is +, -, *, / or sqrt on whole component tensors (correctly rounded in a SIMD lane and in a scalar tail), so
a matrix's result does not depend on its position in the batch. `JACOBI_SWEEPS` sweeps were measured to reach
LAPACK's reconstruction accuracy (float64 ~1e-15) on random matrices; a 3x3 cyclic Jacobi converges quadratically.
"""

from __future__ import annotations

import torch

__all__ = ["JACOBI_SWEEPS", "svd3_jacobi"]

JACOBI_SWEEPS = 4  #: cyclic sweeps over the 3 pairs (measured: see `svd3_jacobi`)


def _jacobi_rotation(app, aqq, apq):
    """(c, s, t) of the rotation zeroing a_pq of a symmetric 2x2 block (Golub & Van Loan Alg. 8.5.1):
    t = sign(d) e / (|d| + sqrt(d^2 + e^2)), d = a_qq - a_pp, e = 2 a_pq, its sign taken from d e (IEEE signed zeros:
    +0 e has e's sign); t = 0 where the block is already diagonal (e = 0)."""
    d, e = aqq - app, 2 * apq
    den = (d.abs() + torch.sqrt(d * d + e * e)).clamp_min(torch.finfo(d.dtype).tiny)
    t = torch.copysign(e.abs() / den, d * e)
    c = 1 / torch.sqrt(1 + t * t)
    return c, t * c, t


def _eigen_sym(a):
    """Eigenvalues `lam[3]` and eigenvector columns `v[j] (3, P)` of the symmetric matrices whose components are
    `a[i][j] (P,)` (a list of lists, a[i][j] is a[j][i]), by cyclic Jacobi (Golub & Van Loan's updates: a_pp -= t
    a_pq, a_qq += t a_pq, a_rp <- c a_rp - s a_rq, a_rq <- s a_rp + c a_rq, and the same on V's columns p, q)."""
    a = [row[:] for row in a]
    eye = torch.eye(3, dtype=a[0][0].dtype, device=a[0][0].device)[:, :, None].expand(3, 3, a[0][0].shape[0])
    v = list(eye.unbind(1))  # columns
    for _ in range(JACOBI_SWEEPS):
        for p, q in ((0, 1), (0, 2), (1, 2)):
            r = 3 - p - q
            c, s, t = _jacobi_rotation(a[p][p], a[q][q], a[p][q])
            a[p][p], a[q][q] = a[p][p] - t * a[p][q], a[q][q] + t * a[p][q]
            a[r][p], a[r][q] = c * a[r][p] - s * a[r][q], s * a[r][p] + c * a[r][q]
            a[p][r], a[q][r] = a[r][p], a[r][q]
            a[p][q] = a[q][p] = torch.zeros_like(c)
            v[p], v[q] = c * v[p] - s * v[q], s * v[p] + c * v[q]
    return [a[0][0], a[1][1], a[2][2]], v


def _sort_decreasing(lam, v):
    """Eigenvalues in decreasing order with V's columns `v[j] (3, P)`; each swap negates one of the two columns
    (det V stays +1)."""
    lam, v = lam[:], v[:]
    for p, q in ((0, 1), (0, 2), (1, 2)):
        swap = lam[p] < lam[q]
        lam[p], lam[q] = torch.where(swap, lam[q], lam[p]), torch.where(swap, lam[p], lam[q])
        v[p], v[q] = torch.where(swap, -v[q], v[p]), torch.where(swap, v[p], v[q])
    return lam, v


def _givens(x, y):
    """(c, s) with [c s; -s c] [x; y] = [r; 0], r = sqrt(x^2 + y^2) >= 0; c = 1, s = 0 where x = y = 0."""
    r = torch.sqrt(x * x + y * y)
    ok = r > 0
    rs = torch.where(ok, r, torch.ones_like(r))
    return torch.where(ok, x / rs, torch.ones_like(r)), torch.where(ok, y / rs, torch.zeros_like(r))


def svd3_jacobi(F: torch.Tensor):
    """(U, sigma, V) with F = U diag(sigma) V^T, det U = det V = +1, sigma decreasing in magnitude (up to rounding),
    sigma_0, sigma_1 >= 0 and sign(sigma_2) = sign(det F) (the rotation-variant SVD). `F (..., 3, 3)` -> `(..., 3,
    3)`, `(..., 3)`, `(..., 3, 3)`. Not differentiable by itself (constitutive.svd3 gives it its backward)."""
    shape = F.shape[:-2]
    f = F.reshape(-1, 3, 3)
    cols = [f[:, :, j].T for j in range(3)]  # (3, P) each: F's columns
    ata = [[(cols[i] * cols[j]).sum(0) for j in range(3)] for i in range(3)]
    lam, v = _sort_decreasing(*_eigen_sym(ata))
    del lam  # the singular values come from R (accurate also where sigma^2 underflows)
    V = torch.stack(v, 1)  # (3 rows, 3 columns, P)
    # rows of B = F V: b_i = sum_k F_ik V_k (rows (3, P)), then Givens rotations on rows (0, 1), (0, 2), (1, 2)
    b = [f[:, i, 0] * V[0] + f[:, i, 1] * V[1] + f[:, i, 2] * V[2] for i in range(3)]
    qt = list(torch.eye(3, dtype=F.dtype, device=F.device)[:, :, None].expand(3, 3, f.shape[0]).unbind(0))  # U^T
    for p, q, col in ((0, 1, 0), (0, 2, 0), (1, 2, 1)):
        c, s = _givens(b[p][col], b[q][col])
        b[p], b[q] = c * b[p] + s * b[q], c * b[q] - s * b[p]
        qt[p], qt[q] = c * qt[p] + s * qt[q], c * qt[q] - s * qt[p]
    U = torch.stack(qt, 0).permute(2, 1, 0).reshape(*shape, 3, 3)  # U[i, j] = U^T[j, i]
    sigma = torch.stack((b[0][0], b[1][1], b[2][2]), -1).reshape(*shape, 3)
    return U, sigma, V.permute(2, 0, 1).reshape(*shape, 3, 3)

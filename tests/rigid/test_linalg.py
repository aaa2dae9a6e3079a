"""The rigid solver's small linear algebra: correct against torch.linalg, and position-independent in a batch
(env i's bits do not depend on where it sits or how many envs there are), which batched-equals-serial needs."""

import numpy as np
import pytest
import torch

from genesis_torch.solvers.rigid import linalg


def _spd(n, batch, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(batch, n, n, generator=g, dtype=dtype)
    return A @ A.mT + 0.1 * torch.eye(n, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_solvers_match_torch(dtype):
    H = _spd(9, 16, dtype)
    b = torch.randn(16, 9, dtype=dtype)
    tol = 1e-10 if dtype == torch.float64 else 1e-3
    ref = torch.linalg.solve(H, b)
    assert torch.allclose(linalg.solve_spd(H, b), ref, rtol=tol, atol=tol)
    A = H + 0.05 * torch.randn(16, 9, 9, dtype=dtype)  # not symmetric, still diagonally dominant enough
    assert torch.allclose(linalg.lu_solve(A, b), torch.linalg.solve(A, b), rtol=tol, atol=tol)
    M = torch.randn(16, 4, 5, dtype=dtype)
    N = torch.randn(16, 5, 3, dtype=dtype)
    x = torch.randn(16, 5, dtype=dtype)
    assert torch.allclose(linalg.matmul(M, N), M @ N, rtol=tol, atol=tol)
    assert torch.allclose(linalg.matvec(M, x), (M @ x[..., None])[..., 0], rtol=tol, atol=tol)
    assert torch.allclose(linalg.vecmat(x, N), (x[:, None, :] @ N)[:, 0], rtol=tol, atol=tol)


def test_cholesky_of_indefinite_matrix_is_nan():
    H = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    H[1, 2, 2] = -1.0
    L = linalg.cholesky(H)
    assert torch.equal(L[0], torch.eye(3, dtype=torch.float64))
    assert torch.isnan(L[1]).all()


def test_gather_sum_matches_dense_matrix_product():
    rng = np.random.default_rng(0)
    mask = rng.random((6, 8)) < 0.4
    x = torch.from_numpy(rng.standard_normal((3, 8, 2, 2)))
    out = linalg.gather_sum(x, linalg.padded_rows(mask, "cpu"))
    ref = torch.einsum("pq,bqij->bpij", torch.from_numpy(mask.astype(np.float64)), x)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_results_do_not_depend_on_batch_position(dtype):
    H = _spd(9, 8, dtype, seed=1)
    b = torch.randn(8, 9, dtype=dtype)
    alone = torch.stack([linalg.solve_spd(H[i:i + 1], b[i:i + 1])[0] for i in range(8)])
    for batch in (8, 61, 1000):
        reps = -(-batch // 8)
        Hb, bb = H.repeat(reps, 1, 1)[:batch], b.repeat(reps, 1)[:batch]
        out = linalg.solve_spd(Hb, bb)
        lu = linalg.lu_solve(Hb, bb)
        for i in range(batch):
            assert torch.equal(out[i], alone[i % 8]), f"solve_spd env {i} of {batch} differs from running it alone"
            assert torch.equal(lu[i], lu[i % 8])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 5, 8, 13, 66, 274])
def test_row_sums_ignore_trailing_zero_rows_bitwise(dtype, n):
    """The solver's reductions over constraint rows: an env alone has fewer (empty) trailing rows than in a batch
    whose fullest env has more contacts; its sums must not change by a bit, and must be the plain sums."""
    g = torch.Generator().manual_seed(n)
    scale = torch.logspace(-3, 3, n, dtype=dtype)[None, :, None]
    J = torch.randn(4, n, 7, generator=g, dtype=dtype) * scale
    h = torch.rand(4, n, generator=g, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    ref_sum, ref_gram = J.sum(1), J.mT @ (h[..., None] * J)
    assert torch.allclose(linalg.row_sum(J), ref_sum, rtol=tol, atol=tol * ref_sum.abs().max())
    assert torch.allclose(linalg.gram(J, h), ref_gram, rtol=tol, atol=tol * ref_gram.abs().max())
    for pad in (1, 3, 8, 29):
        Jp = torch.cat((J, torch.zeros(4, pad, 7, dtype=dtype)), 1)
        hp = torch.cat((h, torch.rand(4, pad, generator=g, dtype=dtype)), 1)  # weights of empty rows are arbitrary
        assert torch.equal(linalg.row_sum(Jp), linalg.row_sum(J))
        assert torch.equal(linalg.row_sum(Jp[..., 0]), linalg.row_sum(J[..., 0]))
        assert torch.equal(linalg.gram(Jp, hp), linalg.gram(J, h))
    for i in range(4):  # and an env's bits do not depend on the batch around it
        assert torch.equal(linalg.row_sum(J[i:i + 1]), linalg.row_sum(J)[i:i + 1])
        assert torch.equal(linalg.gram(J[i:i + 1], h[i:i + 1]), linalg.gram(J, h)[i:i + 1])


def test_gram_skips_rows_weighted_zero_in_every_env():
    """Rows with zero weight in every env (inactive limits) are skipped by blocks: the result is still J^T diag(h) J
    and does not depend on what those rows hold."""
    g = torch.Generator().manual_seed(5)
    J = torch.randn(3, 30, 6, generator=g, dtype=torch.float64)
    h = torch.rand(3, 30, generator=g, dtype=torch.float64)
    h[:, 8:16] = 0.0  # a whole block unused in every env
    h[1, 20] = 0.0  # a zero inside a used block
    ref = J.mT @ (h[..., None] * J)
    assert torch.allclose(linalg.gram(J, h), ref, rtol=1e-12, atol=1e-12)
    J2 = J.clone()
    J2[:, 8:16] = torch.randn(3, 8, 6, generator=g, dtype=torch.float64)
    assert torch.equal(linalg.gram(J2, h), linalg.gram(J, h))
    assert torch.equal(linalg.gram(J, torch.zeros_like(h)), torch.zeros(3, 6, 6, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gram_adds_each_envs_own_rows_with_the_dense_bits(dtype):
    """Eagerly, `gram` adds for each env only the rows it weights (contact Hessians: a few of many row slots per
    env). Its bits must be the dense form's (`_gram_dense`, what the traced step graph runs), with weights zero in a
    different pattern in each env over 5 blocks (so float32 block sums go through cumsum's double accumulation),
    and an env's bits must not depend on the batch (alone, in a shuffled sub-batch)."""
    g = torch.Generator().manual_seed(11)
    B, n, m = 64, 37, 9
    J = torch.randn(B, n, m, generator=g, dtype=dtype) * torch.logspace(-2, 2, n, dtype=dtype)[None, :, None]
    h = torch.rand(B, n, generator=g, dtype=dtype) * (torch.rand(B, n, generator=g) < 0.3)
    h[:, 8:16] = 0.0  # a block no env weights
    h[3] = 0.0  # an env with no weighted row
    h[5, :] = torch.rand(n, generator=g, dtype=dtype)  # an env weighting every row
    dense, got = linalg._gram_dense(J, h), linalg.gram(J, h)
    assert torch.equal(got, dense)
    ref = J.mT @ (h[..., None] * J)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert torch.allclose(got, ref, rtol=tol, atol=tol * ref.abs().max())
    assert torch.equal(got[3], torch.zeros(m, m, dtype=dtype))
    for i in (0, 3, 5, 63):
        assert torch.equal(linalg.gram(J[i:i + 1], h[i:i + 1]), got[i:i + 1])
    idx = torch.randperm(B, generator=g)[:17]
    assert torch.equal(linalg.gram(J[idx], h[idx]), got[idx])


def test_gram_gradient_matches_the_dense_form():
    """`gram` is differentiable with the dense form's gradient (float64), also for the weights that are zero (the
    row-by-row form skips those rows: under autograd for `h` the dense form runs), and for J alone."""
    g = torch.Generator().manual_seed(2)
    J = torch.randn(6, 19, 5, generator=g, dtype=torch.float64, requires_grad=True)
    h = (torch.rand(6, 19, generator=g, dtype=torch.float64) * (torch.rand(6, 19, generator=g) < 0.5))
    h.requires_grad_(True)
    w = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    gJ, gh = torch.autograd.grad((linalg.gram(J, h) * w).sum(), (J, h))
    dJ, dh = torch.autograd.grad((linalg._gram_dense(J, h) * w).sum(), (J, h))
    assert torch.allclose(gJ, dJ, rtol=1e-12, atol=1e-12) and gJ.abs().max() > 0
    # rows an env does not weight get no gradient through J there, but their weights do (d/dh_i = J_i^T w J_i)
    assert torch.allclose(gh, dh, rtol=1e-12, atol=1e-12) and (gh[h == 0] != 0).any()
    gJ2, = torch.autograd.grad((linalg.gram(J, h.detach()) * w).sum(), (J,))  # the row-by-row form
    assert torch.allclose(gJ2, dJ, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weighted_row_sum_skips_zero_blocks_with_row_sums_bits(dtype):
    """`weighted_row_sum` (J^T f of the constraint forces; from 16 x ROWS_MIN_ENVS envs it sums each env's blocks
    with a nonzero weight only) has `row_sum`'s bits, alone or in a batch, and its gradient for J."""
    g = torch.Generator().manual_seed(4)
    B, n, m = 16 * linalg.ROWS_MIN_ENVS + 7, 43, 6
    J = torch.randn(B, n, m, generator=g, dtype=dtype)
    w = torch.randn(B, n, generator=g, dtype=dtype) * (torch.rand(B, n, generator=g) < 0.15)
    w[:, 16:24] = 0.0
    w[9] = 0.0
    got = linalg.weighted_row_sum(J, w)
    assert torch.equal(got, linalg.row_sum(w[..., None] * J))
    assert torch.equal(got[9], torch.zeros(m, dtype=dtype))
    for i in (0, 9, B - 1):
        assert torch.equal(linalg.weighted_row_sum(J[i:i + 1], w[i:i + 1]), got[i:i + 1])
    Jg = J.double().requires_grad_(True)
    G = torch.randn(B, m, generator=g, dtype=torch.float64)
    gJ, = torch.autograd.grad((linalg.weighted_row_sum(Jg, w.double()) * G).sum(), (Jg,))
    assert torch.allclose(gJ, w.double()[..., None] * G[:, None, :], rtol=1e-12, atol=1e-12)


def _slot_rows(B, S, per, nv, K, dtype, seed):
    """Rows in S slots of `per` rows, each slot touching K random distinct dofs (some padded with nv): the dense J,
    its entries at the columns Jc, weights, columns and validity."""
    g = torch.Generator().manual_seed(seed)
    cols = torch.stack([torch.stack([torch.randperm(nv, generator=g)[:K] for _ in range(S)]) for _ in range(B)])
    cols[:, ::3, -2:] = nv  # padding
    vals = torch.randn(B, S, per, K, generator=g, dtype=dtype)
    J = torch.zeros(B, S, per, nv + 1, dtype=dtype)
    J.scatter_(-1, cols[:, :, None, :].expand(B, S, per, K), vals)
    Jc = torch.where(cols[:, :, None, :] == nv, 0.0, vals)
    J = J[..., :nv].reshape(B, S * per, nv)
    h = torch.rand(B, S * per, generator=g, dtype=dtype)
    return J, Jc, h, cols, torch.ones(B, S * per, dtype=torch.bool)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("per", [1, 3, 4])
def test_slot_gram_is_the_gram_of_the_rows(dtype, per):
    """J^T diag(h) J (+ the cones' J_c^T Hc J_c) from the slots' columns equals the dense product; trailing invalid
    slots (their rows zero, weights arbitrary) change no bit, nor does an env's position in the batch."""
    B, S, nv, K = 3, 11, 40, 7
    J, Jc, h, cols, valid = _slot_rows(B, S, per, nv, K, dtype, seed=per)
    Hc = None
    ref = J.mT @ (h[..., None] * J)
    if per == 3:
        A = torch.randn(B, S, 3, 3, dtype=dtype)
        Hc = A @ A.mT
        Js = J.unflatten(1, (S, 3))
        ref = ref + (Js.mT @ Hc @ Js).sum(1)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    got = linalg.slot_gram(Jc, h, cols, valid, nv, Hc)
    assert torch.allclose(got, ref, rtol=tol, atol=tol * ref.abs().max())
    Jp = torch.cat((Jc, torch.zeros(B, 2, per, K, dtype=dtype)), 1)
    hp = torch.cat((h, torch.rand(B, 2 * per, dtype=dtype)), 1)
    colsp = torch.cat((cols, torch.randint(0, nv, (B, 2, K))), 1)
    validp = torch.cat((valid, torch.zeros(B, 2 * per, dtype=torch.bool)), 1)
    Hcp = None if Hc is None else torch.cat((Hc, torch.rand(B, 2, 3, 3, dtype=dtype)), 1)
    assert torch.equal(linalg.slot_gram(Jp, hp, colsp, validp, nv, Hcp), got)
    for i in range(B):
        alone = linalg.slot_gram(Jc[i:i + 1], h[i:i + 1], cols[i:i + 1], valid[i:i + 1], nv,
                                 None if Hc is None else Hc[i:i + 1])
        assert torch.equal(alone, got[i:i + 1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [linalg.SPARSE_MIN_DOFS, 97])
def test_large_solves_match_torch_and_do_not_depend_on_batch_position(dtype, n):
    """From `SPARSE_MIN_DOFS` dofs on, solves use LAPACK's triangular solves: correct, and an env's bits are those
    it gets alone, at any position of batches of 8, 61 and 300."""
    H = _spd(n, 8, dtype, seed=2) + n * torch.eye(n, dtype=dtype)
    b = torch.randn(8, n, dtype=dtype)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(linalg.solve_spd(H, b), torch.linalg.solve(H, b), rtol=tol, atol=tol)
    alone = torch.stack([linalg.solve_spd(H[i:i + 1], b[i:i + 1])[0] for i in range(8)])
    for batch in (8, 61, 300):
        reps = -(-batch // 8)
        out = linalg.solve_spd(H.repeat(reps, 1, 1)[:batch], b.repeat(reps, 1)[:batch])
        for i in range(batch):
            assert torch.equal(out[i], alone[i % 8]), f"env {i} of {batch}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_structured_rows_products_equal_the_dense_ones(dtype):
    """`ConstraintRows.mv` (J x) and `joint_force` (J^T f) of rows with a dense head and slot-structured contact rows
    equal the dense products; appending empty slots changes no bit of J^T f."""
    from genesis_torch.solvers.rigid.constraints import ConstraintRows
    B, S, per, nv, K = 3, 9, 4, 40, 12
    J, Jc, h, cols, valid = _slot_rows(B, S, per, nv, K, dtype, seed=7)
    head = torch.randn(B, 5, nv, dtype=dtype)
    Jall = torch.cat((head, J), 1)
    n = Jall.shape[1]
    zeros = torch.zeros(B, n, dtype=dtype)
    rows = ConstraintRows(Jall, zeros, zeros, torch.ones(B, n, dtype=torch.bool), cols=cols, Jc=Jc, per=per)
    x, f = torch.randn(B, nv, dtype=dtype), torch.randn(B, n, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert torch.allclose(rows.mv(x), (Jall @ x[..., None])[..., 0], rtol=tol, atol=tol * 10)
    assert torch.allclose(rows.joint_force(f), (Jall.mT @ f[..., None])[..., 0], rtol=tol, atol=tol * 10)
    z = torch.zeros(B, 2 * per, dtype=dtype)
    more = ConstraintRows(torch.cat((Jall, torch.zeros(B, 2 * per, nv, dtype=dtype)), 1), torch.cat((zeros, z), 1),
                          torch.cat((zeros, z), 1), torch.cat((rows.valid, z.bool()), 1),
                          cols=torch.cat((cols, torch.randint(0, nv, (B, 2, K))), 1),
                          Jc=torch.cat((Jc, torch.zeros(B, 2, per, K, dtype=dtype)), 1), per=per)
    assert torch.equal(more.joint_force(torch.cat((f, torch.randn(B, 2 * per, dtype=dtype)), 1)), rows.joint_force(f))

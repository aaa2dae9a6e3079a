"""genesis_torch.utils.geom against MuJoCo's `mju_*` functions and scipy's Rotation on random inputs, float64 and
float32, plus Genesis' conventions (Euler sequences, argument names), NumPy in/out, batching, checks and gradients."""

from __future__ import annotations

import inspect

import mujoco
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError
from genesis_torch.utils import geom
from genesis_torch.utils.geom import (  # the names Genesis' Go2 locomotion example imports
    inv_quat, quat_to_xyz, transform_by_quat, transform_quat_by_quat, inv_transform_by_quat, xyz_to_quat)

from .conftest import cpu_runtime

N = 300
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])


def rand_quats(n=N, seed=0):
    return Rotation.random(n, random_state=seed).as_quat(scalar_first=True)


def t(x, dtype):
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def err(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def same_rotation_err(q, ref):
    """Max error between quaternions up to their sign (q and -q are one rotation)."""
    q, ref = np.asarray(q, np.float64), np.asarray(ref, np.float64)
    sign = np.where((q * ref).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    return err(q * sign, ref)


def mju(fn, out_shape, *args):
    out = np.empty((len(args[0]),) + out_shape)
    for i, row in enumerate(zip(*args)):
        o = np.empty(out_shape)
        fn(o.reshape(-1), *[np.ascontiguousarray(a, dtype=np.float64).reshape(-1) if isinstance(a, np.ndarray) else a
                            for a in row])
        out[i] = o
    return out


# ------------------------------------------------------------------ against MuJoCo


@DTYPES
def test_quaternion_algebra_matches_mujoco(dtype):
    rng = np.random.default_rng(1)
    u, v, vec = rand_quats(seed=1), rand_quats(seed=2), rng.normal(size=(N, 3))
    tol = TOL[dtype]
    assert err(transform_quat_by_quat(t(v, dtype), t(u, dtype)), mju(mujoco.mju_mulQuat, (4,), u, v)) < tol
    assert err(inv_quat(t(u, dtype)), mju(mujoco.mju_negQuat, (4,), u)) < tol
    assert err(transform_by_quat(t(vec, dtype), t(u, dtype)), mju(mujoco.mju_rotVecQuat, (3,), vec, u)) < 4 * tol
    neg = mju(mujoco.mju_negQuat, (4,), u)
    assert err(inv_transform_by_quat(t(vec, dtype), t(u, dtype)), mju(mujoco.mju_rotVecQuat, (3,), vec, neg)) < 4 * tol
    assert err(geom.quat_to_R(t(u, dtype)), mju(mujoco.mju_quat2Mat, (9,), u).reshape(N, 3, 3)) < tol
    R = mju(mujoco.mju_quat2Mat, (9,), u).reshape(N, 3, 3)
    assert same_rotation_err(geom.R_to_quat(t(R, dtype)), mju(mujoco.mju_mat2Quat, (4,), R)) < tol
    axis, angle = rng.normal(size=(N, 3)), rng.uniform(-2 * np.pi, 2 * np.pi, N)
    unit = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    ref = mju(mujoco.mju_axisAngle2Quat, (4,), unit, angle)
    assert err(geom.axis_angle_to_quat(t(angle, dtype), t(axis, dtype)), ref) < tol  # axis normalised, as Genesis


@DTYPES
@pytest.mark.parametrize("rpy,seq", [(False, "xyz"), (True, "XYZ")])
def test_euler_matches_mujoco_sequence(dtype, rpy, seq):
    """rpy=False is MuJoCo's intrinsic "xyz" (Rx Ry Rz); rpy=True its extrinsic "XYZ" (Rz Ry Rx)."""
    xyz = np.random.default_rng(3).uniform(-np.pi, np.pi, (N, 3))
    ref = mju(mujoco.mju_euler2Quat, (4,), xyz, [seq] * N)
    assert err(xyz_to_quat(t(xyz, dtype), rpy=rpy), ref) < TOL[dtype]
    assert err(xyz_to_quat(t(np.rad2deg(xyz), dtype), rpy=rpy, degrees=True), ref) < TOL[dtype] * 10


# ------------------------------------------------------------------ against scipy


@DTYPES
@pytest.mark.parametrize("rpy,seq", [(False, "XYZ"), (True, "xyz")])
def test_euler_round_trip_matches_scipy(dtype, rpy, seq):
    """scipy's "XYZ" is intrinsic, "xyz" extrinsic (Genesis' morph `euler` is the latter, in degrees)."""
    q = rand_quats(seed=4)
    rot = Rotation.from_quat(q, scalar_first=True)
    ref = rot.as_euler(seq)
    ok = np.abs(np.cos(ref[:, 1])) > 1e-3  # away from gimbal lock, where the angles are unique
    got = quat_to_xyz(t(q, dtype), rpy=rpy)
    tol = TOL[dtype] * (10 if dtype == torch.float32 else 100)  # near-lock angles amplify rounding by 1/cos(pitch)
    assert err(got[ok], ref[ok]) < tol
    assert err(geom.quat_to_xyz(t(q, dtype), rpy=rpy, degrees=True)[ok], np.rad2deg(ref[ok])) < tol * 60
    assert err(geom.R_to_xyz(t(rot.as_matrix(), dtype), rpy=rpy)[ok], ref[ok]) < tol
    assert same_rotation_err(xyz_to_quat(got, rpy=rpy), q) < 10 * TOL[dtype]  # every row, gimbal lock included
    assert err(xyz_to_quat(t(ref, dtype), rpy=rpy), Rotation.from_euler(seq, ref).as_quat(scalar_first=True)) \
        < 10 * TOL[dtype]


@pytest.mark.parametrize("rpy", [False, True])
def test_gimbal_lock_gives_zero_roll(rpy):
    xyz = torch.tensor([[0.3, np.pi / 2, -0.7], [-1.1, -np.pi / 2, 2.0]], dtype=torch.float64)
    q = xyz_to_quat(xyz, rpy=rpy)
    back = quat_to_xyz(q, rpy=rpy)
    assert torch.all(back[:, 0] == 0) and err(back[:, 1], xyz[:, 1]) < 1e-7
    assert same_rotation_err(xyz_to_quat(back, rpy=rpy), q) < 1e-12


def test_genesis_euler_conventions():
    """Genesis' morphs take `euler` in degrees, scipy's extrinsic x-y-z; `euler_to_quat` / `euler_to_R` are that."""
    euler = np.array([20.0, -35.0, 110.0])
    ref = Rotation.from_euler("xyz", euler, degrees=True)
    q = geom.euler_to_quat(euler.tolist())
    assert isinstance(q, np.ndarray) and err(q, ref.as_quat(scalar_first=True)) < 1e-12
    assert err(geom.euler_to_R(euler), ref.as_matrix()) < 1e-12
    assert same_rotation_err(q, gs.morphs.Box(size=(1, 1, 1), euler=tuple(euler)).quat) < 1e-12
    assert err(geom.quat_to_xyz(q, rpy=True, degrees=True), euler) < 1e-11


@DTYPES
def test_rotvec_slerp_rot6d_match_scipy(dtype):
    q0, q1 = rand_quats(seed=5), rand_quats(seed=6)
    rot = Rotation.from_quat(q0, scalar_first=True)
    tol = TOL[dtype]
    assert err(geom.quat_to_rotvec(t(q0, dtype)), rot.as_rotvec()) < 10 * tol
    assert same_rotation_err(geom.rotvec_to_quat(t(rot.as_rotvec(), dtype)), q0) < 10 * tol
    assert err(geom.rotvec_to_R(t(rot.as_rotvec(), dtype)), rot.as_matrix()) < 10 * tol
    assert err(geom.R_to_rotvec(t(rot.as_matrix(), dtype)), rot.as_rotvec()) < 10 * tol
    assert err(geom.axis_angle_to_R(t(rot.as_rotvec(), dtype), t(rot.magnitude(), dtype)), rot.as_matrix()) < tol * 4
    small = np.array([[1e-9, -2e-9, 3e-10], [0.0, 0.0, 0.0]])
    assert err(geom.rotvec_to_quat(t(small, dtype)), Rotation.from_rotvec(small).as_quat(scalar_first=True)) < tol
    assert err(geom.quat_to_rotvec(geom.rotvec_to_quat(t(small, dtype))), small) < tol * 1e-6
    s = np.random.default_rng(7).uniform(0, 1, N)
    ref = np.stack([Slerp([0, 1], Rotation.from_quat(np.stack([a, b]), scalar_first=True))(x).as_quat(
        scalar_first=True) for a, b, x in zip(q0, q1, s)])
    assert same_rotation_err(geom.slerp(t(q0, dtype), t(q1, dtype), t(s, dtype)), ref) < 10 * tol
    assert err(geom.slerp(t(q0, dtype), t(q0, dtype), 0.3), q0) < tol  # the linear branch
    R = rot.as_matrix()
    assert err(geom.rot6d_to_R(geom.R_to_rot6d(t(R, dtype))), R) < tol


# ------------------------------------------------------------------ transforms


@DTYPES
def test_transforms(dtype):
    rng = np.random.default_rng(8)
    q, trans, pos = rand_quats(seed=9), rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    R = Rotation.from_quat(q, scalar_first=True).as_matrix()
    T = np.tile(np.eye(4), (N, 1, 1))
    T[:, :3, :3], T[:, :3, 3] = R, trans
    tol = 10 * TOL[dtype]
    qt, tt, pt, Rt, Tt = (t(x, dtype) for x in (q, trans, pos, R, T))
    moved = np.einsum("nij,nj->ni", R, pos) + trans
    assert err(geom.trans_quat_to_T(tt, qt), T) < tol and err(geom.trans_R_to_T(tt, Rt), T) < tol
    assert err(geom.T_to_trans(Tt), Tt[:, :3, 3]) == 0 and same_rotation_err(geom.T_to_quat(Tt), q) < tol
    assert err(geom.transform_by_trans_quat(pt, tt, qt), moved) < tol
    assert err(geom.transform_by_T(pt, Tt), moved) < tol
    assert err(geom.transform_by_trans_R(pt, tt, Rt), moved) < tol
    assert err(geom.inv_transform_by_trans_quat(t(moved, dtype), tt, qt), pos) < tol
    assert err(geom.inv_transform_by_T(t(moved, dtype), Tt), pos) < tol
    assert err(geom.inv_T(Tt) @ Tt, np.tile(np.eye(4), (N, 1, 1))) < tol
    assert err(geom.transform_by_xyz(pt, geom.quat_to_xyz(qt)), np.einsum("nij,nj->ni", R, pos)) < tol
    # points (B, M, 3) with one matrix per batch row, as Genesis' transform_by_R
    pts = rng.normal(size=(N, 5, 3))
    assert err(geom.transform_by_R(t(pts, dtype), Rt), np.einsum("nij,nmj->nmi", R, pts)) < tol
    assert err(geom.transform_by_T(t(pts, dtype), Tt), np.einsum("nij,nmj->nmi", R, pts) + trans[:, None]) < tol
    assert err(geom.inv_transform_by_T(geom.transform_by_T(t(pts, dtype), Tt), Tt), pts) < tol
    # pose composition and its inverse
    q2, p2 = t(rand_quats(seed=10), dtype), t(rng.normal(size=(N, 3)), dtype)
    new_pos, new_quat = geom.transform_pos_quat_by_trans_quat(p2, q2, tt, qt)
    assert err(new_pos, geom.transform_by_trans_quat(p2, tt, qt)) < tol
    assert same_rotation_err(new_quat, mju(mujoco.mju_mulQuat, (4,), q, q2.double().numpy())) < tol
    back_pos, back_quat = geom.inv_transform_pos_quat_by_trans_quat(new_pos, new_quat, tt, qt)
    assert err(back_pos, p2) < tol and same_rotation_err(back_quat, q2) < tol
    assert err(geom.R_to_T(Rt)[:, :3, :3], Rt) == 0 and err(geom.trans_to_T(tt)[:, :3, 3], tt) == 0
    assert err(geom.trans_to_T(tt)[:, :3, :3], np.tile(np.eye(3), (N, 1, 1))) == 0


def test_non_unit_and_zero_quaternions():
    q = torch.tensor([[2.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    assert err(transform_by_quat(v, q), [[0, 1, 0], [1, 2, 3]]) < 1e-15  # rotation of q / |q|; zero: identity
    assert err(geom.quat_to_R(q[:1]), [[[0, -1, 0], [1, 0, 0], [0, 0, 1]]]) < 1e-15
    assert err(transform_quat_by_quat(q[:1], q[:1]), [[0, 0, 0, 1]]) < 1e-15  # normalised product


# ------------------------------------------------------------------ Genesis' API shape


def test_batching_broadcast_numpy_and_dtypes():
    q = torch.as_tensor(rand_quats(24, seed=11)).reshape(2, 3, 4, 4)
    assert quat_to_xyz(q).shape == (2, 3, 4, 3) and geom.quat_to_R(q).shape == (2, 3, 4, 3, 3)
    v = torch.randn(3, 1, 3, dtype=torch.float64)
    assert transform_by_quat(v, q).shape == (2, 3, 4, 3)  # v broadcast over the batch
    assert transform_by_quat(torch.ones(3, dtype=torch.float64), q[0, 0]).shape == (4, 3)
    qn = rand_quats(5, seed=12).astype(np.float32)
    for fn, args in [(quat_to_xyz, (qn,)), (inv_quat, (qn,)), (geom.quat_to_R, (qn,)),
                     (transform_quat_by_quat, (qn, qn)), (transform_by_quat, (qn[:, 1:], qn))]:
        out = fn(*args)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32, fn.__name__
        assert err(out, fn(*map(torch.from_numpy, args))) == 0
    assert xyz_to_quat(np.array([0, 0, 90]), rpy=True, degrees=True).dtype == np.float64  # ints promote
    R = np.zeros((5, 3, 3))
    assert geom.quat_to_R(qn.astype(np.float64), out=R) is R and err(R, geom.quat_to_R(qn)) < 1e-6
    pos, quat = geom.T_to_trans_quat(geom.trans_quat_to_T(np.zeros((5, 3)), qn.astype(np.float64)))
    assert isinstance(quat, np.ndarray) and same_rotation_err(quat, qn) < 1e-6
    assert geom.random_quaternion(7).shape == (7, 4)
    assert err(np.linalg.norm(geom.random_quaternion(7), axis=-1), np.ones(7)) < 1e-12


def test_genesis_signatures():
    params = lambda fn: {n: p.default for n, p in inspect.signature(fn).parameters.items()}  # noqa: E731
    assert params(xyz_to_quat) == {"xyz": inspect._empty, "rpy": False, "degrees": False}
    assert params(quat_to_xyz) == {"quat": inspect._empty, "rpy": False, "degrees": False}
    assert params(geom.normalize) == {"x": inspect._empty, "eps": 1e-12}
    assert list(params(geom.axis_angle_to_quat)) == ["angle", "axis"]
    assert list(params(transform_quat_by_quat)) == ["v", "u"]
    assert params(geom.trans_quat_to_T) == {"trans": None, "quat": None, "out": None}
    assert gs.quat_to_xyz is quat_to_xyz and gs.utils.geom is geom  # Genesis: `from .utils.geom import *`


def test_invalid_inputs_raise():
    q = torch.zeros(5, 4)
    with pytest.raises(InvalidInputError, match=r"quat must have shape \(\.\.\., 4\); got \(5, 3\)"):
        quat_to_xyz(torch.zeros(5, 3))
    with pytest.raises(InvalidInputError, match=r"xyz must have shape \(\.\.\., 3\)"):
        xyz_to_quat(q)
    with pytest.raises(InvalidInputError, match=r"R must have shape \(\.\.\., 3, 3\)"):
        geom.R_to_quat(torch.zeros(4, 4))
    with pytest.raises(InvalidInputError, match=r"T must have shape \(\.\.\., 4, 4\)"):
        geom.inv_T(torch.zeros(3, 3))
    with pytest.raises(InvalidInputError, match="all be torch.Tensor or all np.ndarray"):
        transform_by_quat(np.zeros(3), q)
    with pytest.raises(InvalidInputError, match="must be a torch.Tensor or np.ndarray"):
        inv_quat([1.0, 0.0, 0.0, 0.0])
    with pytest.raises(InvalidInputError, match="do not broadcast"):
        transform_by_quat(torch.zeros(3, 3), q)
    with pytest.raises(InvalidInputError, match="out must have shape"):
        geom.quat_to_R(q, out=torch.zeros(4, 3, 3))


def test_gradients_float64():
    torch.manual_seed(0)
    q, q2 = (torch.nn.functional.normalize(torch.randn(6, 4, dtype=torch.float64), dim=-1).requires_grad_()
              for _ in range(2))
    R = geom.quat_to_R(q.detach()).requires_grad_()
    v = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    xyz = (torch.rand(6, 3, dtype=torch.float64) - 0.5).requires_grad_()
    for fn, args in [(transform_by_quat, (v, q)), (transform_quat_by_quat, (q, q2)), (quat_to_xyz, (q,)),
                     (xyz_to_quat, (xyz,)), (geom.quat_to_R, (q,)), (geom.R_to_quat, (R,)),
                     (geom.rotvec_to_quat, (v,)), (geom.quat_to_rotvec, (q,)),
                     (geom.slerp, (q, q2, torch.full((6,), 0.3, dtype=torch.float64)))]:
        assert torch.autograd.gradcheck(fn, args), fn.__name__
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    geom.rotvec_to_quat(zero)[1:].sum().backward()
    assert torch.allclose(zero.grad, torch.full((3,), 0.5, dtype=torch.float64))


def test_runtime_constants():
    with cpu_runtime("64"):
        assert geom.tc_identity_quat().dtype == torch.float64 and geom.identity_quat().dtype == np.float64
        assert geom.zero_pos().dtype == gs.np_float and geom.tc_zero_pos().dtype == gs.tc_float
    with cpu_runtime("32"):
        assert geom.identity_quat().dtype == np.float32 and geom.tc_zero_pos().dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    q = torch.as_tensor(rand_quats(64, seed=13))
    v = torch.randn(64, 3, dtype=torch.float64)
    T = geom.trans_quat_to_T(v, q)
    for fn, args in [(quat_to_xyz, (q,)), (xyz_to_quat, (v,)), (transform_by_quat, (v, q)),
                     (geom.R_to_quat, (T[:, :3, :3],)),
                     (geom.inv_T, (T,)), (geom.slerp, (q, q.flip(0), 0.25)), (geom.quat_to_rotvec, (q,))]:
        cuda = fn(*[a.cuda() if isinstance(a, torch.Tensor) else a for a in args])
        assert cuda.device.type == "cuda" and err(cuda.cpu(), fn(*args)) < 1e-12, fn.__name__

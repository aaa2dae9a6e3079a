"""Genesis' public geometry helpers (`genesis.utils.geom`), with its names, arguments and defaults.

Quaternions are `(..., 4)` wxyz, vectors `(..., 3)`, rotation matrices `(..., 3, 3)`, homogeneous transforms
`(..., 4, 4)`; every function is batched over any leading dims (broadcast between arguments) and differentiable.
Each takes torch tensors or NumPy arrays, as Genesis does, and returns the same kind (NumPy inputs are computed in
torch on the CPU, in their own float dtype; integer arrays become float64, integer tensors float32). Mixing the two
kinds, another type, or a wrong trailing shape raises `InvalidInputError` naming the expected shape.

Conventions (as Genesis'):
- `xyz_to_quat(xyz)` composes `Rx(roll) Ry(pitch) Rz(yaw)`: intrinsic x-y-z (scipy `"XYZ"`, MuJoCo seq `"xyz"`);
  `rpy=True` composes `Rz(yaw) Ry(pitch) Rx(roll)`: extrinsic x-y-z (scipy `"xyz"`, MuJoCo `"XYZ"`), the convention
  of Genesis' morph `euler=` and of `euler_to_quat` / `euler_to_R` (degrees). `quat_to_xyz` inverts either, with
  roll, yaw in [-pi, pi] and pitch in [-pi/2, pi/2]; at gimbal lock (cos(pitch) < eps) roll is 0.
- Quaternion inputs need not be unit: rotations use `q / |q|` (Genesis divides by `|q|^2`), a zero quaternion acts
  as the identity. `transform_quat_by_quat(v, u)` is `normalize(u * v)`, i.e. `R_u @ R_v`. `inv_quat` conjugates.
- `R_to_quat` returns the quaternion with w >= 0 (Genesis leaves the sign to its branch; q and -q are one rotation).

The quaternion algebra is `genesis_torch.math.quat`'s; this module adds Genesis' signatures, argument checks and the
NumPy round trip. Genesis' Quadrants kernels (`qd_*`) and its NumPy-only mesh/camera/solver utilities are not here:
docs/genesis_compat.md ("Utilities") lists what is left out and why.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..errors import InvalidInputError
from ..math.quat import axis_angle_quat, quat_mul, quat_normalize, quat_rotate, quat_to_mat

__all__ = [
    "inv_quat", "normalize", "xyz_to_quat", "quat_to_xyz", "quat_to_R", "R_to_quat", "R_to_xyz",
    "euler_to_quat", "euler_to_R", "axis_angle_to_quat", "axis_angle_to_R", "rotvec_to_quat", "quat_to_rotvec",
    "rotvec_to_R", "R_to_rotvec", "rot6d_to_R", "R_to_rot6d", "slerp",
    "transform_quat_by_quat", "transform_by_quat", "inv_transform_by_quat", "transform_by_xyz",
    "transform_by_trans_quat", "inv_transform_by_trans_quat", "transform_pos_quat_by_trans_quat",
    "inv_transform_pos_quat_by_trans_quat", "transform_by_R", "transform_by_trans_R", "transform_by_T",
    "inv_transform_by_T", "trans_R_to_T", "R_to_T", "trans_to_T", "trans_quat_to_T", "T_to_trans", "T_to_quat",
    "T_to_trans_quat", "inv_T", "spherical_to_cartesian", "random_quaternion",
    "zero_pos", "identity_quat", "tc_zero_pos", "tc_identity_quat",
]


# ------------------------------------------------------------------ input handling


def _eps(dtype: torch.dtype) -> float:
    """Genesis' `gs.EPS` for a float dtype: max(1e-15, machine epsilon)."""
    return max(1e-15, torch.finfo(dtype).eps)


def _float_tensor(x: np.ndarray) -> torch.Tensor:
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(x) if x.flags.writeable else x.copy())


def _to_numpy(out):
    if isinstance(out, torch.Tensor):
        return out.detach().numpy()
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    return out


def _arrays(fn):
    """Let `fn` (written for tensors) take NumPy arrays as Genesis' helpers do: all array arguments must be of one
    kind; NumPy ones are viewed as CPU tensors and the results (and `out=`) come back as NumPy arrays."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        values = (*args, *kwargs.values())
        if not any(isinstance(v, np.ndarray) for v in values):
            return fn(*args, **kwargs)
        if any(isinstance(v, torch.Tensor) for v in values):
            kinds = ", ".join(type(v).__name__ for v in values if isinstance(v, (np.ndarray, torch.Tensor)))
            raise InvalidInputError(f"{fn.__name__}: the inputs must all be torch.Tensor or all np.ndarray; "
                                    f"got {kinds}.")
        conv = lambda v: _float_tensor(v) if isinstance(v, np.ndarray) else v  # noqa: E731
        out = fn(*map(conv, args), **{k: conv(v) for k, v in kwargs.items()})
        if isinstance(kwargs.get("out"), np.ndarray):
            return kwargs["out"]
        return _to_numpy(out)

    return wrapper


def _check(fn: str, name: str, x, tail: tuple[int, ...]) -> torch.Tensor:
    """`x` as a float tensor whose trailing dims are `tail`, else InvalidInputError naming the expected shape."""
    expected = "(..., " + ", ".join(map(str, tail)) + ")"
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{fn}: {name} must be a torch.Tensor or np.ndarray of shape {expected}; "
                                f"got {type(x).__name__}.")
    if x.ndim < len(tail) or tuple(x.shape[x.ndim - len(tail):]) != tail:
        raise InvalidInputError(f"{fn}: {name} must have shape {expected}; got {tuple(x.shape)}.")
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _broadcast(fn: str, **shapes) -> None:
    try:
        torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        given = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        raise InvalidInputError(f"{fn}: the batch dims of {given} do not broadcast.") from None


def _scalar_like(fn: str, name: str, x, ref: torch.Tensor) -> torch.Tensor:
    """An angle / interpolation parameter `(...)`: a tensor, or a Python number broadcast to `ref`'s batch."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.full(ref.shape[:-1], float(x), dtype=ref.dtype, device=ref.device)
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{fn}: {name} must be a number, torch.Tensor or np.ndarray; got {type(x).__name__}.")
    return x if x.is_floating_point() else x.to(ref.dtype)


def _write(out, value: torch.Tensor, fn: str) -> torch.Tensor:
    if out is None:
        return value
    if tuple(out.shape) != tuple(value.shape):
        raise InvalidInputError(f"{fn}: out must have shape {tuple(value.shape)}; got {tuple(out.shape)}.")
    return out.copy_(value)


# ------------------------------------------------------------------ quaternions and angles


@_arrays
def inv_quat(quat):
    """Conjugate `(w, -x, -y, -z)` of `quat (..., 4)`: the inverse rotation of a unit quaternion."""
    quat = _check("inv_quat", "quat", quat, (4,))
    return torch.cat((quat[..., :1], -quat[..., 1:]), -1)


@_arrays
def normalize(x, eps: float = 1e-12):
    """`x / max(|x|, eps)` over the last dim."""
    if not isinstance(x, torch.Tensor) or x.ndim == 0:
        raise InvalidInputError("normalize: x must be a torch.Tensor or np.ndarray of shape (..., n); "
                                f"got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}.")
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=eps)


def _axis_quat(angle: torch.Tensor, axis: int) -> torch.Tensor:
    half = 0.5 * angle
    zero = torch.zeros_like(half)
    parts = [torch.cos(half), zero, zero, zero]
    parts[1 + axis] = torch.sin(half)
    return torch.stack(parts, -1)


@_arrays
def xyz_to_quat(xyz, rpy=False, degrees=False):
    """Quaternions `(..., 4)` of Euler angles `xyz (..., 3)` = (roll, pitch, yaw), in rad (deg if `degrees`).

    `rpy=False`: `Rx(roll) Ry(pitch) Rz(yaw)` (intrinsic x-y-z); `rpy=True`: `Rz(yaw) Ry(pitch) Rx(roll)` (extrinsic
    x-y-z, Genesis' morph `euler`)."""
    xyz = _check("xyz_to_quat", "xyz", xyz, (3,))
    if degrees:
        xyz = torch.deg2rad(xyz)
    qx, qy, qz = (_axis_quat(a, i) for i, a in enumerate(xyz.unbind(-1)))
    return quat_mul(quat_mul(qz, qy), qx) if rpy else quat_mul(quat_mul(qx, qy), qz)


def _mat_to_xyz(R: torch.Tensor, rpy: bool) -> torch.Tensor:
    """Euler angles (roll, pitch, yaw) of rotation matrices, the inverse of `xyz_to_quat`'s composition."""
    if rpy:  # R = Rz(c) Ry(b) Rx(a): R20 = -sin b, (R21, R22) = cos b (sin a, cos a), (R10, R00) = cos b (sin c, cos c)
        s_b, a_num, a_den, c_num, c_den = -R[..., 2, 0], R[..., 2, 1], R[..., 2, 2], R[..., 1, 0], R[..., 0, 0]
        lock_num, lock_den = -R[..., 0, 1], R[..., 1, 1]  # a = 0: R = Rz(c) Ry(b), R01 = -sin c, R11 = cos c
    else:  # R = Rx(a) Ry(b) Rz(c): R02 = sin b, (-R12, R22) = cos b (sin a, cos a), (-R01, R00) = cos b (sin c, cos c)
        s_b, a_num, a_den, c_num, c_den = R[..., 0, 2], -R[..., 1, 2], R[..., 2, 2], -R[..., 0, 1], R[..., 0, 0]
        lock_num, lock_den = R[..., 1, 0], R[..., 1, 1]  # a = 0: R = Ry(b) Rz(c), R10 = sin c, R11 = cos c
    c_b = torch.hypot(c_num, c_den)
    lock = c_b < _eps(R.dtype)
    roll = torch.where(lock, torch.zeros_like(c_b), torch.atan2(a_num, a_den))
    yaw = torch.where(lock, torch.atan2(lock_num, lock_den), torch.atan2(c_num, c_den))
    return torch.stack((roll, torch.atan2(s_b, c_b), yaw), -1)


@_arrays
def quat_to_xyz(quat, rpy=False, degrees=False):
    """Euler angles `(..., 3)` = (roll, pitch, yaw) of `quat (..., 4)`, the inverse of `xyz_to_quat(..., rpy)`; rad
    (deg if `degrees`)."""
    quat = _check("quat_to_xyz", "quat", quat, (4,))
    xyz = _mat_to_xyz(quat_to_mat(quat_normalize(quat)), rpy)
    return torch.rad2deg(xyz) if degrees else xyz


@_arrays
def quat_to_R(quat, *, out=None):
    """Rotation matrices `(..., 3, 3)` of `quat (..., 4)` (normalised first)."""
    quat = _check("quat_to_R", "quat", quat, (4,))
    return _write(out, quat_to_mat(quat_normalize(quat)), "quat_to_R")


def _mat_to_quat(R: torch.Tensor) -> torch.Tensor:
    """Shepperd's method: each row of the symmetric 4x4 `K` below is `4 q_i q`; the row of the largest diagonal entry
    (of the largest |q_i|) is the best conditioned. Sign chosen so that w >= 0."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = (row.unbind(-1) for row in R.unbind(-2))
    K = torch.stack((
        torch.stack((1 + r00 + r11 + r22, r21 - r12, r02 - r20, r10 - r01), -1),
        torch.stack((r21 - r12, 1 + r00 - r11 - r22, r01 + r10, r02 + r20), -1),
        torch.stack((r02 - r20, r01 + r10, 1 - r00 + r11 - r22, r12 + r21), -1),
        torch.stack((r10 - r01, r02 + r20, r12 + r21, 1 - r00 - r11 + r22), -1),
    ), -2)
    row = K.diagonal(dim1=-2, dim2=-1).argmax(-1)
    q = K.gather(-2, row[..., None, None].expand(*row.shape, 1, 4)).squeeze(-2)
    q = torch.where(q[..., :1] < 0, -q, q)
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


@_arrays
def R_to_quat(R, *, out=None):
    """Unit quaternions `(..., 4)` (w >= 0) of rotation matrices `R (..., 3, 3)`."""
    R = _check("R_to_quat", "R", R, (3, 3))
    return _write(out, _mat_to_quat(R), "R_to_quat")


@_arrays
def R_to_xyz(R, rpy=False, degrees=False):
    """Euler angles `(..., 3)` of rotation matrices `R (..., 3, 3)`; as `quat_to_xyz(R_to_quat(R))`."""
    R = _check("R_to_xyz", "R", R, (3, 3))
    xyz = _mat_to_xyz(R, rpy)
    return torch.rad2deg(xyz) if degrees else xyz


def euler_to_quat(euler_xyz):
    """Quaternion of Euler angles in degrees, extrinsic x-y-z (Genesis' morph `euler`); array-like in, NumPy out
    (a tensor in gives a tensor)."""
    if not isinstance(euler_xyz, torch.Tensor):
        euler_xyz = np.asarray(euler_xyz)
    return xyz_to_quat(euler_xyz, rpy=True, degrees=True)


def euler_to_R(euler_xyz):
    """Rotation matrix of Euler angles in degrees, extrinsic x-y-z; array-like in, NumPy out."""
    return quat_to_R(euler_to_quat(euler_xyz))


@_arrays
def axis_angle_to_quat(angle, axis):
    """Quaternions of rotations by `angle (...)` rad about `axis (..., 3)` (normalised first)."""
    axis = _check("axis_angle_to_quat", "axis", axis, (3,))
    angle = _scalar_like("axis_angle_to_quat", "angle", angle, axis)
    _broadcast("axis_angle_to_quat", angle=angle.shape, axis=axis.shape[:-1])
    return normalize(axis_angle_quat(normalize(axis), angle))


def axis_angle_to_R(axis, theta):
    """Rotation matrices of rotations by `theta (...)` rad about `axis (..., 3)`."""
    return quat_to_R(axis_angle_to_quat(theta, axis))


@_arrays
def rotvec_to_quat(rotvec, *, out=None):
    """Quaternions of rotation vectors `rotvec (..., 3)` = angle * unit axis (exact and differentiable at 0)."""
    rotvec = _check("rotvec_to_quat", "rotvec", rotvec, (3,))
    angle = torch.linalg.vector_norm(rotvec, dim=-1, keepdim=True)
    # sin(angle / 2) / angle = sinc(angle / 2pi) / 2, with torch's sinc(x) = sin(pi x) / (pi x)
    quat = torch.cat((torch.cos(0.5 * angle), 0.5 * torch.sinc(angle / (2 * math.pi)) * rotvec), -1)
    return _write(out, quat, "rotvec_to_quat")


@_arrays
def quat_to_rotvec(quat, *, out=None):
    """Rotation vectors `(..., 3)` (angle in [0, pi]) of `quat (..., 4)`."""
    quat = _check("quat_to_rotvec", "quat", quat, (4,))
    quat = quat_normalize(quat)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)  # w >= 0: the angle <= pi
    w, v = quat[..., :1], quat[..., 1:]
    s = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    small = s < _eps(quat.dtype) ** 0.5
    # angle / s = 2 atan2(s, w) / s; below sqrt(eps) its series 2 / w (1 - s^2 / (3 w^2)) is exact to rounding
    ratio = torch.where(small, 2.0 / w * (1.0 - s * s / (3.0 * w * w)), 2.0 * torch.atan2(s, w) / torch.where(
        small, torch.ones_like(s), s))
    return _write(out, ratio * v, "quat_to_rotvec")


def rotvec_to_R(rotvec):
    """Rotation matrices of rotation vectors `rotvec (..., 3)`."""
    return quat_to_R(rotvec_to_quat(rotvec))


def R_to_rotvec(R, *, out=None):
    """Rotation vectors of rotation matrices `R (..., 3, 3)` (through the quaternion: accurate near the identity)."""
    return quat_to_rotvec(R_to_quat(R), out=out)


@_arrays
def rot6d_to_R(d6):
    """Rotation matrices from Zhou et al.'s 6D representation `d6 (..., 6)` (two rows, Gram-Schmidt; the rows of the
    result are b1, b2, b1 x b2). https://arxiv.org/abs/1812.07035"""
    d6 = _check("rot6d_to_R", "d6", d6, (6,))
    b1 = normalize(d6[..., :3])
    a2 = d6[..., 3:]
    b2 = normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1)
    return torch.stack((b1, b2, torch.linalg.cross(b1, b2, dim=-1)), -2)


@_arrays
def R_to_rot6d(R):
    """Zhou et al.'s 6D representation `(..., 6)` of `R (..., 3, 3)`: its first two rows."""
    R = _check("R_to_rot6d", "R", R, (3, 3))
    return R[..., :2, :].flatten(-2)


@_arrays
def slerp(q0, q1, t):
    """Spherical linear interpolation from `q0 (..., 4)` to `q1 (..., 4)` (normalised first) at `t (...)` in [0, 1],
    along the shorter arc; linear where the two are within eps of each other."""
    q0, q1 = _check("slerp", "q0", q0, (4,)), _check("slerp", "q1", q1, (4,))
    _broadcast("slerp", q0=q0.shape, q1=q1.shape)
    q0 = q0 / torch.linalg.vector_norm(q0, dim=-1, keepdim=True)
    q1 = q1 / torch.linalg.vector_norm(q1, dim=-1, keepdim=True)
    t = _scalar_like("slerp", "t", t, q0)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs()
    batch = torch.broadcast_shapes(q0.shape[:-1], q1.shape[:-1])
    try:
        t = t.to(q0.dtype).broadcast_to(batch)[..., None]
    except RuntimeError:  # Genesis reshapes t to the batch shape, e.g. (B, 1) -> (B,)
        if t.numel() != math.prod(batch):
            raise InvalidInputError(f"slerp: t {tuple(t.shape)} does not fit the batch {tuple(batch)}.") from None
        t = t.to(q0.dtype).reshape(batch)[..., None]
    near = dot > 1.0 - _eps(q0.dtype)
    theta = torch.acos(torch.where(near, torch.zeros_like(dot), dot))
    sin_theta = torch.sin(theta)
    s0 = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * theta) / sin_theta)
    s1 = torch.where(near, t, torch.sin(t * theta) / sin_theta)
    return s0 * q0 + s1 * q1


# ------------------------------------------------------------------ transforms


@_arrays
def transform_quat_by_quat(v, u):
    """Quaternion `v` transformed by `u`: `normalize(u * v)`, i.e. `R_u @ R_v`. `(..., 4)` each."""
    v, u = _check("transform_quat_by_quat", "v", v, (4,)), _check("transform_quat_by_quat", "u", u, (4,))
    _broadcast("transform_quat_by_quat", v=v.shape[:-1], u=u.shape[:-1])
    q = quat_mul(u, v)
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


@_arrays
def transform_by_quat(v, quat):
    """Vectors `v (..., 3)` rotated by `quat (..., 4)` (normalised first)."""
    v, quat = _check("transform_by_quat", "v", v, (3,)), _check("transform_by_quat", "quat", quat, (4,))
    _broadcast("transform_by_quat", v=v.shape[:-1], quat=quat.shape[:-1])
    shape = torch.broadcast_shapes(v.shape, quat.shape[:-1] + (3,))
    return quat_rotate(quat_normalize(quat).expand(shape[:-1] + (4,)), v.expand(shape))


def inv_transform_by_quat(pos, quat):
    """Vectors `pos (..., 3)` rotated by the inverse of `quat (..., 4)`."""
    return transform_by_quat(pos, inv_quat(quat))


def transform_by_xyz(pos, xyz):
    """Vectors rotated by the Euler angles `xyz (..., 3)` (rad, `xyz_to_quat`'s default convention)."""
    return transform_by_quat(pos, xyz_to_quat(xyz))


def transform_by_trans_quat(pos, trans, quat):
    """Points `pos (..., 3)` mapped by the pose (`trans (..., 3)`, `quat (..., 4)`): `R pos + trans`."""
    return transform_by_quat(pos, quat) + trans


def inv_transform_by_trans_quat(pos, trans, quat):
    """Points mapped by the inverse pose: `R^T (pos - trans)`."""
    return inv_transform_by_quat(pos - trans, quat)


def transform_pos_quat_by_trans_quat(pos, quat, t_trans, t_quat):
    """The pose (`pos`, `quat`) expressed in the frame (`t_trans`, `t_quat`) mapped to its parent: returns
    `(t_trans + R_t pos, t_quat * quat)`."""
    return t_trans + transform_by_quat(pos, t_quat), transform_quat_by_quat(quat, t_quat)


def inv_transform_pos_quat_by_trans_quat(pos, quat, t_trans, t_quat):
    """The inverse of `transform_pos_quat_by_trans_quat`: `(R_t^T (pos - t_trans), conj(t_quat) * quat)`."""
    t_quat_inv = inv_quat(t_quat)
    return transform_by_quat(pos - t_trans, t_quat_inv), transform_quat_by_quat(quat, t_quat_inv)


@_arrays
def transform_by_R(pos, R):
    """Points rotated by matrices: `pos (..., 3)` with `R (..., 3, 3)`, or `pos (..., N, 3)` with `R (..., 3, 3)`
    (each matrix applied to N points), as Genesis."""
    pos, R = _check("transform_by_R", "pos", pos, (3,)), _check("transform_by_R", "R", R, (3, 3))
    if R.ndim - pos.ndim == 1:
        _broadcast("transform_by_R", pos=pos.shape[:-1], R=R.shape[:-2])
        return (R * pos[..., None, :]).sum(-1)
    if R.ndim == pos.ndim:
        _broadcast("transform_by_R", pos=pos.shape[:-2], R=R.shape[:-2])
        return (R[..., None, :, :] * pos[..., :, None, :]).sum(-1)
    raise InvalidInputError(f"transform_by_R: pos {tuple(pos.shape)} must be (..., 3) with R (..., 3, 3), or "
                            f"(..., N, 3) with R (..., 3, 3); got R {tuple(R.shape)}.")


@_arrays
def transform_by_trans_R(pos, trans, R):
    """Points mapped by (`trans (..., 3)`, `R (..., 3, 3)`): `R pos + trans`; `pos` as in `transform_by_R`."""
    trans = _check("transform_by_trans_R", "trans", trans, (3,))
    out = transform_by_R(pos, R)
    return out + (trans[..., None, :] if trans.ndim < out.ndim else trans)


@_arrays
def transform_by_T(pos, T):
    """Points mapped by homogeneous transforms `T (..., 4, 4)`; `pos` as in `transform_by_R`."""
    T = _check("transform_by_T", "T", T, (4, 4))
    return transform_by_trans_R(pos, T[..., :3, 3], T[..., :3, :3])


@_arrays
def inv_transform_by_T(pos, T):
    """Points mapped by the inverses of `T (..., 4, 4)`: `R^T (pos - trans)`."""
    T, pos = _check("inv_transform_by_T", "T", T, (4, 4)), _check("inv_transform_by_T", "pos", pos, (3,))
    trans = T[..., :3, 3]
    if pos.ndim == T.ndim:
        trans = trans[..., None, :]
    return transform_by_R(pos - trans, T[..., :3, :3].transpose(-1, -2))


def _homogeneous(trans: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    batch = torch.broadcast_shapes(trans.shape[:-1], R.shape[:-2])
    top = torch.cat((R.expand(batch + (3, 3)), trans.expand(batch + (3,))[..., None]), -1)
    bottom = torch.tensor((0.0, 0.0, 0.0, 1.0), dtype=top.dtype, device=top.device).expand(batch + (1, 4))
    return torch.cat((top, bottom), -2)


@_arrays
def trans_R_to_T(trans=None, R=None, *, out=None):
    """Homogeneous transforms `(..., 4, 4)` of `trans (..., 3)` and `R (..., 3, 3)` (either may be None: zero /
    identity)."""
    if trans is None and R is None:
        raise InvalidInputError("trans_R_to_T: give trans (..., 3), R (..., 3, 3) or both.")
    if trans is not None:
        trans = _check("trans_R_to_T", "trans", trans, (3,))
    if R is not None:
        R = _check("trans_R_to_T", "R", R, (3, 3))
    ref = trans if trans is not None else R
    if trans is None:
        trans = torch.zeros(R.shape[:-1], dtype=R.dtype, device=R.device)
    if R is None:
        R = torch.eye(3, dtype=ref.dtype, device=ref.device).expand(trans.shape[:-1] + (3, 3))
    _broadcast("trans_R_to_T", trans=trans.shape[:-1], R=R.shape[:-2])
    return _write(out, _homogeneous(trans, R), "trans_R_to_T")


def R_to_T(R, *, out=None):
    """Homogeneous transforms of rotations `R (..., 3, 3)`."""
    return trans_R_to_T(None, R, out=out)


def trans_to_T(trans, *, out=None):
    """Homogeneous transforms of translations `trans (..., 3)`."""
    return trans_R_to_T(trans, None, out=out)


def trans_quat_to_T(trans=None, quat=None, *, out=None):
    """Homogeneous transforms `(..., 4, 4)` of `trans (..., 3)` and `quat (..., 4)` (either may be None)."""
    return trans_R_to_T(trans, None if quat is None else quat_to_R(quat), out=out)


@_arrays
def T_to_trans(T):
    """Translations `(..., 3)` of `T (..., 4, 4)`."""
    return _check("T_to_trans", "T", T, (4, 4))[..., :3, 3]


@_arrays
def T_to_quat(T):
    """Quaternions `(..., 4)` of the rotations of `T (..., 4, 4)`."""
    return R_to_quat(_check("T_to_quat", "T", T, (4, 4))[..., :3, :3])


def T_to_trans_quat(T):
    """`(T_to_trans(T), T_to_quat(T))`."""
    return T_to_trans(T), T_to_quat(T)


@_arrays
def inv_T(T):
    """Inverses of rigid transforms `T (..., 4, 4)`: `[R^T, -R^T t; 0, 1]` (batched, unlike Genesis' `R.T`)."""
    T = _check("inv_T", "T", T, (4, 4))
    Rt = T[..., :3, :3].transpose(-1, -2)
    return _homogeneous(-(Rt * T[..., None, :3, 3]).sum(-1), Rt)


# ------------------------------------------------------------------ misc


@_arrays
def spherical_to_cartesian(theta, phi):
    """Unit vectors `(..., 3)` of horizontal angles `theta` and elevations `phi` (rad): x forward, y left, z up."""
    if not isinstance(theta, torch.Tensor) or not isinstance(phi, torch.Tensor):
        raise InvalidInputError("spherical_to_cartesian: theta and phi must be torch.Tensor or np.ndarray.")
    cos_phi = torch.cos(phi)
    return torch.stack((torch.cos(theta) * cos_phi, torch.sin(theta) * cos_phi, torch.sin(phi)), -1)


def random_quaternion(batch_size):
    """`(batch_size, 4)` uniformly distributed unit quaternions (NumPy, float64, from NumPy's global RNG; Shoemake)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 0:
        raise InvalidInputError(f"random_quaternion: batch_size must be a non-negative int; got {batch_size!r}.")
    u1, u2, u3 = np.random.rand(3, int(batch_size))
    a, b = np.sqrt(1.0 - u1), np.sqrt(u1)
    return np.stack((a * np.sin(2 * np.pi * u2), a * np.cos(2 * np.pi * u2),
                     b * np.sin(2 * np.pi * u3), b * np.cos(2 * np.pi * u3)), axis=1)


def _runtime():
    from .._runtime import get_runtime
    return get_runtime()


def zero_pos():
    """`np.zeros(3)` in `gs.np_float`."""
    return np.zeros(3, dtype=_np_float())


def identity_quat():
    """`[1, 0, 0, 0]` in `gs.np_float`."""
    return np.array([1.0, 0.0, 0.0, 0.0], dtype=_np_float())


def tc_zero_pos():
    """`torch.zeros(3)` in `gs.tc_float` on `gs.device`."""
    rt = _runtime()
    return torch.zeros(3, dtype=rt.dtype, device=rt.device)


def tc_identity_quat():
    """`[1, 0, 0, 0]` in `gs.tc_float` on `gs.device`."""
    rt = _runtime()
    return torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=rt.dtype, device=rt.device)


def _np_float():
    return np.float64 if _runtime().dtype == torch.float64 else np.float32

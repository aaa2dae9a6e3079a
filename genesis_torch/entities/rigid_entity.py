"""User handles of rigid entities: Genesis' getters, setters and PD control over the scene's rigid state.

Every method takes `dofs_idx_local` / `links_idx_local` / `qs_idx_local` (indices within the entity, None = all)
and `envs_idx` (None = all envs). Getters return `(n_envs_selected, n)` tensors, or `(n,)` when the scene was
built with `n_envs=0`. Setters accept values shaped like a getter's output (or `(n,)`, broadcast to the envs).
Setters validate everything before they change anything, and never modify tensors of earlier states.
"""

from __future__ import annotations


import mujoco
import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..rollout_params import track
from ..solvers.rigid import control
from ..solvers.rigid.dynamics import CTRL_FORCE, CTRL_NONE, CTRL_POSITION, CTRL_VELOCITY, dof_positions
from ..solvers.rigid.model import BALL, FREE
from ..solvers.rigid.queries import check_relative, index_selection, links_pos
from ..state import envs_index
from .base import SolverEntity
from .rigid_joint import RigidJoint, RigidLink
from .rigid_params import ModelParamSetters
from .rigid_queries import GenesisQueries


class RigidEntity(SolverEntity, ModelParamSetters, GenesisQueries):
    """A rigid entity: a contiguous range of bodies, joints, dofs, qpos entries and actuators of the scene model."""

    def __init__(self, scene, idx: int, morph, name: str, *, solver):
        self._scene = scene
        self._scene_solver = solver  # its `SceneSolver` (solvers/rigid/scene_solver.py)
        self.idx = idx
        self._morphs = (morph,)  # a heterogeneous entity's variants (solvers/rigid/heterogeneous.py): several
        self.name = name
        self._built = False

    @property
    def morph(self):
        """The entity's morph. A heterogeneous entity has several: raises `InvalidInputError` there (as Genesis),
        use `morphs` (all) or `main_morph` (the first)."""
        if len(self._morphs) > 1:
            raise InvalidInputError(f"{self.name}: heterogeneous entities have several morph variants; use "
                                    "`.morphs` for all of them, or `.main_morph` for the first.")
        return self._morphs[0]

    @property
    def main_morph(self):
        """The first morph (the entity's only one unless heterogeneous)."""
        return self._morphs[0]

    @property
    def morphs(self) -> list:
        """All morphs: one, or a heterogeneous entity's variants in the order given (env blocks in that order)."""
        return list(self._morphs)

    def _morph_fingerprint(self) -> dict:
        """The morph's fingerprint (checkpoints); a heterogeneous entity's lists its variants'."""
        if len(self._morphs) == 1:
            return self._morphs[0].fingerprint()
        return {"type": "heterogeneous", "morphs": [m.fingerprint() for m in self._morphs]}

    # ----------------------------------------------------------------- layout
    def _bind(self, mj_model: mujoco.MjModel, body_ids: np.ndarray, prefix: str) -> None:
        """Called by the scene at build: record this entity's index ranges in the compiled model."""
        m = mj_model
        self._body_ids = body_ids  # MuJoCo body ids (>= 1)
        jnt = np.nonzero(np.isin(m.jnt_bodyid, body_ids))[0]
        self._jnt_ids = jnt
        self._dof_ids = np.nonzero(np.isin(m.dof_bodyid, body_ids))[0]
        q = [np.arange(m.jnt_qposadr[j], m.jnt_qposadr[j] + {FREE: 7, BALL: 4}.get(int(m.jnt_type[j]), 1)) for j in jnt]
        self._q_ids = np.concatenate(q) if q else np.zeros(0, np.int64)
        self._prefix = prefix
        # unnamed MJCF bodies/joints (e.g. a primitive's free joint) have no name: fall back to link{i} / joint{i}
        def name(obj, i, k, fallback):
            return (mujoco.mj_id2name(m, obj, int(i)) or "")[len(prefix):] or f"{fallback}{k}"

        self._link_names = [name(mujoco.mjtObj.mjOBJ_BODY, b, k, "link") for k, b in enumerate(body_ids)]
        self._joint_names = [name(mujoco.mjtObj.mjOBJ_JOINT, j, k, "joint") for k, j in enumerate(jnt)]
        self._dof_is_hs = np.isin(m.jnt_type[m.dof_jntid[self._dof_ids]], [int(mujoco.mjtJoint.mjJNT_HINGE),
                                                                            int(mujoco.mjtJoint.mjJNT_SLIDE)])
        self._built = True

    _BUILD_ATTRS = frozenset({"_body_ids", "_jnt_ids", "_dof_ids", "_q_ids", "_prefix", "_joint_names", "_dof_is_hs"})

    def __getattr__(self, name):
        """Only reached for attributes not set yet: the index ranges `_bind` sets at build."""
        if name in RigidEntity._BUILD_ATTRS:
            raise SceneStateError(f"{self.__dict__.get('name', 'entity')}: this call needs a built scene; "
                                  "call scene.build() first.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _require_built(self, what):
        if not self._built:
            raise SceneStateError(f"{self.name}.{what}() needs a built scene; call scene.build() first.")

    @property
    def n_links(self) -> int:
        self._require_built("n_links")
        return len(self._body_ids)

    @property
    def n_dofs(self) -> int:
        self._require_built("n_dofs")
        return len(self._dof_ids)

    @property
    def n_qs(self) -> int:
        self._require_built("n_qs")
        return len(self._q_ids)

    @property
    def n_joints(self) -> int:
        self._require_built("n_joints")
        return len(self._jnt_ids)

    @property
    def dof_start(self) -> int:
        return int(self._dof_ids[0]) if self.n_dofs else 0

    @property
    def q_start(self) -> int:
        return int(self._q_ids[0]) if self.n_qs else 0

    @property
    def link_start(self) -> int:
        return int(self._body_ids[0]) - 1

    @property
    def links(self) -> list[RigidLink]:
        return [RigidLink(self, n, int(b) - 1, i) for i, (n, b) in enumerate(zip(self._link_names, self._body_ids))]

    def get_link(self, name: str) -> RigidLink:
        """The link called `name` (MJCF body name)."""
        self._require_built("get_link")
        if name not in self._link_names:
            raise InvalidInputError(f"{self.name} has no link {name!r}; its links are {self._link_names}.")
        i = self._link_names.index(name)
        return RigidLink(self, name, int(self._body_ids[i]) - 1, i)

    # ---------------------------------------------------------------- helpers
    def _local(self, idx_local, ids: np.ndarray, kind: str) -> torch.Tensor:
        """Scene-global indices (int64 on device) of `idx_local` within this entity's `ids`."""
        sel = index_selection(idx_local, len(ids), f"{kind}s_idx_local")
        return torch.as_tensor(ids[sel], dtype=torch.int64, device=self._scene.device)

    def _envs(self, envs_idx) -> torch.Tensor:
        self._require_built("this call")
        return envs_index(envs_idx, self._scene.batch_size, self._scene.device)

    def _out(self, value: torch.Tensor) -> torch.Tensor:
        return value[0] if self._scene.n_envs == 0 else value

    def _values(self, value, n_envs_sel: int, shape: tuple, what: str) -> torch.Tensor:
        """`value` as a `(n_envs_sel, *shape)` tensor of the scene dtype, validated (finite, right shape)."""
        try:
            t = torch.as_tensor(value, dtype=self._scene.dtype, device=self._scene.device)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{what}: expected numbers shaped {shape}, got {value!r}.") from None
        if tuple(t.shape) == shape:
            t = t.expand(n_envs_sel, *shape)
        if tuple(t.shape) != (n_envs_sel, *shape):
            raise InvalidInputError(f"{what}: expected shape {shape} or {(n_envs_sel, *shape)}, got {tuple(t.shape)}.")
        if not bool(torch.isfinite(t).all()):
            raise InvalidInputError(f"{what}: values must be finite (no NaN or inf).")
        return t

    def _set_field(self, field: str, envs, cols, values) -> None:
        state = self._state
        old = getattr(state, field)
        new = old.index_put((envs[:, None], cols[None, :]), values.to(old.dtype))
        self._set_state(state.replace(**{field: new}))

    def _check_hs(self, dofs: torch.Tensor, what: str) -> None:
        m = self._solver.model
        jt = m.jnt_type[m.dof_jnt[dofs]]
        if bool(((jt == BALL) | (jt == FREE)).any()):
            raise InvalidInputError(f"{what} applies to hinge/slide dofs; this selection includes ball/free-joint "
                                    f"dofs. Use set_qpos for ball/free joints or pass dofs_idx_local.")

    # ---------------------------------------------------------------- getters
    def get_qpos(self, qs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Generalised positions `(B, n_qs)` (m, rad, quaternions wxyz)."""
        qs, envs = self._local(qs_idx_local, self._q_ids, "q"), self._envs(envs_idx)
        return self._out(self._state.qpos[envs][:, qs])

    def get_dofs_position(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Positions of hinge/slide dofs `(B, n)` (rad or m)."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        self._check_hs(dofs, "get_dofs_position")
        qpos = self._state.qpos[envs]
        return self._out(dof_positions(self._solver.model, qpos)[:, dofs])

    def get_dofs_velocity(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Dof velocities `(B, n)` (rad/s or m/s; ball/free angular velocities in the body frame)."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        return self._out(self._state.dofs_vel[envs][:, dofs])

    def get_links_pos(self, links_idx_local=None, envs_idx=None, *, ref="link_origin", relative=True) -> torch.Tensor:
        """World positions of the link frames (or, `ref="link_com"`, of their centres of mass) `(B, n_links, 3)` m.
        `relative` is accepted (links carry no morph offsets here)."""
        check_relative("get_links_pos", relative)
        links, envs = self._local(links_idx_local, self._body_ids - 1, "link"), self._envs(envs_idx)
        return self._out(links_pos(self._solver, self._state, links, ref)[envs])

    def get_links_quat(self, links_idx_local=None, envs_idx=None, *, relative=True) -> torch.Tensor:
        """World orientations of link frames `(B, n_links, 4)` wxyz."""
        check_relative("get_links_quat", relative)
        links, envs = self._local(links_idx_local, self._body_ids - 1, "link"), self._envs(envs_idx)
        return self._out(self._state.links_quat[envs][:, links])

    def _param(self, name: str, dofs_idx_local, envs_idx):
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        return self._out(control.dof_param(self._solver, name, self._scene.batch_size)[envs][:, dofs])

    def get_dofs_kp(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Position gains `(B, n)`: the MJCF actuator's kp where a position actuator drives the dof."""
        return self._param("kp", dofs_idx_local, envs_idx)

    def get_dofs_kv(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Velocity gains `(B, n)`."""
        return self._param("kv", dofs_idx_local, envs_idx)

    def get_dofs_force_range(self, dofs_idx_local=None, envs_idx=None):
        """(lower, upper) force limits `(B, n)` each."""
        r = self._param("force_range", dofs_idx_local, envs_idx)
        return r[..., 0], r[..., 1]

    # ---------------------------------------------------------------- setters
    def _zero_dofs(self, zero_velocity: bool):
        """This entity's dofs (scene-global) when `zero_velocity`, else None: what a position setter zeroes."""
        return torch.as_tensor(self._dof_ids, dtype=torch.int64, device=self._scene.device) if zero_velocity else None

    def set_qpos(self, qpos, qs_idx_local=None, envs_idx=None, *, zero_velocity=True, skip_forward=False) -> None:
        """Set generalised positions `(B, n_qs)`; quaternions are normalised. With `zero_velocity` (Genesis' default
        True) the entity's dof velocities in those envs become zero. `skip_forward` is accepted: the link poses of a
        state are always recomputed from its qpos here, so they are never stale."""
        for flag, value in (("zero_velocity", zero_velocity), ("skip_forward", skip_forward)):
            if not isinstance(value, (bool, np.bool_)):
                raise InvalidInputError(f"set_qpos({flag}={value!r}): expected True or False.")
        qs, envs = self._local(qs_idx_local, self._q_ids, "q"), self._envs(envs_idx)
        values = self._values(qpos, len(envs), (len(qs),), "set_qpos")
        self._set_state(control.set_qpos(self._solver, self._state, envs, qs, values, self._zero_dofs(zero_velocity)))

    def set_dofs_position(self, position, dofs_idx_local=None, envs_idx=None, zero_velocity=True) -> None:
        """Set hinge/slide dof positions `(B, n)`; link poses are recomputed."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        self._check_hs(dofs, "set_dofs_position")
        values = self._values(position, len(envs), (len(dofs),), "set_dofs_position")
        m = self._solver.model
        qadr = m.jnt_qposadr[m.dof_jnt[dofs]]
        self._set_state(control.set_qpos(self._solver, self._state, envs, qadr, values,
                                          self._zero_dofs(zero_velocity)))

    def set_dofs_velocity(self, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        """Set dof velocities `(B, n)`."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        self._set_field("dofs_vel", envs, dofs, self._values(velocity, len(envs), (len(dofs),), "set_dofs_velocity"))

    def _set_param(self, name, value, dofs_idx_local, envs_idx, shape_tail=()):
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        values = self._values(value, len(envs), (len(dofs), *shape_tail), f"set_dofs_{name}")
        self._release_consumed_params()  # rigid_params.py: an earlier iteration's graph is not built on
        control.set_dof_param(self._solver, name, envs, dofs, values, self._scene.batch_size)
        track(self._solver.params)

    def set_dofs_kp(self, kp, dofs_idx_local=None, envs_idx=None) -> None:
        """Set position gains (N m/rad or N/m); on an MJCF position actuator this sets its kp (gain and bias)."""
        self._set_param("kp", kp, dofs_idx_local, envs_idx)

    def set_dofs_kv(self, kv, dofs_idx_local=None, envs_idx=None) -> None:
        """Set velocity gains (N m s/rad or N s/m); on an MJCF actuator this sets its velocity bias."""
        self._set_param("kv", kv, dofs_idx_local, envs_idx)

    def set_dofs_force_range(self, lower, upper, dofs_idx_local=None, envs_idx=None) -> None:
        """Set force limits; on an MJCF actuator this sets its forcerange (and enables it)."""
        lo = torch.as_tensor(lower, dtype=self._scene.dtype, device=self._scene.device)
        hi = torch.as_tensor(upper, dtype=self._scene.dtype, device=self._scene.device)
        if lo.shape != hi.shape:
            raise InvalidInputError(f"set_dofs_force_range: lower {tuple(lo.shape)} and upper {tuple(hi.shape)} "
                                    "must have the same shape.")
        if bool((lo > hi).any()):
            raise InvalidInputError("set_dofs_force_range: every lower bound must be <= its upper bound.")
        self._set_param("force_range", torch.stack((lo, hi), -1), dofs_idx_local, envs_idx, (2,))

    # ---------------------------------------------------------------- control
    def _control(self, mode: int, target, dofs_idx_local, envs_idx, what: str) -> None:
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        values = self._values(target, len(envs), (len(dofs),), what)
        if mode == CTRL_POSITION:
            self._check_hs(dofs, what)
        self._set_state(control.control_dofs(self._solver, self._state, mode, envs, dofs, values))

    def control_dofs_position(self, position, dofs_idx_local=None, envs_idx=None) -> None:
        """PD position targets (rad or m). A dof driven by an MJCF position actuator gets its `ctrl` set."""
        self._control(CTRL_POSITION, position, dofs_idx_local, envs_idx, "control_dofs_position")

    def control_dofs_position_velocity(self, position, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        """PD targets with both a position (rad or m) and a velocity (rad/s or m/s), `(B, n)` each: the dof
        controller's force is `kp (position - q) + kv (velocity - qdot)`, clamped to the force range, with the gains
        in force at each step (Genesis' controller; the velocity target is `RigidState.dofs_ctrl_vel`). A later
        `control_dofs_position` / `_velocity` / `_force` on a dof replaces both targets. A dof driven by an MJCF
        actuator takes the dof controller (the actuator's kp / kv / force range), the actuator off in those envs."""
        what = "control_dofs_position_velocity"
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        pos = self._values(position, len(envs), (len(dofs),), f"{what}(position)")
        vel = self._values(velocity, len(envs), (len(dofs),), f"{what}(velocity)")
        self._check_hs(dofs, what)
        self._set_state(control.control_dofs_position_velocity(self._solver, self._state, envs, dofs, pos, vel))

    def control_dofs_velocity(self, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        """Velocity targets (rad/s or m/s). A dof driven by an MJCF velocity actuator gets its `ctrl` set."""
        self._control(CTRL_VELOCITY, velocity, dofs_idx_local, envs_idx, "control_dofs_velocity")

    def control_dofs_force(self, force, dofs_idx_local=None, envs_idx=None) -> None:
        """Generalised forces (N m or N). A dof driven by an MJCF motor actuator gets its `ctrl` set."""
        self._control(CTRL_FORCE, force, dofs_idx_local, envs_idx, "control_dofs_force")

    def __repr__(self) -> str:
        return f"RigidEntity({self.name!r}, morph={'/'.join(type(m).__name__ for m in self._morphs)})"


__all__ = ["RigidEntity", "RigidLink", "RigidJoint", "CTRL_NONE"]

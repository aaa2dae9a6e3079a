"""Link queries on a rigid state, shared by the entity handles (`entities/rigid_queries.py`, entity-local indices) and
the `RigidSolver` (Genesis' `scene.rigid_solver.get_links_*`, scene-global link indices).

Links are MuJoCo bodies 1..nbody-1; link `i` is body `i + 1`. Velocities and accelerations follow MuJoCo's
definitions on the current state (`mj_forward`, then `mj_rnePostConstraint` for accelerations), so they can be checked
against `data.xpos`, `xquat`, `cvel` / `mj_objectVelocity` and `cacc` / `mj_objectAcceleration` on the same state.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InvalidInputError, SceneStateError, UnsupportedFeatureError
from ...state import check_slice, envs_index
from .dynamics import velocity_products
from .jacobians import point_jacobian_difference, rotation_jacobian_difference

__all__ = ["index_selection", "check_relative", "links_pos", "links_twist", "links_acc", "SolverQueries",
           "SolverInternalsError"]

REFS = ("link_origin", "link_com")


def index_selection(idx, n: int, what: str) -> np.ndarray:
    """`idx` (None = all, an int, a slice, a sequence / NumPy array / tensor of ints) as positions in `range(n)`,
    int64; raises `InvalidInputError` naming `what` for anything else or out of range."""
    if idx is None:
        return np.arange(n)
    if isinstance(idx, slice):
        return np.arange(n)[check_slice(idx, what)]
    if isinstance(idx, torch.Tensor):
        idx = idx.detach().cpu().numpy()
    if isinstance(idx, (int, np.integer)) and not isinstance(idx, (bool, np.bool_)):
        idx = [idx]
    sel = np.asarray(idx)
    if sel.ndim != 1 or (sel.size and sel.dtype.kind not in "iu"):
        raise InvalidInputError(f"{what}={idx!r} must be None, an int, a slice or a 1-D sequence of ints.")
    sel = sel.astype(np.int64)
    if sel.size and (sel.min() < 0 or sel.max() >= n):
        raise InvalidInputError(f"{what} contains {sel[(sel < 0) | (sel >= n)][0]}, outside [0, {n}); there are "
                                f"{n}.")
    return sel


def _check_ref(ref: str) -> None:
    if ref not in REFS:
        raise InvalidInputError(f"ref={ref!r}: use 'link_origin' or 'link_com'.")


def check_relative(what: str, relative) -> None:
    """Genesis' `relative` flag: accepted as a bool (links carry no morph offsets here, so both readings agree)."""
    if not isinstance(relative, (bool, np.bool_)):
        raise InvalidInputError(f"{what}(relative={relative!r}): expected True or False.")


def links_pos(solver, state, links: torch.Tensor, ref: str = "link_origin") -> torch.Tensor:
    """World positions of the link origins (the state's `links_pos`) or centres of mass (`ref="link_com"`) of `links`
    (scene-global), `(B, n, 3)` m."""
    _check_ref(ref)
    if ref == "link_origin":
        return state.links_pos[:, links]
    return solver.kinematics(state.qpos).xipos[:, links + 1]


def links_twist(solver, state, links: torch.Tensor, ref: str = "link_origin"):
    """World linear velocity at the link origins (`ref="link_origin"`) or centres of mass (`"link_com"`) and world
    angular velocity of `links` (scene-global), each `(B, n, 3)` m/s and rad/s, through the links' Jacobians."""
    _check_ref(ref)
    kin = solver.kinematics(state.qpos)
    bodies = links + 1
    point = (kin.xpos if ref == "link_origin" else kin.xipos)[:, bodies]
    world = torch.zeros_like(bodies)
    qvel = state.dofs_vel[:, None, None, :]
    lin = (point_jacobian_difference(solver.model, kin, world, bodies, point, point) * qvel).sum(-1)
    ang = (rotation_jacobian_difference(solver.model, kin, world, bodies) * qvel).sum(-1)
    return lin, ang


def links_acc(solver, state, links: torch.Tensor):
    """Classical linear acceleration of the link origins `(B, n, 3)` m/s^2 (world frame) and angular acceleration
    `(B, n, 3)` rad/s^2, from the constrained acceleration of the forward pass on `state`.

    As MuJoCo's `cacc` (`mj_rnePostConstraint`) and Genesis' `get_links_acc`, the spatial acceleration starts from
    `-gravity` at the world, so a link at rest reads `-gravity` (what an accelerometer fixed to it measures). With
    `[w; v_o]` the spatial velocity and `[a; l_o]` the spatial acceleration at the world origin, the classical
    acceleration of point p is `l_o + a x p + w x (v_o + w x p)`."""
    f = solver.forward(state)
    kin = f.kin
    cvel, cacc_qd = velocity_products(solver.model, kin, state.dofs_vel)  # (B, nb, 6) [ang; lin]
    cacc_qacc, _ = velocity_products(solver.model, kin, f.qacc)  # sum over ancestors of cdof * qacc
    g = solver.gravity.to(cvel.dtype)
    cacc = cacc_qd + cacc_qacc + torch.cat((torch.zeros_like(g), -g))
    bodies = links + 1
    w, v, a, lo = cvel[:, bodies, :3], cvel[:, bodies, 3:], cacc[:, bodies, :3], cacc[:, bodies, 3:]
    p = kin.xpos[:, bodies]
    vp = v + torch.cross(w, p, dim=-1)
    return lo + torch.cross(a, p, dim=-1) + torch.cross(w, vp, dim=-1), a


class SolverInternalsError(UnsupportedFeatureError, AttributeError):
    """Genesis' Taichi fields of the rigid solver (`rigid_solver.qpos`, `.links_state`, ...) do not exist here; the
    message names the public method to use. Also an `AttributeError`, so `hasattr` answers False."""


# Genesis' solver fields that scripts read, and the public calls that give the same values here
INTERNALS = {
    "qpos": "entity.get_qpos() (or scene.get_state()['RigidSolver'].qpos)",
    "dofs_state": "entity.get_dofs_position() / get_dofs_velocity() / get_dofs_force()",
    "dofs_info": "entity.get_dofs_kp() / get_dofs_kv() / get_dofs_force_range() / get_dofs_limit()",
    "links_state": "rigid_solver.get_links_pos() / get_links_quat() / get_links_vel() / get_links_ang() / "
                   "get_links_acc()",
    "links_info": "entity.get_links_inertial_mass() / link.get_mass() (link frames: get_links_pos / get_links_quat)",
    "joints_info": "entity.joints (RigidJoint handles) and entity.get_dofs_limit()",
    "joints_state": "joint.get_anchor_pos() / get_anchor_axis()",
    "geoms_state": "geom.get_pos() / geom.get_quat() (entity.geoms)",
    "geoms_info": "entity.geoms (RigidGeom handles) and entity.get_AABB()",
    "entities_info": "scene.entities / scene.get_entity(name)",
    "entities_state": "scene.get_state()",
    "collider": "entity.get_contacts()",
    "constraint_solver": "entity.get_contacts() and RigidOptions (solver settings)",
}


class SolverQueries:
    """Genesis' `RigidSolver` link getters over scene-global link indices (mixed into `RigidSolver`). The solver reads
    the scene's current state (bound at build); `n_envs` is set at build."""

    n_envs: int = 0

    def __getattr__(self, name: str):
        if name in INTERNALS:
            raise SolverInternalsError(f"rigid_solver.{name} is one of Genesis' Taichi fields, which genesis-torch does "
                                       f"not have; use {INTERNALS[name]} instead.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _query_inputs(self, links_idx, envs_idx, what: str, relative=False):
        check_relative(what, relative)
        state = self._require_state(what)
        links = torch.as_tensor(index_selection(links_idx, self.model.nbody - 1, "links_idx"), device=self.device)
        envs = envs_index(envs_idx, state.qpos.shape[0], self.device)
        return state, links, envs

    def _require_state(self, what: str):
        if self._current_state is None:
            raise SceneStateError(f"RigidSolver.{what}(): the solver is not part of a built scene; call scene.build() "
                                  "first.")
        return self._current_state()

    def _squeeze(self, value: torch.Tensor) -> torch.Tensor:
        return value[0] if self.n_envs == 0 else value

    def get_links_pos(self, links_idx=None, envs_idx=None, *, ref: str = "link_origin", relative=False):
        """World positions of the link origins (`ref="link_origin"`) or centres of mass (`"link_com"`),
        `(B, n, 3)` m (`(n, 3)` with n_envs=0). `relative` is accepted (links have no morph offsets here)."""
        _check_ref(ref)
        state, links, envs = self._query_inputs(links_idx, envs_idx, "get_links_pos", relative)
        return self._squeeze(links_pos(self, state, links, ref)[envs])

    def get_links_quat(self, links_idx=None, envs_idx=None, *, relative=False):
        """World orientations of the link frames, `(B, n, 4)` wxyz."""
        state, links, envs = self._query_inputs(links_idx, envs_idx, "get_links_quat", relative)
        return self._squeeze(state.links_quat[envs][:, links])

    def get_links_vel(self, links_idx=None, envs_idx=None, *, ref: str = "link_origin", relative=False):
        """World linear velocities at the link origins (or centres of mass), `(B, n, 3)` m/s."""
        _check_ref(ref)
        state, links, envs = self._query_inputs(links_idx, envs_idx, "get_links_vel", relative)
        return self._squeeze(links_twist(self, state, links, ref)[0][envs])

    def get_links_ang(self, links_idx=None, envs_idx=None):
        """World angular velocities of the links, `(B, n, 3)` rad/s."""
        state, links, envs = self._query_inputs(links_idx, envs_idx, "get_links_ang")
        return self._squeeze(links_twist(self, state, links)[1][envs])

    def get_links_acc(self, links_idx=None, envs_idx=None, *, relative=False):
        """Classical linear accelerations of the link origins, `(B, n, 3)` m/s^2, world frame, gravity offset included
        as MuJoCo's `cacc` (a link at rest reads `-gravity`; `links_acc`)."""
        state, links, envs = self._query_inputs(links_idx, envs_idx, "get_links_acc", relative)
        return self._squeeze(links_acc(self, state, links)[0][envs])

    def get_links_acc_ang(self, links_idx=None, envs_idx=None):
        """World angular accelerations of the links, `(B, n, 3)` rad/s^2."""
        state, links, envs = self._query_inputs(links_idx, envs_idx, "get_links_acc_ang")
        return self._squeeze(links_acc(self, state, links)[1][envs])

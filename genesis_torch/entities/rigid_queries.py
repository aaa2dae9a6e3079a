"""Genesis' RigidEntity methods beyond state get/set and PD control: joint handles, base pose, forces, limits, masses,
friction, contacts, bounding boxes, Jacobians and inverse kinematics. Mixed into `RigidEntity`.

Getters return `(n_envs_selected, ...)` tensors, or drop the env dim when the scene was built with `n_envs=0`.
Forces follow MuJoCo's definitions on the current state (`mj_forward` semantics), so they can be checked against
MuJoCo's `qfrc_*` and `d.contact` on the same model and state.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..solvers.rigid.collision.contact_rows import pair_friction_of
from ..solvers.rigid.collision.detect import build_contact_model
from ..solvers.rigid.dynamics import actuation, body_inertias, mass_matrix, passive_forces
from ..solvers.rigid.jacobians import point_jacobian_difference, rotation_jacobian_difference
from ..solvers.rigid.model import BALL, FREE, HINGE, SLIDE
from ..solvers.rigid.queries import check_relative, links_acc, links_twist
from ..math.quat import quat_to_mat
from . import ik
from .rigid_joint import JOINT_TYPE_NAMES, RigidGeom, RigidJoint, RigidLink

_GEOM = mujoco.mjtGeom


class GenesisQueries:
    """Methods of Genesis' `RigidEntity` (names, arguments and return shapes as Genesis)."""

    # ------------------------------------------------------------ handles
    @property
    def joints(self) -> list[RigidJoint]:
        """The entity's joints in MJCF order (Genesis' `entity.joints`)."""
        self._require_built("joints")
        m = self._solver.mj_model
        q_pos = {int(q): k for k, q in enumerate(self._q_ids)}
        d_pos = {int(d): k for k, d in enumerate(self._dof_ids)}
        links = self.links
        out = []
        for k, (j, name) in enumerate(zip(self._jnt_ids, self._joint_names)):
            nq = {FREE: 7, BALL: 4}.get(int(m.jnt_type[j]), 1)
            nd = {FREE: 6, BALL: 3}.get(int(m.jnt_type[j]), 1)
            qs = list(range(int(m.jnt_qposadr[j]), int(m.jnt_qposadr[j]) + nq))
            ds = list(range(int(m.jnt_dofadr[j]), int(m.jnt_dofadr[j]) + nd))
            link = links[int(np.nonzero(self._body_ids == m.jnt_bodyid[j])[0][0])]
            out.append(RigidJoint(self, name, int(j), k, JOINT_TYPE_NAMES[int(m.jnt_type[j])],
                                  [d_pos[d] for d in ds], ds, [q_pos[q] for q in qs], qs, link))
        return out

    def get_joint(self, name=None, uid=None) -> RigidJoint:
        """The joint called `name` (MJCF joint name). `uid` (Genesis' unique ids) has no meaning here and raises."""
        self._require_built("get_joint")
        if uid is not None:
            raise InvalidInputError("get_joint(uid=...): genesis-torch joints have no uid; look joints up by name.")
        if not isinstance(name, str) or name not in self._joint_names:
            raise InvalidInputError(f"{self.name} has no joint {name!r}; its joints are {self._joint_names}.")
        return self.joints[self._joint_names.index(name)]

    @property
    def geoms(self) -> list[RigidGeom]:
        """The entity's geoms (MuJoCo geoms of its links, and its geoms on the world body such as a Plane's), in
        model order (Genesis' `entity.geoms`)."""
        self._require_built("geoms")
        m = self._solver.mj_model
        links = {int(b): link for b, link in zip(self._body_ids, self.links)}
        return [RigidGeom(self, int(g), k, links.get(int(m.geom_bodyid[g]))) for k, g in enumerate(self._geom_ids())]

    @property
    def n_geoms(self) -> int:
        return len(self._geom_ids())

    @property
    def base_link(self) -> RigidLink:
        return self.links[0]

    @property
    def base_joint(self) -> RigidJoint:
        js = [j for j in self.joints if j.link.idx_local == 0]
        if not js:
            raise InvalidInputError(f"{self.name}: the base link has no joint (it is welded to the world).")
        return js[0]

    # ---------------------------------------------------------- base pose
    def get_pos(self, envs_idx=None) -> torch.Tensor:
        """World position of the base link, `(B, 3)` m."""
        return self.base_link.get_pos(envs_idx)

    def get_quat(self, envs_idx=None) -> torch.Tensor:
        """World orientation of the base link, `(B, 4)` wxyz."""
        return self.base_link.get_quat(envs_idx)

    def _free_base_qs(self, what: str) -> list | None:
        """Local qpos indices of the base link's free joint (x y z qw qx qy qz), None when the base has none."""
        self._require_built(what)
        m = self._solver.mj_model
        j = self._jnt_ids
        if not len(j) or m.jnt_type[j[0]] != FREE or m.jnt_bodyid[j[0]] != self._body_ids[0]:
            return None
        return [int(np.nonzero(self._q_ids == m.jnt_qposadr[j[0]])[0][0]) + i for i in range(7)]

    def _set_base_frame(self, what: str, field: str, value, envs_idx, zero_velocity) -> None:
        """Genesis' `set_pos` / `set_quat` on a base link that is not on a free joint: the base body's frame in the
        world (MuJoCo's `body_pos` / `body_quat` of the entity's root body, a per-env model parameter) in envs
        `envs_idx`; link poses are recomputed and, with `zero_velocity`, the entity's dof velocities zeroed there."""
        if not len(self._body_ids):
            raise InvalidInputError(f"{self.name}.{what}: the entity has no links (its geoms belong to the world "
                                    "body, e.g. a Plane); it cannot be moved after build.")
        root = int(self._body_ids[0])
        if int(self._solver.mj_model.body_parentid[root]) != 0:
            raise InvalidInputError(f"{self.name}.{what}: the base link is not a child of the world body, so it has no "
                                    "world pose of its own to set.")
        if not isinstance(zero_velocity, (bool, np.bool_)):
            raise InvalidInputError(f"{what}(zero_velocity={zero_velocity!r}): expected True or False.")
        envs = self._envs(envs_idx)
        width = 3 if field == "body_pos" else 4
        v = self._values(value, len(envs), (width,), f"{what}({'pos' if width == 3 else 'quat'})")
        if width == 4:
            norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
            if bool((norm < 1e-9).any()):
                raise InvalidInputError(f"{what}: quaternions must be non-zero (wxyz, e.g. [1, 0, 0, 0]).")
            v = v / norm
        self._put_params(envs, torch.tensor([root], device=self._scene.device), **{field: v[:, None]})
        scene, st = self._scene, self._state
        fields = st.integration_fields()
        if zero_velocity and self.n_dofs:
            dofs = torch.as_tensor(self._dof_ids, dtype=torch.int64, device=scene.device)
            fields["dofs_vel"] = st.dofs_vel.index_put((envs[:, None], dofs[None, :]), st.dofs_vel.new_zeros(()))
        self._set_state(self._solver.make_state(**fields))

    def set_pos(self, pos, envs_idx=None, zero_velocity=True) -> None:
        """Move the base link to `pos` `(B, 3)` or `(3,)` m (world frame) in envs `envs_idx`; with `zero_velocity`
        the entity's dof velocities there become zero. A base on a free joint gets its qpos; any other base (e.g. a
        robot welded to the world) moves its frame, a per-env model parameter (`RigidParams.body_pos`) that
        `reset()` keeps and checkpoints save. With a joint on the base link, `pos` places the link's frame at zero
        joint displacement (MuJoCo's `body_pos`)."""
        qs = self._free_base_qs("set_pos")
        if qs is None:
            self._set_base_frame("set_pos", "body_pos", pos, envs_idx, zero_velocity)
            return
        self.set_qpos(pos, qs_idx_local=qs[:3], envs_idx=envs_idx, zero_velocity=zero_velocity)

    def set_quat(self, quat, envs_idx=None, zero_velocity=True) -> None:
        """Turn the base link to `quat` `(B, 4)` or `(4,)` wxyz (normalised; world frame), as `set_pos` (a fixed base
        sets `RigidParams.body_quat`)."""
        qs = self._free_base_qs("set_quat")
        if qs is None:
            self._set_base_frame("set_quat", "body_quat", quat, envs_idx, zero_velocity)
            return
        q = torch.as_tensor(quat, dtype=self._scene.dtype)
        if q.shape[-1:] == (4,) and bool((torch.linalg.vector_norm(q, dim=-1) < 1e-9).any()):
            raise InvalidInputError("set_quat: quaternions must be non-zero (wxyz).")
        self.set_qpos(quat, qs_idx_local=qs[3:], envs_idx=envs_idx, zero_velocity=zero_velocity)

    # --------------------------------------------------------- velocities
    def _links_twist(self, links_idx_local, envs_idx, ref: str):
        """World linear velocity at the link origin (`ref="link_origin"`) or centre of mass (`"link_com"`) and world
        angular velocity, each `(E, n, 3)` (`solvers/rigid/queries.py`, shared with `RigidSolver.get_links_vel`)."""
        if ref not in ("link_origin", "link_com"):
            raise InvalidInputError(f"ref={ref!r}: use 'link_origin' or 'link_com'.")
        links, envs = self._local(links_idx_local, self._body_ids - 1, "link"), self._envs(envs_idx)
        lin, ang = links_twist(self._solver, self._state, links, ref)
        return lin[envs], ang[envs]

    def get_links_vel(self, links_idx_local=None, envs_idx=None, *, ref="link_origin", relative=True) -> torch.Tensor:
        """World linear velocities of the links at their origins (or centres of mass), `(B, n, 3)` m/s. `relative` is
        accepted (links carry no morph offsets here)."""
        check_relative("get_links_vel", relative)
        return self._out(self._links_twist(links_idx_local, envs_idx, ref)[0])

    def get_links_ang(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:
        """World angular velocities of the links, `(B, n, 3)` rad/s."""
        return self._out(self._links_twist(links_idx_local, envs_idx, "link_origin")[1])

    def get_links_acc(self, links_idx_local=None, envs_idx=None, *, relative=True) -> torch.Tensor:
        """Classical linear accelerations of the link origins, `(B, n, 3)` m/s^2, world frame, from the forward pass on
        the current state; as MuJoCo's `cacc` and Genesis, gravity's offset is included (a link at rest reads
        `-gravity`, what an accelerometer on it measures). `relative` is accepted (no morph offsets here)."""
        check_relative("get_links_acc", relative)
        links, envs = self._local(links_idx_local, self._body_ids - 1, "link"), self._envs(envs_idx)
        return self._out(links_acc(self._solver, self._state, links)[0][envs])

    def get_links_acc_ang(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:
        """World angular accelerations of the links, `(B, n, 3)` rad/s^2 (forward pass on the current state)."""
        links, envs = self._local(links_idx_local, self._body_ids - 1, "link"), self._envs(envs_idx)
        return self._out(links_acc(self._solver, self._state, links)[1][envs])

    def get_vel(self, envs_idx=None) -> torch.Tensor:
        """World linear velocity of the base link origin, `(B, 3)` m/s."""
        return self.get_links_vel([0], envs_idx)[..., 0, :]

    def get_ang(self, envs_idx=None) -> torch.Tensor:
        """World angular velocity of the base link, `(B, 3)` rad/s."""
        return self.get_links_ang([0], envs_idx)[..., 0, :]

    # ------------------------------------------------------------- forces
    def _smooth_forces(self, envs):
        st = self._state
        m, p = self._solver.model, self._solver.params
        qpos, qvel = st.qpos, st.dofs_vel
        actn = actuation(m, p, qpos, qvel, st.ctrl, st.act, st.dofs_ctrl_mode, st.dofs_ctrl_target,
                         st.dofs_ctrl_vel)
        kin = self._solver.kinematics(qpos)  # gravity compensation (a passive force) needs the body poses
        return actn.qfrc[envs], passive_forces(m, p, qpos, qvel, kin, self._solver.gravity)[envs]

    def get_dofs_control_force(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Generalised force of the controls on the current state, `(B, n)` N or N m: MJCF actuators (after their
        force clamps, mapped through the transmission: MuJoCo's `qfrc_actuator`) plus the dof PD controller."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        return self._out(self._smooth_forces(envs)[0][:, dofs])

    def get_dofs_force(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Internal generalised force on the dofs, `(B, n)`: control force plus passive joint forces (springs,
        damping; MuJoCo's `qfrc_actuator + qfrc_passive`). Constraint and contact forces are not included."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        ctrl, passive = self._smooth_forces(envs)
        return self._out((ctrl + passive)[:, dofs])

    # ------------------------------------------------- limits and masses
    def get_dofs_limit(self, dofs_idx_local=None, envs_idx=None):
        """(lower, upper) position limits `(B, n)` each (rad or m); -inf / inf for unlimited and ball/free dofs."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        m = self._solver.mj_model
        jnt = m.dof_jntid
        lim = np.isin(m.jnt_type[jnt], [HINGE, SLIDE]) & m.jnt_limited[jnt].astype(bool)
        lo = torch.as_tensor(np.where(lim, m.jnt_range[jnt, 0], -np.inf), dtype=self._scene.dtype,
                             device=self._scene.device)
        hi = torch.as_tensor(np.where(lim, m.jnt_range[jnt, 1], np.inf), dtype=self._scene.dtype,
                             device=self._scene.device)
        shape = (len(envs), len(dofs))
        return self._out(lo[dofs].expand(shape)), self._out(hi[dofs].expand(shape))

    def _dof_model_param(self, array: str, dofs_idx_local, envs_idx) -> torch.Tensor:
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        values = torch.as_tensor(getattr(self._solver.mj_model, array), dtype=self._scene.dtype,
                                 device=self._scene.device)
        return self._out(values[dofs].expand(len(envs), len(dofs)))

    def get_dofs_invweight(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Inverse inertia of each dof at the reference configuration (MuJoCo's `dof_invweight0`), `(B, n)`."""
        return self._dof_model_param("dof_invweight0", dofs_idx_local, envs_idx)

    def get_mass_mat(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Joint-space mass matrix (with armature) of the current configuration, `(B, n, n)` (MuJoCo's `qM`)."""
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        m, p = self._solver.model, self._solver.params
        kin = self._solver.kinematics(self._state.qpos)
        qM = mass_matrix(m, kin, body_inertias(m, kin, p), p.dof_armature)[envs]
        return self._out(qM[:, dofs][:, :, dofs])

    def zero_all_dofs_velocity(self, envs_idx=None) -> None:
        """Set every dof velocity of the entity to zero."""
        envs = self._envs(envs_idx)
        self.set_dofs_velocity(torch.zeros(len(envs), self.n_dofs), envs_idx=envs_idx)

    # ----------------------------------------------------------- friction
    def _geom_ids(self) -> np.ndarray:
        """MuJoCo ids of the entity's geoms: those of its bodies, and its named geoms on the world body (a Plane)."""
        m = self._solver.mj_model
        world = [g for g in np.nonzero(m.geom_bodyid == 0)[0]
                 if (mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, int(g)) or "").startswith(self._prefix)]
        return np.union1d(np.nonzero(np.isin(m.geom_bodyid, self._body_ids))[0], np.asarray(world, dtype=np.int64))

    def set_friction(self, friction) -> None:
        """Set the sliding friction coefficient of every geom of the entity (all envs). A contact uses the larger
        coefficient of its two geoms (MuJoCo's and Genesis' rule). This changes the model, not the state: it is not
        part of checkpoints or of `get_state()`; set it again after building a scene to restore one."""
        self._require_built("set_friction")
        if isinstance(friction, bool) or not isinstance(friction, (int, float, np.floating, np.integer)) or \
                not math.isfinite(float(friction)) or friction <= 0:
            raise InvalidInputError(f"set_friction({friction!r}): expected a positive finite number, e.g. 1.0.")
        solver = self._solver
        if solver.contact_model is None:
            raise SceneStateError("set_friction: contacts are disabled in this scene (RigidOptions(enable_collision="
                                  "False)), so friction has no effect; enable collisions to use it.")
        m = solver.mj_model
        before = m.geom_friction.copy()
        m.geom_friction[self._geom_ids(), 0] = float(friction)
        try:
            cm = build_contact_model(m, solver.options.max_collision_pairs, solver.options.max_contacts,
                                     solver.device, solver.dtype)
        except Exception:
            m.geom_friction[:] = before
            raise
        cm.pair_env_active = solver.contact_model.pair_env_active  # the same pairs: heterogeneous variants' mask
        solver.contact_model = cm
        solver.set_params()  # friction ratios apply to the new frictions

    def get_friction(self) -> float:
        """The sliding friction coefficient of the entity's first geom."""
        self._require_built("get_friction")
        g = self._geom_ids()
        return float(self._solver.mj_model.geom_friction[g[0], 0]) if len(g) else float("nan")

    # ----------------------------------------------------------- contacts
    def get_contacts(self, with_entity=None, exclude_self_contact=False) -> dict:
        """Contacts of the current state involving this entity (and `with_entity` when given).

        Runs the forward pass (collision detection and the constraint solve) on the current state. Returns a dict
        of tensors: `geom_a`, `geom_b` (MuJoCo geom ids), `link_a`, `link_b` (scene link indices, -1 = world),
        `position` (m, world), `normal` (unit, from a to b), `penetration` (m, > 0 when overlapping),
        `force_a`, `force_b` (N, world: the contact force on link a / on link b = -force_a). With `n_envs=0` each
        holds only the contacts found, `(n, ...)`; batched, every value is `(B, C, ...)` with `valid_mask (B, C)`.
        """
        self._require_built("get_contacts")
        if with_entity is not None and (not isinstance(with_entity, GenesisQueries) or with_entity._scene is not
                                        self._scene):
            raise InvalidInputError("get_contacts(with_entity=...): expected a rigid entity of the same scene.")
        if not isinstance(exclude_self_contact, bool):
            raise InvalidInputError(f"get_contacts(exclude_self_contact={exclude_self_contact!r}): expected True or "
                                    "False.")
        solver = self._solver
        cm = solver.contact_model
        if cm is None:
            raise SceneStateError("get_contacts: contacts are disabled (RigidOptions(enable_collision=False)).")
        f = solver.forward(self._state)
        c = f.contacts
        B, C = c.dist.shape
        rows = 3 if cm.elliptic else (4 if cm.frictional else 1)
        force = f.efc_force[:, f.efc_force.shape[1] - rows * C:].reshape(B, C, rows) if f.efc_force is not None \
            else c.dist.new_zeros(B, C, rows)
        fr = pair_friction_of(cm, c.pair, solver.params.pair_friction)  # (B, C, 2)
        if rows == 4:  # pyramid edges (t1+, t1-, t2+, t2-) -> normal and tangential components (mj_contactForce)
            local = torch.stack((force.sum(-1), fr[..., 0] * (force[..., 0] - force[..., 1]),
                                 fr[..., 1] * (force[..., 2] - force[..., 3])), -1)
        elif rows == 3:
            local = force
        else:
            local = torch.cat((force, force.new_zeros(B, C, 2)), -1)
        world = (c.frame * local[..., None]).sum(-2)  # frame rows (n, t1, t2): force on geom b
        geoms = torch.cat([torch.stack((g.geom1, g.geom2), -1) for g in cm.groups]) if cm.groups else \
            torch.zeros(1, 2, dtype=torch.int64, device=c.dist.device)
        geom = geoms[c.pair]
        link = cm.pair_body[c.pair] - 1
        in_me = torch.isin(geom, torch.as_tensor(self._geom_ids(), device=geom.device))
        valid = c.valid & (in_me[..., 0] | in_me[..., 1])
        if with_entity is not None:
            in_other = torch.isin(geom, torch.as_tensor(with_entity._geom_ids(), device=geom.device))
            valid = valid & ((in_me[..., 0] & in_other[..., 1]) | (in_me[..., 1] & in_other[..., 0]))
        if exclude_self_contact:
            valid = valid & ~(in_me[..., 0] & in_me[..., 1])
        out = {"geom_a": geom[..., 0], "geom_b": geom[..., 1], "link_a": link[..., 0], "link_b": link[..., 1],
               "position": c.pos, "normal": c.frame[..., 0, :], "penetration": -c.dist, "force_a": -world,
               "force_b": world}
        if self._scene.n_envs == 0:
            keep = valid[0]
            return {k: v[0][keep] for k, v in out.items()}
        out["valid_mask"] = valid
        return out

    def get_links_net_contact_force(self, envs_idx=None) -> torch.Tensor:
        """Sum of the contact forces acting on each link of the entity, `(B, n_links, 3)` N, world frame (from the
        forward pass on the current state, as `get_contacts`)."""
        envs = self._envs(envs_idx)
        c = self.get_contacts()
        if self._scene.n_envs == 0:  # unbatched contacts: add the env dim back
            c = {k: v[None] for k, v in c.items()}
            c["valid_mask"] = torch.ones_like(c["link_a"], dtype=torch.bool)
        links = torch.as_tensor(self._body_ids - 1, device=c["link_a"].device)
        on = lambda side: ((c[f"link_{side}"][..., None] == links) & c["valid_mask"][..., None]).to(  # noqa: E731
            c["force_a"].dtype)
        total = (on("a")[..., None] * c["force_a"][..., None, :]).sum(1) + \
            (on("b")[..., None] * c["force_b"][..., None, :]).sum(1)
        return self._out(total[envs])

    # ------------------------------------------------------ bounding box
    def get_AABB(self, envs_idx=None) -> torch.Tensor:
        """World axis-aligned bounding box of the entity's collision geoms, `(B, 2, 3)` m ([min, max]); exact for
        spheres, capsules, cylinders, ellipsoids, boxes and (via their vertices) meshes; planes are unbounded."""
        envs = self._envs(envs_idx)
        m, dev, dt = self._solver.mj_model, self._scene.device, self._scene.dtype
        g = self._geom_ids()
        col = g[(m.geom_contype[g] != 0) | (m.geom_conaffinity[g] != 0)]
        g = col if len(col) else g
        if not len(g):
            raise InvalidInputError(f"{self.name}.get_AABB: the entity has no geoms.")
        kin = self._solver.kinematics(self._state.qpos)
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=dt, device=dev)  # noqa: E731
        body = torch.as_tensor(m.geom_bodyid[g], device=dev)
        xmat = kin.xmat[envs][:, body]  # (E, G, 3, 3)
        center = kin.xpos[envs][:, body] + (xmat @ t(m.geom_pos[g])[..., None])[..., 0]
        R = xmat @ quat_to_mat(t(m.geom_quat[g]))
        size = t(m.geom_size[g])
        types = m.geom_type[g]
        half = torch.zeros_like(center)
        for i, kind in enumerate(types):
            Ri, s = R[:, i], size[i]
            if kind == _GEOM.mjGEOM_SPHERE:
                h = s[0].expand(len(envs), 3)
            elif kind == _GEOM.mjGEOM_CAPSULE:
                h = Ri[..., 2].abs() * s[1] + s[0]
            elif kind == _GEOM.mjGEOM_CYLINDER:
                h = Ri[..., 2].abs() * s[1] + s[0] * torch.sqrt((1 - Ri[..., 2] ** 2).clamp(min=0))
            elif kind == _GEOM.mjGEOM_ELLIPSOID:
                h = torch.sqrt(((Ri * s) ** 2).sum(-1))
            elif kind == _GEOM.mjGEOM_BOX:
                h = (Ri.abs() * s).sum(-1)
            elif kind == _GEOM.mjGEOM_MESH:
                mid = m.geom_dataid[g[i]]
                v = t(m.mesh_vert[m.mesh_vertadr[mid]:m.mesh_vertadr[mid] + m.mesh_vertnum[mid]])
                pts = (Ri[:, None] @ v[None, :, :, None])[..., 0]  # (E, V, 3) about the geom centre
                lo_i, hi_i = pts.amin(1), pts.amax(1)
                center[:, i] = center[:, i] + (lo_i + hi_i) / 2
                h = (hi_i - lo_i) / 2
            elif kind == _GEOM.mjGEOM_PLANE:
                h = torch.where(Ri[..., 2].abs() > 1 - 1e-12, 0.0, math.inf)
            elif kind == _GEOM.mjGEOM_HFIELD:  # the box [-s0, s0] x [-s1, s1] x [-s3, s2] of the height field
                hs = t(m.hfield_size[m.geom_dataid[g[i]]])
                local = torch.stack((hs[0], hs[1], (hs[2] + hs[3]) / 2))
                center[:, i] = center[:, i] + Ri[..., 2] * (hs[2] - hs[3]) / 2
                h = (Ri.abs() * local).sum(-1)
            else:
                raise InvalidInputError(f"{self.name}.get_AABB: geom type {kind} is not supported.")
            half[:, i] = h
        active = getattr(self._solver, "geoms_env_active", None)  # a heterogeneous entity: its env's variant
        if active is not None:
            on = active[envs][:, torch.as_tensor(g, device=dev)][..., None]  # (E, G, 1)
            center, half = torch.where(on, center, 0.0), torch.where(on, half, -math.inf)
        lo = (center - half).amin(1)
        hi = (center + half).amax(1)
        return self._out(torch.stack((lo, hi), 1))

    # --------------------------------------------------- Jacobian and IK
    def get_jacobian(self, link, local_point=None) -> torch.Tensor:
        """Jacobian of `link` (at its origin, or at `local_point` (3,) m in the link frame), `(B, 6, n_dofs)`:
        rows linear velocity (m/s) then angular velocity (rad/s), world frame, columns the entity's dofs."""
        self._require_built("get_jacobian")
        if getattr(link, "entity", None) is not self:
            raise InvalidInputError(f"get_jacobian: {link!r} is not a link of {self.name}; use get_link(name).")
        state = self._state
        kin = self._solver.kinematics(state.qpos)
        b = torch.tensor([link.idx + 1], device=self._scene.device)
        point = kin.xpos[:, b]
        if local_point is not None:
            lp = self._values(local_point, 1, (3,), "get_jacobian(local_point)")[0]
            point = point + (kin.xmat[:, b] @ lp[:, None])[..., 0]
        w = torch.zeros_like(b)
        jp = point_jacobian_difference(self._solver.model, kin, w, b, point, point)[:, 0]
        jr = rotation_jacobian_difference(self._solver.model, kin, w, b)[:, 0]
        dofs = torch.as_tensor(self._dof_ids, device=self._scene.device)
        return self._out(torch.cat((jp, jr), 1)[..., dofs])

    def inverse_kinematics(self, link, pos=None, quat=None, init_qpos=None, respect_joint_limit=True, max_samples=50,
                           max_solver_iters=20, damping=0.01, pos_tol=5e-4, rot_tol=5e-3, pos_mask=(True, True, True),
                           rot_mask=(True, True, True), max_step_size=0.5, dofs_idx_local=None, return_error=False,
                           envs_idx=None):
        """Joint positions that put `link` at `pos` (3,)/(B, 3) m and `quat` (4,)/(B, 4) wxyz (either may be None).

        Damped least squares on all selected envs at once (see `genesis_torch.entities.ik`). Returns the entity's
        qpos `(B, n_qs)` (`(n_qs,)` with n_envs=0), and with `return_error` the pose error `(B, 6)`
        [position (m, world); rotation vector (rad, link frame)]. The scene's state is not changed.
        """
        out = ik.solve(self, [link], [pos] if pos is not None else [], [quat] if quat is not None else [],
                       init_qpos, respect_joint_limit, max_samples, max_solver_iters, damping, pos_tol, rot_tol,
                       pos_mask, rot_mask, max_step_size, dofs_idx_local, return_error, envs_idx)
        if return_error:
            return out[0], out[1][..., 0, :]
        return out

    def inverse_kinematics_multilink(self, links, poss=(), quats=(), init_qpos=None, respect_joint_limit=True,
                                     max_samples=50, max_solver_iters=20, damping=0.01, pos_tol=5e-4, rot_tol=5e-3,
                                     pos_mask=(True, True, True), rot_mask=(True, True, True), max_step_size=0.5,
                                     dofs_idx_local=None, return_error=False, envs_idx=None):
        """IK for several links at once: `poss` / `quats` hold one target per link (or are empty). Error
        `(B, n_links, 6)` with `return_error`."""
        return ik.solve(self, links, poss, quats, init_qpos, respect_joint_limit, max_samples, max_solver_iters,
                        damping, pos_tol, rot_tol, pos_mask, rot_mask, max_step_size, dofs_idx_local, return_error,
                        envs_idx)

    def plan_path(self, qpos_goal, qpos_start=None, max_nodes=2000, resolution=0.05, timeout=None, max_retry=1,
                  smooth_path=True, num_waypoints=300, ignore_collision=False, planner="RRTConnect", envs_idx=None,
                  return_valid_mask=False, *, ee_link_name=None, with_entity=None):
        """Genesis' motion planning (RRT / RRT-Connect in joint space): see `genesis_torch.planning.plan_path`.
        Path `(num_waypoints, B, n_qs)` (`(num_waypoints, n_qs)` with n_envs=0), and the valid mask `(B,)` with
        `return_valid_mask`. Seeded by torch's global RNG; the scene's state is not changed."""
        from ..planning import plan_path
        return plan_path(self, qpos_goal, qpos_start, max_nodes, resolution, timeout, max_retry, smooth_path,
                         num_waypoints, ignore_collision, planner, envs_idx, return_valid_mask,
                         ee_link_name=ee_link_name, with_entity=with_entity)

"""Link and joint handles of a rigid entity, with Genesis' names (`entity.get_link(name)`, `entity.get_joint(name)`).

Handles are views: every getter reads the scene's current state, so a handle taken before `scene.step()` stays valid.
`idx` is scene-global (links: MuJoCo body id - 1; joints: MuJoCo joint id), `idx_local` counts within the entity.
"""

from __future__ import annotations

import dataclasses

import torch

from ..math.quat import quat_mul
from ..solvers.rigid.model import BALL, FREE, HINGE, SLIDE

# Genesis' joint type names (gs.JOINT_TYPE members) for MuJoCo's joint types
JOINT_TYPE_NAMES = {FREE: "FREE", BALL: "SPHERICAL", HINGE: "REVOLUTE", SLIDE: "PRISMATIC"}


@dataclasses.dataclass(frozen=True)
class RigidLink:
    """A link (MuJoCo body) of an entity. `idx` is scene-global (0 = first link), `idx_local` within the entity."""

    entity: "RigidEntity"  # noqa: F821
    name: str
    idx: int
    idx_local: int

    def get_pos(self, envs_idx=None) -> torch.Tensor:
        """World position of the link frame, `(B, 3)` m (or `(3,)` with n_envs=0)."""
        return self.entity.get_links_pos(links_idx_local=[self.idx_local], envs_idx=envs_idx)[..., 0, :]

    def get_quat(self, envs_idx=None) -> torch.Tensor:
        """World orientation of the link frame, `(B, 4)` wxyz."""
        return self.entity.get_links_quat(links_idx_local=[self.idx_local], envs_idx=envs_idx)[..., 0, :]

    def get_mass(self) -> float:
        """Inertial mass of this link alone, kg (MuJoCo's `body_mass`; env 0's when set per env; without shift)."""
        return float(self.entity.get_links_inertial_mass([self.idx_local], envs_idx=[0]).reshape(-1)[0])

    def set_mass(self, mass) -> None:
        """Set this link's mass (kg, > 0) in every env; its rotational inertia scales by the same ratio (Genesis'
        `RigidLink.set_mass`). A link fixed to the world is skipped with a warning, as in Genesis."""
        e = self.entity
        e._require_built("set_mass")
        links = torch.tensor([self.idx + 1], device=e._scene.device)
        e._scale_links_mass(links, e._positive_mass(mass, "set_mass"), f"{self.name}.set_mass")

    @property
    def inertial_mass(self) -> float:
        """Genesis' name for the link mass, kg."""
        return self.get_mass()

    @property
    def is_fixed(self) -> bool:
        """True when no joint moves this link relative to the world (welded to the world)."""
        return not bool(self.entity._solver.model.body_dofmask[self.idx + 1].any())

    @property
    def joints(self) -> list["RigidJoint"]:
        """The joints of this link (those connecting it to its parent), in MJCF order."""
        return [j for j in self.entity.joints if j.link.idx == self.idx]

    @property
    def parent_idx(self) -> int:
        """Scene-global index of the parent link, -1 when the parent is the world."""
        return int(self.entity._solver.mj_model.body_parentid[self.idx + 1]) - 1


@dataclasses.dataclass(frozen=True)
class RigidJoint:
    """A joint of an entity (MuJoCo joint). Dof and q index lists are what Genesis calls them.

    Attributes:
        name: MJCF joint name (without the entity prefix); unnamed joints are "joint{k}".
        idx, idx_local: scene-global MuJoCo joint id / position within the entity's joints.
        type: "REVOLUTE" (hinge), "PRISMATIC" (slide), "SPHERICAL" (ball) or "FREE" (Genesis' `gs.JOINT_TYPE` names).
        dofs_idx_local, dofs_idx: its dofs within the entity / in the scene (1 for hinge/slide, 3 ball, 6 free).
        qs_idx_local, qs_idx: its qpos entries within the entity / in the scene (1, 4 or 7).
        link: the link the joint moves.
    """

    entity: "RigidEntity"  # noqa: F821
    name: str
    idx: int
    idx_local: int
    type: str
    dofs_idx_local: list
    dofs_idx: list
    qs_idx_local: list
    qs_idx: list
    link: RigidLink

    @property
    def n_dofs(self) -> int:
        return len(self.dofs_idx)

    @property
    def n_qs(self) -> int:
        return len(self.qs_idx)

    @property
    def dof_start(self) -> int:
        return self.dofs_idx[0]

    @property
    def q_start(self) -> int:
        return self.qs_idx[0]

    def get_anchor_pos(self, envs_idx=None) -> torch.Tensor:
        """World position of the joint anchor, `(B, 3)` m (or `(3,)` with n_envs=0)."""
        e = self.entity
        envs = e._envs(envs_idx)
        return e._out(e._solver.kinematics(e._state.qpos).xanchor[envs][:, self.idx])

    def get_anchor_axis(self, envs_idx=None) -> torch.Tensor:
        """World direction of the joint axis (hinge/slide), `(B, 3)` unit."""
        e = self.entity
        envs = e._envs(envs_idx)
        return e._out(e._solver.kinematics(e._state.qpos).xaxis[envs][:, self.idx])


# Genesis' geom type names (gs.GEOM_TYPE members) for MuJoCo's geom types
GEOM_TYPE_NAMES = {0: "PLANE", 1: "HFIELD", 2: "SPHERE", 3: "CAPSULE", 4: "ELLIPSOID", 5: "CYLINDER", 6: "BOX",
                   7: "MESH", 8: "SDF"}


@dataclasses.dataclass(frozen=True)
class RigidGeom:
    """A collision or visual geom of an entity (MuJoCo geom). `idx` is scene-global (MuJoCo geom id), `idx_local`
    within the entity's geoms; `link` is the link it is attached to (None for a geom on the world body, e.g. a
    Plane's)."""

    entity: "RigidEntity"  # noqa: F821
    idx: int
    idx_local: int
    link: RigidLink | None

    @property
    def type(self) -> str:
        """Genesis' `gs.GEOM_TYPE` name: "PLANE", "SPHERE", "CAPSULE", "ELLIPSOID", "CYLINDER", "BOX" or "MESH"."""
        return GEOM_TYPE_NAMES[int(self.entity._solver.mj_model.geom_type[self.idx])]

    @property
    def metadata(self) -> dict:
        """Genesis' per-geom metadata: for the height-field geom of a `gs.morphs.Terrain`, `{"height_field": (nx, ny)
        heights in units of the morph's `vertical_scale`}` (the grid the contacts use, read-only; grid point (i, j) at
        the terrain origin + (i, j) * horizontal_scale); empty for other geoms."""
        from ..morphs import Terrain

        morph = self.entity.main_morph
        if isinstance(morph, Terrain) and self.type == "HFIELD":
            return {"height_field": morph.height_field}
        return {}

    @property
    def contype(self) -> int:
        return int(self.entity._solver.mj_model.geom_contype[self.idx])

    @property
    def conaffinity(self) -> int:
        return int(self.entity._solver.mj_model.geom_conaffinity[self.idx])

    @property
    def init_pos(self):
        """Position in its link's frame, (3,) m (MuJoCo's `geom_pos`)."""
        return self.entity._solver.mj_model.geom_pos[self.idx].copy()

    @property
    def init_quat(self):
        """Orientation in its link's frame, (4,) wxyz (MuJoCo's `geom_quat`)."""
        return self.entity._solver.mj_model.geom_quat[self.idx].copy()

    def _pose(self, envs_idx):
        e = self.entity
        envs = e._envs(envs_idx)
        m = e._solver.mj_model
        kin = e._solver.kinematics(e._state.qpos)
        b = int(m.geom_bodyid[self.idx])
        t = lambda a: torch.as_tensor(a, dtype=e._scene.dtype, device=e._scene.device)  # noqa: E731
        xmat, xquat = kin.xmat[envs][:, b], kin.xquat[envs][:, b]
        pos = kin.xpos[envs][:, b] + (xmat @ t(m.geom_pos[self.idx])[:, None])[..., 0]
        return pos, quat_mul(xquat, t(m.geom_quat[self.idx]).expand_as(xquat))

    def get_pos(self, envs_idx=None) -> torch.Tensor:
        """World position of the geom centre, `(B, 3)` m (`(3,)` with n_envs=0; MuJoCo's `geom_xpos`)."""
        return self.entity._out(self._pose(envs_idx)[0])

    def get_quat(self, envs_idx=None) -> torch.Tensor:
        """World orientation of the geom, `(B, 4)` wxyz (MuJoCo's `geom_xmat` as a quaternion)."""
        return self.entity._out(self._pose(envs_idx)[1])

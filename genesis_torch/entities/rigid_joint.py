"""Link and joint handles of a rigid entity, with Genesis' names (`entity.get_link(name)`, `entity.get_joint(name)`).

Handles are views: every getter reads the scene's current state, so a handle taken before `scene.step()` stays valid.
`idx` is scene-global (links: MuJoCo body id - 1; joints: MuJoCo joint id), `idx_local` counts within the entity.
"""

from __future__ import annotations

import dataclasses

import torch

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

"""Kinematic tools (`gs.materials.Tool`, Genesis 1.4.5 `ToolSolver` / `ToolEntity`) behind the solver protocol.

A tool is a `gs.morphs.Mesh` without dynamics: its state is a pose and a velocity per env (`ToolState`), set by the
user (set_position / set_quaternion / set_velocity) and advanced every substep as Genesis' `ToolEntity.advect`:
pos <- pos + vel dt (then kept at z >= ToolOptions.floor_height), quat <- quat * exp(ang dt / 2), vel and ang kept.
The tools step before the particle solvers and offer themselves as their colliders, exactly as the rigid solver does
(`Couplings.collider_model`: a MuJoCo model with one body per tool, the mesh geoms; `Couplings.bodies`: the tools'
motion over the substep), so the MPM colliders (mesh SDF, friction, velocity field v_o + w x (x - o)) push matter
with them one way, differentiably in the tools' pose and velocity (all torch ops on the state).
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import torch

from ...entities.tool_entity import ToolEntity
from ...errors import InvalidInputError, UnsupportedFeatureError
from ...materials import Tool
from ...math.quat import quat_integrate
from ...morphs import Mesh
from ...options import SimOptions, ToolOptions
from ...state import SolverState
from ..base import BodyMotion, Couplings, SceneSolver

__all__ = ["ToolSceneSolver", "ToolState"]


@dataclasses.dataclass(frozen=True)
class ToolState(SolverState):
    """B envs, n tools (in the order added)."""

    prefix = "ToolSolver"

    pos: torch.Tensor  #: (B, n, 3) m, world
    quat: torch.Tensor  #: (B, n, 4) wxyz, world
    vel: torch.Tensor  #: (B, n, 3) m/s, world
    ang: torch.Tensor  #: (B, n, 3) rad/s, tool frame


class _ToolModel:
    """What `scene.tool_solver` is: the tools' MuJoCo model (`mj_model`, body k+1 = tool k) and options."""

    def __init__(self, mj_model, options: ToolOptions):
        self.mj_model, self.options = mj_model, options


class ToolSceneSolver(SceneSolver):
    """`scene.tool_solver` is the built `_ToolModel`; `scene.tool_entities` the `ToolEntity` handles."""

    key, kind, options_class, state_class = "ToolSolver", "tool", ToolOptions, ToolState
    materials, material_hint = (Tool,), "gs.materials.Tool"
    entity_name_prefix = ""

    @classmethod
    def check_options(cls, sim: SimOptions, options: ToolOptions) -> None:
        if options.dt is not None and sim.is_set("dt") and abs(options.dt - sim.substep_dt) > 1e-15:
            raise InvalidInputError(f"ToolOptions(dt={options.dt}) differs from SimOptions dt/substeps = "
                                    f"{sim.substep_dt}; leave ToolOptions.dt as None or make them equal.")

    def add_entity(self, morph, material, surface, idx: int) -> ToolEntity:
        if not isinstance(morph, Mesh):
            raise InvalidInputError(f"add_entity: a gs.materials.Tool entity needs a gs.morphs.Mesh (Genesis' tools "
                                    f"are meshes), got {type(morph).__name__}; export the shape as a mesh file (.obj / "
                                    ".stl) or use gs.materials.Rigid for a primitive.")
        spec = morph.to_spec()
        for geom in spec.geoms:
            geom.friction = [float(material.friction), *list(geom.friction)[1:]]
            if not material.collision:
                geom.contype, geom.conaffinity = 0, 0
        try:
            model = spec.compile()
        except Exception as exc:  # MuJoCo's compiler error names the element
            raise InvalidInputError(f"add_entity: MuJoCo could not compile the tool mesh {morph.file!r}: "
                                    f"{exc}") from exc
        if model.nbody != 2:
            raise UnsupportedFeatureError(f"add_entity: the tool mesh {morph.file!r} compiled to {model.nbody - 1} "
                                          "bodies; a tool is one body.")
        entity = ToolEntity(self.scene, idx, morph, material, surface, self, len(self.entities))
        # the start pose: the morph's pos / quat composed with the body frame of the mesh's spec (as the rigid solver
        # places a Mesh entity)
        mpos, mquat = np.asarray(morph.pos, dtype=np.float64), np.asarray(morph.quat, dtype=np.float64)
        pos, quat = np.zeros(3), np.zeros(4)
        mujoco.mju_rotVecQuat(pos, model.body_pos[1], mquat)
        mujoco.mju_mulQuat(quat, mquat, model.body_quat[1])
        entity._spec, entity._body_pos, entity._body_quat = spec, mpos + pos, quat
        self.entities.append(entity)
        return entity

    def validate(self) -> None:
        """The particle solvers read one collider model: a solver before the tools that has entities offers its own
        (rigid bodies), and the two are not merged yet."""
        before = self.scene._solvers[:self.scene._solvers.index(self)]
        taken = [s.kind for s in before if s.entities]
        if taken:
            raise UnsupportedFeatureError(f"gs.materials.Tool entities cannot share a scene with {taken} entities yet "
                                          "(the particle solvers read one collider model); give the tools their own "
                                          "scene, or make the tool a gs.materials.Rigid body driven by "
                                          "set_dofs_velocity.")

    def _build(self, n_envs, device, dtype, sim, couplings) -> None:
        spec = mujoco.MjSpec()
        for k, e in enumerate(self.entities):
            frame = spec.worldbody.add_frame()
            frame.attach_body(e._spec.worldbody.first_body(), f"tool{k}/", "")
        mj_model = spec.compile()
        self.solver = _ToolModel(mj_model, self.options)
        self._device, self._dtype = device, dtype

    def offer(self, couplings: Couplings) -> Couplings:
        return couplings.replace(collider_model=self.solver.mj_model)

    def initial_state(self, n_envs: int) -> ToolState:
        B, dev, dt = max(n_envs, 1), self._device, self._dtype
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=dt, device=dev)  # noqa: E731
        pos = t([e._body_pos for e in self.entities])[None].expand(B, -1, -1).clone()
        quat = t([e._body_quat for e in self.entities])[None].expand(B, -1, -1).clone()
        zero = torch.zeros(B, len(self.entities), 3, dtype=dt, device=dev)
        return ToolState(pos=pos, quat=quat, vel=zero, ang=zero.clone())

    def substep(self, state: ToolState, couplings: Couplings, dt: float) -> ToolState:
        """Genesis' `ToolEntity.advect`: constant velocities, position then orientation (tool-frame ang)."""
        pos = state.pos + state.vel * dt
        floor = self.options.floor_height
        if floor is not None:
            pos = torch.cat((pos[..., :2], pos[..., 2:].clamp_min(floor)), -1)
        return state.replace(pos=pos, quat=quat_integrate(state.quat, state.ang, dt))

    def couple(self, couplings: Couplings, before: ToolState, after: ToolState, dt: float) -> Couplings:
        return couplings.replace(bodies=BodyMotion(before.pos, before.quat, after.pos, after.quat, dt))

"""The rigid solver as the scene drives it (the protocol of `solvers/base.py`): entities from MJCF/URDF/primitive/mesh
morphs, one MuJoCo model composed at build with the files' `<option>`s resolved (`compose.py`), the contact-overflow
check of each substep, link poses after resets, per-env parameters in checkpoints. It steps first in every scene
substep and offers its geoms (`Couplings.collider_model`) and their motion (`Couplings.bodies`) to the solvers after
it."""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from ... import surfaces
from ...entities.rigid_entity import RigidEntity
from ...entities.terrain_entity import TerrainEntity
from ...errors import CheckpointError, ContactOverflowError, InvalidInputError, UnsupportedFeatureError
from ...materials import Rigid
from ...morphs import MJCF, URDF, Box, Cylinder, Mesh, Plane, Sphere, Terrain, _Primitive
from ...options import RigidOptions, SimOptions
from ..base import BodyMotion, Couplings, SceneSolver
from .collision_filter import filter_self_collision
from . import heterogeneous as het
from .compose import compose, file_options
from .kinematics import forward_kinematics
from .model import validate_mjmodel
from .params import PRIMARY, derive
from .solver import RigidSolver, RigidState

__all__ = ["RigidSceneSolver"]

_MORPHS = (MJCF, URDF, Box, Sphere, Cylinder, Mesh, Plane, Terrain)


class RigidSceneSolver(SceneSolver):
    """`RigidSolver` behind the solver protocol; `scene.rigid_solver` is the built `RigidSolver`."""

    key, kind, options_class, state_class = "RigidSolver", "rigid", RigidOptions, RigidState
    materials, claims_no_material, material_hint = (Rigid,), True, "gs.materials.Rigid"
    heterogeneous = True  # add_entity takes a tuple of variant morphs (heterogeneous.py)
    entity_name_prefix = ""  # Genesis names rigid entities by their morph alone ("box_3f2a9c1")

    def bind_state(self, current_state) -> None:
        """Also give the solver the scene's state epoch (its kinematics cache, `RigidSolver.kinematics`)."""
        super().bind_state(current_state)
        scene = self.scene
        self.solver.state_epoch = lambda: scene.__dict__.get("_state_epoch", 0)

    @classmethod
    def check_options(cls, sim: SimOptions, options: RigidOptions) -> None:
        if options.dt is not None and sim.is_set("dt") and abs(options.dt - sim.substep_dt) > 1e-15:
            raise InvalidInputError(
                f"RigidOptions(dt={options.dt}) differs from SimOptions dt/substeps = {sim.substep_dt}; "
                "leave RigidOptions.dt as None or make them equal.")

    def add_entity(self, morph, material, surface, idx: int) -> RigidEntity:
        """`RigidEntity` of `morph`: its spec (painted with `surface`, the material's friction on every geom) is
        compiled alone now so errors name the entity; the scene model is composed at build. A tuple of morphs makes
        a heterogeneous entity (`heterogeneous.py`: each env simulates one of them)."""
        if isinstance(morph, tuple):
            return self._add_heterogeneous(morph, material, surface, idx)
        spec, child_model, friction, gravcomp = self._prepare(morph, material, surface)
        cls = TerrainEntity if isinstance(morph, Terrain) else RigidEntity
        return self._register(cls(self.scene, idx, morph, name=f"entity{idx}", solver=self), spec,
                              child_model, surface, friction, gravcomp)

    def _prepare(self, morph, material, surface):
        """(spec, the spec compiled alone, material friction, gravity compensation) of one morph."""
        if not isinstance(morph, _MORPHS):
            raise InvalidInputError(f"add_entity: {morph!r} is not a supported morph; use gs.morphs.MJCF, URDF, Box, "
                                    "Sphere, Cylinder, Mesh, Plane or Terrain.")
        with_rho = isinstance(morph, (_Primitive, Mesh))  # Genesis' Rigid default rho: 200 kg/m^3
        spec = morph.to_spec(getattr(material, "rho", 200.0)) if with_rho else morph.to_spec()
        friction = getattr(material, "friction", None)
        if friction is not None:  # the material's friction replaces every geom's sliding coefficient
            for geom in spec.geoms:
                geom.friction = [float(friction), *list(geom.friction)[1:]]
        gravcomp = float(getattr(material, "gravity_compensation", 0.0))
        if gravcomp:  # Genesis' per-entity gravity compensation is MuJoCo's body_gravcomp on every body
            for body in spec.bodies:
                if body.name != "world":
                    body.gravcomp = gravcomp
        surfaces.paint_geoms(spec, surface)
        try:
            child_model = spec.compile()
        except Exception as exc:  # MuJoCo's compiler error names the element
            raise InvalidInputError(f"add_entity: MuJoCo could not compile {morph!r}: {exc}") from exc
        try:
            validate_mjmodel(child_model)
        except UnsupportedFeatureError as exc:
            raise UnsupportedFeatureError(f"{morph!r}: {exc}") from None
        filter_self_collision(spec, child_model, self.options)  # docs/rigid.md, "Self-collision"
        return spec, child_model, friction, gravcomp

    def _add_heterogeneous(self, morphs: tuple, material, surface, idx: int) -> RigidEntity:
        """One entity of several variant morphs sharing their kinematic topology (`heterogeneous.py`)."""
        if any(isinstance(m, (Plane, Terrain)) for m in morphs):
            raise InvalidInputError("add_entity([...]): a Plane or Terrain cannot be a heterogeneous variant; add it "
                                    "alone.")
        prepared = [self._prepare(m, material, surface) for m in morphs]
        labels = [m.file if isinstance(m, MJCF) else type(m).__name__ for m in morphs]
        specs, models = [p[0] for p in prepared], [p[1] for p in prepared]
        het.check_topology(labels, models)
        het.check_same_options(labels, [file_options(sp) if isinstance(m, MJCF) else {}
                                        for sp, m in zip(specs, morphs)])
        placed = het.variant_models(specs, morphs)
        het.check_supported(labels, placed)
        spec, counts = het.merge_specs(labels, specs, models, [float(getattr(m, "scale", 1.0)) if isinstance(
            m, MJCF) else 1.0 for m in morphs])
        try:
            struct_model = spec.compile()
        except Exception as exc:  # MuJoCo's compiler error names the element
            raise InvalidInputError(f"add_entity: MuJoCo could not compile the variants {labels}: {exc}") from exc
        entity = RigidEntity(self.scene, idx, morphs[0], name=f"entity{idx}", solver=self)
        entity._morphs = tuple(morphs)
        entity._variant_models, entity._variant_geom_counts = placed, counts
        _, _, friction, gravcomp = prepared[0]
        return self._register(entity, spec, struct_model, surface, friction, gravcomp)

    def _register(self, entity, spec, child_model, surface, friction, gravcomp) -> RigidEntity:
        idx = entity.idx
        entity._spec, entity._child_nbody = spec, child_model.nbody - 1
        entity._mj_prefix = f"entity{idx}/"  # names in the scene model, independent of the user's entity name
        entity.surface = surface
        entity._material_fingerprint = ({} if friction is None else {"material_friction": float(friction)}) | \
            ({"gravity_compensation": gravcomp} if gravcomp else {})
        entity._link_names_local = [mujoco.mj_id2name(child_model, mujoco.mjtObj.mjOBJ_BODY, b) or f"link{b - 1}"
                                    for b in range(1, child_model.nbody)]
        self.entities.append(entity)
        return entity

    # ----------------------------------------------------------------- build
    def validate(self) -> None:
        """Heterogeneous entities collide per env; the particle solvers' colliders take every geom of the model
        (`Couplings.collider_model`), so a scene with both raises before anything is built."""
        if any(len(e.morphs) > 1 for e in self.entities):
            others = [s.kind for s in self.scene._solvers if s is not self and s.entities]
            if others:
                raise UnsupportedFeatureError(
                    f"heterogeneous rigid entities cannot share a scene with {others} entities (their colliders would "
                    "see every variant's geoms in every env); give each variant its own scene, or use one morph.")

    def resolve_options(self, sim: SimOptions) -> SimOptions:
        """Compose the entities into one model (`compose.py`): the files' `<option>`s resolved against the scene's
        options (docs/rigid.md, "Options"); the resolved `RigidOptions` are installed by `build`."""
        parts = [(m.file if isinstance(m, MJCF) else type(m).__name__, e._spec, m.pos, m.quat, e._mj_prefix,
                  isinstance(m, MJCF), not isinstance(m, MJCF) or isinstance(m, URDF))
                 for e, m in ((e, e.main_morph) for e in self.entities)]
        mj_model, sim_r, self._resolved = compose(parts, sim, self.options)
        self._mj_model = mj_model
        return sim_r

    def _build(self, n_envs, device, dtype, sim, couplings) -> None:
        rigid, mj_model = self._resolved, self._mj_model
        start = 1
        for e in self.entities:  # heterogeneous entities: each variant's compiled geom sizes and poses
            if len(e.morphs) > 1:
                het.patch_geoms(mj_model, np.arange(start, start + e._child_nbody), e._variant_models,
                                e._variant_geom_counts)
            start += e._child_nbody
        solver = RigidSolver(mj_model, rigid, self.dt, rigid.gravity or sim.gravity, device, dtype)
        self.options = rigid
        solver.steps_per_scene_step = sim.substeps * self.substeps  # an applied wrench lasts one scene.step()
        solver._put_state = lambda state, key=self.key: self.scene._put_state(key, state)
        start = 1
        for e in self.entities:
            e._bind(mj_model, np.arange(start, start + e._child_nbody), e._mj_prefix)
            e._link_names = e._link_names_local
            start += e._child_nbody
        solver.n_envs = n_envs  # Genesis' getters drop the env dim when n_envs == 0
        self.solver = solver
        self._build_heterogeneous(max(n_envs, 1))

    def _build_heterogeneous(self, B: int) -> None:
        """Per-env parameters, geom activity and initial qpos of the heterogeneous entities (`heterogeneous.py`);
        `solver.geoms_env_active` is `(B, ngeom)` bool, or None when every env has every geom."""
        solver, m = self.solver, self.solver.mj_model
        solver.geoms_env_active = None
        self._het_qs = []
        hets = [e for e in self.entities if len(e.morphs) > 1]
        if not hets:
            return
        bodies, geoms = [], []
        for e in hets:
            envs_variant = het.variant_envs(len(e.morphs), B)
            e._envs_variant = envs_variant
            acts = np.nonzero((m.actuator_trntype == int(mujoco.mjtTrn.mjTRN_JOINT))
                              & np.isin(m.actuator_trnid[:, 0], e._jnt_ids))[0]
            bodies.append((e._body_ids, e._dof_ids, acts, e._variant_models, envs_variant))
            self._het_qs.append((e._q_ids, e._variant_models, envs_variant))
            ids = np.concatenate([np.arange(m.body_geomadr[b], m.body_geomadr[b] + m.body_geomnum[b])
                                  for b in e._body_ids])
            variant = np.concatenate([np.repeat(np.arange(len(e.morphs)), e._variant_geom_counts[:, 1 + i])
                                      for i in range(len(e._body_ids))])
            geoms.append((ids, variant, envs_variant))
        values = het.variant_params(solver.params, solver.model, m.body_parentid, bodies, B, solver.device,
                                    solver.dtype)
        solver.set_params(**values)
        active = torch.as_tensor(het.geoms_env_active(m.ngeom, geoms, B), device=solver.device)
        solver.geoms_env_active = active
        if solver.contact_model is not None:
            solver.contact_model.pair_env_active = het.pair_env_active(solver.contact_model, active)

    def offer(self, couplings: Couplings) -> Couplings:
        return couplings.replace(collider_model=self.solver.mj_model)

    def initial_state(self, n_envs: int) -> RigidState:
        state = self.solver.initial_state(n_envs)
        if not self._het_qs:
            return state
        fields = state.integration_fields()  # a heterogeneous entity's free root starts at its variant's pose
        fields["qpos"] = het.initial_qpos(state.qpos, self._het_qs)
        return self.solver.make_state(**fields)

    # ------------------------------------------------------------------ step
    def substep(self, state: RigidState, couplings: Couplings, dt: float) -> RigidState:
        """`RigidSolver.step` (built with `dt`); raises `ContactOverflowError` when an env had more contacts than
        its contact buffer holds (`max_collision_pairs` pairs, `max_contacts`; the scene then keeps the state of
        before the step)."""
        state = self.solver.step(state)
        overflow = self.solver.last_overflow
        if overflow is not None and bool((overflow > 0).any()):
            raise ContactOverflowError(self._overflow_message(overflow))
        return state

    def _overflow_message(self, overflow: torch.Tensor) -> str:
        """What overflowed, by how much, and the option to raise (the one that set the capacity)."""
        envs, cm, o = torch.nonzero(overflow > 0).flatten().tolist(), self.solver.contact_model, self.options
        need = cm.max_contacts + int(overflow.max())
        if cm.max_contacts < cm.max_pair_slots:  # max_contacts set the capacity
            fix = f"raise RigidOptions(max_contacts={o.max_contacts}) to at least {need} (or leave it None)"
        else:
            fix = (f"raise RigidOptions(max_collision_pairs={o.max_collision_pairs}), which holds the {cm.max_contacts}"
                   f" contact slots of that many geom pairs")
        return (f"envs {envs[:10]} have up to {need} contacts, {int(overflow.max())} more than the "
                f"{cm.max_contacts} slots of the contact buffer; {fix}. The step was not applied.")

    def couple(self, couplings: Couplings, before: RigidState, after: RigidState, dt: float) -> Couplings:
        return couplings.replace(bodies=BodyMotion(before.links_pos, before.links_quat, after.links_pos,
                                                   after.links_quat, dt))

    def after_reset(self, state: RigidState) -> RigidState:
        return self.solver.refresh_links(state)  # link poses of moved fixed bases (model parameters, kept by reset)

    # ----------------------------------------------------------- checkpoints
    def params_arrays(self) -> dict[str, np.ndarray]:
        """`RigidSolver.params.<name>` for the user-settable parameters (`params.PRIMARY`), expanded to B rows."""
        p, B = self.solver.params, self.scene.batch_size
        return {f"{self.key}.params.{n}": getattr(p, n).detach().expand(B, *getattr(p, n).shape[1:]).cpu()
                .contiguous().numpy().copy() for n in PRIMARY}

    def load_params(self, arrays):
        s = self.solver
        values = {n: torch.from_numpy(np.array(arrays[f"{self.key}.params.{n}"])).to(s.device) for n in PRIMARY}
        return derive(s.model, s.contact_model, s.params.replace(**values))

    def load_state(self, arrays, params) -> RigidState:
        """The file's state; its link poses must match its qpos under its body frames (else the file is corrupt)."""
        state = RigidState.from_arrays(arrays, self.scene.device)
        kin = forward_kinematics(self.solver.model, state.qpos, params.body_ipos, params.body_pos, params.body_quat)
        # compiled and eager kinematics agree to rounding, not bitwise: keep the file's poses when they agree
        tol = 1e-4 if self.solver.dtype == torch.float32 else 1e-10
        if not (torch.allclose(kin.xpos[:, 1:], state.links_pos, rtol=tol, atol=tol, equal_nan=True) and
                torch.allclose(kin.xquat[:, 1:], state.links_quat, rtol=tol, atol=tol, equal_nan=True)):
            raise CheckpointError("stored link poses do not match its qpos; the file is corrupt.")
        return state

    def install_params(self, params) -> None:
        self.solver.params = params

    def fingerprint(self) -> dict:
        """Always present (rigid-only and MPM-only scenes keep the fingerprints they had before the protocol)."""
        return {"rigid_options": self.options.fingerprint(),
                "entities": [{**e._morph_fingerprint(), **e._material_fingerprint} for e in self.entities]}

"""The Scene: entities, build, step, state snapshots, resets and checkpoints (DESIGN.md §5–6)."""

from __future__ import annotations

import hashlib
import json
import logging

import mujoco
import numpy as np
import torch

from . import checkpoint as ckpt
from . import surfaces
from ._runtime import get_runtime
from .entities.mpm_entity import MPMEntity
from .entities.rigid_entity import RigidEntity
from .errors import (CheckpointError, ContactOverflowError, GenesisError, IncompatibleCheckpointError,
                     InvalidInputError, SceneStateError, SimulationDivergedError,
                     UnsupportedFeatureError)
from .materials.MPM import MATERIALS as _MPM_MATERIALS
from .morphs import MJCF, URDF, Box, Cylinder, Mesh, Plane, Sphere, _Primitive
from .options import MPMOptions, ProfilingOptions, RigidOptions, SimOptions, ViewerOptions, VisOptions
from . import _scene_mpm
from ._scene_debug import DebugDraw
from .vis.camera import Cameras
from .solvers.rigid.compose import compose
from .solvers.rigid.dynamics import CTRL_FORCE, CTRL_NONE, CTRL_POSITION, CTRL_VELOCITY
from .solvers.rigid.collision_filter import filter_self_collision
from .solvers.rigid.model import validate_mjmodel
from .solvers.rigid.params import PRIMARY
from .solvers.rigid.solver import RigidSolver, RigidState
from .math.quat import quat_normalize
from .state import SimState, SolverState, envs_mask

logger = logging.getLogger("genesis_torch")

_RIGID_MORPHS = (MJCF, URDF, Box, Sphere, Cylinder, Mesh, Plane)
_MPM_MORPHS = (Box, Sphere, Cylinder, Mesh)
_PARAM_NAMES = PRIMARY  # the user-settable rigid parameters, saved in checkpoints


class Scene(DebugDraw, Cameras):
    """A simulation scene. Add entities, `build(n_envs)`, then `step()`.

    Args:
        sim_options: `gs.options.SimOptions` (dt, substeps, gravity, requires_grad).
        rigid_options: `gs.options.RigidOptions` (integrator, joint limits, constraint solver).
        mpm_options: `gs.options.MPMOptions` (domain, grid density, particle size, MPM substep, walls).
        show_viewer: accepted for Genesis scripts; there is no viewer, a warning is logged when True.
        viewer_options, vis_options, show_FPS: Genesis' viewer/renderer settings, validated and ignored. So are the
            `draw_debug_*` methods (`_scene_debug.py`): nothing is drawn (docs/genesis_compat.md).
        profiling_options: `gs.options.ProfilingOptions`, validated and kept as `scene.profiling_options` (no frame
            rate is logged); `show_FPS`, when given, overrides its `show_FPS` as in Genesis.
    """

    def __init__(self, sim_options: SimOptions | None = None, rigid_options: RigidOptions | None = None,
                 mpm_options: MPMOptions | None = None, *, show_viewer: bool = False,
                 viewer_options: ViewerOptions | None = None, vis_options: VisOptions | None = None,
                 show_FPS: bool | None = None, profiling_options: ProfilingOptions | None = None, **unknown):
        if unknown:
            raise InvalidInputError(f"Scene got unknown argument(s) {sorted(unknown)}; valid arguments are "
                                    "sim_options, rigid_options, mpm_options, show_viewer, viewer_options, "
                                    "vis_options, show_FPS, profiling_options.")
        for name, value, kind in (("viewer_options", viewer_options, ViewerOptions),
                                  ("vis_options", vis_options, VisOptions),
                                  ("profiling_options", profiling_options, ProfilingOptions)):
            if value is not None and not isinstance(value, kind):
                raise InvalidInputError(f"{name} must be gs.options.{kind.__name__}, got {type(value).__name__}.")
        if not isinstance(show_viewer, bool) or not (show_FPS is None or isinstance(show_FPS, bool)):
            raise InvalidInputError("Scene(show_viewer=..., show_FPS=...): expected True or False.")
        mpm_options = MPMOptions() if mpm_options is None else mpm_options
        if not isinstance(mpm_options, MPMOptions):
            raise InvalidInputError(f"mpm_options must be gs.options.MPMOptions, got {type(mpm_options).__name__}.")
        sim_options = SimOptions() if sim_options is None else sim_options
        rigid_options = RigidOptions() if rigid_options is None else rigid_options
        if not isinstance(sim_options, SimOptions):
            raise InvalidInputError(f"sim_options must be gs.options.SimOptions, got {type(sim_options).__name__}.")
        if not isinstance(rigid_options, RigidOptions):
            raise InvalidInputError(f"rigid_options must be gs.options.RigidOptions, got {type(rigid_options).__name__}.")
        if rigid_options.dt is not None and sim_options.is_set("dt") \
                and abs(rigid_options.dt - sim_options.substep_dt) > 1e-15:
            raise InvalidInputError(
                f"RigidOptions(dt={rigid_options.dt}) differs from SimOptions dt/substeps = {sim_options.substep_dt}; "
                "leave RigidOptions.dt as None or make them equal.")
        if show_viewer:  # viewer_options / vis_options / show_FPS are accepted and ignored (docs/genesis_compat.md)
            logger.warning("show_viewer=True: genesis-torch has no viewer; running headless (viewer and vis options "
                           "are accepted and ignored).")
        self.viewer_options = ViewerOptions() if viewer_options is None else viewer_options
        self.vis_options = VisOptions() if vis_options is None else vis_options
        self.profiling_options = ProfilingOptions() if profiling_options is None else profiling_options
        if show_FPS is not None:  # Genesis' deprecated switch overrides profiling_options.show_FPS
            self.profiling_options = ProfilingOptions(show_FPS=show_FPS,
                                                      FPS_tracker_alpha=self.profiling_options.FPS_tracker_alpha)
        runtime = get_runtime()
        self.device, self.dtype = runtime.device, runtime.dtype
        self.sim_options, self.rigid_options = sim_options, rigid_options
        self.mpm_options = mpm_options
        self.mpm_substeps = _scene_mpm.mpm_substeps(sim_options, mpm_options)  # MPM substeps per scene substep
        self.entities: list = []  # RigidEntity and MPMEntity handles, in the order added
        self.rigid_solver: RigidSolver | None = None
        self.mpm_solver = None  # MPMSolver when the scene has MPM entities
        self._rigid_state: RigidState | None = None
        self._mpm_state = None
        self.n_envs = 0
        self._t = 0
        self._built = False
        self._warned_envs = None  # the diverged envs last warned about (on_divergence="warn")

    # ----------------------------------------------------------------- set-up
    @property
    def rigid_entities(self) -> list[RigidEntity]:
        return [e for e in self.entities if isinstance(e, RigidEntity)]

    @property
    def mpm_entities(self) -> list[MPMEntity]:
        return [e for e in self.entities if isinstance(e, MPMEntity)]

    def add_entity(self, morph, material=None, surface=None, visualize_contact: bool = False):
        """Add an entity made from `morph` and return its handle.

        With `material=gs.materials.Rigid` (or None): MJCF, URDF, Box, Sphere, Cylinder, Mesh or Plane →
        `RigidEntity`.
        With a `gs.materials.MPM.*` material: Box, Sphere, Cylinder or Mesh sampled into particles → `MPMEntity`.
        `surface` (a `gs.surfaces.*`, default `Default()`) is kept as `entity.surface`; its colour is what cameras draw
        the entity's geoms in (`genesis_torch/surfaces.py`). `visualize_contact` is accepted and ignored.
        """
        if self._built:
            raise SceneStateError("add_entity() after build(); create a new Scene to add entities.")
        if not isinstance(visualize_contact, bool):
            raise InvalidInputError(f"add_entity(visualize_contact={visualize_contact!r}): expected True or False.")
        surface = surfaces.for_entity(surface)
        if isinstance(material, _MPM_MATERIALS):
            if not isinstance(morph, _MPM_MORPHS):
                raise InvalidInputError(f"add_entity: MPM materials need a Box, Sphere, Cylinder or Mesh morph, got "
                                        f"{type(morph).__name__}.")
            entity = _scene_mpm.make_entity(self, morph, material)
            entity.surface = surface  # stored; particles are not drawn by cameras
            self.entities.append(entity)
            return entity
        if not isinstance(morph, _RIGID_MORPHS):
            raise InvalidInputError(f"add_entity: {morph!r} is not a supported morph; use gs.morphs.MJCF, URDF, Box, "
                                    "Sphere, Cylinder, Mesh or Plane.")
        if material is not None and type(material).__name__ != "Rigid":
            raise UnsupportedFeatureError(f"material {type(material).__name__} is not supported; use "
                                          "gs.materials.Rigid or gs.materials.MPM.*.")
        with_rho = isinstance(morph, (_Primitive, Mesh))  # Genesis' Rigid default rho: 200 kg/m^3
        spec = morph.to_spec(getattr(material, "rho", 200.0)) if with_rho else morph.to_spec()
        friction = getattr(material, "friction", None)
        if friction is not None:  # the material's friction replaces every geom's sliding coefficient
            for geom in spec.geoms:
                geom.friction = [float(friction), *list(geom.friction)[1:]]
        surfaces.paint_geoms(spec, surface)
        try:
            child_model = spec.compile()
        except Exception as exc:  # MuJoCo's compiler error names the element
            raise InvalidInputError(f"add_entity: MuJoCo could not compile {morph!r}: {exc}") from exc
        try:
            validate_mjmodel(child_model)
        except UnsupportedFeatureError as exc:
            raise UnsupportedFeatureError(f"{morph!r}: {exc}") from None
        filter_self_collision(spec, child_model, self.rigid_options)  # docs/rigid.md, "Self-collision"
        entity = RigidEntity(self, len(self.entities), morph, name=f"entity{len(self.entities)}")
        entity._spec, entity._child_nbody = spec, child_model.nbody - 1
        entity.surface = surface
        entity._material_fingerprint = {} if friction is None else {"material_friction": float(friction)}
        entity._link_names_local = [mujoco.mj_id2name(child_model, mujoco.mjtObj.mjOBJ_BODY, b) or f"link{b - 1}"
                                    for b in range(1, child_model.nbody)]
        self.entities.append(entity)
        return entity

    def build(self, n_envs: int = 0, env_spacing=None) -> None:
        """Compile all entities into one model and create `max(n_envs, 1)` envs at the initial state.

        `env_spacing` (x, y) m is accepted and ignored: as in Genesis it only offsets envs in the rendering.
        """
        if self._built:
            raise SceneStateError("build() was already called; create a new Scene to build again.")
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 0:
            raise InvalidInputError(f"build(n_envs={n_envs!r}): expected an int >= 0 (0 = one env, no env dim).")
        if env_spacing is not None:
            spacing = np.asarray(env_spacing, dtype=object)
            if spacing.shape != (2,) or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                                and np.isfinite(float(v)) for v in spacing):
                raise InvalidInputError(f"build(env_spacing={env_spacing!r}): expected two finite numbers (x, y) m.")
        if not self.entities:
            raise SceneStateError("build() needs at least one entity; call scene.add_entity(...) first.")
        if self.mpm_entities:  # particles outside the domain raise before anything is built
            _scene_mpm.check_domain(self)
        if self.rigid_entities:
            self._build_rigid()
        if self.mpm_entities:
            self.mpm_solver = _scene_mpm.build_solver(self)
        self.n_envs = int(n_envs)
        if self.rigid_solver is not None:
            self._build_state = self.rigid_solver.initial_state(self.n_envs)
            self._rigid_state = self._build_state
        if self.mpm_solver is not None:
            self._mpm_build_state = self.mpm_solver.initial_state(self.n_envs)
            self._mpm_state = self._mpm_build_state
        for name, solver in self._solvers().items():  # the solvers read their current state from the scene
            solver.bind_state(lambda name=name: self._states()[name])
        self._fingerprint = self._compute_fingerprint()
        self._t = 0
        self._built = True

    def _build_rigid(self) -> None:
        """Compose the rigid entities into one model (`solvers/rigid/compose.py`): the files' `<option>`s are resolved
        against the scene's options, which are replaced by the resolved ones (docs/rigid.md, "Options")."""
        parts = [(e.morph.file if isinstance(e.morph, MJCF) else type(e.morph).__name__, e._spec, e.morph.pos,
                  e.morph.quat, f"{e.name}/", isinstance(e.morph, MJCF)) for e in self.rigid_entities]
        mj_model, sim, rigid = compose(parts, self.sim_options, self.rigid_options)
        mpm_substeps = _scene_mpm.mpm_substeps(sim, self.mpm_options)  # the substep may come from a file
        solver = RigidSolver(mj_model, rigid, sim.substep_dt, rigid.gravity or sim.gravity, self.device, self.dtype)
        self.sim_options, self.rigid_options, self.mpm_substeps = sim, rigid, mpm_substeps
        start = 1
        for e in self.rigid_entities:
            e._bind(mj_model, np.arange(start, start + e._child_nbody), f"{e.name}/")
            e._link_names = e._link_names_local
            start += e._child_nbody
        self.rigid_solver = solver

    def _compute_fingerprint(self) -> str:
        config = {
            "sim_options": self.sim_options.fingerprint(),
            "rigid_options": self.rigid_options.fingerprint(),
            "entities": [{**e.morph.fingerprint(), **e._material_fingerprint} for e in self.rigid_entities],
        }
        if self.mpm_entities:  # rigid-only scenes keep their fingerprint
            config["mpm_options"] = self.mpm_options.fingerprint()
            config["mpm_entities"] = [(e.idx, e.fingerprint()) for e in self.mpm_entities]
        return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()

    # ------------------------------------------------------------- properties
    def _require_built(self, what: str) -> None:
        if not self._built:
            raise SceneStateError(f"scene.{what}() needs a built scene; call scene.build() first.")

    @property
    def is_built(self) -> bool:
        return self._built

    @property
    def t(self) -> int:
        """Number of `step()` calls since build (or since the restored state's step)."""
        return self._t

    @property
    def dt(self) -> float:
        return self.sim_options.dt

    @property
    def batch_size(self) -> int:
        """`B = max(n_envs, 1)`, the leading dim of every state tensor."""
        return max(self.n_envs, 1)

    @property
    def fingerprint(self) -> str:
        self._require_built("fingerprint")
        return self._fingerprint

    # ------------------------------------------------------------------ step
    def step(self) -> None:
        """Advance every env by `dt` (`substeps` internal steps)."""
        self._require_built("step")
        state, mpm_state = self._rigid_state, self._mpm_state
        with torch.set_grad_enabled(self.sim_options.requires_grad and torch.is_grad_enabled()):
            for _ in range(self.sim_options.substeps):
                before = state
                if self.rigid_solver is not None:
                    state = self.rigid_solver.step(state)
                    self._check_overflow()
                if self.mpm_solver is not None:  # after the rigid substep: its geoms are the colliders (docs/mpm.md)
                    mpm_state = _scene_mpm.substeps(self, mpm_state, before, state)
        self._rigid_state, self._mpm_state = state, mpm_state
        self._t += 1
        self._check_divergence()

    def _solvers(self) -> dict:
        """{checkpoint key: solver} of the solvers this scene has, in step order."""
        return {k: v for k, v in (("RigidSolver", self.rigid_solver), ("MPMSolver", self.mpm_solver)) if v is not None}

    def _check_divergence(self) -> None:
        """Every `divergence_check_interval` steps: report envs whose state holds NaN/inf, per `on_divergence`."""
        policy, every = self.sim_options.on_divergence, self.sim_options.divergence_check_interval
        if policy == "ignore" or self._t % (every or (1 if self.device.type == "cpu" else 10)):
            return
        masks = {k: st.nonfinite_envs() for k, st in self._states().items()}
        diverged = torch.stack(list(masks.values())).any(0)
        if not bool(diverged.any()):  # the one host sync of a check
            self._warned_envs = None
            return
        envs = torch.nonzero(diverged).flatten().tolist()
        where = ", ".join(f"{k} envs {torch.nonzero(m).flatten().tolist()[:10]}" for k, m in masks.items()
                          if bool(m.any()))
        message = (f"the simulation diverged at step t={self._t}: NaN/inf in {where}. The step was applied; the other "
                   "envs are unaffected. Reset the diverged envs (scene.reset(envs_idx=<solver>.get_error_envs_mask())) "
                   "and make the step stabler (smaller SimOptions.dt or more substeps, softer materials), or choose "
                   "SimOptions(on_divergence='warn' or 'ignore').")
        if policy == "raise":
            raise SimulationDivergedError(message, envs_mask=diverged)
        if envs != self._warned_envs:  # warn once per new set of diverged envs
            self._warned_envs = envs
            logger.warning(message)

    def _check_overflow(self) -> None:
        overflow = self.rigid_solver.last_overflow
        if overflow is not None and bool((overflow > 0).any()):
            envs = torch.nonzero(overflow > 0).flatten().tolist()
            raise ContactOverflowError(
                f"envs {envs[:10]} have up to {int(overflow.max())} more contacts than "
                f"RigidOptions(max_collision_pairs={self.rigid_options.max_collision_pairs}) holds; raise "
                "max_collision_pairs. The step was not applied.")

    def _states(self, build: bool = False) -> dict[str, SolverState]:
        """{solver name: current state} (or the build-time states), for the solvers this scene has."""
        out = {}
        if self.rigid_solver is not None:
            out["RigidSolver"] = self._build_state if build else self._rigid_state
        if self.mpm_solver is not None:
            out["MPMSolver"] = self._mpm_build_state if build else self._mpm_state
        return out

    def _set_states(self, states: dict) -> None:
        if "RigidSolver" in states:
            self._rigid_state = states["RigidSolver"]
        if "MPMSolver" in states:
            self._mpm_state = states["MPMSolver"]

    # ----------------------------------------------------------------- state
    def get_state(self) -> SimState:
        """A snapshot of every env (O(1): states are immutable values)."""
        self._require_built("get_state")
        return SimState(t=self._t, solvers=self._states(), fingerprint=self._fingerprint)

    def _check_state(self, state) -> dict[str, SolverState]:
        if not isinstance(state, SimState):
            raise InvalidInputError(f"reset(state=...) expects a SimState from scene.get_state(), got "
                                    f"{type(state).__name__}.")
        if state.fingerprint != self._fingerprint:
            raise InvalidInputError("reset(state=...): the state comes from a scene with a different configuration "
                                    "(entities/options); use a state of this scene.")
        mine = self._states()
        if set(state.solvers) != set(mine) or any(not isinstance(state.solvers[k], type(v)) for k, v in mine.items()):
            raise InvalidInputError(f"reset(state=...): unexpected solver states {sorted(state.solvers)}; this scene "
                                    f"has {sorted(mine)}.")
        B = self.batch_size
        for name, current in mine.items():
            given = state.solvers[name]
            for key, (shape, dtype) in current.specs().items():
                t = getattr(given, key.split(".", 1)[1])
                if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape[1:]) != shape[1:] \
                        or t.shape[0] not in (1, B):
                    got = (tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else type(t).__name__
                    raise InvalidInputError(f"reset(state=...): {key} is {got}; expected shape (1 or {B},)+{shape[1:]} "
                                            f"and dtype {dtype}.")
            if len({t.shape[0] for t in given.tensors().values()}) != 1:
                raise InvalidInputError(f"reset(state=...): the fields of {name} have different numbers of envs; "
                                        "pass a state from scene.get_state() (or its select()).")
            for field, t in given.tensors().items():
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    raise InvalidInputError(f"reset(state=...): {name}.{field} holds NaN or inf; reset to a state "
                                            "without diverged envs (e.g. one from before the divergence).")
        return {k: v.to(self.device) for k, v in state.solvers.items()}

    def reset(self, state: SimState | None = None, envs_idx=None) -> None:
        """Reset envs to the build state or to `state`.

        `reset()`: every env to the build state, t = 0. `reset(state=S)`: every env to S, t = S.t.
        `reset(envs_idx=I)` / `reset(state=S, envs_idx=I)`: only envs I (rows I of S, or S's single env); t and
        the other envs are untouched. I: list, tuple, range, NumPy array, int tensor or bool mask of length n_envs.
        """
        self._require_built("reset")
        targets = self._states(build=True) if state is None else self._check_state(state)
        if envs_idx is None:
            self._set_states({k: t if t.n_envs == self.batch_size else t.map(
                lambda x: x.expand(self.batch_size, *x.shape[1:]).clone()) for k, t in targets.items()})
            self._t = 0 if state is None else int(state.t)
        else:
            mask = envs_mask(envs_idx, self.batch_size, self.device)
            self._set_states({k: cur.merge(targets[k], mask) for k, cur in self._states().items()})
        if self.rigid_solver is not None:  # link poses of moved fixed bases (model parameters, kept by reset)
            self._rigid_state = self.rigid_solver.refresh_links(self._rigid_state)

    # ------------------------------------------------------------ checkpoints
    def _params_arrays(self) -> dict[str, np.ndarray]:
        if self.rigid_solver is None:
            return {}
        p, B = self.rigid_solver.params, self.batch_size
        return {f"RigidSolver.params.{n}": getattr(p, n).detach().expand(B, *getattr(p, n).shape[1:]).cpu()
                .contiguous().numpy().copy() for n in _PARAM_NAMES}

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {}
        for st in self._states().values():
            arrays.update(st.to_arrays())
        arrays.update(self._params_arrays())
        if self.mpm_solver is not None:
            arrays.update(_scene_mpm.params_arrays(self))
        return arrays

    def _checkpoint_metadata(self) -> dict:
        return {"n_envs": self.n_envs, "dtype": str(self.dtype).replace("torch.", ""),
                "fingerprint": self._fingerprint, "entities": [e.morph.fingerprint() for e in self.entities]}

    def save_checkpoint(self, path, *, allow_nonfinite: bool = False) -> None:
        """Write the complete state (and runtime parameters) to `path`: `.pkl`/`.pickle` or safetensors.

        A state with NaN/inf (diverged envs) is refused with `SimulationDivergedError` naming the envs, unless
        `allow_nonfinite=True` (e.g. to keep a diverged run for debugging; load it with the same flag)."""
        self._require_built("save_checkpoint")
        if not isinstance(allow_nonfinite, bool):
            raise InvalidInputError(f"save_checkpoint(allow_nonfinite={allow_nonfinite!r}): expected True or False.")
        if not allow_nonfinite:
            for key, st in self._states().items():
                bad = st.nonfinite_envs()
                if bool(bad.any()):
                    raise SimulationDivergedError(
                        f"save_checkpoint({str(path)!r}): {key} envs {torch.nonzero(bad).flatten().tolist()[:10]} hold "
                        "NaN/inf (diverged); reset them first (scene.reset(envs_idx=...)) or pass "
                        "allow_nonfinite=True to save them as they are. Nothing was written.", envs_mask=bad)
        ckpt.save_checkpoint_file(path, self._checkpoint_arrays(), self._checkpoint_metadata(), step_index=self._t,
                                  allow_nonfinite=allow_nonfinite)

    def load_checkpoint(self, path, *, allow_nonfinite: bool = False) -> None:
        """Restore a checkpoint of this scene configuration; raises before changing anything if it does not fit.
        A file holding NaN/inf (saved with `allow_nonfinite=True`) loads only with `allow_nonfinite=True`."""
        self._require_built("load_checkpoint")
        if not isinstance(allow_nonfinite, bool):
            raise InvalidInputError(f"load_checkpoint(allow_nonfinite={allow_nonfinite!r}): expected True or False.")
        data = ckpt.read_checkpoint_file(path, allow_nonfinite=allow_nonfinite)
        meta = data.metadata
        if meta.get("fingerprint") == self._fingerprint:
            if meta.get("n_envs") != self.n_envs:
                raise IncompatibleCheckpointError(f"checkpoint {path} has n_envs={meta.get('n_envs')}, this scene "
                                                  f"n_envs={self.n_envs}; build the scene with the same n_envs.")
            mine = str(self.dtype).replace("torch.", "")
            if meta.get("dtype") != mine:
                raise IncompatibleCheckpointError(f"checkpoint {path} holds {meta.get('dtype')}, this scene {mine}; "
                                                  f'call gs.init(precision="{"64" if "64" in str(meta.get("dtype")) else "32"}").')
        expected = {k: (v.shape, v.dtype) for k, v in self._checkpoint_arrays().items()}
        ckpt.check_compatible(data, expected, self._fingerprint)
        arrays = data.arrays
        mpm = _scene_mpm.load_arrays(self, arrays) if self.mpm_solver is not None else None
        if self.rigid_solver is None:
            self._mpm_state, self.mpm_solver.params = mpm
            self._t = int(data.step_index)
            return
        state = RigidState.from_arrays(arrays, self.device)
        params = {n: torch.from_numpy(np.array(arrays[f"RigidSolver.params.{n}"])).to(self.device) for n in _PARAM_NAMES}
        before = self.rigid_solver.params
        self.rigid_solver.set_params(**params)  # the file's body frames place its links
        recomputed = self.rigid_solver.make_state(**state.integration_fields())
        # compiled and eager kinematics agree to rounding, not bitwise: keep the file's poses when they agree
        tol = 1e-4 if self.dtype == torch.float32 else 1e-10
        if not (torch.allclose(recomputed.links_pos, state.links_pos, rtol=tol, atol=tol, equal_nan=True) and
                torch.allclose(recomputed.links_quat, state.links_quat, rtol=tol, atol=tol, equal_nan=True)):
            self.rigid_solver.params = before
            raise CheckpointError(f"checkpoint {path}: stored link poses do not match its qpos; the file is corrupt.")
        self._rigid_state = state
        if mpm is not None:
            self._mpm_state, self.mpm_solver.params = mpm
        self._t = int(data.step_index)

    # -------------------------------------------- entity support (internal)
    def _set_rigid_state(self, **fields) -> None:
        self._rigid_state = self._rigid_state.replace(**fields)

    def _set_qpos(self, envs: torch.Tensor, qadr: torch.Tensor, values: torch.Tensor,
                  zero_dofs: torch.Tensor | None) -> None:
        """Write `values` to qpos[envs, qadr], normalise the quaternions written, zero dofs_vel[envs, zero_dofs]."""
        st, m = self._rigid_state, self.rigid_solver.model
        qpos = st.qpos.index_put((envs[:, None], qadr[None, :]), values.to(st.qpos.dtype))
        rows = torch.zeros(self.batch_size, dtype=torch.bool, device=self.device).index_fill(0, envs, True)
        written = set(qadr.tolist())
        for adr in torch.cat((m.ball_qadr, m.free_qadr + 3)).tolist():
            if written.isdisjoint(range(adr, adr + 4)):  # only quaternions this call wrote; others keep their bits
                continue
            normed = quat_normalize(qpos[:, adr:adr + 4])
            qpos = torch.cat((qpos[:, :adr], torch.where(rows[:, None], normed, qpos[:, adr:adr + 4]),
                              qpos[:, adr + 4:]), dim=1)
        vel = st.dofs_vel
        if zero_dofs is not None and zero_dofs.numel():  # the calling entity's dofs only, not the whole env
            vel = vel.index_put((envs[:, None], zero_dofs[None, :]), vel.new_zeros(()))
        self._rigid_state = self.rigid_solver.make_state(**{**st.integration_fields(), "qpos": qpos, "dofs_vel": vel})

    def _dof_param(self, name: str) -> torch.Tensor:
        """(B, nv) kp / kv, or (B, nv, 2) force range, merging MJCF actuators and the dof controller."""
        p, m, B = self.rigid_solver.params, self.rigid_solver.model, self.batch_size
        if m.nu == 0:  # no MJCF actuators (e.g. primitives): gathering from the empty actuator arrays would fail
            own = {"kp": p.dof_kp, "kv": p.dof_kv}.get(name, p.dof_force_range)
            return own.expand(B, *own.shape[1:])
        act = m.dof_actuator.clamp(min=0)
        has = m.dof_actuator >= 0
        if name == "kp":
            own, from_act = p.dof_kp, -p.biasprm[:, act, 1]
        elif name == "kv":
            own, from_act = p.dof_kv, -p.biasprm[:, act, 2]
        else:
            own, from_act = p.dof_force_range, p.forcerange[:, act]
            has = has[:, None]
        return torch.where(has, from_act, own).expand(B, *own.shape[1:])

    def _set_dof_param(self, name: str, envs, dofs, values) -> None:
        p, m, B = self.rigid_solver.params, self.rigid_solver.model, self.batch_size
        act = m.dof_actuator[dofs]
        has = act >= 0
        full = lambda t: t.expand(B, *t.shape[1:])  # noqa: E731
        upd = {}
        if bool((~has).any()):
            own = {"kp": "dof_kp", "kv": "dof_kv", "force_range": "dof_force_range"}[name]
            upd[own] = full(getattr(p, own)).index_put((envs[:, None], dofs[~has][None]), values[:, ~has])
        if bool(has.any()):
            a, v = act[has], values[:, has]
            if name == "kp":
                upd["gainprm"] = full(p.gainprm).index_put((envs[:, None], a[None], torch.tensor(0)), v)
                upd["biasprm"] = full(p.biasprm).index_put((envs[:, None], a[None], torch.tensor(1)), -v)
            elif name == "kv":
                upd["biasprm"] = full(p.biasprm).index_put((envs[:, None], a[None], torch.tensor(2)), -v)
            else:
                upd["forcerange"] = full(p.forcerange).index_put((envs[:, None], a[None]), v)
        self.rigid_solver.set_params(**{k: v.clone() for k, v in upd.items()})

    def _control_dofs(self, mode: int, envs, dofs, values, what: str) -> None:
        """A dof driven by an MJCF actuator of the call's kind gets the actuator's `ctrl` (and its dof-controller mode
        back to none); any other dof takes the call as a dof-controller target (`dofs_ctrl_mode`, state), which
        turns a driving actuator off in those envs (the dof controller then uses the actuator's kp / kv / force
        range, as `get_dofs_kp` etc. report them)."""
        st, m, p = self._rigid_state, self.rigid_solver.model, self.rigid_solver.params
        act = m.dof_actuator[dofs]
        routed = act >= 0  # through the actuator's ctrl
        if m.nu:
            a_all = act.clamp(min=0)
            g0, b1, b2 = m.act_gainprm[a_all, 0], m.act_biasprm[a_all, 1], m.act_biasprm[a_all, 2]
            routed &= {CTRL_POSITION: b1 != 0, CTRL_VELOCITY: (b1 == 0) & (b2 != 0),
                       CTRL_FORCE: (b1 == 0) & (b2 == 0)}[mode] & (g0 != 0)
        own = ~routed  # dof-controller targets
        fields = {}
        if bool(routed.any()):
            a = act[routed]
            back = dofs[routed]
            gear = m.dof_gear[back]
            gb1 = p.gainprm[:, a, 0].expand(self.batch_size, -1)[envs]
            v = values[:, routed]
            if mode == CTRL_POSITION:
                ctrl = -p.biasprm[:, a, 1].expand(self.batch_size, -1)[envs] * gear * v / gb1
            elif mode == CTRL_VELOCITY:
                ctrl = -p.biasprm[:, a, 2].expand(self.batch_size, -1)[envs] * gear * v / gb1
            else:
                ctrl = v / (gear * gb1)
            fields["ctrl"] = st.ctrl.index_put((envs[:, None], a[None]), ctrl.to(st.ctrl.dtype))
            if bool((st.dofs_ctrl_mode[envs][:, back] != CTRL_NONE).any()):  # the actuator takes over again
                fields["dofs_ctrl_mode"] = st.dofs_ctrl_mode.index_put(
                    (envs[:, None], back[None]), torch.tensor(CTRL_NONE, dtype=torch.int8, device=self.device))
        if bool(own.any()):
            d = dofs[own]
            modes = fields.get("dofs_ctrl_mode", st.dofs_ctrl_mode)
            fields["dofs_ctrl_mode"] = modes.index_put(
                (envs[:, None], d[None]), torch.tensor(mode, dtype=torch.int8, device=self.device))
            fields["dofs_ctrl_target"] = st.dofs_ctrl_target.index_put((envs[:, None], d[None]), values[:, own])
        self._rigid_state = st.replace(**fields)

    def __repr__(self) -> str:
        status = f"built, n_envs={self.n_envs}, t={self._t}" if self._built else "not built"
        return f"Scene({len(self.entities)} entities, {status})"


__all__ = ["Scene", "GenesisError"]

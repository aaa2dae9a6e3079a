"""The Scene: entities, build, step, state snapshots, resets and checkpoints (DESIGN.md §5–6).

The scene names no solver: it drives the registered solvers (`solvers/registry.py`) through the protocol of
`solvers/base.py` and keeps one `{key: SolverState}` map; docs/architecture.md describes the loop.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import torch

from . import checkpoint as ckpt
from . import morphs
from . import surfaces
from ._runtime import get_runtime
from ._scene_debug import DebugDraw
from .errors import (CheckpointError, GenesisError, IncompatibleCheckpointError, InvalidInputError, SceneStateError,
                     SimulationDivergedError, UnsupportedFeatureError)
from .options import ProfilingOptions, SimOptions, ViewerOptions, VisOptions
from .renderers import check_renderer
from .solvers import registry
from .solvers.base import Couplings, SceneSolver, check_options_type, scene_substep
from .state import SimState, SolverState, envs_mask
from .utils.uid import UID
from .vis.camera import Cameras

logger = logging.getLogger("genesis_torch")

def _heterogeneous(morph):
    """Genesis' `add_entity(morph)` argument: a morph, or a list of morphs (a heterogeneous entity, for the solvers
    with `heterogeneous = True`) returned as a tuple; one morph in a list is that morph."""
    if isinstance(morph, (list, tuple)):
        if not morph:
            raise InvalidInputError("add_entity([]): give a morph, or a non-empty list of morphs (one per variant).")
        return morph[0] if len(morph) == 1 else tuple(morph)
    return morph


_SCENE_ARGS = ("show_viewer", "viewer_options", "vis_options", "show_FPS", "profiling_options", "renderer")


class Scene(DebugDraw, Cameras):
    """A simulation scene. Add entities, `build(n_envs)`, then `step()`.

    Args:
        sim_options: `gs.options.SimOptions` (dt, substeps, gravity, requires_grad).
        rigid_options, mpm_options, ...: each registered solver's options, `<kind>_options=gs.options.<Kind>Options`
            (`solvers/registry.py`, docs/architecture.md); None gives the solver's defaults. The keywords of planned
            solvers that are not there yet (`sph_options`, `pbd_options`, `fem_options`) raise
            `UnsupportedFeatureError`.
        show_viewer: accepted for Genesis scripts; there is no viewer, a warning is logged when True.
        viewer_options, vis_options, show_FPS: Genesis' viewer/renderer settings, validated and ignored. So are the
            `draw_debug_*` methods (`_scene_debug.py`): nothing is drawn (docs/genesis_compat.md).
        profiling_options: `gs.options.ProfilingOptions`, validated and kept as `scene.profiling_options` (no frame
            rate is logged); `show_FPS`, when given, overrides its `show_FPS` as in Genesis.
        renderer: `gs.renderers.Rasterizer()` (Genesis' default, kept as `scene.renderer_options`): the cameras'
            backend, MuJoCo's OpenGL rasteriser; `gs.renderers.RayTracer` / `BatchRenderer` raise
            `UnsupportedFeatureError` (`renderers.py`).

    Each solver's handles are `scene.<kind>_solver` (the physics solver after build, else None), `scene.<kind>_options`
    (resolved at build) and `scene.<kind>_entities` (`__getattr__`).
    """

    def __init__(self, sim_options: SimOptions | None = None, rigid_options=None, mpm_options=None, *,
                 show_viewer: bool = False, viewer_options: ViewerOptions | None = None,
                 vis_options: VisOptions | None = None, show_FPS: bool | None = None,
                 profiling_options: ProfilingOptions | None = None, renderer=None, **solver_options):
        solver_options = {**{k: v for k, v in (("rigid_options", rigid_options), ("mpm_options", mpm_options))
                             if v is not None}, **solver_options}
        keywords = {f"{cls.kind}_options": cls for cls in registry.SOLVERS}
        unknown = sorted(set(solver_options) - set(keywords))
        planned = [k for k in unknown if k in registry.PLANNED]
        if planned:
            raise UnsupportedFeatureError(
                f"Scene({planned[0]}=...): the {registry.PLANNED[planned[0]]} solver is not part of genesis-torch yet; "
                f"remove {planned[0]} (the solvers are {', '.join(c.kind for c in registry.SOLVERS)}).")
        if unknown:
            raise InvalidInputError(f"Scene got unknown argument(s) {unknown}; valid arguments are "
                                    f"{', '.join(['sim_options', *keywords, *_SCENE_ARGS])}.")
        for name, value, kind in (("viewer_options", viewer_options, ViewerOptions),
                                  ("vis_options", vis_options, VisOptions),
                                  ("profiling_options", profiling_options, ProfilingOptions)):
            if value is not None and not isinstance(value, kind):
                raise InvalidInputError(f"{name} must be gs.options.{kind.__name__}, got {type(value).__name__}.")
        if not isinstance(show_viewer, bool) or not (show_FPS is None or isinstance(show_FPS, bool)):
            raise InvalidInputError("Scene(show_viewer=..., show_FPS=...): expected True or False.")
        renderer_options = check_renderer(renderer)
        sim_options = SimOptions() if sim_options is None else sim_options
        if not isinstance(sim_options, SimOptions):
            raise InvalidInputError(f"sim_options must be gs.options.SimOptions, got {type(sim_options).__name__}.")
        chosen = []
        for keyword, cls in keywords.items():
            options = solver_options.get(keyword)
            options = cls.options_class() if options is None else options
            check_options_type(cls.kind, cls.options_class, options)
            cls.check_options(sim_options, options)
            chosen.append((cls, options))
        if show_viewer:  # viewer_options / vis_options / show_FPS are accepted and ignored (docs/genesis_compat.md)
            logger.warning("show_viewer=True: genesis-torch has no viewer; running headless (viewer and vis options "
                           "are accepted and ignored).")
        self.viewer_options = ViewerOptions() if viewer_options is None else viewer_options
        self.vis_options = VisOptions() if vis_options is None else vis_options
        self.profiling_options = ProfilingOptions() if profiling_options is None else profiling_options
        self.renderer_options = renderer_options
        if show_FPS is not None:  # Genesis' deprecated switch overrides profiling_options.show_FPS
            self.profiling_options = ProfilingOptions(show_FPS=show_FPS,
                                                      FPS_tracker_alpha=self.profiling_options.FPS_tracker_alpha)
        runtime = get_runtime()
        self.device, self.dtype = runtime.device, runtime.dtype
        self.sim_options = sim_options  # resolved at build (an MJCF file may give the substep)
        self.entities: list = []  # every entity handle, in the order added
        self._solvers: list[SceneSolver] = [cls(self, options) for cls, options in chosen]  # registry (step) order
        self._active: list[SceneSolver] = []  # the solvers with entities, set at build
        self._states: dict[str, SolverState] = {}  # {key: current state}
        self._build_states: dict[str, SolverState] = {}
        self._couplings = Couplings()  # the static offers of the built solvers (colliders)
        self.n_envs = 0
        self._t = 0
        self._built = False
        self._warned_envs = None  # the diverged envs last warned about (on_divergence="warn")

    # ----------------------------------------------------- per-solver names
    def _solver_named(self, name: str) -> tuple[SceneSolver, str] | None:
        """(solver, attribute) for `<kind>_solver`, `<kind>_options`, `<kind>_entities` and `_<kind>_state`."""
        for s in self.__dict__.get("_solvers", ()):
            for attr in ("solver", "options", "entities"):
                if name == f"{s.kind}_{attr}":
                    return s, attr
            if name == f"_{s.kind}_state":
                return s, "state"
        return None

    def __getattr__(self, name: str):
        """`scene.<kind>_solver` / `<kind>_options` / `<kind>_entities` / `_<kind>_state` of every registered solver:
        the names Genesis scripts use."""
        found = None if name.startswith("__") else self._solver_named(name)
        if found is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        s, attr = found
        if attr == "state":
            return self._states.get(s.key)
        return list(s.entities) if attr == "entities" else getattr(s, attr)

    def __setattr__(self, name: str, value) -> None:
        found = self._solver_named(name) if name.startswith("_") and name.endswith("_state") else None
        if found is None:
            object.__setattr__(self, name, value)
        else:  # `scene._<kind>_state = state`: replace that solver's current state
            self._put_state(found[0].key, value)

    @property
    def _states(self) -> dict[str, SolverState]:
        """{key: current state}. Assigning it is a state write that bumps `_state_version` and `_state_epoch`."""
        try:
            return self.__dict__["_states_now"]
        except KeyError:
            raise AttributeError("_states") from None

    @_states.setter
    def _states(self, value: dict[str, SolverState]) -> None:
        self._write_states(value, carry=False)

    def _write_states(self, value: dict[str, SolverState], carry: bool) -> None:
        """Install `value` as the current states. Every write bumps `_state_version`; a write that is not the
        scene's own step or an entity setter (`carry=False`: reset, set_state, load_checkpoint, `gs.rollout`'s
        writes, build) also bumps `_state_epoch`: solver caches of quantities derived from a state (e.g. body
        poses) hold within one epoch only."""
        d = self.__dict__
        d["_states_now"] = value
        d["_state_version"] = d.get("_state_version", 0) + 1
        if not carry:
            d["_state_epoch"] = d.get("_state_epoch", 0) + 1

    def _state(self, key: str) -> SolverState:
        """The current state of solver `key` (entity handles read it)."""
        return self._states[key]

    def _put_state(self, key: str, state: SolverState) -> None:
        """Replace the current state of solver `key` (entity setters); earlier snapshots keep theirs."""
        if key not in self._states:
            raise SceneStateError(f"the scene has no {key} state; build a scene with such entities first.")
        self._write_states({**self._states, key: state}, carry=True)

    # ----------------------------------------------------------------- set-up
    def add_entity(self, morph, material=None, surface=None, visualize_contact: bool = False, vis_mode=None,
                   name: str | None = None):
        """Add an entity made from `morph` and return its handle; the material picks the solver.

        Each registered solver claims its materials (`SceneSolver.materials`; without a material: the solver with
        `claims_no_material`), checks the morph and makes the handle (docs/architecture.md has the table of materials,
        morphs and handles). `surface` (a `gs.surfaces.*`, default `Default()`) is kept as `entity.surface`; its colour
        is what cameras draw the entity's geoms in (`genesis_torch/surfaces.py`). `visualize_contact` and `vis_mode`
        are accepted and ignored. `name` (a non-empty str, unique in the scene) is what `get_entity(name)` finds; None
        gives Genesis' default: the solver's `entity_name_prefix`, the morph's identifier
        (`gs.morphs.identifier`) and the entity's random short uid: "box_3f2a9c1", "panda_0b1c2d3".

        A list of morphs makes a heterogeneous entity (Genesis 1.4.5; solvers whose `heterogeneous` is True): each env
        simulates one of them, the envs split into contiguous blocks of nearly equal size; the morphs must share their
        tree of bodies and joints (see "Heterogeneous entities" in the docs of the solver).
        """
        if self._built:
            raise SceneStateError("add_entity() after build(); create a new Scene to add entities.")
        if not isinstance(visualize_contact, bool):
            raise InvalidInputError(f"add_entity(visualize_contact={visualize_contact!r}): expected True or False.")
        if vis_mode is not None and not isinstance(vis_mode, str):
            raise InvalidInputError(f"add_entity(vis_mode={vis_mode!r}): expected a str (e.g. 'visual') or None.")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise InvalidInputError(f"add_entity(name={name!r}): expected a non-empty str or None.")
            if name in set(self.entity_names):
                raise InvalidInputError(f"add_entity(name={name!r}): the scene already has an entity of that name; "
                                        "choose another name.")
        morph = _heterogeneous(morph)
        surface = surfaces.for_entity(surface)
        solver = registry.route(self._solvers, material)
        if isinstance(morph, tuple) and not getattr(solver, "heterogeneous", False):
            kinds = [s.kind for s in self._solvers if getattr(s, "heterogeneous", False)]
            raise InvalidInputError(f"add_entity([...]): a list of morphs (a heterogeneous entity) is supported for "
                                    f"{', '.join(kinds)} entities only, not with {type(material).__name__}; add one "
                                    "morph.")
        entity = solver.add_entity(morph, material, surface, len(self.entities))
        entity._uid = UID(taken=tuple(e._uid.short() for e in self.entities))  # `uid` of SolverEntity handles
        # Genesis 1.4.5's default name: the solver's prefix, the morph's identifier and the short uid, e.g.
        # "box_3f2a9c1", "panda_0b1c2d3" (docs/genesis_compat.md)
        prefix = f"{solver.kind}_" if solver.entity_name_prefix is None else solver.entity_name_prefix
        entity.name = name if name is not None else f"{prefix}{morphs.identifier(morph)}_{entity._uid.short()}"
        self.entities.append(entity)
        return entity

    def get_entity(self, name: str | None = None, *, uid: str | None = None):
        """The entity added with `name`, or whose `uid` has the short form `uid` (7 hex digits, as Genesis 1.4.5's
        `scene.get_entity`; a shorter prefix, as later Genesis tutorials pass, when one entity alone has it): give
        exactly one of them."""
        if (name is None) == (uid is None):
            raise InvalidInputError("get_entity(name=..., uid=...): give exactly one of name and uid.")
        if uid is not None:
            if not isinstance(uid, str) or not uid:
                raise InvalidInputError(f"get_entity(uid={uid!r}): pass the entity's short uid, a str such as "
                                        "str(entity.uid)[:7].")
            shorts = [e._uid.short() for e in self.entities]
            matches = [e for e, short in zip(self.entities, shorts) if short.startswith(uid)]
            if len(matches) == 1:
                return matches[0]
            what = "no entity has" if not matches else f"{len(matches)} entities have"
            raise InvalidInputError(f"get_entity(uid={uid!r}): {what} a short uid starting so; the scene's entities "
                                    f"have {shorts} (pass more of the uid).")
        for e in self.entities:
            if isinstance(name, str) and getattr(e, "name", None) == name:
                return e
        raise InvalidInputError(f"get_entity({name!r}): no entity of that name; the scene's entities are "
                                f"{list(self.entity_names)}.")

    @property
    def entity_names(self) -> tuple[str, ...]:
        """The entities' names in the order added."""
        return tuple(getattr(e, "name", None) for e in self.entities)

    @property
    def sim(self) -> "Simulator":
        """Genesis' `scene.sim`: dt, substeps, substep_dt, cur_t, requires_grad, the solvers and
        `sim.<kind>_solver` (`solvers/registry.py`)."""
        return Simulator(self)

    def build(self, n_envs: int = 0, env_spacing=None) -> None:
        """Compile all entities into one model per solver and create `max(n_envs, 1)` envs at the initial state.

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
        active = [s for s in self._solvers if s.entities]
        for s in active:  # raises before anything is built
            s.validate()
        sim = self.sim_options
        for s in active:  # e.g. MJCF <option>s
            sim = s.resolve_options(sim)
        for s in active:  # a solver substep that does not divide the resolved scene substep raises
            s.n_substeps(sim)
        n_envs, couplings = int(n_envs), Couplings()
        for s in active:
            s.build(n_envs, self.device, self.dtype, sim, couplings)
            couplings = s.offer(couplings)
        self.sim_options, self.n_envs, self._active, self._couplings = sim, n_envs, active, couplings
        self._build_states = {s.key: s.initial_state(n_envs) for s in active}
        self._states = dict(self._build_states)
        for s in active:  # the solvers read their current state from the scene
            s.bind_state(lambda key=s.key: self._states[key])
        self._fingerprint = self._compute_fingerprint()
        self._t = 0
        self._built = True

    def _compute_fingerprint(self) -> str:
        config = {"sim_options": self.sim_options.fingerprint()}
        for s in self._solvers:
            config.update(s.fingerprint())
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
        """Advance every env by `dt`: `substeps` scene substeps, each running every solver in the order of
        `solvers.base.scene_substep` (docs/architecture.md). A solver that raises leaves the states as they were."""
        self._require_built("step")
        sim, states = self.sim_options, self._states
        with torch.set_grad_enabled(sim.requires_grad and torch.is_grad_enabled()):
            for _ in range(sim.substeps):
                states = scene_substep(self._active, states, self._couplings, sim.substep_dt)
        self._write_states(states, carry=True)
        self._t += 1
        self._check_divergence()
        self._update_recordings()  # cameras recording a video keep a frame when due (vis/recording.py)

    def _check_divergence(self) -> None:
        """Every `divergence_check_interval` steps: report envs whose state holds NaN/inf, per `on_divergence`."""
        policy, every = self.sim_options.on_divergence, self.sim_options.divergence_check_interval
        if policy == "ignore" or self._t % (every or (1 if self.device.type == "cpu" else 10)):
            return
        masks = {k: st.nonfinite_envs() for k, st in self._states.items()}
        diverged = torch.stack(list(masks.values())).any(0)
        if not bool(diverged.any()):  # the one host sync of a check
            self._warned_envs = None
            return
        envs = torch.nonzero(diverged).flatten().tolist()
        where = ", ".join(f"{k} envs {torch.nonzero(m).flatten().tolist()[:10]}" for k, m in masks.items()
                          if bool(m.any()))
        message = (f"the simulation diverged at step t={self._t}: NaN/inf in {where}. The step was applied; the other "
                   "envs are unaffected. Reset the diverged envs "
                   "(scene.reset(envs_idx=<solver>.get_error_envs_mask())) and make the step stabler (smaller SimOptions.dt or more substeps, softer materials), or choose "
                   "SimOptions(on_divergence='warn' or 'ignore').")
        if policy == "raise":
            raise SimulationDivergedError(message, envs_mask=diverged)
        if envs != self._warned_envs:  # warn once per new set of diverged envs
            self._warned_envs = envs
            logger.warning(message)

    # ----------------------------------------------------------------- state
    def get_state(self) -> SimState:
        """A snapshot of every env (O(1): states are immutable values)."""
        self._require_built("get_state")
        return SimState(t=self._t, solvers=dict(self._states), fingerprint=self._fingerprint)

    def _check_state(self, state) -> dict[str, SolverState]:
        if not isinstance(state, SimState):
            raise InvalidInputError(f"reset(state=...) expects a SimState from scene.get_state(), got "
                                    f"{type(state).__name__}.")
        if state.fingerprint != self._fingerprint:
            raise InvalidInputError("reset(state=...): the state comes from a scene with a different configuration "
                                    "(entities/options); use a state of this scene.")
        mine = self._states
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
        targets = self._build_states if state is None else self._check_state(state)
        if envs_idx is None:
            new = {k: t if t.n_envs == self.batch_size else t.map(
                lambda x: x.expand(self.batch_size, *x.shape[1:]).clone()) for k, t in targets.items()}
            t = 0 if state is None else int(state.t)
        else:
            mask = envs_mask(envs_idx, self.batch_size, self.device)
            new, t = {k: cur.merge(targets[k], mask) for k, cur in self._states.items()}, self._t
        self._states = {s.key: s.after_reset(new[s.key]) for s in self._active}
        self._t = t

    # ------------------------------------------------------------ checkpoints
    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """Every solver's state arrays, then every solver's per-env parameters (`<key>.params.<name>`)."""
        arrays = {}
        for st in self._states.values():
            arrays.update(st.to_arrays())
        for s in self._active:
            arrays.update(s.params_arrays())
        return arrays

    def _checkpoint_metadata(self) -> dict:
        return {"n_envs": self.n_envs, "dtype": str(self.dtype).replace("torch.", ""),
                "fingerprint": self._fingerprint,
                "entities": [e._morph_fingerprint() if hasattr(e, "_morph_fingerprint") else e.morph.fingerprint()
                             for e in self.entities]}

    def save_checkpoint(self, path, *, allow_nonfinite: bool = False) -> None:
        """Write the complete state (and runtime parameters) to `path`: `.pkl`/`.pickle` or safetensors.

        A state with NaN/inf (diverged envs) is refused with `SimulationDivergedError` naming the envs, unless
        `allow_nonfinite=True` (e.g. to keep a diverged run for debugging; load it with the same flag)."""
        self._require_built("save_checkpoint")
        if not isinstance(allow_nonfinite, bool):
            raise InvalidInputError(f"save_checkpoint(allow_nonfinite={allow_nonfinite!r}): expected True or False.")
        if not allow_nonfinite:
            for key, st in self._states.items():
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
                precision = "64" if "64" in str(meta.get("dtype")) else "32"
                raise IncompatibleCheckpointError(f"checkpoint {path} holds {meta.get('dtype')}, this scene {mine}; "
                                                  f'call gs.init(precision="{precision}").')
        expected = {k: (v.shape, v.dtype) for k, v in self._checkpoint_arrays().items()}
        ckpt.check_compatible(data, expected, self._fingerprint)
        loaded = {}
        for s in self._active:  # read and check everything before anything changes
            params = s.load_params(data.arrays)
            try:
                loaded[s.key] = (params, s.load_state(data.arrays, params))
            except CheckpointError as exc:
                raise CheckpointError(f"checkpoint {path}: {exc}") from None
        for s in self._active:
            s.install_params(loaded[s.key][0])
        self._states = {k: state for k, (_, state) in loaded.items()}
        self._t = int(data.step_index)

    def __repr__(self) -> str:
        status = f"built, n_envs={self.n_envs}, t={self._t}" if self._built else "not built"
        return f"Scene({len(self.entities)} entities, {status})"


class Simulator:
    """Genesis' `scene.sim`, a view of the scene: every attribute reads the scene when asked.

    `dt` (s, one `scene.step()`), `substeps`, `substep_dt`, `requires_grad`, `gravity`, `cur_step_global` (= `scene.t`),
    `cur_t` (s, `scene.t * dt`, shared by the envs), `n_envs`, `entities`, `solvers` (the physics solvers after build),
    `active_solvers` (those with entities) and `<kind>_solver` for every registered solver (None before build or
    without entities)."""

    def __init__(self, scene: Scene):
        object.__setattr__(self, "scene", scene)

    dt = property(lambda self: self.scene.sim_options.dt)
    substeps = property(lambda self: self.scene.sim_options.substeps)
    substep_dt = property(lambda self: self.scene.sim_options.substep_dt)
    requires_grad = property(lambda self: self.scene.sim_options.requires_grad)
    gravity = property(lambda self: self.scene.sim_options.gravity)
    cur_step_global = property(lambda self: self.scene.t)
    cur_t = property(lambda self: self.scene.t * self.scene.sim_options.dt)
    n_envs = property(lambda self: self.scene.n_envs)
    entities = property(lambda self: list(self.scene.entities))
    n_entities = property(lambda self: len(self.scene.entities))
    solvers = property(lambda self: [s.solver for s in self.scene._solvers if getattr(s, "solver", None) is not None])
    active_solvers = property(lambda self: [s.solver for s in self.scene._active])

    def __getattr__(self, name: str):
        scene = self.__dict__["scene"]
        if name.endswith("_solver") and scene._solver_named(name) is not None:
            return getattr(scene, name)
        raise AttributeError(f"scene.sim has no attribute {name!r}; it has dt, substeps, substep_dt, cur_t, "
                             "cur_step_global, requires_grad, gravity, n_envs, entities, solvers, active_solvers and "
                             f"{', '.join(s.kind + '_solver' for s in scene._solvers)}.")

    def __setattr__(self, name, value):
        raise InvalidInputError(f"scene.sim.{name} cannot be set; set options through gs.options.SimOptions.")

    def __repr__(self) -> str:
        return f"Simulator(dt={self.dt}, substeps={self.substeps}, {self.scene!r})"


__all__ = ["Scene", "Simulator", "GenesisError"]

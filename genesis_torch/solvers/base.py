"""The solver protocol: what every solver implements for the scene that drives it (DESIGN.md §4, docs/architecture.md).

The scene names no solver. It holds the registered `SceneSolver`s (`solvers/registry.py`, in step order), routes
`add_entity` by material, and runs build, step, get_state, reset, fingerprint, save and load as loops over the
solvers that have entities, with one `{key: SolverState}` map. What one solver reads from another is an explicit
`Couplings` argument, assembled only by `scene_substep` below, in the order documented there.

`SolverBase` is the mixin of the physics solvers themselves (`RigidSolver`, `MPMSolver`): the link to the scene's
current state of the solver, and Genesis' per-env divergence report built on it.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..math.quat import quat_to_mat
from ..options import SimOptions
from ..state import SolverState

__all__ = ["SolverBase", "SceneSolver", "Couplings", "BodyMotion", "scene_substep"]


class SolverBase:
    """Mixin of the solvers: `bind_state` (called by the scene at build) and `get_error_envs_mask`."""

    _current_state: Callable[[], SolverState] | None = None

    def bind_state(self, current_state: Callable[[], SolverState]) -> None:
        """Let the solver read the scene's current state of it (`current_state()`), e.g. for its error mask."""
        self._current_state = current_state

    def get_error_envs_mask(self) -> torch.Tensor:
        """`(B,)` bool, Genesis' name: the envs whose current state holds NaN or inf (diverged). Computed from the
        state on the device, without a host sync; a reset of those envs (to finite values) clears it."""
        if self._current_state is None:
            raise SceneStateError(f"{type(self).__name__}.get_error_envs_mask(): the solver is not part of a built "
                                  "scene; call scene.build() first.")
        return self._current_state().nonfinite_envs()


# ------------------------------------------------------------------------------------------------------ couplings
@dataclasses.dataclass(frozen=True)
class BodyMotion:
    """The rigid bodies over one scene substep of `dt` s: link poses before and after the rigid substep. B envs,
    nlinks links (MuJoCo bodies 1..nbody-1; the world body 0 is fixed)."""

    pos_before: torch.Tensor  #: (B, nlinks, 3) m, world
    quat_before: torch.Tensor  #: (B, nlinks, 4) wxyz, world
    pos_after: torch.Tensor  #: (B, nlinks, 3) m, world
    quat_after: torch.Tensor  #: (B, nlinks, 4) wxyz, world
    dt: float  #: s, the scene substep the motion spans

    def geom_frames(self, body: torch.Tensor, geom_pos: torch.Tensor, geom_quat: torch.Tensor):
        """World frames of k geoms after the substep and their rigid velocity field, what particle solvers collide
        with: `(pos (B,k,3), rot (B,k,3,3), v_o (B,k,3), w (B,k,3), o (B,k,3))`; a world point x on geom k moves with
        v_o + w x (x - o), o its body's origin. `body (k,)` MuJoCo body ids (0 = the fixed world), `geom_pos (k, 3)` m
        and `geom_quat (k, 4)` wxyz in the body frame. w is the substep's rotation R1 R0^T as angle * axis / dt."""
        def frames(pos, quat):
            B = pos.shape[0]
            R0 = torch.eye(3, dtype=pos.dtype, device=pos.device).expand(B, 1, 3, 3)
            return torch.cat((pos.new_zeros(B, 1, 3), pos), 1)[:, body], torch.cat((R0, quat_to_mat(quat)), 1)[:, body]

        p0, R0 = frames(self.pos_before, self.quat_before)
        p1, R1 = frames(self.pos_after, self.quat_after)
        Rrel = R1 @ R0.transpose(-1, -2)  # rotation over the substep, world frame
        cos = (Rrel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
        axis2 = torch.stack((Rrel[..., 2, 1] - Rrel[..., 1, 2], Rrel[..., 0, 2] - Rrel[..., 2, 0],
                             Rrel[..., 1, 0] - Rrel[..., 0, 1]), -1)  # = 2 sin(angle) axis
        # w = angle axis / dt = axis2 angle / (2 sin angle) / dt, angle = atan2(sin, cos). Differentiable at rest:
        # sin^2 is taken from axis2 without a square root at 0 (whose derivative, like acos' at 1, is infinite) and
        # below 1e-12 angle / sin = 1 + sin^2 / 6 + O(sin^4) (Taylor series)
        sin2 = (axis2 * axis2).sum(-1) / 4
        moving = sin2 > 1e-12
        sin = torch.where(moving, sin2, torch.ones_like(sin2)).sqrt()
        ratio = torch.where(moving, torch.atan2(sin, cos) / sin, 1 + sin2 / 6)  # angle / sin(angle)
        w = axis2 * (ratio / 2)[..., None] / self.dt
        gpos = p1 + (R1 @ geom_pos[None, :, :, None])[..., 0]
        return gpos, R1 @ quat_to_mat(geom_quat)[None], (p1 - p0) / self.dt, w, p1


@dataclasses.dataclass(frozen=True)
class Couplings:
    """What a solver reads from the solvers before it in step order; never a solver reaching into another's fields.

    Built up solver by solver: at build by `SceneSolver.offer` (static data), in each scene substep by
    `SceneSolver.couple` (that substep's motion). A solver that consumes none of it ignores it.

    Attributes:
        collider_model: the compiled `mujoco.MjModel` of the rigid solver (geom type/size/pos/quat/bodyid/friction,
            contype/conaffinity): the geoms particle and mesh solvers collide with. None without rigid entities.
        bodies: `BodyMotion` of the current scene substep (None before the rigid solver stepped, or without one).

    Two-way coupling adds fields here (e.g. `body_forces (B, nlinks, 6)` that particle solvers return through
    `couple` and the rigid solver applies in the next scene substep); the order in `scene_substep` stays.
    """

    collider_model: Any = None
    bodies: BodyMotion | None = None

    def replace(self, **fields) -> "Couplings":
        return dataclasses.replace(self, **fields)


# ------------------------------------------------------------------------------------------------------- protocol
class SceneSolver(abc.ABC):
    """One solver as the scene drives it. Subclasses live in `solvers/<name>/` and are listed in `solvers/registry.py`.

    Class attributes:
        key: checkpoint prefix and `SimState` key ("RigidSolver", "MPMSolver", ...), the state class's `prefix`.
        kind: the name stem: `Scene(<kind>_options=...)`, `scene.<kind>_solver`, `scene.<kind>_options`,
            `scene.<kind>_entities` (and `scene._<kind>_state`, the current state).
        options_class: its options (`gs.options.RigidOptions`, ...); `Scene(<kind>_options=None)` uses the default.
        state_class: its `SolverState` subclass (whose `prefix` is `key`).
        materials: the material classes it claims in `add_entity` (one routing table: `registry.route`).
        claims_no_material: whether `add_entity(morph)` without a material comes here (the rigid solver only).
        material_hint: how errors name its materials ("gs.materials.MPM.*").
        entity_name_prefix: what Genesis puts before a morph's identifier in the default entity name ("mpm_", ...;
            `"<kind>_"` unless set).

    Life cycle (the scene calls, in this order): `__init__(scene, options)` at `Scene()`; `add_entity` per entity;
    at `build()`: `validate`, `resolve_options`, `n_substeps`, `build` (then `offer`), `initial_state`,
    `bind_state`; `substep` / `couple` in every step; `after_reset` after every reset; `params_arrays`,
    `load_params`, `load_state`, `install_params` for checkpoints; `fingerprint` once at build.
    """

    key: ClassVar[str]
    kind: ClassVar[str]
    options_class: ClassVar[type]
    state_class: ClassVar[type[SolverState]]
    materials: ClassVar[tuple[type, ...]] = ()
    claims_no_material: ClassVar[bool] = False
    material_hint: ClassVar[str] = ""
    entity_name_prefix: ClassVar[str | None] = None

    def __init__(self, scene, options):
        self.scene = scene
        self.options = options  #: the options given to `Scene(...)`; after build the resolved ones
        self.entities: list = []  #: this solver's entity handles, in the order added
        self.solver = None  #: the physics solver after build (`scene.<kind>_solver`), else None
        self.substeps = 1  #: substeps of this solver per scene substep (set at build)
        self.dt = 0.0  #: s, its substep (set at build): SimOptions.dt / substeps / self.substeps

    # ---------------------------------------------------------------- set-up
    @classmethod
    def check_options(cls, sim: SimOptions, options) -> None:
        """At `Scene()`: raise `InvalidInputError` when `options` do not fit `sim` (e.g. a substep dt that does not
        divide the scene's)."""

    @classmethod
    def claims(cls, material) -> bool:
        """Whether `add_entity(morph, material)` makes one of this solver's entities."""
        return cls.claims_no_material if material is None else isinstance(material, cls.materials)

    @abc.abstractmethod
    def add_entity(self, morph, material, surface, idx: int):
        """Validate `morph`/`material`, make the handle of entity number `idx` in the scene, append it to
        `self.entities` and return it (nothing is allocated for the simulation yet)."""

    def validate(self) -> None:
        """At `build()`, before anything is allocated: raise for entities the solver cannot build (e.g. particles
        outside the domain). The scene is unchanged when it raises."""

    def resolve_options(self, sim: SimOptions) -> SimOptions:
        """At `build()`: the scene options after this solver's entities had their say (the rigid solver resolves
        MJCF `<option>`s); its own resolved options become `self.options` in `build`. Default: `sim` unchanged."""
        return sim

    def n_substeps(self, sim: SimOptions) -> int:
        """Substeps of this solver per scene substep of `sim.substep_dt` s (an int >= 1; raise if the solver's own
        dt does not divide it). Default 1."""
        return 1

    def build(self, n_envs: int, device, dtype, sim: SimOptions, couplings: Couplings) -> None:
        """Allocate the model for `n_envs` envs with the resolved `sim`; `couplings` holds what the solvers built
        before offered (`offer`). Sets `substeps` and `dt`, then calls `_build`."""
        self.substeps = self.n_substeps(sim)
        self.dt = sim.substep_dt / self.substeps
        self._build(n_envs, device, dtype, sim, couplings)

    @abc.abstractmethod
    def _build(self, n_envs: int, device, dtype, sim: SimOptions, couplings: Couplings) -> None:
        """Build the physics solver into `self.solver` (its substep is `self.dt` s)."""

    def offer(self, couplings: Couplings) -> Couplings:
        """After `build`: `couplings` plus the static data this solver offers the solvers after it. Default: none."""
        return couplings

    @abc.abstractmethod
    def initial_state(self, n_envs: int) -> SolverState:
        """The build-time state, `B = max(n_envs, 1)` rows."""

    def bind_state(self, current_state: Callable[[], SolverState]) -> None:
        """Let the physics solver read the scene's current state of it (`get_error_envs_mask`)."""
        if isinstance(self.solver, SolverBase):  # (the mixin's method: the solver may be this object)
            SolverBase.bind_state(self.solver, current_state)

    # ------------------------------------------------------------------ step
    @abc.abstractmethod
    def substep(self, state: SolverState, couplings: Couplings, dt: float) -> SolverState:
        """One substep of `dt` (= `self.dt`) s: a new state, the input untouched. Reads other solvers only through
        `couplings`. May raise (e.g. `ContactOverflowError`); the scene then keeps its states as before the step."""

    def couple(self, couplings: Couplings, before: SolverState, after: SolverState, dt: float) -> Couplings:
        """After this solver's substeps of one scene substep of `dt` s (`before` -> `after`): `couplings` plus what
        the solvers after it read. Default: unchanged."""
        return couplings

    def after_reset(self, state: SolverState) -> SolverState:
        """The state a reset installs, completed from model parameters the reset keeps (rigid: link poses of moved
        fixed bases). Default: `state`."""
        return state

    # ----------------------------------------------------------- checkpoints
    def params_arrays(self) -> dict[str, np.ndarray]:
        """Per-env model parameters, `{"<key>.params.<name>": (B, ...) array}` (detached CPU copies). Default: none."""
        return {}

    def load_params(self, arrays: dict[str, np.ndarray]) -> Any:
        """The parameters `arrays` hold (keys, shapes and dtypes already checked), not yet installed. Pure."""
        return None

    def load_state(self, arrays: dict[str, np.ndarray], params) -> SolverState:
        """The state `arrays` hold, checked against `params` (raise `CheckpointError` if inconsistent). Pure."""
        return self.state_class.from_arrays(arrays, self.scene.device)

    def install_params(self, params) -> None:
        """Install what `load_params` returned (after every solver's `load_state` passed)."""

    def fingerprint(self) -> dict:
        """JSON-friendly entries of the scene fingerprint: `{"<kind>_options": ..., "<kind>_entities": [...]}`;
        `{}` without entities, so a new solver leaves the fingerprints of scenes without it unchanged."""
        if not self.entities:
            return {}
        return {f"{self.kind}_options": self.options.fingerprint(),
                f"{self.kind}_entities": [(e.idx, e.fingerprint()) for e in self.entities]}


def check_options_type(kind: str, cls: type, value) -> None:
    """Raise `InvalidInputError` unless `value` (a `Scene(<kind>_options=...)` argument) is a `cls`."""
    if not isinstance(value, cls):
        raise InvalidInputError(f"{kind}_options must be gs.options.{cls.__name__}, got {type(value).__name__}.")


# ------------------------------------------------------------------------------------------------------ the order
def scene_substep(solvers: list[SceneSolver], states: dict[str, SolverState], couplings: Couplings,
                  substep_dt: float) -> dict[str, SolverState]:
    """One scene substep of `substep_dt` s: the one place that fixes the step order and what flows between solvers.

    Solvers run in registry order (rigid first). Each runs its `substeps` substeps of `dt` on its state, reading
    `couplings` as the solvers before it left them, then adds what it offers (`couple`): the rigid solver its
    `BodyMotion`, so particle and mesh solvers collide with the geoms at their poses after the rigid substep,
    moving with that substep's velocity (one-way). `couplings` starts from the static build-time offers.
    Returns the new `{key: state}`; the input map and states are not modified.
    """
    out, last = dict(states), len(solvers) - 1
    for i, s in enumerate(solvers):
        before = after = out[s.key]
        for _ in range(s.substeps):
            after = s.substep(after, couplings, s.dt)
        out[s.key] = after
        if i < last:  # only later solvers read it (two-way coupling will carry the last one's into the next substep)
            couplings = s.couple(couplings, before, after, substep_dt)
    return out

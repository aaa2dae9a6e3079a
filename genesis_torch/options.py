"""Scene and solver options: frozen, validated at construction; unknown keywords raise `InvalidInputError`."""

from __future__ import annotations

import copy
import dataclasses
import enum
import logging
import math

from .errors import InvalidInputError, UnsupportedFeatureError

logger = logging.getLogger("genesis_torch")

__all__ = ["SimOptions", "RigidOptions", "MPMOptions", "ViewerOptions", "VisOptions", "integrator",
           "constraint_solver"]


class integrator(enum.Enum):
    """Time integrators of the rigid solver, with MuJoCo's semantics."""

    Euler = "Euler"  #: semi-implicit Euler; joint damping implicit (MuJoCo's `Euler`)
    implicitfast = "implicitfast"  #: velocity-dependent actuator and damping forces implicit
    RK4 = "RK4"  #: classic 4th-order Runge-Kutta
    #: Genesis' name (its default) of its approximation of implicitfast: an alias of `implicitfast` here, which
    #: steps MuJoCo's implicitfast exactly (the enum member is the same object)
    approximate_implicitfast = "implicitfast"


class constraint_solver(enum.Enum):
    """Constraint solvers of MuJoCo's convex primal problem, both with MuJoCo's line search: `Newton` (MuJoCo's
    mjSOL_NEWTON, the default) and `CG` (mjSOL_CG: Polak-Ribiere conjugate gradient preconditioned by M)."""

    Newton = "Newton"
    CG = "CG"


def _check_number(owner: str, name: str, value, *, low=None, high=None, strict_low=False, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected a finite number.")
    if low is not None and (value <= low if strict_low else value < low):
        rel = ">" if strict_low else ">="
        raise InvalidInputError(f"{owner}({name}={value!r}): must be {rel} {low}.")
    if high is not None and value > high:
        raise InvalidInputError(f"{owner}({name}={value!r}): must be <= {high}.")


def _check_bools(owner: str, options, names) -> None:
    """Raise unless each of `names` of `options` is True or False."""
    for name in names:
        if not isinstance(getattr(options, name), bool):
            raise InvalidInputError(f"{owner}({name}={getattr(options, name)!r}): expected True or False.")


def _check_ints(owner: str, options, names, low: int = 1) -> None:
    """Raise unless each of `names` of `options` is an int (not a bool) >= `low`."""
    for name in names:
        v = getattr(options, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise InvalidInputError(f"{owner}({name}={v!r}): expected an int >= {low}.")


def _check_vec3(owner: str, name: str, value, allow_none=False):
    if value is None and allow_none:
        return None
    try:
        vec = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected three numbers, e.g. (0, 0, -9.81).") from None
    if len(vec) != 3 or not all(math.isfinite(v) for v in vec):
        raise InvalidInputError(f"{owner}({name}={value!r}): expected three finite numbers, e.g. (0, 0, -9.81).")
    return vec


# Genesis' RigidOptions switches accepted and ignored here (not part of any fingerprint)
_IGNORED_RIGID = ("box_box_detection", "use_contact_island", "batch_dofs_info", "batch_joints_info", "batch_links_info")
# Genesis 1.4.5 RigidOptions fields that cannot change what this solver computes (why: RigidOptions' docstring);
# accepted with any valid value, not part of any fingerprint
_NO_EFFECT_RIGID = ("enable_neutral_collision", "multiplier_collision_broad_phase", "IK_max_targets",
                    "noslip_tolerance", "contact_pruning_tolerance", "sparse_solve", "hibernation_thresh_vel",
                    "max_dynamic_constraints", "enable_mujoco_compatibility", "broadphase_traversal")
# Genesis fields accepted only at the value this solver implements: {field: (allowed values, why others raise)}; with
# one behaviour possible they are not part of any fingerprint
_ONLY_RIGID = {
    "noslip_iterations": ((0,), "there is no noslip solver"),
    "contact_resolution": ((None, "convex"), "contacts are MuJoCo's convex soft constraints; Signorini resolution is "
                           "not implemented"),
    "enable_torsional_friction": ((False,), "contacts have condim 1 or 3 (no torsional or rolling friction)"),
    "enable_rolling_friction": ((False,), "contacts have condim 1 or 3 (no torsional or rolling friction)"),
    "use_hibernation": ((False,), "there is no hibernation (it would change when bodies move)"),
    "enable_multi_contact": ((True,), "MuJoCo's colliders always give their multiple contacts (box-box, "
                             "box-plane, ...)"),
    "use_gjk_collision": ((None, True), "convex pairs always use GJK/EPA (MuJoCo's native collider); there is no MPR"),
    "enable_contact_patch": ((None, False), "contact patches are not implemented"),
}
# contact-buffer capacities: they decide whether a step raises `ContactOverflowError`, never what it computes (not part
# of any fingerprint)
_CAPACITY_RIGID = ("max_collision_pairs", "max_contacts")
# run-time reporting switches: they change what the user is told, not the physics (not part of any fingerprint)
_REPORTING = ("on_divergence", "divergence_check_interval")
_DIVERGENCE_POLICIES = ("raise", "warn", "ignore")


class _Options:
    """Base of the option classes: keyword-only construction, unknown keywords rejected, frozen afterwards."""

    def __init__(self, **kwargs):
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise InvalidInputError(
                f"{type(self).__name__} got unknown option(s) {unknown}; valid options are {names}."
            )
        for f in dataclasses.fields(self):
            value = kwargs.get(f.name, f.default)
            object.__setattr__(self, f.name, value)
        object.__setattr__(self, "_given", frozenset(kwargs))
        self._validate()

    def is_set(self, name: str) -> bool:
        """Whether option `name` was given explicitly (even with its default value). An explicit value overrides an
        MJCF file's `<option>`; an option left out yields to the file (docs/rigid.md, "Options")."""
        return name in self._given

    def resolved(self, **values) -> "_Options":
        """A copy with `values` filled in (validated) that remembers which options the user gave: what the scene
        stores after `build()` once the files' `<option>`s are applied. Fingerprints see the values only."""
        out = copy.copy(self)
        for name, value in values.items():
            object.__setattr__(out, name, value)
        out._validate()
        return out

    def __setattr__(self, name, value):
        raise InvalidInputError(
            f"{type(self).__name__} is frozen; create a new one with {name}=... instead."
        )

    def _validate(self) -> None:  # overridden
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """A JSON-friendly description of these options (enum members by value), without `compile` (compiled and
        eager runs of a scene share checkpoints) and without Genesis' accepted-and-ignored switches."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "compile" or f.name in _IGNORED_RIGID + _NO_EFFECT_RIGID + _CAPACITY_RIGID \
                    or f.name in _ONLY_RIGID or f.name in _REPORTING:
                continue
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else v
        return out


@dataclasses.dataclass(frozen=True, init=False)
class SimOptions(_Options):
    """Options shared by every solver.

    Attributes:
        dt: duration of one `scene.step()` in seconds. Left out, an MJCF's `<option timestep>` (when it differs from
            MuJoCo's 0.002) gives the substep, `dt = timestep * substeps`; `scene.sim_options` holds the resolved value
            after `scene.build()`. `gravity` left out likewise yields to a file's (docs/rigid.md, "Options").
        substeps: internal substeps per `scene.step()`; each advances `dt / substeps` seconds.
        gravity: (3,) m/s^2, world frame, z up.
        requires_grad: record the autograd graph through steps (otherwise steps run under `torch.no_grad`).
        on_divergence: what `scene.step()` does when an env's state holds NaN or inf: "raise" (default;
            `SimulationDivergedError`, the step is applied and the diverged envs are named), "warn" (log a warning
            naming newly diverged envs) or "ignore". Each solver's `get_error_envs_mask()` reports them in all cases.
        divergence_check_interval: check every this many steps (None: every step on the CPU, every 10 on CUDA,
            where a check is a host sync). Not part of the fingerprint, nor is `on_divergence`.
    """

    dt: float = 1e-2
    substeps: int = 1
    gravity: tuple = (0.0, 0.0, -9.81)
    requires_grad: bool = False
    on_divergence: str = "raise"
    divergence_check_interval: int | None = None

    def _validate(self) -> None:
        _check_number("SimOptions", "dt", self.dt, low=0.0, strict_low=True)
        _check_ints("SimOptions", self, ("substeps",))
        object.__setattr__(self, "gravity", _check_vec3("SimOptions", "gravity", self.gravity))
        _check_bools("SimOptions", self, ("requires_grad",))
        if self.on_divergence not in _DIVERGENCE_POLICIES:
            raise InvalidInputError(f"SimOptions(on_divergence={self.on_divergence!r}): use one of "
                                    f"{list(_DIVERGENCE_POLICIES)}.")
        k = self.divergence_check_interval
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise InvalidInputError(f"SimOptions(divergence_check_interval={k!r}): expected None or an int >= 1.")

    @property
    def substep_dt(self) -> float:
        return self.dt / self.substeps


@dataclasses.dataclass(frozen=True, init=False)
class RigidOptions(_Options):
    """Options of the rigid-body solver.

    Attributes:
        dt: substep duration in seconds; None uses `SimOptions.dt / substeps` (giving another value raises).
        gravity: overrides `SimOptions.gravity` for rigid bodies when given.
        integrator: `gs.integrator.Euler | implicitfast | RK4`.
        enable_collision: detect contacts between geoms and resolve them as soft constraints.
        enable_joint_limit: honour `limited` joints as soft constraints.
        enable_self_collision: contacts between the bodies of one kinematic tree of an entity (Genesis' default True).
        enable_adjacent_collision: contacts between a body and its parent (through bodies without joints) within an
            entity's tree (Genesis' default False). Both are applied to each entity's spec at `add_entity`
            (`solvers/rigid/collision_filter.py`, docs/rigid.md "Self-collision").
        constraint_solver: `gs.constraint_solver.Newton` (default) or `gs.constraint_solver.CG` (MuJoCo's).
        iterations: maximum Newton iterations per step (each env stops on its own at `tolerance`).
        tolerance: scaled cost improvement (cost decrease / sum_i M_ii) below which a Newton step is not taken and an
            env's solve is converged, as in MuJoCo; also the scaled gradient norm that ends it.
        ls_iterations: maximum cost evaluations of each line search (MuJoCo's count and algorithm,
            `solvers/rigid/line_search.py`).
        ls_tolerance: a line search stops once |f'(alpha)| < tolerance * ls_tolerance * |p| * sum_i M_ii (MuJoCo's
            criterion and default, 0.01), or once |f'| is within its own rounding error (float32).
        The solver settings (dt, gravity, integrator, enable_collision, enable_joint_limit, constraint_solver,
        iterations, tolerance, ls_iterations, ls_tolerance, cone, impratio) given explicitly override an MJCF's
        `<option>`; those left out yield to the file's value (docs/rigid.md, "Options"). After `scene.build()`,
        `scene.rigid_options` holds the resolved values.
        cone: friction cone of contacts, "pyramidal" (MuJoCo's default) or "elliptic".
        impratio: ratio of frictional to normal constraint impedance (MuJoCo's `impratio`).
        max_collision_pairs: geom pairs whose contacts one env can hold (Genesis' meaning, default 150): the contact
            buffer per env has the slots of that many candidate pairs, those with the most contacts each (MuJoCo's
            collider maximum per type pair: 1 for sphere-sphere, 4 for box-plane, 8 for box-box, ...); an env with
            more contacts makes `scene.step()` raise `ContactOverflowError` (no contact is ever dropped silently).
            The buffer is a cap: each step uses as many slots as its fullest env has contacts.
        max_contacts: None, or a smaller cap on the contacts of one env (Genesis' meaning; every contact is kept,
            none pruned, so None holds every contact `max_collision_pairs` allows). Neither is part of the
            fingerprint: they decide whether a step raises, never what it computes.
        compile: run the step through `torch.compile` (docs/rigid.md, "torch.compile"). None (default): as
            `gs.init(compile=...)` says (False unless turned on): when on, the whole step as one graph where it can run,
            eager otherwise (steps with a near contact pair, RK4, gradients). True: also the two-stage graphs for
            those steps (not under gradients). False: eager. The first compiled steps compile (~2 min on a 2-core
            CPU per model and batch size), cached on disk afterwards. Results equal the eager step to rounding.
        box_box_detection, use_contact_island, batch_dofs_info, batch_joints_info, batch_links_info: Genesis'
            switches, accepted and ignored (box-box contacts always use MuJoCo's box-box collider; there are no contact
            islands; dof gains and force ranges are per env anyway). Not part of the fingerprint.
        disable_constraint: no constraint of any kind (MuJoCo's `constraint` disable flag; an MJCF's
            `<flag constraint="disable"/>` sets it when left out).
        friction_cone: Genesis' name of `cone` (a string, or a member named "pyramidal" / "elliptic"); given with
            `cone` as well, the two must agree.

    The rest of Genesis 1.4.5's fields are accepted with no effect on the physics here, and are not part of the
    fingerprint: enable_neutral_collision (pairs touching at qpos0 are never filtered, as in MuJoCo: Genesis' True),
    multiplier_collision_broad_phase and broadphase_traversal (the broad phase enumerates every candidate pair; there
    is no buffer to size), IK_max_targets (IK has no target buffer), noslip_tolerance (no noslip solver),
    contact_pruning_tolerance (contacts are never pruned, as MuJoCo), sparse_solve (the solve is dense; a sparse
    factorisation would change rounding only), hibernation_thresh_vel (no hibernation), max_dynamic_constraints (no
    run-time constraints), enable_mujoco_compatibility (the formulation is always MuJoCo's). Fields accepted only at
    the value implemented (raising `UnsupportedFeatureError` with the reason otherwise): noslip_iterations=0, contact_resolution=None or "convex", enable_torsional_friction=False,
    enable_rolling_friction=False, use_hibernation=False, enable_multi_contact=True, use_gjk_collision=None or
    True, enable_contact_patch=None or False. `tolerance=None` and `impratio=None` (Genesis' defaults) count as left
    out: 1e-8 and 1 (Genesis resolves 1e-5 in float32 and impratio 100 with the elliptic cone).
    constraint_timeconst: Genesis' time constant (s, default 0.01; None: as stiff as the substep allows) of every
        constraint whose model states none of its own: the geoms of primitives, meshes, terrains and URDF files,
        and URDF joint limits and mimic equalities (MuJoCo's `solref[0]`); MJCF files keep their `solref`. Raised
        to twice the substep, as Genesis (`solvers/rigid/timeconst.py`). `contact_resolve_time`, Genesis'
        deprecated name, sets it with a warning.
    """

    dt: float | None = None
    gravity: tuple | None = None
    integrator: integrator = integrator.implicitfast
    enable_collision: bool = True
    enable_joint_limit: bool = True
    enable_self_collision: bool = True
    enable_adjacent_collision: bool = False
    constraint_solver: constraint_solver = constraint_solver.Newton
    iterations: int = 50
    tolerance: float = 1e-8
    ls_iterations: int = 50
    ls_tolerance: float = 1e-2
    cone: str = "pyramidal"
    impratio: float = 1.0
    max_collision_pairs: int = 150
    compile: bool | None = None
    box_box_detection: bool = True
    use_contact_island: bool = False
    batch_dofs_info: bool = False
    batch_joints_info: bool = False
    batch_links_info: bool = False
    disable_constraint: bool = False
    enable_neutral_collision: bool = False
    multiplier_collision_broad_phase: int = 8
    IK_max_targets: int = 6
    noslip_tolerance: float = 1e-6
    contact_pruning_tolerance: float | None = 0.02
    sparse_solve: bool | None = None
    hibernation_thresh_vel: float | None = None
    max_dynamic_constraints: int = 8
    enable_mujoco_compatibility: bool = False
    broadphase_traversal: object = None
    max_contacts: int | None = None
    constraint_timeconst: float | None = 0.01
    noslip_iterations: int = 0
    contact_resolution: object = None
    enable_torsional_friction: bool = False
    enable_rolling_friction: bool = False
    use_hibernation: bool = False
    enable_multi_contact: bool = True
    use_gjk_collision: bool | None = None
    enable_contact_patch: bool | None = None

    def __init__(self, friction_cone=None, contact_resolve_time=None, **kwargs):
        if contact_resolve_time is not None:  # Genesis 1.4.5: deprecated alias, warned about
            if "constraint_timeconst" in kwargs and kwargs["constraint_timeconst"] != contact_resolve_time:
                raise InvalidInputError(f"RigidOptions(contact_resolve_time={contact_resolve_time!r}, "
                                        f"constraint_timeconst={kwargs['constraint_timeconst']!r}): the first is "
                                        "the deprecated name of the second; give constraint_timeconst only.")
            logger.warning("RigidOptions(contact_resolve_time=...) is deprecated; use constraint_timeconst.")
            kwargs["constraint_timeconst"] = contact_resolve_time
        for name in ("tolerance", "impratio"):  # Genesis' None: resolved by the solver, here the default
            if name in kwargs and kwargs[name] is None:
                del kwargs[name]
        if friction_cone is not None:
            cone = getattr(friction_cone, "name", friction_cone)
            if "cone" in kwargs and kwargs["cone"] != cone:
                raise InvalidInputError(f"RigidOptions(friction_cone={friction_cone!r}, cone={kwargs['cone']!r}): "
                                        "friction_cone is Genesis' name of cone; give one of them.")
            kwargs["cone"] = cone
        super().__init__(**kwargs)

    def _validate(self) -> None:
        for name, (allowed, why) in _ONLY_RIGID.items():
            v = getattr(self, name)
            v = getattr(v, "name", v) if name == "contact_resolution" and v is not None else v
            if not any(v is a or (type(v) is type(a) and v == a) for a in allowed):
                raise UnsupportedFeatureError(f"RigidOptions({name}={getattr(self, name)!r}) is not supported: "
                                              f"{why}. Accepted: {', '.join(map(repr, allowed))}.")
        _check_bools("RigidOptions", self, ("enable_neutral_collision", "enable_mujoco_compatibility",
                                            "disable_constraint"))
        if self.sparse_solve is not None and not isinstance(self.sparse_solve, bool):
            raise InvalidInputError(f"RigidOptions(sparse_solve={self.sparse_solve!r}): expected None, True or False.")
        for name in ("multiplier_collision_broad_phase", "IK_max_targets", "max_dynamic_constraints"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "max_dynamic_constraints" else 1):
                raise InvalidInputError(f"RigidOptions({name}={v!r}): expected a positive int.")
        for name in ("noslip_tolerance", "contact_pruning_tolerance", "hibernation_thresh_vel"):
            _check_number("RigidOptions", name, getattr(self, name), low=0.0, strict_low=True,
                          allow_none=name != "noslip_tolerance")
        _check_number("RigidOptions", "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        _check_number("RigidOptions", "constraint_timeconst", self.constraint_timeconst, low=0.0, strict_low=True,
                      allow_none=True)
        object.__setattr__(self, "gravity", _check_vec3("RigidOptions", "gravity", self.gravity, allow_none=True))
        if not isinstance(self.integrator, integrator):
            raise InvalidInputError(
                f"RigidOptions(integrator={self.integrator!r}): use gs.integrator.Euler, implicitfast or RK4."
            )
        if not isinstance(self.constraint_solver, constraint_solver):
            raise InvalidInputError(
                f"RigidOptions(constraint_solver={self.constraint_solver!r}): use gs.constraint_solver.Newton or CG."
            )
        _check_bools("RigidOptions", self, ("enable_collision", "enable_joint_limit", "enable_self_collision",
                                            "enable_adjacent_collision", *_IGNORED_RIGID))
        if self.compile is not None and not isinstance(self.compile, bool):
            raise InvalidInputError(f"RigidOptions(compile={self.compile!r}): expected True, False or None.")
        if self.cone not in ("pyramidal", "elliptic"):
            raise InvalidInputError(f"RigidOptions(cone={self.cone!r}): use 'pyramidal' or 'elliptic'.")
        _check_number("RigidOptions", "ls_tolerance", self.ls_tolerance, low=0.0)
        _check_number("RigidOptions", "impratio", self.impratio, low=0.0, strict_low=True)
        _check_ints("RigidOptions", self, ("iterations", "ls_iterations", "max_collision_pairs"))
        v = self.max_contacts
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InvalidInputError(f"RigidOptions(max_contacts={v!r}): expected None (as many as max_collision_pairs "
                                    "allows) or an int >= 1.")
        _check_number("RigidOptions", "tolerance", self.tolerance, low=0.0)


_MPM_BOUNDARIES = ("sticky", "slip", "separate")


@dataclasses.dataclass(frozen=True, init=False)
class MPMOptions(_Options):
    """Options of the MPM solver (names and defaults follow Genesis's `gs.options.MPMOptions`).

    Attributes:
        dt: MPM substep in seconds. None: one MPM substep per scene substep (`SimOptions.dt / substeps`).
            Otherwise `SimOptions.dt / substeps` must be an integer multiple k of it, and the scene runs k MPM
            substeps after each rigid substep (MPM usually needs a smaller step than rigid bodies).
        gravity: (3,) m/s^2; None uses `SimOptions.gravity`.
        particle_size: particle spacing (m) of the sampled morphs; a particle's volume is `particle_size**3`.
            None: `0.01 * 64 / grid_density` (Genesis's rule: 0.01 m at 64 cells per metre).
        grid_density: grid cells per metre (`dx = 1 / grid_density`).
        enable_CPIC: Genesis's compatible PIC for thin colliders; not implemented here (True raises).
        lower_bound, upper_bound: (3,) m, the simulation domain. Grid nodes run from `round(lower_bound *
            grid_density)` to `round(upper_bound * grid_density)`; the nodes within 3 cells of each side are walls
            (those on `lower_bound + 3 dx` and `upper_bound - 3 dx` included, as Genesis), so particles must start inside `[lower_bound + 3 dx, upper_bound - 3 dx]`. The floor is the lower z wall.
        boundary: what walls do to grid velocity: "sticky" (zero), "slip" (zero normal component) or
            "separate" (zero normal component only when moving into the wall; Taichi's mpm88/mpm3d rule).
        use_sparse_grid, leaf_block_size: Genesis's deprecated options; accepted with their defaults only.
        compile: fuse the particle-side stages with `torch.compile` (not a Genesis option; the first step compiles,
            ~1 min on CPU). Results equal the eager step to rounding; bitwise batched == serial is guaranteed eager only.
        flip_ratio: in [0, 1], the FLIP share of the particle velocity update (not a Genesis option):
            v_p <- r (v_p + sum_i w_ip (v_i' - v_i)) + (1 - r) sum_i w_ip v_i', with v_i the grid velocity after P2G
            and v_i' after the grid update. 0 (default): pure APIC/MLS-MPM; 1: the original MPM update of Sulsky,
            Chen & Schreyer 1994 (far less dissipative in elastic collisions; docs/mpm.md).
    """

    dt: float | None = None
    gravity: tuple | None = None
    particle_size: float | None = None
    grid_density: float = 64
    enable_CPIC: bool = False
    lower_bound: tuple = (-1.0, -1.0, 0.0)
    upper_bound: tuple = (1.0, 1.0, 1.0)
    boundary: str = "separate"
    use_sparse_grid: bool = False
    leaf_block_size: int = 8
    compile: bool = False
    flip_ratio: float = 0.0

    def _validate(self) -> None:
        _check_number("MPMOptions", "flip_ratio", self.flip_ratio, low=0.0, high=1.0)
        _check_number("MPMOptions", "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        object.__setattr__(self, "gravity", _check_vec3("MPMOptions", "gravity", self.gravity, allow_none=True))
        _check_number("MPMOptions", "grid_density", self.grid_density, low=0.0, strict_low=True)
        _check_number("MPMOptions", "particle_size", self.particle_size, low=0.0, strict_low=True, allow_none=True)
        if self.particle_size is None:
            object.__setattr__(self, "particle_size", 0.01 * 64.0 / self.grid_density)
        lo = _check_vec3("MPMOptions", "lower_bound", self.lower_bound)
        hi = _check_vec3("MPMOptions", "upper_bound", self.upper_bound)
        if not all(h > l for l, h in zip(lo, hi)):
            raise InvalidInputError(f"MPMOptions(lower_bound={lo}, upper_bound={hi}): every upper bound must exceed "
                                    "its lower bound.")
        cells = [round(h * self.grid_density) - round(l * self.grid_density) for l, h in zip(lo, hi)]
        if min(cells) < 7:
            raise InvalidInputError(f"MPMOptions: the domain spans {cells} grid cells; each axis needs at least 7 "
                                    "(3 wall cells on each side). Enlarge the bounds or raise grid_density.")
        object.__setattr__(self, "lower_bound", lo)
        object.__setattr__(self, "upper_bound", hi)
        if self.boundary not in _MPM_BOUNDARIES:
            raise InvalidInputError(f"MPMOptions(boundary={self.boundary!r}): use one of {_MPM_BOUNDARIES}.")
        _check_bools("MPMOptions", self, ("compile", "enable_CPIC"))
        if self.enable_CPIC:
            raise InvalidInputError("MPMOptions(enable_CPIC=True): compatible PIC is not implemented in genesis-torch; "
                                    "leave enable_CPIC=False (rigid colliders act on the grid, docs/mpm.md).")
        if self.use_sparse_grid is not False or self.leaf_block_size != 8:
            raise InvalidInputError("MPMOptions: use_sparse_grid and leaf_block_size are deprecated in Genesis and "
                                    "have no effect here; leave them at their defaults (False, 8).")

    @property
    def dx(self) -> float:
        """Grid spacing in metres."""
        return 1.0 / self.grid_density


_SPH_PRESSURE_SOLVERS = ("WCSPH", "DFSPH")


@dataclasses.dataclass(frozen=True, init=False)
class SPHOptions(_Options):
    """Options of the SPH solver (names and defaults follow Genesis 1.4.5's `gs.options.SPHOptions`; docs/sph.md).

    Attributes:
        dt: SPH substep in seconds. None: one SPH substep per scene substep (`SimOptions.dt / substeps`); otherwise
            `SimOptions.dt / substeps` must be an integer multiple k of it (k SPH substeps per scene substep).
        gravity: (3,) m/s^2; None uses `SimOptions.gravity`.
        particle_size: particle diameter (m), the spacing of the sampled lattice; the support radius of the kernel
            is `h = 2 particle_size` and a particle's volume `0.8 particle_size**3` (Genesis' empirical factor).
        pressure_solver: "WCSPH" (Becker & Teschner 2007, Tait equation of state) or "DFSPH" (Bender & Koschier
            2015/2017: divergence-free and constant-density solvers).
        lower_bound, upper_bound: (3,) m, the domain: its six faces are walls (boundary volume maps plus Genesis'
            position clamp); particles must start inside.
        hash_grid_cell_size: edge (m) of the neighbour-search cells, >= 2 particle_size; None: 2 particle_size.
        hash_grid_res: Genesis' size (m) of its spatially repeating hash grid. Validated and accepted without
            effect: the cell keys here are exact integer cell indices (no repetition, no collisions), so the
            neighbours found never depend on it (not part of the fingerprint).
        max_divergence_error: DFSPH divergence solver tolerance, in percent of rho0 per second times dt (Genesis:
            the mean of rho0 * max(Drho/Dt, 0) / rho0 must fall below `max_divergence_error * 0.01 * rho0 / dt`).
        max_density_error_percent: DFSPH density solver tolerance: mean predicted density error below this
            percentage of rho0 (0.05 means 0.05 %).
        max_divergence_solver_iterations, max_density_solver_iterations: iteration caps of the DFSPH solvers (each
            runs at least one iteration; an env stops iterating once its own error is below the tolerance).
    """

    dt: float | None = None
    gravity: tuple | None = None
    particle_size: float = 0.02
    pressure_solver: str = "WCSPH"
    lower_bound: tuple = (-100.0, -100.0, 0.0)
    upper_bound: tuple = (100.0, 100.0, 100.0)
    hash_grid_res: tuple | None = None
    hash_grid_cell_size: float | None = None
    max_divergence_error: float = 0.1
    max_density_error_percent: float = 0.05
    max_divergence_solver_iterations: int = 100
    max_density_solver_iterations: int = 100

    def _validate(self) -> None:
        o = "SPHOptions"
        _check_number(o, "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        object.__setattr__(self, "gravity", _check_vec3(o, "gravity", self.gravity, allow_none=True))
        _check_number(o, "particle_size", self.particle_size, low=0.0, strict_low=True)
        if self.pressure_solver not in _SPH_PRESSURE_SOLVERS:
            raise InvalidInputError(f"{o}(pressure_solver={self.pressure_solver!r}): use one of "
                                    f"{_SPH_PRESSURE_SOLVERS}.")
        lo, hi = _check_vec3(o, "lower_bound", self.lower_bound), _check_vec3(o, "upper_bound", self.upper_bound)
        if not all(h > l for l, h in zip(lo, hi)):
            raise InvalidInputError(f"{o}(lower_bound={lo}, upper_bound={hi}): every upper bound must exceed its lower "
                                    "bound.")
        object.__setattr__(self, "lower_bound", lo)
        object.__setattr__(self, "upper_bound", hi)
        object.__setattr__(self, "hash_grid_res", _check_vec3(o, "hash_grid_res", self.hash_grid_res,
                                                              allow_none=True))
        if self.hash_grid_res is not None and min(self.hash_grid_res) <= 0:
            raise InvalidInputError(f"{o}(hash_grid_res={self.hash_grid_res}): expected three positive sizes in m.")
        _check_number(o, "hash_grid_cell_size", self.hash_grid_cell_size, low=0.0, strict_low=True, allow_none=True)
        if self.hash_grid_cell_size is None:
            object.__setattr__(self, "hash_grid_cell_size", 2.0 * self.particle_size)
        if self.hash_grid_cell_size < 2.0 * self.particle_size * (1 - 1e-12):
            raise InvalidInputError(f"{o}(hash_grid_cell_size={self.hash_grid_cell_size}): must be at least the "
                                    f"support radius 2 * particle_size = {2 * self.particle_size}; raise it or leave "
                                    "it None.")
        for name in ("max_divergence_error", "max_density_error_percent"):
            _check_number(o, name, getattr(self, name), low=0.0, strict_low=True)
        _check_ints(o, self, ("max_divergence_solver_iterations", "max_density_solver_iterations"))

    @property
    def support_radius(self) -> float:
        """The kernel's support radius h = 2 particle_size (m)."""
        return 2.0 * self.particle_size

    def fingerprint(self) -> dict:
        out = super().fingerprint()
        out.pop("hash_grid_res")  # no effect on the neighbours found (see the class docstring)
        return out


def _check_like_default(owner: str, name: str, value, default) -> None:
    """Validate an accepted-and-ignored option by the type of its default (bool, number, tuple of numbers, str)."""
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    elif isinstance(default, tuple):
        try:
            ok = len(value) == len(default) and all(
                not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        except TypeError:
            ok = False
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise InvalidInputError(f"{owner}({name}={value!r}): expected a value like the default {default!r}.")


class _VisualOptions(_Options):
    """Options of Genesis' viewer and renderer: accepted with Genesis' names and defaults, validated, and ignored
    (genesis-torch has no viewer; a Scene given them runs headless, see docs/genesis_compat.md)."""

    def _validate(self) -> None:
        for f in dataclasses.fields(self):
            _check_like_default(type(self).__name__, f.name, getattr(self, f.name), f.default)


@dataclasses.dataclass(frozen=True, init=False)
class ViewerOptions(_VisualOptions):
    """Genesis' interactive-viewer options (window size, camera). Accepted and ignored: there is no viewer."""

    res: tuple | None = None
    run_in_thread: bool | None = None
    refresh_rate: int = 60
    max_FPS: int | None = 60
    camera_pos: tuple = (3.5, 0.5, 2.5)
    camera_lookat: tuple = (0.0, 0.0, 0.5)
    camera_up: tuple = (0.0, 0.0, 1.0)
    camera_fov: float = 40
    enable_interaction: bool = False
    disable_keyboard_shortcuts: bool = False


@dataclasses.dataclass(frozen=True, init=False)
class VisOptions(_VisualOptions):
    """Genesis' rendering options (frames, lights, colours, rendered envs). Accepted and ignored: there is no
    renderer."""

    show_world_frame: bool = True
    world_frame_size: float = 1.0
    show_link_frame: bool = False
    link_frame_size: float = 0.2
    show_cameras: bool = False
    shadow: bool = True
    plane_reflection: bool = False
    env_separate_rigid: bool = False
    background_color: tuple = (0.04, 0.08, 0.12)
    ambient_light: tuple = (0.1, 0.1, 0.1)
    visualize_mpm_boundary: bool = False
    visualize_sph_boundary: bool = False
    visualize_pbd_boundary: bool = False
    segmentation_level: str = "link"
    render_particle_as: str = "sphere"
    particle_size_scale: float = 1.0
    contact_force_scale: float = 0.01
    n_support_neighbours: int = 12
    n_rendered_envs: int | None = None
    rendered_envs_idx: list | None = None
    lights: list | None = None


# `dataclass(frozen=True)` gives each subclass a `__setattr__` raising `dataclasses.FrozenInstanceError`; put back the
# base's, which raises `InvalidInputError` saying what to do instead.
for _cls in (SimOptions, RigidOptions, MPMOptions, ViewerOptions, VisOptions):
    _cls.__setattr__ = _Options.__setattr__


@dataclasses.dataclass(frozen=True, init=False)
class ProfilingOptions(_Options):
    """Genesis' profiling options (`gs.Scene(profiling_options=...)`), validated and stored as
    `scene.profiling_options`. Accepted and not honoured: no frame rate is logged (Genesis logs the step rate at INFO
    when `show_FPS`); time a loop with `gs.tools.Timer` or the benchmarks instead.

    Attributes:
        show_FPS: Genesis' switch for logging the step rate.
        FPS_tracker_alpha: Genesis' exponential-decay factor of that rate's moving average, in [0, 1].
    """

    show_FPS: bool = True
    FPS_tracker_alpha: float = 0.95

    def _validate(self) -> None:
        _check_bools("ProfilingOptions", self, ("show_FPS",))
        _check_number("ProfilingOptions", "FPS_tracker_alpha", self.FPS_tracker_alpha, low=0.0, high=1.0)


ProfilingOptions.__setattr__ = _Options.__setattr__
__all__.append("ProfilingOptions")
__all__.append("SPHOptions")
SPHOptions.__setattr__ = _Options.__setattr__


@dataclasses.dataclass(frozen=True, init=False)
class PBDOptions(_Options):
    """Options of the PBD solver (names and defaults follow Genesis 1.4.5's `gs.options.PBDOptions`; docs/pbd.md).

    Attributes:
        dt: PBD substep in seconds. None: one PBD substep per scene substep (`SimOptions.dt / substeps`); otherwise
            `SimOptions.dt / substeps` must be an integer multiple k of it (k PBD substeps per scene substep).
        gravity: (3,) m/s^2; None uses `SimOptions.gravity`.
        max_stretch_solver_iterations, max_bending_solver_iterations, max_volume_solver_iterations,
            max_density_solver_iterations, max_viscosity_solver_iterations: XPBD iterations per substep of each
            constraint kind (ints >= 1; Genesis runs exactly this many).
        particle_size: particle diameter (m): the spacing of sampled particles (liquid, free particles), the contact
            radius particle_size / 2 against rigid geoms, and the liquid's kernel scale.
        hash_grid_res: Genesis' size (m) of its spatially repeating hash grid; validated, no effect here (the
            neighbour cells are exact integer cells), not part of the fingerprint.
        hash_grid_cell_size: edge (m) of the neighbour-search cells, >= 1.25 particle_size; None: 1.25 particle_size.
        lower_bound, upper_bound: (3,) m, the domain: particle centres are kept inside (Genesis' cube boundary).
    """

    dt: float | None = None
    gravity: tuple | None = None
    max_stretch_solver_iterations: int = 4
    max_bending_solver_iterations: int = 1
    max_volume_solver_iterations: int = 1
    max_density_solver_iterations: int = 1
    max_viscosity_solver_iterations: int = 1
    particle_size: float = 1e-2
    hash_grid_res: tuple | None = None
    hash_grid_cell_size: float | None = None
    lower_bound: tuple = (-100.0, -100.0, 0.0)
    upper_bound: tuple = (100.0, 100.0, 100.0)

    def _validate(self) -> None:
        o = "PBDOptions"
        _check_number(o, "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        object.__setattr__(self, "gravity", _check_vec3(o, "gravity", self.gravity, allow_none=True))
        _check_ints(o, self, ("max_stretch_solver_iterations", "max_bending_solver_iterations",
                              "max_volume_solver_iterations", "max_density_solver_iterations",
                              "max_viscosity_solver_iterations"))
        _check_number(o, "particle_size", self.particle_size, low=0.0, strict_low=True)
        lo, hi = _check_vec3(o, "lower_bound", self.lower_bound), _check_vec3(o, "upper_bound", self.upper_bound)
        if not all(h > l for l, h in zip(lo, hi)):
            raise InvalidInputError(f"{o}(lower_bound={lo}, upper_bound={hi}): every upper bound must exceed its lower "
                                    "bound.")
        object.__setattr__(self, "lower_bound", lo)
        object.__setattr__(self, "upper_bound", hi)
        object.__setattr__(self, "hash_grid_res", _check_vec3(o, "hash_grid_res", self.hash_grid_res,
                                                              allow_none=True))
        if self.hash_grid_res is not None and min(self.hash_grid_res) <= 0:
            raise InvalidInputError(f"{o}(hash_grid_res={self.hash_grid_res}): expected three positive sizes in m.")
        _check_number(o, "hash_grid_cell_size", self.hash_grid_cell_size, low=0.0, strict_low=True, allow_none=True)
        if self.hash_grid_cell_size is None:
            object.__setattr__(self, "hash_grid_cell_size", 1.25 * self.particle_size)
        if self.hash_grid_cell_size < 1.25 * self.particle_size * (1 - 1e-12):
            raise InvalidInputError(f"{o}(hash_grid_cell_size={self.hash_grid_cell_size}): must be at least 1.25 * "
                                    f"particle_size = {1.25 * self.particle_size} (Genesis' rule); raise it or leave "
                                    "it None.")

    def fingerprint(self) -> dict:
        out = super().fingerprint()
        out.pop("hash_grid_res")  # no effect on the neighbours found (see the class docstring)
        return out


PBDOptions.__setattr__ = _Options.__setattr__
__all__.append("PBDOptions")


@dataclasses.dataclass(frozen=True, init=False)
class FEMOptions(_Options):
    """Options of the FEM solver (names and defaults follow Genesis 1.4.5's `gs.options.FEMOptions`; docs/fem.md).

    Attributes:
        dt: FEM substep in seconds. None: one FEM substep per scene substep (`SimOptions.dt / substeps`); otherwise
            `SimOptions.dt / substeps` must be an integer multiple k of it (k FEM substeps per scene substep).
        gravity: (3,) m/s^2; None uses `SimOptions.gravity`.
        damping: explicit solver's velocity damping (1/s): v <- v exp(-dt damping) each substep, before gravity.
        floor_height: height (m) of the floor plane z = floor_height; None: 0 (Genesis' `SimOptions.floor_height`).
        use_implicit_solver: backward Euler (Newton + PCG) instead of the explicit symplectic Euler.
        n_newton_iterations, n_pcg_iterations, n_linesearch_iterations: the fixed iteration counts of the implicit
            solver (Newton, conjugate gradient per Newton step, Armijo backtracking trials per Newton step).
        newton_dx_threshold: an env stops its Newton iterations once max |dx| <= this (m).
        pcg_threshold: an env stops its CG iterations once the residual r^T r <= this (N^2).
        linesearch_c, linesearch_tau: Armijo sufficient-decrease constant and step reduction factor, in (0, 1).
        damping_alpha, damping_beta: implicit solver's Rayleigh damping, mass- (1/s) and stiffness-proportional (s).
        enable_vertex_constraints: Genesis' switch that the implicit solver needs for `set_vertex_constraints`.
    """

    dt: float | None = None
    gravity: tuple | None = None
    damping: float = 0.0
    floor_height: float | None = None
    use_implicit_solver: bool = False
    n_newton_iterations: int = 1
    n_pcg_iterations: int = 500
    n_linesearch_iterations: int = 0
    newton_dx_threshold: float = 1e-6
    pcg_threshold: float = 1e-6
    linesearch_c: float = 1e-4
    linesearch_tau: float = 0.5
    damping_alpha: float = 0.5
    damping_beta: float = 5e-4
    enable_vertex_constraints: bool = False

    def _validate(self) -> None:
        o = "FEMOptions"
        _check_number(o, "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        object.__setattr__(self, "gravity", _check_vec3(o, "gravity", self.gravity, allow_none=True))
        _check_number(o, "floor_height", self.floor_height, allow_none=True)
        if self.floor_height is None:
            object.__setattr__(self, "floor_height", 0.0)
        for name in ("damping", "damping_alpha", "damping_beta"):
            _check_number(o, name, getattr(self, name), low=0.0)
        for name in ("newton_dx_threshold", "pcg_threshold"):
            _check_number(o, name, getattr(self, name), low=0.0, strict_low=True)
        for name in ("linesearch_c", "linesearch_tau"):
            _check_number(o, name, getattr(self, name), low=0.0, strict_low=True)
            if getattr(self, name) >= 1:
                raise InvalidInputError(f"{o}({name}={getattr(self, name)!r}): must lie in (0, 1).")
        _check_ints(o, self, ("n_newton_iterations", "n_pcg_iterations"))
        _check_ints(o, self, ("n_linesearch_iterations",), low=0)
        _check_bools(o, self, ("use_implicit_solver", "enable_vertex_constraints"))


FEMOptions.__setattr__ = _Options.__setattr__
__all__.append("FEMOptions")


@dataclasses.dataclass(frozen=True, init=False)
class KinematicOptions(_Options):
    """Options of the kinematic solver of `gs.materials.Kinematic` entities (Genesis 1.4.5 names and defaults).

    Attributes:
        batch_links_info, batch_joints_info, batch_dofs_info: Genesis' switches for per-env link / joint / dof
            parameters; accepted (True or False) without effect: parameters here are always per env.
        IK_max_targets: Genesis' IK target capacity (an int >= 1); accepted without effect (no capacity here).
    """

    batch_links_info: bool = False
    batch_joints_info: bool = False
    batch_dofs_info: bool = False
    IK_max_targets: int = 6

    def _validate(self) -> None:
        _check_bools("KinematicOptions", self, ("batch_links_info", "batch_joints_info", "batch_dofs_info"))
        _check_ints("KinematicOptions", self, ("IK_max_targets",))


KinematicOptions.__setattr__ = _Options.__setattr__
__all__.append("KinematicOptions")


@dataclasses.dataclass(frozen=True, init=False)
class ToolOptions(_Options):
    """Options of the tool solver of `gs.materials.Tool` entities (Genesis 1.4.5 names and defaults).

    Attributes:
        dt: tool substep in seconds; None uses `SimOptions.dt / substeps` (another value raises).
        floor_height: the tools' positions are kept at z >= floor_height (m) after every substep (Genesis' floor
            boundary); None: no floor.
    """

    dt: float | None = None
    floor_height: float | None = None

    def _validate(self) -> None:
        _check_number("ToolOptions", "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        _check_number("ToolOptions", "floor_height", self.floor_height, allow_none=True)


ToolOptions.__setattr__ = _Options.__setattr__
__all__.append("ToolOptions")

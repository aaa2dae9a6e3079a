"""Scene and solver options: frozen, validated at construction; unknown keywords raise `InvalidInputError`."""

from __future__ import annotations

import dataclasses
import enum
import math

from .errors import InvalidInputError

__all__ = ["SimOptions", "RigidOptions", "integrator", "constraint_solver"]


class integrator(enum.Enum):
    """Time integrators of the rigid solver, with MuJoCo's semantics."""

    Euler = "Euler"  #: semi-implicit Euler; joint damping implicit (MuJoCo's `Euler`)
    implicitfast = "implicitfast"  #: velocity-dependent actuator and damping forces implicit
    RK4 = "RK4"  #: classic 4th-order Runge-Kutta


class constraint_solver(enum.Enum):
    """Constraint solvers. `Newton` minimises MuJoCo's convex primal problem with exact line search."""

    Newton = "Newton"


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
        self._validate()

    def __setattr__(self, name, value):
        raise InvalidInputError(
            f"{type(self).__name__} is frozen; create a new one with {name}=... instead."
        )

    def _validate(self) -> None:  # overridden
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """A JSON-friendly description of these options (enum members by value)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else v
        return out


@dataclasses.dataclass(frozen=True, init=False)
class SimOptions(_Options):
    """Options shared by every solver.

    Attributes:
        dt: duration of one `scene.step()` in seconds.
        substeps: internal substeps per `scene.step()`; each advances `dt / substeps` seconds.
        gravity: (3,) m/s^2, world frame, z up.
        requires_grad: record the autograd graph through steps (otherwise steps run under `torch.no_grad`).
    """

    dt: float = 1e-2
    substeps: int = 1
    gravity: tuple = (0.0, 0.0, -9.81)
    requires_grad: bool = False

    def _validate(self) -> None:
        _check_number("SimOptions", "dt", self.dt, low=0.0, strict_low=True)
        if isinstance(self.substeps, bool) or not isinstance(self.substeps, int) or self.substeps < 1:
            raise InvalidInputError(f"SimOptions(substeps={self.substeps!r}): expected an int >= 1.")
        object.__setattr__(self, "gravity", _check_vec3("SimOptions", "gravity", self.gravity))
        if not isinstance(self.requires_grad, bool):
            raise InvalidInputError(f"SimOptions(requires_grad={self.requires_grad!r}): expected True or False.")

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
        constraint_solver: `gs.constraint_solver.Newton`.
        iterations: maximum Newton iterations per step (each env stops on its own at `tolerance`).
        tolerance: relative cost improvement below which an env's solve is converged.
        ls_iterations: maximum 1-D Newton steps of each line search.
        ls_tolerance: a line search stops once |f'(alpha)| <= ls_tolerance |f'(0)| (exact on piecewise-quadratic
            costs: limits, pyramidal contacts).
        cone: friction cone of contacts, "pyramidal" (MuJoCo's default) or "elliptic".
        impratio: ratio of frictional to normal constraint impedance (MuJoCo's `impratio`).
        max_collision_pairs: contacts kept per env; an env with more makes `scene.step()` raise
            `ContactOverflowError` (no contact is ever dropped silently).
        compile: run the step through `torch.compile` (fused kernels; the first step compiles, ~1 min on CPU,
            cached on disk afterwards). Results equal the eager step to rounding.
    """

    dt: float | None = None
    gravity: tuple | None = None
    integrator: integrator = integrator.implicitfast
    enable_collision: bool = True
    enable_joint_limit: bool = True
    constraint_solver: constraint_solver = constraint_solver.Newton
    iterations: int = 50
    tolerance: float = 1e-8
    ls_iterations: int = 50
    ls_tolerance: float = 1e-10
    cone: str = "pyramidal"
    impratio: float = 1.0
    max_collision_pairs: int = 64
    compile: bool = False

    def fingerprint(self) -> dict:
        """As the base, without `compile`: compiled and eager runs of a scene share checkpoints."""
        out = super().fingerprint()
        out.pop("compile")
        return out

    def _validate(self) -> None:
        _check_number("RigidOptions", "dt", self.dt, low=0.0, strict_low=True, allow_none=True)
        object.__setattr__(self, "gravity", _check_vec3("RigidOptions", "gravity", self.gravity, allow_none=True))
        if not isinstance(self.integrator, integrator):
            raise InvalidInputError(
                f"RigidOptions(integrator={self.integrator!r}): use gs.integrator.Euler, implicitfast or RK4."
            )
        if not isinstance(self.constraint_solver, constraint_solver):
            raise InvalidInputError(
                f"RigidOptions(constraint_solver={self.constraint_solver!r}): use gs.constraint_solver.Newton."
            )
        for name in ("enable_collision", "enable_joint_limit", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"RigidOptions({name}={getattr(self, name)!r}): expected True or False.")
        if self.cone not in ("pyramidal", "elliptic"):
            raise InvalidInputError(f"RigidOptions(cone={self.cone!r}): use 'pyramidal' or 'elliptic'.")
        _check_number("RigidOptions", "ls_tolerance", self.ls_tolerance, low=0.0)
        _check_number("RigidOptions", "impratio", self.impratio, low=0.0, strict_low=True)
        for name in ("iterations", "ls_iterations", "max_collision_pairs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"RigidOptions({name}={v!r}): expected an int >= 1.")
        _check_number("RigidOptions", "tolerance", self.tolerance, low=0.0)


# `dataclass(frozen=True)` gives each subclass a `__setattr__` raising `dataclasses.FrozenInstanceError`; put back the
# base's, which raises `InvalidInputError` saying what to do instead.
for _cls in (SimOptions, RigidOptions):
    _cls.__setattr__ = _Options.__setattr__

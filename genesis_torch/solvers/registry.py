"""The registry of solvers: the only list of them (docs/architecture.md, "Adding a solver").

`SOLVERS` is in step order (rigid first: the particle and mesh solvers read its geoms as colliders). A new solver is
a folder `solvers/<name>/` with a `SceneSolver` subclass (`solvers/base.py`) and one line here; nothing in the scene.
"""

from __future__ import annotations

from ..errors import InvalidInputError, UnsupportedFeatureError
from .base import SceneSolver
from .fem.scene_solver import FEMSceneSolver
from .kinematic_solver import KinematicSceneSolver
from .mpm.scene_solver import MPMSceneSolver
from .pbd.scene_solver import PBDSceneSolver
from .rigid.scene_solver import RigidSceneSolver
from .sph.scene_solver import SPHSceneSolver
from .tool.scene_solver import ToolSceneSolver

__all__ = ["SOLVERS", "PLANNED", "register", "unregister", "route"]

SOLVERS: list[type[SceneSolver]] = [
    RigidSceneSolver,
    ToolSceneSolver,  # before the particle solvers: it offers the tools as their colliders
    MPMSceneSolver,
    SPHSceneSolver,
    FEMSceneSolver,
    PBDSceneSolver,
    KinematicSceneSolver,  # ghosts: no dynamics, no coupling (solvers/kinematic_solver.py)
]

# `Scene(...)` keywords of the solvers DESIGN.md plans but the project does not have yet: they raise a clear error
PLANNED: dict[str, str] = {}


def register(cls: type[SceneSolver]) -> None:
    """Add a solver at the end of the step order (e.g. a test's toy solver). Scenes created afterwards have it."""
    if not (isinstance(cls, type) and issubclass(cls, SceneSolver)):
        raise InvalidInputError(f"register({cls!r}): expected a SceneSolver subclass (solvers/base.py).")
    taken = {(s.key, s.kind) for s in SOLVERS}
    if any(cls.key == k or cls.kind == n for k, n in taken):
        raise InvalidInputError(f"register({cls.__name__}): key {cls.key!r} or kind {cls.kind!r} is already "
                                f"registered; pick unused names (taken: {sorted(taken)}).")
    SOLVERS.append(cls)


def unregister(cls: type[SceneSolver]) -> None:
    """Remove a solver added by `register`."""
    if cls not in SOLVERS:
        raise InvalidInputError(f"unregister({cls!r}): not registered.")
    SOLVERS.remove(cls)


def route(solvers: list[SceneSolver], material) -> SceneSolver:
    """The solver among `solvers` that claims `material` (None: the one with `claims_no_material`)."""
    for s in solvers:
        if s.claims(material):
            return s
    hints = " or ".join(s.material_hint for s in solvers if s.material_hint)
    raise UnsupportedFeatureError(f"material {type(material).__name__} is not supported; use {hints}.")

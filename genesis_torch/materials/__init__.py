"""Materials pick the solver of an entity: `Rigid` (rigid solver), `MPM.*` (MPM solver), `SPH.*` (SPH solver) or `PBD.*` (PBD solver)."""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidInputError
from . import FEM, MPM, PBD, SPH
from .kinematic import Kinematic
from .tool import Tool

__all__ = ["Rigid", "MPM", "SPH", "FEM", "PBD", "Kinematic", "Tool"]


def _finite(name, v, *, low=None, high=None, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (low is not None and v < low) or (high is not None and v > high):
        rng = "" if low is None else f" in [{low}, {'inf' if high is None else high}]"
        raise InvalidInputError(f"Rigid({name}={v!r}): expected a finite number{rng}.")


@dataclasses.dataclass(frozen=True)
class Rigid:
    """Rigid-body material (Genesis 1.4.5's `gs.materials.Rigid` arguments).

    Honoured: `rho`: density (kg/m^3) giving the mass of primitive and mesh morphs (MJCF keeps its masses).
    `friction`: sliding friction coefficient of every geom of the entity (None keeps the file's / MuJoCo's default 1);
    a contact uses the larger coefficient of its two geoms, as in Genesis and MuJoCo. `gravity_compensation`: the
    fraction of gravity cancelled on every body of the entity (1 cancels it), MuJoCo's `body_gravcomp`: a passive
    force -gravity_compensation * m * g at each body's COM (Genesis scales the entity's gravity by
    1 - gravity_compensation: the same forces).

    Accepted without effect here (not part of the fingerprint): the coupling arguments (`needs_coup`, `coup_friction`,
    `coup_softness`, `coup_restitution`, `coup_type`, `coup_links`, `enable_coup_collision`, `coup_collision_links`,
    `contact_resistance`: two-way rigid coupling is not implemented; MPM particles see rigid geoms as colliders
    whatever these say), `friction_torsional` / `friction_rolling` (only used with
    `RigidOptions(enable_torsional_friction=True)`, which raises), `sdf_cell_size`, `sdf_min_res`, `sdf_max_res`
    (non-convex meshes collide as convex pieces, not through a signed-distance field) and `use_visual_raycasting`
    (cameras render MuJoCo's geoms)."""

    rho: float = 200.0
    friction: float | None = None
    gravity_compensation: float = 0.0
    friction_torsional: float | None = None
    friction_rolling: float | None = None
    needs_coup: bool = True
    coup_friction: float = 0.1
    coup_softness: float = 0.002
    coup_restitution: float = 0.0
    sdf_cell_size: float = 0.005
    sdf_min_res: int = 32
    sdf_max_res: int = 128
    coup_type: str | None = None
    coup_links: tuple | None = None
    enable_coup_collision: bool = True
    coup_collision_links: tuple | None = None
    contact_resistance: float | None = None
    use_visual_raycasting: bool = False

    def __post_init__(self):
        if isinstance(self.rho, bool) or not isinstance(self.rho, (int, float)) or not math.isfinite(self.rho) \
                or self.rho <= 0:
            raise InvalidInputError(f"Rigid(rho={self.rho!r}): expected a positive density in kg/m^3.")
        f = self.friction
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f <= 0):
            raise InvalidInputError(f"Rigid(friction={f!r}): expected a positive friction coefficient (e.g. 1.0) or "
                                    "None.")
        _finite("gravity_compensation", self.gravity_compensation)
        for name in ("friction_torsional", "friction_rolling"):
            _finite(name, getattr(self, name), low=0.0, allow_none=True)
        for name in ("coup_friction", "coup_softness"):
            _finite(name, getattr(self, name), low=0.0)
        _finite("coup_restitution", self.coup_restitution, low=0.0, high=1.0)
        _finite("sdf_cell_size", self.sdf_cell_size, low=0.0)
        if self.contact_resistance is not None:
            _finite("contact_resistance", self.contact_resistance, low=0.0)
        for name in ("needs_coup", "enable_coup_collision", "use_visual_raycasting"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"Rigid({name}={getattr(self, name)!r}): expected True or False.")
        for name in ("sdf_min_res", "sdf_max_res"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 16:
                raise InvalidInputError(f"Rigid({name}={v!r}): expected an int >= 16.")
        if self.sdf_min_res > self.sdf_max_res:
            raise InvalidInputError("Rigid(sdf_min_res, sdf_max_res): sdf_min_res must not exceed sdf_max_res.")
        if self.coup_type not in (None, "two_way_soft_constraint", "external_articulation", "ipc_only"):
            raise InvalidInputError(f"Rigid(coup_type={self.coup_type!r}): use None, 'two_way_soft_constraint', "
                                    "'external_articulation' or 'ipc_only'.")

"""The PBD solver as the scene drives it (the protocol of `solvers/base.py`): entities made into particles and
constraints, the domain check before build, its own substep count (`PBDOptions.dt`) and the rigid geoms as one-way
colliders (`Couplings`). See docs/pbd.md."""

from __future__ import annotations

import numpy as np

from ...entities.pbd_entity import PBDEntity
from ...errors import InvalidInputError
from ...materials import PBD
from ...options import PBDOptions, SimOptions
from ..base import Couplings, SceneSolver
from .colliders import build_colliders
from .model import build_pbd_model
from .parts import cloth_parts, elastic_parts, particle_parts
from .solver import PBDSolver, PBDState

__all__ = ["PBDSceneSolver", "pbd_substeps"]


def pbd_substeps(sim: SimOptions, o: PBDOptions) -> int:
    """PBD substeps per scene substep: 1 when `o.dt` is None, else `sim.substep_dt / o.dt` (must be an int)."""
    if o.dt is None:
        return 1
    k = sim.substep_dt / o.dt
    if round(k) < 1 or abs(k - round(k)) > 1e-9 * k:
        raise InvalidInputError(f"PBDOptions(dt={o.dt}) must divide the scene substep SimOptions.dt/substeps = "
                                f"{sim.substep_dt} into a whole number of PBD substeps (got {k:.6g}).")
    return int(round(k))


def _liquid_builder(*args):
    from .liquid import build_liquid

    return build_liquid(*args)


def _collision_builder(*args):
    from .collisions import build_collisions

    return build_collisions(*args)


class PBDSceneSolver(SceneSolver):
    """`PBDSolver` behind the solver protocol; `scene.pbd_solver` is the built `PBDSolver`."""

    key, kind, options_class, state_class = "PBDSolver", "pbd", PBDOptions, PBDState
    materials, material_hint = PBD.MATERIALS, "gs.materials.PBD.*"

    @classmethod
    def check_options(cls, sim: SimOptions, options: PBDOptions) -> None:
        pbd_substeps(sim, options)

    def n_substeps(self, sim: SimOptions) -> int:
        return pbd_substeps(sim, self.options)

    def add_entity(self, morph, material, surface, idx: int) -> PBDEntity:
        """Particles and constraints of `morph` with `material` (parts.py); the surface is stored."""
        faces = None
        if isinstance(material, PBD.Cloth):
            parts, faces = cloth_parts(morph, material)
        elif isinstance(material, PBD.Elastic):
            parts, faces = elastic_parts(morph, material)
        else:
            parts = particle_parts(morph, material, self.options.particle_size, seed=idx)
        entity = PBDEntity(self.scene, idx, morph, material, f"entity{idx}", parts, solver=self, faces=faces)
        entity.surface = surface
        self.entities.append(entity)
        return entity

    def validate(self) -> None:
        """Raise `InvalidInputError` naming the first entity with particles outside the domain."""
        lo, hi = np.asarray(self.options.lower_bound), np.asarray(self.options.upper_bound)
        for e in self.entities:
            bad = ~np.all((e.parts.pos >= lo) & (e.parts.pos <= hi), axis=1)
            if bad.any():
                raise InvalidInputError(
                    f"{e.name}: {int(bad.sum())} particles (e.g. at {e.parts.pos[bad][0].round(4).tolist()}) lie "
                    f"outside the PBD domain {lo.tolist()}..{hi.tolist()} m; move the morph or widen "
                    "PBDOptions(lower_bound/upper_bound).")

    def _build(self, n_envs, device, dtype, sim, couplings: Couplings) -> None:
        o, start = self.options, 0
        for e in self.entities:
            e.particle_start = start
            start += e.n_particles
        colliders = None if couplings.collider_model is None else build_colliders(couplings.collider_model, device,
                                                                                  dtype)
        model = build_pbd_model([e.parts for e in self.entities], o, self.dt, o.gravity or sim.gravity, colliders,
                                device, dtype, liquid_builder=_liquid_builder,
                                collision_builder=_collision_builder)
        self.solver = PBDSolver(model, device, dtype)
        self._frames, self._sub = (None, None), 0

    def initial_state(self, n_envs: int) -> PBDState:
        return self.solver.initial_state(n_envs)

    def substep(self, state: PBDState, couplings: Couplings, dt: float) -> PBDState:
        """One `PBDSolver.step` with the rigid geoms at their poses after the rigid substep, moving with its velocity,
        and the particles fixed to links following them (`couplings.bodies`; one-way coupling)."""
        cm, bodies = self.solver.model.colliders, couplings.bodies
        frames = None
        if bodies is not None:
            if self._frames[0] is not bodies:  # the first PBD substep of this scene substep
                self._frames = (bodies, None if cm is None else bodies.geom_frames(cm.body, cm.pos, cm.quat))
                self._sub = 0
            frames = self._frames[1]
            self._sub += 1
        frac = 1.0 if bodies is None else min(self._sub / self.substeps, 1.0)
        return self.solver.step(state, frames, bodies, frac)

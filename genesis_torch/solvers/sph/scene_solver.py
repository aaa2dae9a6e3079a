"""The SPH solver as the scene drives it (the protocol of `solvers/base.py`): entities sampled into particles, the
domain check before build, Genesis' viscous time-step warning, its own substep count (`SPHOptions.dt`) and the rigid
geoms as one-way boundaries (`Couplings`). See docs/sph.md."""

from __future__ import annotations

import logging

import numpy as np

from ...entities.sph_entity import SPHEntity
from ...errors import InvalidInputError
from ...geometry import sample_particles
from ...materials.SPH import MATERIALS
from ...morphs import Box, Cylinder, Mesh, Sphere
from ...options import SimOptions, SPHOptions
from ..base import Couplings, SceneSolver
from .boundary import build_colliders
from .model import build_sph_model, stable_dt
from .solver import SPHSolver, SPHState

__all__ = ["SPHSceneSolver", "sph_substeps"]

_MORPHS = (Box, Sphere, Cylinder, Mesh)
logger = logging.getLogger("genesis_torch")


def sph_substeps(sim: SimOptions, o: SPHOptions) -> int:
    """SPH substeps per scene substep: 1 when `o.dt` is None, else `sim.substep_dt / o.dt` (must be an int)."""
    if o.dt is None:
        return 1
    k = sim.substep_dt / o.dt
    if round(k) < 1 or abs(k - round(k)) > 1e-9 * k:
        raise InvalidInputError(f"SPHOptions(dt={o.dt}) must divide the scene substep SimOptions.dt/substeps = "
                                f"{sim.substep_dt} into a whole number of SPH substeps (got {k:.6g}).")
    return int(round(k))


class SPHSceneSolver(SceneSolver):
    """`SPHSolver` behind the solver protocol; `scene.sph_solver` is the built `SPHSolver`."""

    key, kind, options_class, state_class = "SPHSolver", "sph", SPHOptions, SPHState
    materials, material_hint = MATERIALS, "gs.materials.SPH.Liquid"

    @classmethod
    def check_options(cls, sim: SimOptions, options: SPHOptions) -> None:
        sph_substeps(sim, options)

    def n_substeps(self, sim: SimOptions) -> int:
        return sph_substeps(sim, self.options)

    def add_entity(self, morph, material, surface, idx: int) -> SPHEntity:
        """Sample `morph` at `SPHOptions.particle_size`; the surface is stored (particles are not drawn by cameras)."""
        if not isinstance(morph, _MORPHS):
            raise InvalidInputError(f"add_entity: SPH materials need a Box, Sphere, Cylinder or Mesh morph, got "
                                    f"{type(morph).__name__}.")
        pos = sample_particles(morph, self.options.particle_size, sampler=material.sampler, seed=idx)
        entity = SPHEntity(self.scene, idx, morph, material, f"entity{idx}", pos, solver=self)
        entity.surface = surface
        self.entities.append(entity)
        return entity

    def validate(self) -> None:
        """Raise `InvalidInputError` naming the first entity with particles outside the domain."""
        lo, hi = np.asarray(self.options.lower_bound), np.asarray(self.options.upper_bound)
        for e in self.entities:
            bad = ~np.all((e.sampled_pos >= lo) & (e.sampled_pos <= hi), axis=1)
            if bad.any():
                raise InvalidInputError(
                    f"{e.name}: {int(bad.sum())} particles (e.g. at {e.sampled_pos[bad][0].round(4).tolist()}) lie "
                    f"outside the SPH domain {lo.tolist()}..{hi.tolist()} m; move the morph or widen "
                    "SPHOptions(lower_bound/upper_bound).")

    def _build(self, n_envs, device, dtype, sim, couplings: Couplings) -> None:
        o, start = self.options, 0
        for e in self.entities:
            e.particle_start = start
            start += e.n_particles
        colliders = None if couplings.collider_model is None else build_colliders(
            couplings.collider_model, o.lower_bound, o.upper_bound, device, dtype)
        model = build_sph_model(self.entities, o, self.dt, o.gravity or sim.gravity, colliders, device, dtype)
        bound = stable_dt(model)
        if self.dt > bound:
            logger.warning(f"SPH substep {self.dt:.4g} s is larger than the stable step {bound:.4g} s of the viscosity "
                           "(0.01 h^2 / mu, Genesis' bound); reduce the substep, the viscosity mu, or raise "
                           "particle_size.")
        self.solver = SPHSolver(model, device, dtype)
        self._frames = (None, None)

    def initial_state(self, n_envs: int) -> SPHState:
        return self.solver.initial_state(n_envs)

    def substep(self, state: SPHState, couplings: Couplings, dt: float) -> SPHState:
        """One `SPHSolver.step` with the rigid geoms at their poses after the rigid substep, moving with its
        velocity (`couplings.bodies`; one-way coupling)."""
        cm, bodies = self.solver.model.colliders, couplings.bodies
        frames = None
        if cm is not None and bodies is not None:
            if self._frames[0] is not bodies:  # the first SPH substep of this scene substep
                self._frames = (bodies, bodies.geom_frames(cm.body, cm.pos, cm.quat))
            frames = self._frames[1]
        return self.solver.step(state, frames)

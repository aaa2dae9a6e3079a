"""The MPM solver as the scene drives it (the protocol of `solvers/base.py`): entities sampled into particles, the
domain check before build, the CFL warning, its own substep count (`MPMOptions.dt`), the rigid geoms as one-way
colliders (`Couplings`), and `E`/`nu` in checkpoints. See docs/mpm.md, "Step order"."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..._runtime import get_runtime
from ...entities.mpm_entity import MPMEntity
from ...errors import InvalidInputError
from ...geometry import sample_particles
from ...materials.MPM import MATERIALS
from ...morphs import Box, Cylinder, Mesh, Sphere
from ...options import MPMOptions, SimOptions
from ..base import Couplings, SceneSolver
from .colliders import build_colliders
from .model import WALL, MPMParams, build_mpm_model
from ...geometry import sample_particles
from .solver import MPMSolver, MPMState

__all__ = ["MPMSceneSolver", "mpm_substeps"]

_PARAMS = ("E", "nu")
_MORPHS = (Box, Sphere, Cylinder, Mesh)
logger = logging.getLogger("genesis_torch")


def mpm_substeps(sim: SimOptions, mpm: MPMOptions) -> int:
    """MPM substeps per scene substep: 1 when `mpm.dt` is None, else `sim.substep_dt / mpm.dt` (must be an int)."""
    if mpm.dt is None:
        return 1
    k = sim.substep_dt / mpm.dt
    if round(k) < 1 or abs(k - round(k)) > 1e-9 * k:
        raise InvalidInputError(f"MPMOptions(dt={mpm.dt}) must divide the scene substep SimOptions.dt/substeps = "
                                f"{sim.substep_dt} into a whole number of MPM substeps (got {k:.6g}).")
    return int(round(k))


class MPMSceneSolver(SceneSolver):
    """`MPMSolver` behind the solver protocol; `scene.mpm_solver` is the built `MPMSolver`."""

    key, kind, options_class, state_class = "MPMSolver", "mpm", MPMOptions, MPMState
    materials, material_hint = MATERIALS, "gs.materials.MPM.*"

    @classmethod
    def check_options(cls, sim: SimOptions, options: MPMOptions) -> None:
        mpm_substeps(sim, options)

    def n_substeps(self, sim: SimOptions) -> int:
        return mpm_substeps(sim, self.options)

    def add_entity(self, morph, material, surface, idx: int) -> MPMEntity:
        """Sample `morph` at the particle size; the surface is stored (particles are not drawn by cameras)."""
        if not isinstance(morph, _MORPHS):
            raise InvalidInputError(f"add_entity: MPM materials need a Box, Sphere, Cylinder or Mesh morph, got "
                                    f"{type(morph).__name__}.")
        pos = sample_particles(morph, self.options.particle_size, sampler=material.sampler, seed=idx)
        entity = MPMEntity(self.scene, idx, morph, material, f"entity{idx}", pos, solver=self)
        entity.surface = surface
        self.entities.append(entity)
        return entity

    # ----------------------------------------------------------------- build
    def validate(self) -> None:
        """Raise `InvalidInputError` naming the first entity with particles outside the walls."""
        o = self.options
        lower = np.array([round(v * o.grid_density) for v in o.lower_bound])
        upper = np.array([round(v * o.grid_density) for v in o.upper_bound])
        lo, hi = (lower + WALL) / o.grid_density, (upper - WALL) / o.grid_density
        for e in self.entities:
            bad = ~np.all((e.sampled_pos > lo) & (e.sampled_pos < hi), axis=1)
            if bad.any():
                raise InvalidInputError(
                    f"{e.name}: {int(bad.sum())} particles (e.g. at {e.sampled_pos[bad][0].round(4).tolist()}) lie "
                    f"outside the MPM domain inside its walls, {lo.round(4).tolist()}..{hi.round(4).tolist()} m; move "
                    "the morph or widen MPMOptions(lower_bound/upper_bound).")

    def check_substep(self, sim: SimOptions, dt: float) -> float:
        """Warn when the MPM substep `dt` (s) exceeds the CFL bound dx / c of the stiffest material (c its
        pressure-wave speed, `material.wave_speed`), naming the options to change and values that work. Returns the
        bound (s).

        Measured with a default `Elastic` box (E = 3e5 Pa, c = 18.3 m/s, dx = 1/64 m) dropped on the floor: dt c / dx
        = 11.7 (dt = 0.01 s) is NaN after 7 steps of 0.01 s, 1.46 after 8, 1.17 after 13; 0.97, 0.78 and 0.58 stay
        finite for 1 s (float32). Larger particle speeds (v dt > dx) also break a step; those are not known at
        build."""
        o = self.options
        worst = max(self.entities, key=lambda e: e.material.wave_speed)
        c = worst.material.wave_speed
        dx = 1.0 / o.grid_density
        bound = dx / c
        if dt > bound:
            safe = 0.5 * bound  # the measured threshold is near dt c / dx = 1; half leaves room for particle speed
            substeps, per_scene = math.ceil(sim.dt / safe), math.ceil(sim.substep_dt / safe)
            logger.warning(
                f"MPM substep {dt:.3g} s exceeds the stable bound dx/c = {bound:.3g} s of {worst.name} "
                f"({type(worst.material).__name__}, pressure-wave speed c = {c:.3g} m/s, dx = {dx:.3g} m): the "
                f"simulation will likely diverge (NaN). Use SimOptions(dt={sim.dt:g}, substeps={substeps}) or "
                f"MPMOptions(dt={sim.substep_dt:g} / {per_scene}) (or a softer material, or a coarser grid_density).")
        return bound

    def _build(self, n_envs, device, dtype, sim, couplings: Couplings) -> None:
        """The solver of the entities; the rigid geoms offered in `couplings` (if any) become colliders."""
        o, start = self.options, 0
        for e in self.entities:
            e.particle_start = start
            start += e.n_particles
        colliders = None if couplings.collider_model is None else build_colliders(
            couplings.collider_model, device, dtype, sdf_cell=0.5 / o.grid_density)  # mesh SDFs: half an MPM cell
        self.check_substep(sim, self.dt)
        model, params = build_mpm_model(self.entities, o, self.dt, o.gravity or sim.gravity, colliders, device, dtype)
        self.solver = MPMSolver(model, params, device, dtype, deterministic=get_runtime().deterministic,
                                compile=o.compile)
        if model.has_muscle:  # the activations are state: checkpoints hold `MPMSolver.actu` (muscle.py)
            from .muscle import MPMMuscleState
            self.state_class = MPMMuscleState
        self._frames = (None, None)  # (the BodyMotion, its collider frames): computed once per scene substep

    def initial_state(self, n_envs: int) -> MPMState:
        return self.solver.initial_state(n_envs)

    # ------------------------------------------------------------------ step
    def substep(self, state: MPMState, couplings: Couplings, dt: float) -> MPMState:
        """One `MPMSolver.step` (of the model's `dt`) with the rigid geoms at their poses after the rigid substep,
        moving with its velocity (`couplings.bodies`; one-way coupling)."""
        cm, bodies = self.solver.model.colliders, couplings.bodies
        frames = None
        if cm is not None and bodies is not None:
            if self._frames[0] is not bodies:  # the first MPM substep of this scene substep
                self._frames = (bodies, bodies.geom_frames(cm.body, cm.pos, cm.quat))
            frames = self._frames[1]
        return self.solver.step(state, frames)

    # ----------------------------------------------------------- checkpoints
    def params_arrays(self) -> dict[str, np.ndarray]:
        """`MPMSolver.params.E/nu`, `(B, n)` each (and `.muscle_dir` `(B, n, 3)` with muscles)."""
        p, B = self.solver.params, self.scene.batch_size
        names = _PARAMS + (("muscle_dir",) if p.muscle_dir is not None else ())
        return {f"{self.key}.params.{n}": getattr(p, n).detach().expand(B, *getattr(p, n).shape[1:]).cpu()
                .contiguous().numpy().copy() for n in names}

    def load_params(self, arrays) -> MPMParams:
        names = _PARAMS + (("muscle_dir",) if self.solver.model.has_muscle else ())
        return MPMParams(**{n: torch.from_numpy(np.array(arrays[f"{self.key}.params.{n}"])).to(self.scene.device)
                            for n in names})

    def install_params(self, params: MPMParams) -> None:
        self.solver.params = params

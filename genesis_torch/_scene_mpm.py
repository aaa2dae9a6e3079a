"""The MPM side of `Scene` (kept apart so scene.py stays readable): entity creation, build, the substep loop with
rigid colliders, and checkpoint arrays. See docs/mpm.md for the step order."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ._runtime import get_runtime
from .entities.mpm_entity import MPMEntity
from .errors import InvalidInputError
from .options import MPMOptions, SimOptions
from .solvers.mpm.colliders import build_colliders, collider_frames
from .solvers.mpm.model import WALL, MPMParams, build_mpm_model
from .geometry import sample_particles
from .solvers.mpm.solver import MPMSolver, MPMState

__all__ = ["mpm_substeps", "make_entity", "check_domain", "check_substep", "build_solver", "substeps", "params_arrays", "load_arrays"]

_PARAMS = ("E", "nu")
logger = logging.getLogger("genesis_torch")


def mpm_substeps(sim: SimOptions | None, mpm: MPMOptions) -> int:
    """MPM substeps per scene substep: 1 when `mpm.dt` is None, else `sim.substep_dt / mpm.dt` (must be an int)."""
    if mpm.dt is None or not isinstance(sim, SimOptions):
        return 1
    k = sim.substep_dt / mpm.dt
    if round(k) < 1 or abs(k - round(k)) > 1e-9 * k:
        raise InvalidInputError(f"MPMOptions(dt={mpm.dt}) must divide the scene substep SimOptions.dt/substeps = "
                                f"{sim.substep_dt} into a whole number of MPM substeps (got {k:.6g}).")
    return int(round(k))


def make_entity(scene, morph, material) -> MPMEntity:
    """Sample `morph` at the scene's particle size; the handle of a new MPM entity (not yet added)."""
    idx = len(scene.entities)
    pos = sample_particles(morph, scene.mpm_options.particle_size, sampler=material.sampler, seed=idx)
    return MPMEntity(scene, idx, morph, material, f"entity{idx}", pos)


def check_domain(scene) -> None:
    """Raise `InvalidInputError` naming the first MPM entity with particles outside the walls."""
    o = scene.mpm_options
    lower = np.array([round(v * o.grid_density) for v in o.lower_bound])
    upper = np.array([round(v * o.grid_density) for v in o.upper_bound])
    lo, hi = (lower + WALL) / o.grid_density, (upper - WALL) / o.grid_density
    for e in scene.mpm_entities:
        bad = ~np.all((e.sampled_pos > lo) & (e.sampled_pos < hi), axis=1)
        if bad.any():
            raise InvalidInputError(
                f"{e.name}: {int(bad.sum())} particles (e.g. at {e.sampled_pos[bad][0].round(4).tolist()}) lie outside "
                f"the MPM domain inside its walls, {lo.round(4).tolist()}..{hi.round(4).tolist()} m; move the morph "
                "or widen MPMOptions(lower_bound/upper_bound).")


def check_substep(scene, dt: float) -> float | None:
    """Warn when the MPM substep `dt` (s) exceeds the CFL bound dx / c of the stiffest material (c its pressure-wave
    speed, `material.wave_speed`), naming the options to change and values that work. Returns the bound (s).

    Measured with a default `Elastic` box (E = 3e5 Pa, c = 18.3 m/s, dx = 1/64 m) dropped on the floor: dt c / dx =
    11.7 (dt = 0.01 s) is NaN after 7 steps of 0.01 s, 1.46 after 8, 1.17 after 13; 0.97, 0.78 and 0.58 stay finite
    for 1 s (float32). Larger particle speeds
    (v dt > dx) also break a step; those are not known at build."""
    o, sim = scene.mpm_options, scene.sim_options
    worst = max(scene.mpm_entities, key=lambda e: e.material.wave_speed)
    c = worst.material.wave_speed
    dx = 1.0 / o.grid_density
    bound = dx / c
    if dt > bound:
        safe = 0.5 * bound  # the measured threshold is near dt c / dx = 1; half of it leaves room for particle speed
        substeps, mpm_substeps = math.ceil(sim.dt / safe), math.ceil(sim.substep_dt / safe)
        logger.warning(
            f"MPM substep {dt:.3g} s exceeds the stable bound dx/c = {bound:.3g} s of {worst.name} "
            f"({type(worst.material).__name__}, pressure-wave speed c = {c:.3g} m/s, dx = {dx:.3g} m): the simulation "
            f"will likely diverge (NaN). Use SimOptions(dt={sim.dt:g}, substeps={substeps}) or "
            f"MPMOptions(dt={sim.substep_dt:g} / {mpm_substeps}) (or a softer material, or a coarser grid_density).")
    return bound


def build_solver(scene) -> MPMSolver:
    """The MPM solver of the scene's MPM entities; the rigid solver's geoms (if any) become colliders."""
    sim, o = scene.sim_options, scene.mpm_options
    start = 0
    for e in scene.mpm_entities:
        e.particle_start = start
        start += e.n_particles
    colliders = build_colliders(scene.rigid_solver.mj_model, scene.device, scene.dtype) \
        if scene.rigid_solver is not None else None
    dt = sim.substep_dt / scene.mpm_substeps
    check_substep(scene, dt)
    model, params = build_mpm_model(scene.mpm_entities, o, dt, o.gravity or sim.gravity, colliders, scene.device,
                                    scene.dtype)
    return MPMSolver(model, params, scene.device, scene.dtype, deterministic=get_runtime().deterministic,
                     compile=o.compile)


def substeps(scene, state: MPMState, rigid_before, rigid_after) -> MPMState:
    """`scene.mpm_substeps` MPM substeps after one rigid substep, with the rigid geoms at their new poses moving at
    the velocity of that substep (one-way coupling)."""
    solver = scene.mpm_solver
    frames = None
    if solver.model.colliders is not None:
        frames = collider_frames(solver.model.colliders, (rigid_before.links_pos, rigid_before.links_quat),
                                 (rigid_after.links_pos, rigid_after.links_quat), scene.sim_options.substep_dt)
    for _ in range(scene.mpm_substeps):
        state = solver.step(state, frames)
    return state


def params_arrays(scene) -> dict[str, np.ndarray]:
    """`MPMSolver.params.E/nu`, `(B, n)` each, for checkpoints."""
    p, B = scene.mpm_solver.params, scene.batch_size
    return {f"MPMSolver.params.{n}": getattr(p, n).detach().expand(B, -1).cpu().contiguous().numpy().copy()
            for n in _PARAMS}


def load_arrays(scene, arrays) -> tuple[MPMState, MPMParams]:
    """The MPM state and params held by checkpoint `arrays` (already checked for keys, shapes and dtypes)."""
    state = MPMState.from_arrays(arrays, scene.device)
    params = MPMParams(**{n: torch.from_numpy(np.array(arrays[f"MPMSolver.params.{n}"])).to(scene.device)
                          for n in _PARAMS})
    return state, params

"""The FEM solver as the scene drives it (the protocol of `solvers/base.py`): morphs meshed into tetrahedra, its own
substep count (`FEMOptions.dt`), the stability check of the explicit substep, the rigid geoms as one-way colliders
(`Couplings`), and `E`/`nu` in checkpoints. See docs/fem.md."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ...entities.fem_entity import FEMEntity
from ...errors import InvalidInputError, UnsupportedFeatureError
from ...geometry.volume import TET_DEFAULTS, box_tets, tetrahedralize
from ...materials.FEM import MATERIALS
from ...morphs import Box, Cylinder, Mesh, Sphere
from ...options import FEMOptions, SimOptions
from ..base import Couplings, SceneSolver
from .colliders import build_colliders, collider_frames
from .model import FEMParams, build_fem_model
from .solver import FEMSolver, FEMState

__all__ = ["FEMSceneSolver", "fem_substeps", "mesh_morph"]

_PARAMS = ("E", "nu", "muscle_dir")
_MORPHS = (Box, Sphere, Cylinder, Mesh)
logger = logging.getLogger("genesis_torch")


def fem_substeps(sim: SimOptions, fem: FEMOptions) -> int:
    """FEM substeps per scene substep: 1 when `fem.dt` is None, else `sim.substep_dt / fem.dt` (must be an int)."""
    if fem.dt is None:
        return 1
    k = sim.substep_dt / fem.dt
    if round(k) < 1 or abs(k - round(k)) > 1e-9 * k:
        raise InvalidInputError(f"FEMOptions(dt={fem.dt}) must divide the scene substep SimOptions.dt/substeps = "
                                f"{sim.substep_dt} into a whole number of FEM substeps (got {k:.6g}).")
    return int(round(k))


def tet_options(morph) -> dict:
    """Genesis' tetrahedralisation options of `morph` (`geometry.volume.TET_DEFAULTS` where it has none)."""
    return {k: getattr(morph, k, v) for k, v in TET_DEFAULTS.items()}


def mesh_morph(morph) -> tuple[np.ndarray, np.ndarray]:
    """(verts (nv, 3) float64 m, tets (ne, 4) int64) of a morph: a Box gets the structured mesh of
    `geometry.volume.box_tets` (cells of volume <= 6 maxvolume; without maxvolume one cell across its shortest side),
    any other solid `geometry.volume.tetrahedralize` (tetgen with the morph's options)."""
    cfg = tet_options(morph)
    max_volume = cfg["maxvolume"] if cfg["maxvolume"] > 0 else None
    if isinstance(morph, Box):
        return box_tets(morph, max_volume=max_volume)
    return tetrahedralize(morph, max_volume=max_volume, minratio=cfg["minratio"], mindihedral=cfg["mindihedral"],
                          quality=cfg["quality"], nobisect=cfg["nobisect"], order=cfg["order"],
                          verbose=cfg["verbose"])


class FEMSceneSolver(SceneSolver):
    """`FEMSolver` behind the solver protocol; `scene.fem_solver` is the built `FEMSolver`."""

    key, kind, options_class, state_class = "FEMSolver", "fem", FEMOptions, FEMState
    materials, material_hint = MATERIALS, "gs.materials.FEM.Elastic"

    @classmethod
    def check_options(cls, sim: SimOptions, options: FEMOptions) -> None:
        fem_substeps(sim, options)

    def n_substeps(self, sim: SimOptions) -> int:
        return fem_substeps(sim, self.options)

    def add_entity(self, morph, material, surface, idx: int) -> FEMEntity:
        """Mesh `morph` into tetrahedra now (so `entity.n_vertices` is known before build)."""
        if not isinstance(morph, _MORPHS):
            raise InvalidInputError(f"add_entity: FEM materials need a Box, Sphere, Cylinder or Mesh morph, got "
                                    f"{type(morph).__name__}.")
        if self.options.use_implicit_solver and material.model == "stable_neohookean":
            raise UnsupportedFeatureError(
                "add_entity: FEM.Elastic(model='stable_neohookean') has no positive-definite Hessian here (nor in "
                "Genesis 1.4.5) for the implicit solver; use model='linear_corotated' or 'linear', or "
                "FEMOptions(use_implicit_solver=False).")
        verts, elems = mesh_morph(morph)
        entity = FEMEntity(self.scene, idx, morph, material, f"entity{idx}", verts, elems, solver=self)
        entity.surface = surface
        self.entities.append(entity)
        return entity

    # ----------------------------------------------------------------- build
    def check_substep(self, sim: SimOptions, dt: float) -> float:
        """For the explicit solver, warn when the substep `dt` (s) exceeds the stable bound 2 / omega_max
        (`FEMSolver.stable_dt`), naming the options to change and values that work. Returns the bound (s)."""
        bound = self.solver.stable_dt()
        if not self.options.use_implicit_solver and dt > bound:
            safe = 0.9 * bound
            per_scene = math.ceil(sim.substep_dt / safe)
            logger.warning(
                f"FEM substep {dt:.3g} s exceeds the explicit solver's stable bound {bound:.3g} s (2 / the largest "
                f"element eigenfrequency of the mesh): the simulation may diverge (NaN; measured on a box: stable at "
                f"1.2x the bound, NaN at 1.5x). Use "
                f"FEMOptions(dt={sim.substep_dt:g} / {per_scene}) or SimOptions(substeps={math.ceil(sim.dt / safe)}), "
                "or FEMOptions(use_implicit_solver=True), a softer or denser material, or a coarser mesh.")
        return bound

    def _build(self, n_envs, device, dtype, sim, couplings: Couplings) -> None:
        v0 = e0 = 0
        for e in self.entities:
            e.v_start, e.el_start = v0, e0
            v0, e0 = v0 + e.n_vertices, e0 + e.n_elements
        colliders = None if couplings.collider_model is None else build_colliders(couplings.collider_model, device,
                                                                                  dtype)
        o = self.options
        model, params = build_fem_model(self.entities, o, self.dt, o.gravity or sim.gravity, colliders, device, dtype)
        self.solver = FEMSolver(model, params, device, dtype)
        self.stable_dt = self.check_substep(sim, self.dt)
        self._frames = (None, None)

    def initial_state(self, n_envs: int) -> FEMState:
        return self.solver.initial_state(n_envs)

    # ------------------------------------------------------------------ step
    def substep(self, state: FEMState, couplings: Couplings, dt: float) -> FEMState:
        """One `FEMSolver.step` with the rigid geoms at their poses after the rigid substep (one-way coupling), after
        moving the targets of link-following vertex constraints with their links (`FEMSolver.follow_links`)."""
        cm, bodies = self.solver.model.colliders, couplings.bodies
        state = self.solver.follow_links(state, bodies)
        frames = None
        if cm is not None and bodies is not None:
            if self._frames[0] is not bodies:
                self._frames = (bodies, collider_frames(cm, bodies))
            frames = self._frames[1]
        return self.solver.step(state, frames)

    # ----------------------------------------------------------- checkpoints
    def params_arrays(self) -> dict[str, np.ndarray]:
        """`FEMSolver.params.E/nu` `(B, ne)` and `.muscle_dir` `(B, ne, 3)`."""
        p, B = self.solver.params, self.scene.batch_size
        out = {}
        for n in _PARAMS:
            v = getattr(p, n).detach()
            out[f"{self.key}.params.{n}"] = v.expand(B, *v.shape[1:]).cpu().contiguous().numpy().copy()
        return out

    def load_params(self, arrays) -> FEMParams:
        return FEMParams(**{n: torch.from_numpy(np.array(arrays[f"{self.key}.params.{n}"])).to(self.scene.device)
                            for n in _PARAMS})

    def install_params(self, params: FEMParams) -> None:
        self.solver.params = params

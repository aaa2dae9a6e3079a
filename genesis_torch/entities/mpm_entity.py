"""The MPM entity handle: one morph sampled into particles, one material; a contiguous slice of the MPM state."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..rollout_params import release_consumed, track
from ..state import envs_index
from .base import SolverEntity
from .muscle_inputs import actuation_per_group, fibre_directions, muscle_groups

__all__ = ["MPMEntity", "MPMEntityState"]


@dataclasses.dataclass(frozen=True)
class MPMEntityState:
    """One entity's slice of the MPM state (Genesis' `MPMEntityState` fields), copies: `pos`, `vel` `(B, n, 3)` (m,
    m/s), `C` `(B, n, 3, 3)` (1/s), `F` `(B, n, 3, 3)`, `Jp` `(B, n)` and `active` `(B, n)` bool; no env dim when the
    scene was built with n_envs=0."""

    pos: torch.Tensor
    vel: torch.Tensor
    C: torch.Tensor
    F: torch.Tensor
    Jp: torch.Tensor
    active: torch.Tensor


class MPMEntity(SolverEntity):
    """Particles of one morph (Box, Sphere, Cylinder, Mesh) with an MPM material (Genesis's `MPMEntity` API).

    Getters return `(B, n_particles, ...)` tensors (no env dim when the scene was built with n_envs=0); setters take
    `envs_idx` (default: every env) and leave other envs and other entities bitwise untouched.
    """

    def __init__(self, scene, idx: int, morph, material, name: str, sampled_pos: np.ndarray, *, solver):
        self._scene = scene
        self._scene_solver = solver  # its `SceneSolver` (solvers/mpm/scene_solver.py)
        self.idx, self.morph, self.material, self.name = idx, morph, material, name
        self.sampled_pos = sampled_pos  #: (n_particles, 3) m, the sampled positions at the morph's pose
        self.particle_start = -1  #: first particle of this entity in the MPM state (set at build)

    @property
    def n_particles(self) -> int:
        return len(self.sampled_pos)

    @property
    def particle_end(self) -> int:
        return self.particle_start + self.n_particles

    def fingerprint(self) -> dict:
        return {"morph": self.morph.fingerprint(), "material": self.material.fingerprint(), "n": self.n_particles}

    def __repr__(self) -> str:
        return f"MPMEntity({self.name}, {type(self.material).__name__}, {self.n_particles} particles)"

    # ---------------------------------------------------------------- helpers
    def _envs(self, envs_idx, what: str) -> torch.Tensor:
        if not self._scene.is_built:
            raise SceneStateError(f"{self.name}.{what}() needs a built scene; call scene.build() first.")
        return envs_index(envs_idx, self._scene.batch_size, self._scene.device)

    def _get(self, field: str, envs_idx, what: str) -> torch.Tensor:
        envs = self._envs(envs_idx, what)
        value = getattr(self._state, field)[envs][:, self.particle_start:self.particle_end]
        value = value.contiguous()  # the solver stores fields component-major (solvers/mpm/solver.component_major)
        return value[0] if self._scene.n_envs == 0 and envs_idx is None else value

    def _values(self, value, envs: torch.Tensor, shapes: tuple, what: str, dtype=None) -> torch.Tensor:
        """`value` broadcast to `(len(envs), n, *tail)`; accepted shapes: each of `shapes` or with a leading
        `len(envs)`. Finite values only."""
        dtype = self._scene.dtype if dtype is None else dtype
        try:
            t = torch.as_tensor(value, dtype=dtype, device=self._scene.device)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{self.name}.{what}: expected numbers shaped {shapes[0]}, "
                                    f"got {value!r}.") from None
        full = shapes[-1]
        ok = [s for s in shapes if tuple(t.shape) == s] or ([full] if tuple(t.shape) == (len(envs), *full) else [])
        if not ok:
            allowed = list(shapes) + [(len(envs), *full)]
            raise InvalidInputError(f"{self.name}.{what}: got shape {tuple(t.shape)}; expected one of {allowed} "
                                    f"({self.n_particles} particles, {len(envs)} selected envs).")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InvalidInputError(f"{self.name}.{what}: values must be finite (no NaN or inf).")
        if t.dim() < len(full) + 1:
            t = t.reshape((1,) * (len(full) - t.dim()) + tuple(t.shape))  # (3,) -> (1, 3): same for every particle
            t = t.expand(full)
        return t.expand(len(envs), *full)

    def _set(self, field: str, envs: torch.Tensor, values: torch.Tensor) -> None:
        state = self._state
        old = getattr(state, field)
        cols = torch.arange(self.particle_start, self.particle_end, device=old.device)
        new = old.index_put((envs[:, None], cols[None, :]), values.to(old.dtype))
        self._set_state(state.replace(**{field: new}))

    # ---------------------------------------------------------------- getters
    def get_particles_pos(self, envs_idx=None) -> torch.Tensor:
        """Particle positions `(B, n_particles, 3)` m."""
        return self._get("pos", envs_idx, "get_particles_pos")

    def get_particles_vel(self, envs_idx=None) -> torch.Tensor:
        """Particle velocities `(B, n_particles, 3)` m/s."""
        return self._get("vel", envs_idx, "get_particles_vel")

    def get_particles_active(self, envs_idx=None) -> torch.Tensor:
        """Active flags `(B, n_particles)` bool."""
        return self._get("active", envs_idx, "get_particles_active")

    def get_state(self, envs_idx=None) -> MPMEntityState:
        """This entity's `pos`, `vel`, `C`, `F`, `Jp` and `active` (Genesis' `MPMEntity.get_state`), equal to the
        slices of `scene.get_state()`."""
        return MPMEntityState(*(self._get(f, envs_idx, "get_state").clone() for f in
                                ("pos", "vel", "C", "F", "Jp", "active")))

    # ---------------------------------------------------------------- setters
    def set_position(self, pos, envs_idx=None) -> None:
        """Particle positions (m): `(3,)` moves the entity rigidly so its particles' mean is `pos`; `(n, 3)` sets
        every particle; `(len(envs), n, 3)` per env. The deformation state (F, C, Jp) is kept."""
        envs = self._envs(envs_idx, "set_position")
        n = self.n_particles
        t = self._values(pos, envs, ((3,), (n, 3)), "set_position")
        if tuple(torch.as_tensor(pos).shape) == (3,):
            cur = self._state.pos[envs][:, self.particle_start:self.particle_end]
            t = cur - cur.mean(1, keepdim=True) + t
        self._check_domain(t)
        self._set("pos", envs, t)

    def set_velocity(self, vel, envs_idx=None) -> None:
        """Particle velocities (m/s): `(3,)` for every particle, `(n, 3)`, or `(len(envs), n, 3)`."""
        envs = self._envs(envs_idx, "set_velocity")
        self._set("vel", envs, self._values(vel, envs, ((3,), (self.n_particles, 3)), "set_velocity"))

    def set_active(self, active, envs_idx=None) -> None:
        """Active flags: a bool for every particle, `(n,)`, or `(len(envs), n)`. Inactive particles are frozen and
        invisible to the grid."""
        envs = self._envs(envs_idx, "set_active")
        if isinstance(active, torch.Tensor) and active.dtype != torch.bool or \
                not isinstance(active, torch.Tensor) and np.asarray(active).dtype != np.bool_:
            raise InvalidInputError(f"{self.name}.set_active: expected bools (True/False), got {active!r}.")
        t = self._values(active, envs, ((), (self.n_particles,)), "set_active", dtype=torch.bool)
        self._set("active", envs, t)

    def set_material_params(self, E=None, nu=None, envs_idx=None) -> None:
        """Young's modulus `E` (Pa, > 0) and/or Poisson ratio `nu` (in [0, 0.5)) of this entity's particles: a scalar
        (tensor; may require grad) for every selected env, or one value per selected env `(len(envs),)`. These are
        model parameters, not state: `reset()` keeps them; checkpoints save them (`MPMSolver.params.*`)."""
        envs = self._envs(envs_idx, "set_material_params")
        solver = self._solver
        if self.material.mu is not None or self.material.lam is not None:
            raise InvalidInputError(f"{self.name}.set_material_params: the material fixes mu/lam explicitly; create it "
                                    "with E and nu only to vary them.")
        B, upd = self._scene.batch_size, {}
        for name, value in release_consumed(solver.params).items():  # rollout_params.py: not on a freed graph
            setattr(solver.params, name, value)
        for name, value, ok, rule in (("E", E, lambda v: v > 0, "> 0"), ("nu", nu, lambda v: (v >= 0) & (v < 0.5),
                                                                                    "in [0, 0.5)")):
            if value is None:
                continue
            t = self._values(value, envs, ((),), f"set_material_params({name}=...)").reshape(len(envs), 1)
            if not bool(ok(t.detach()).all()):
                raise InvalidInputError(f"{self.name}.set_material_params: {name} must be {rule}, got {value!r}.")
            cur = getattr(solver.params, name)
            cur = cur.expand(B, -1) if cur.shape[0] == 1 else cur
            cols = torch.arange(self.particle_start, self.particle_end, device=cur.device)
            upd[name] = cur.index_put((envs[:, None], cols[None, :]), t.expand(-1, self.n_particles).to(cur.dtype))
        for name, value in upd.items():
            setattr(solver.params, name, value)
        track(solver.params)

    # ---------------------------------------------------------------- muscles
    def _muscle(self, what: str) -> int:
        from ..materials.MPM import Muscle

        if not isinstance(self.material, Muscle):
            raise InvalidInputError(f"{self.name}.{what}: only entities with a gs.materials.MPM.Muscle material have "
                                    f"muscles (this one is {type(self.material).__name__}).")
        return self.material.n_groups

    def set_actuation(self, actu, envs_idx=None) -> None:
        """Muscle activations (Genesis' name; `MPM.Muscle` entities): `()` for every group, `(n_groups,)` per group,
        or `(len(envs), n_groups)` per env and group; each particle takes its group's value (`set_muscle`).
        Dimensionless (the active stress is E a (F m)(F m)^T, solvers/mpm/muscle.py). State (`MPMSolver.actu (B,
        n)`): held over every substep until set again; resets and checkpoints restore it; a tensor that requires grad
        keeps its graph. Per-particle activations are refused (Genesis' `set_actuation` takes groups only)."""
        envs = self._envs(envs_idx, "set_actuation")
        G = self._muscle("set_actuation")
        t = actuation_per_group(self.name, self._tensor(actu, "set_actuation(actu=...)"), len(envs), G,
                                "particle")
        self._set("actu", envs, t[:, self.muscle_group])

    @property
    def muscle_group(self) -> torch.Tensor:
        """Muscle group `(n_particles,)` long of every particle (default 0; `set_muscle`)."""
        g = getattr(self, "_muscle_group", None)
        if g is None:
            g = self._muscle_group = torch.zeros(self.n_particles, dtype=torch.long, device=self._scene.device)
        return g

    @property
    def muscle_direction(self) -> torch.Tensor:
        """Unit fibre directions `(P, n_particles, 3)` (rest frame; default +z, as Genesis; P = 1 or B)."""
        self._muscle("muscle_direction")
        if not self._scene.is_built:
            raise SceneStateError(f"{self.name}.muscle_direction needs a built scene; call scene.build() first.")
        return self._solver.params.muscle_dir[:, self.particle_start:self.particle_end].clone()

    def set_muscle(self, muscle_group=None, muscle_direction=None) -> None:
        """Muscle groups `(n_particles,)` ints in [0, n_groups) and/or unit fibre directions `(n_particles, 3)` or
        `(3,)` for all (rest frame) of the particles (Genesis' names; `MPM.Muscle` entities). Groups take effect at
        the next `set_actuation` (as in Genesis, where they select each particle's column of the actuation); fibre
        directions at once, in every env (model parameters, checkpointed as `MPMSolver.params.muscle_dir`)."""
        if not self._scene.is_built:
            raise SceneStateError(f"{self.name}.set_muscle() needs a built scene; call scene.build() first.")
        G = self._muscle("set_muscle")
        n, group, fibre = self.n_particles, None, None
        if muscle_group is None and muscle_direction is None:
            raise InvalidInputError(f"{self.name}.set_muscle: give muscle_group and/or muscle_direction.")
        if muscle_group is not None:
            group = muscle_groups(self.name, self._tensor(muscle_group, "set_muscle(muscle_group=...)",
                                                                 dtype=None), n, G, "MPM.Muscle")
        if muscle_direction is not None:
            fibre = fibre_directions(self.name, self._tensor(muscle_direction,
                                                                    "set_muscle(muscle_direction=...)"), n)
        if group is not None:
            self._muscle_group = group.to(self._scene.device)
        if fibre is not None:
            p = self._solver.params
            cur = p.muscle_dir.detach().clone()
            cur[:, self.particle_start:self.particle_end] = fibre.detach().to(cur.dtype)
            p.muscle_dir = cur

    def _check_domain(self, pos: torch.Tensor) -> None:
        m = self._solver.model
        lo = (m.lower_cell + 3).to(pos.dtype) * m.dx
        hi = (m.lower_cell + torch.tensor(m.res, device=pos.device) - 1 - 3).to(pos.dtype) * m.dx
        if not bool(((pos > lo) & (pos < hi)).all()):
            raise InvalidInputError(f"{self.name}.set_position: particles would leave the MPM domain inside its walls "
                                    f"({lo.tolist()}..{hi.tolist()} m); keep them inside.")

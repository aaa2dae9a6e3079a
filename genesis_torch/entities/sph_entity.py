"""The SPH entity handle: one morph sampled into liquid particles; a contiguous slice of the SPH state."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..state import envs_index
from .base import SolverEntity

__all__ = ["SPHEntity"]


class SPHEntity(SolverEntity):
    """Liquid particles of one morph (Box, Sphere, Cylinder, Mesh) with an SPH material (Genesis' `SPHEntity` API).

    Getters return `(B, n_particles, ...)` tensors (no env dim when the scene was built with n_envs=0); setters take
    `envs_idx` (default: every env) and leave other envs and other entities bitwise untouched.
    """

    def __init__(self, scene, idx: int, morph, material, name: str, sampled_pos: np.ndarray, *, solver):
        self._scene = scene
        self._scene_solver = solver  # its `SceneSolver` (solvers/sph/scene_solver.py)
        self.idx, self.morph, self.material, self.name = idx, morph, material, name
        self.sampled_pos = sampled_pos  #: (n_particles, 3) m, the sampled positions at the morph's pose
        self.particle_start = -1  #: first particle of this entity in the SPH state (set at build)

    @property
    def n_particles(self) -> int:
        return len(self.sampled_pos)

    @property
    def particle_end(self) -> int:
        return self.particle_start + self.n_particles

    @property
    def particle_size(self) -> float:
        """The particle diameter (m), `SPHOptions.particle_size`."""
        return self._scene_solver.options.particle_size

    def fingerprint(self) -> dict:
        return {"morph": self.morph.fingerprint(), "material": self.material.fingerprint(), "n": self.n_particles}

    def __repr__(self) -> str:
        return f"SPHEntity({self.name}, {type(self.material).__name__}, {self.n_particles} particles)"

    # ---------------------------------------------------------------- helpers
    def _envs(self, envs_idx, what: str) -> torch.Tensor:
        if not self._scene.is_built:
            raise SceneStateError(f"{self.name}.{what}() needs a built scene; call scene.build() first.")
        return envs_index(envs_idx, self._scene.batch_size, self._scene.device)

    def _get(self, field: str, envs_idx, what: str) -> torch.Tensor:
        envs = self._envs(envs_idx, what)
        value = getattr(self._state, field)[envs][:, self.particle_start:self.particle_end]
        return value[0] if self._scene.n_envs == 0 and envs_idx is None else value

    def _values(self, value, envs: torch.Tensor, shapes: tuple, what: str, dtype=None) -> torch.Tensor:
        """`value` broadcast to `(len(envs), *shapes[-1])`; accepted: each of `shapes`, or `shapes[-1]` with a
        leading `len(envs)`. Finite values only."""
        dtype = self._scene.dtype if dtype is None else dtype
        try:
            t = torch.as_tensor(value, dtype=dtype, device=self._scene.device)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{self.name}.{what}: expected numbers shaped {shapes[-1]}, got "
                                    f"{value!r}.") from None
        full = shapes[-1]
        if tuple(t.shape) not in shapes and tuple(t.shape) != (len(envs), *full):
            raise InvalidInputError(f"{self.name}.{what}: got shape {tuple(t.shape)}; expected one of "
                                    f"{list(shapes) + [(len(envs), *full)]} ({self.n_particles} particles, "
                                    f"{len(envs)} selected envs).")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InvalidInputError(f"{self.name}.{what}: values must be finite (no NaN or inf).")
        if t.dim() < len(full) + 1:
            t = t.reshape((1,) * (len(full) - t.dim()) + tuple(t.shape)).expand(full)
        return t.expand(len(envs), *full)

    def _set(self, envs: torch.Tensor, **fields) -> None:
        state = self._state
        cols = torch.arange(self.particle_start, self.particle_end, device=state.pos.device)
        new = {}
        for name, values in fields.items():
            old = getattr(state, name)
            new[name] = old.index_put((envs[:, None], cols[None, :]), values.to(old.dtype))
        self._set_state(state.replace(**new))

    # ---------------------------------------------------------------- getters
    def get_particles_pos(self, envs_idx=None) -> torch.Tensor:
        """Particle positions `(B, n_particles, 3)` m."""
        return self._get("pos", envs_idx, "get_particles_pos")

    def get_position(self, envs_idx=None) -> torch.Tensor:
        """Genesis' alias of `get_particles_pos`."""
        return self._get("pos", envs_idx, "get_position")

    def get_particles_vel(self, envs_idx=None) -> torch.Tensor:
        """Particle velocities `(B, n_particles, 3)` m/s."""
        return self._get("vel", envs_idx, "get_particles_vel")

    def get_particles_active(self, envs_idx=None) -> torch.Tensor:
        """Active flags `(B, n_particles)` bool."""
        return self._get("active", envs_idx, "get_particles_active")

    def get_particles_density(self, envs_idx=None) -> torch.Tensor:
        """Densities `(B, n_particles)` kg/m^3 at the start of the last substep (at build: of the sampled
        positions, walls only)."""
        return self._get("rho", envs_idx, "get_particles_density")

    def get_particles_pressure(self, envs_idx=None) -> torch.Tensor:
        """Pressures `(B, n_particles)` Pa of the last substep (WCSPH: Tait; DFSPH: the density solve's)."""
        return self._get("p", envs_idx, "get_particles_pressure")

    def get_mass(self, envs_idx=None) -> torch.Tensor:
        """Mass `(B,)` kg of the active particles (a scalar tensor with n_envs=0)."""
        envs = self._envs(envs_idx, "get_mass")
        m = self._solver.model.mass[self.particle_start:self.particle_end]
        act = self._state.active[envs][:, self.particle_start:self.particle_end]
        out = (act.to(m.dtype) * m).sum(1)
        return out[0] if self._scene.n_envs == 0 and envs_idx is None else out

    # ---------------------------------------------------------------- setters
    def set_position(self, value, envs_idx=None) -> None:
        """Particle positions (m): `(3,)` places the entity's sampled shape with its centre at `pos`; `(n, 3)` sets
        every particle; `(len(envs), n, 3)` per env. As Genesis, the moved particles' velocities become 0. Raises if
        a particle would leave the SPH domain."""
        envs = self._envs(envs_idx, "set_position")
        n = self.n_particles
        t = self._values(value, envs, ((3,), (n, 3)), "set_position")
        if tuple(torch.as_tensor(value).shape) == (3,):
            shape = torch.as_tensor(self.sampled_pos - self.sampled_pos.mean(0), dtype=t.dtype, device=t.device)
            t = shape[None] + t
        m = self._solver.model
        if not bool(((t >= m.lower) & (t <= m.upper)).all()):
            raise InvalidInputError(f"{self.name}.set_position: particles would leave the SPH domain "
                                    f"{m.lower.tolist()}..{m.upper.tolist()} m; keep them inside.")
        self._set(envs, pos=t, vel=torch.zeros_like(t))

    def set_velocity(self, vels, envs_idx=None) -> None:
        """Particle velocities (m/s): `(3,)` for every particle, `(n, 3)`, or `(len(envs), n, 3)`."""
        envs = self._envs(envs_idx, "set_velocity")
        self._set(envs, vel=self._values(vels, envs, ((3,), (self.n_particles, 3)), "set_velocity"))

    def set_active(self, actives, envs_idx=None) -> None:
        """Active flags: a bool for every particle, `(n,)`, or `(len(envs), n)`. Inactive particles are frozen and
        invisible to the others."""
        envs = self._envs(envs_idx, "set_active")
        if isinstance(actives, torch.Tensor) and actives.dtype != torch.bool or \
                not isinstance(actives, torch.Tensor) and np.asarray(actives).dtype != np.bool_:
            raise InvalidInputError(f"{self.name}.set_active: expected bools (True/False), got {actives!r}.")
        self._set(envs, active=self._values(actives, envs, ((), (self.n_particles,)), "set_active",
                                            dtype=torch.bool))

    # ------------------------------------------------------ particle subsets
    def _subset(self, particles_idx_local, what: str) -> torch.Tensor:
        """Local particle indices `(k,)` long (None: every particle), validated."""
        if particles_idx_local is None:
            return torch.arange(self.n_particles, device=self._scene.device)
        try:
            idx = torch.as_tensor(particles_idx_local, device=self._scene.device)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{self.name}.{what}: particles_idx_local must be ints, got "
                                    f"{particles_idx_local!r}.") from None
        idx = idx.reshape(-1)
        if idx.dtype == torch.bool or idx.is_floating_point() or \
                (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.n_particles)):
            raise InvalidInputError(f"{self.name}.{what}: particles_idx_local must be ints in [0, {self.n_particles}), "
                                    f"got {particles_idx_local!r}.")
        return idx.long()

    def _set_subset(self, envs, idx, **fields) -> None:
        state = self._state
        cols = idx + self.particle_start
        new = {name: getattr(state, name).index_put((envs[:, None], cols[None, :]), v.to(getattr(state, name).dtype))
               for name, v in fields.items()}
        self._set_state(state.replace(**new))

    def set_particles_pos(self, poss, particles_idx_local=None, envs_idx=None) -> None:
        """Positions (m) of some particles: `(3,)`, `(k, 3)` or `(len(envs), k, 3)` for the k particles
        `particles_idx_local` (None: all); their velocities become 0 (Genesis' kernel). Raises outside the domain."""
        envs, idx = self._envs(envs_idx, "set_particles_pos"), self._subset(particles_idx_local, "set_particles_pos")
        t = self._values(poss, envs, ((3,), (len(idx), 3)), "set_particles_pos")
        m = self._solver.model
        if not bool(((t >= m.lower) & (t <= m.upper)).all()):
            raise InvalidInputError(f"{self.name}.set_particles_pos: particles would leave the SPH domain "
                                    f"{m.lower.tolist()}..{m.upper.tolist()} m; keep them inside.")
        self._set_subset(envs, idx, pos=t, vel=torch.zeros_like(t))

    def set_particles_vel(self, vels, particles_idx_local=None, envs_idx=None) -> None:
        """Velocities (m/s) of some particles: `(3,)`, `(k, 3)` or `(len(envs), k, 3)`."""
        envs, idx = self._envs(envs_idx, "set_particles_vel"), self._subset(particles_idx_local, "set_particles_vel")
        self._set_subset(envs, idx, vel=self._values(vels, envs, ((3,), (len(idx), 3)), "set_particles_vel"))

    def set_particles_active(self, actives, particles_idx_local=None, envs_idx=None) -> None:
        """Active flags of some particles: a bool, `(k,)` or `(len(envs), k)`."""
        envs = self._envs(envs_idx, "set_particles_active")
        idx = self._subset(particles_idx_local, "set_particles_active")
        if isinstance(actives, torch.Tensor) and actives.dtype != torch.bool or \
                not isinstance(actives, torch.Tensor) and np.asarray(actives).dtype != np.bool_:
            raise InvalidInputError(f"{self.name}.set_particles_active: expected bools, got {actives!r}.")
        self._set_subset(envs, idx, active=self._values(actives, envs, ((), (len(idx),)), "set_particles_active",
                                                        dtype=torch.bool))

    def activate(self, envs_idx=None) -> None:
        """Every particle active (Genesis' `activate`)."""
        self.set_active(True, envs_idx)

    def deactivate(self, envs_idx=None) -> None:
        """Every particle inactive (Genesis' `deactivate`)."""
        self.set_active(False, envs_idx)

"""The PBD entity handle: a cloth, elastic solid, liquid or free-particle set; a contiguous slice of the PBD state."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..state import envs_index
from .base import SolverEntity

__all__ = ["PBDEntity"]


class PBDEntity(SolverEntity):
    """One PBD entity (Genesis' `PBD2DEntity` / `PBD3DEntity` / `PBDParticleEntity` / `PBDFreeParticleEntity` API).

    Getters return `(B, n_particles, 3)` tensors (no env dim when the scene was built with n_envs=0); setters take
    `envs_idx` (default: every env) and `particles_idx_local` (default: every particle of the entity), leave other
    envs, particles and entities bitwise untouched, and change nothing when they raise.
    """

    def __init__(self, scene, idx: int, morph, material, name: str, parts, *, solver, faces=None):
        self._scene = scene
        self._scene_solver = solver  # its `SceneSolver` (solvers/pbd/scene_solver.py)
        self.idx, self.morph, self.material, self.name = idx, morph, material, name
        self.parts = parts  #: solvers/pbd/model.Parts: rest particles and constraints (entity-local indices)
        self._faces = faces  #: (n_faces, 3) surface triangles (cloth, elastic), else None
        self.surface = None
        self.particle_start = -1  #: first particle of this entity in the PBD state (set at build)
        self._offsets = parts.pos - np.asarray(morph.pos, np.float64)  # rest positions relative to the morph's pos

    # ---------------------------------------------------------------- sizes
    @property
    def n_particles(self) -> int:
        return len(self.parts.pos)

    @property
    def particle_end(self) -> int:
        return self.particle_start + self.n_particles

    @property
    def n_vertices(self) -> int:
        """Mesh vertices (cloth, elastic): one particle each; 0 for liquids and free particles."""
        return self.n_particles if self._faces is not None else 0

    @property
    def n_faces(self) -> int:
        return 0 if self._faces is None else len(self._faces)

    @property
    def faces(self) -> np.ndarray | None:
        """Surface triangles `(n_faces, 3)` int64 (entity-local particle indices), or None."""
        return None if self._faces is None else self._faces.copy()

    @property
    def n_edges(self) -> int:
        c = self.parts.constraints.get("stretch")
        return 0 if c is None else len(c[0])

    @property
    def n_elems(self) -> int:
        """Tetrahedra (elastic)."""
        c = self.parts.constraints.get("volume")
        return 0 if c is None else len(c[0])

    @property
    def mass(self) -> float:
        """Total mass (kg)."""
        return float(self.parts.mass.sum())

    def fingerprint(self) -> dict:
        return {"morph": self.morph.fingerprint(), "material": self.material.fingerprint(), "n": self.n_particles,
                "constraints": {k: len(v[0]) for k, v in self.parts.constraints.items()}}

    def __repr__(self) -> str:
        return f"PBDEntity({self.name}, PBD.{type(self.material).__name__}, {self.n_particles} particles)"

    # ---------------------------------------------------------------- helpers
    def _envs(self, envs_idx, what: str) -> torch.Tensor:
        if not self._scene.is_built:
            raise SceneStateError(f"{self.name}.{what}() needs a built scene; call scene.build() first.")
        return envs_index(envs_idx, self._scene.batch_size, self._scene.device)

    def _particles(self, idx, what: str) -> torch.Tensor:
        """Entity-local particle indices (None: all) as a long tensor, checked in range."""
        if idx is None:
            return torch.arange(self.n_particles, device=self._scene.device)
        try:
            t = torch.as_tensor(np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx))
        except (TypeError, ValueError):
            raise InvalidInputError(f"{self.name}.{what}: particles_idx_local must be ints, got {idx!r}.") from None
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex() or t.dim() > 1:
            raise InvalidInputError(f"{self.name}.{what}: particles_idx_local must be an int or a 1-D sequence of "
                                    f"ints, got {idx!r}.")
        t = t.reshape(-1).long()
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.n_particles):
            raise InvalidInputError(f"{self.name}.{what}: particle indices must lie in [0, {self.n_particles}), got "
                                    f"{t.tolist()[:10]}.")
        return t.to(self._scene.device)

    def _get(self, field: str, envs_idx, what: str) -> torch.Tensor:
        envs = self._envs(envs_idx, what)
        value = getattr(self._state, field)[envs][:, self.particle_start:self.particle_end]
        return value[0] if self._scene.n_envs == 0 and envs_idx is None else value

    def _values(self, value, n_envs: int, n: int, what: str, tail=(3,), dtype=None) -> torch.Tensor:
        """`value` as `(n_envs, n, *tail)`: accepted `tail`, `(n, *tail)` or `(n_envs, n, *tail)`; finite."""
        dtype = self._scene.dtype if dtype is None else dtype
        try:
            t = torch.as_tensor(value, dtype=dtype, device=self._scene.device)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInputError(f"{self.name}.{what}: expected numbers shaped {tail}, (n, *{tail}) or "
                                    f"(n_envs, n, *{tail}); got {value!r}.") from None
        shapes = [tuple(tail), (n, *tail), (n_envs, n, *tail)]
        if tuple(t.shape) not in shapes:
            raise InvalidInputError(f"{self.name}.{what}: got shape {tuple(t.shape)}; expected one of {shapes} ({n} "
                                    f"selected particles, {n_envs} selected envs).")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InvalidInputError(f"{self.name}.{what}: values must be finite (no NaN or inf).")
        while t.dim() < len(tail) + 2:
            t = t.unsqueeze(0)
        return t.expand(n_envs, n, *tail)

    def _put(self, envs: torch.Tensor, local: torch.Tensor, **fields) -> None:
        state = self._state
        cols = (local + self.particle_start)[None, :]
        new = {k: getattr(state, k).index_put((envs[:, None], cols), v.to(getattr(state, k).dtype))
               for k, v in fields.items()}
        self._set_state(state.replace(**new))

    # ---------------------------------------------------------------- getters
    def get_particles_pos(self, envs_idx=None) -> torch.Tensor:
        """Particle positions `(B, n_particles, 3)` m."""
        return self._get("pos", envs_idx, "get_particles_pos")

    def get_particles_vel(self, envs_idx=None) -> torch.Tensor:
        """Particle velocities `(B, n_particles, 3)` m/s."""
        return self._get("vel", envs_idx, "get_particles_vel")

    def get_particles_free(self, envs_idx=None) -> torch.Tensor:
        """`(B, n_particles)` bool: False where a particle is fixed (`fix_particles`)."""
        return self._get("free", envs_idx, "get_particles_free")

    def find_closest_particle(self, pos, envs_idx=None):
        """Entity-local index of the particle closest to `pos` (m): `(3,)` for every selected env or `(M, 3)` one per
        env. Returns an int when the scene has no env dim and `envs_idx` is None, else a `(M,)` long tensor."""
        envs = self._envs(envs_idx, "find_closest_particle")
        p = self._values(pos, len(envs), 1, "find_closest_particle", tail=(3,))  # (M, 1, 3)
        cur = self._state.pos[envs][:, self.particle_start:self.particle_end]
        idx = (cur - p).norm(dim=-1).argmin(-1)
        return int(idx[0]) if self._scene.n_envs == 0 and envs_idx is None else idx

    # ---------------------------------------------------------------- setters
    def set_position(self, value, envs_idx=None) -> None:
        """Particle positions (m): `(3,)` places the entity's rest shape with the morph's origin at `value` (Genesis'
        meaning); `(n_particles, 3)` or `(len(envs), n_particles, 3)` set every particle."""
        envs, pos = self._envs(envs_idx, "set_position"), value
        try:
            whole = np.shape(pos.detach().cpu() if isinstance(pos, torch.Tensor) else pos) == (3,)
        except ValueError:  # ragged input: _values names the expected shapes
            whole = False
        if whole:
            t = self._values(pos, len(envs), 1, "set_position")
            t = t + torch.as_tensor(self._offsets, dtype=t.dtype, device=t.device)
        else:
            t = self._values(pos, len(envs), self.n_particles, "set_position")
        self._put(envs, self._particles(None, "set_position"), pos=t)

    def set_velocity(self, vels, envs_idx=None) -> None:
        """Particle velocities (m/s): `(3,)` for every particle, `(n_particles, 3)`, or `(len(envs), n, 3)`."""
        envs = self._envs(envs_idx, "set_velocity")
        self._put(envs, self._particles(None, "set_velocity"),
                  vel=self._values(vels, len(envs), self.n_particles, "set_velocity"))

    def set_particles_pos(self, poss, particles_idx_local=None, envs_idx=None) -> None:
        """Positions (m) of some particles: `(3,)`, `(N, 3)` or `(len(envs), N, 3)` for the N selected."""
        envs, local = self._envs(envs_idx, "set_particles_pos"), self._particles(particles_idx_local,
                                                                                  "set_particles_pos")
        self._put(envs, local, pos=self._values(poss, len(envs), len(local), "set_particles_pos"))

    def set_particles_vel(self, vels, particles_idx_local=None, envs_idx=None) -> None:
        """Velocities (m/s) of some particles: `(3,)`, `(N, 3)` or `(len(envs), N, 3)` for the N selected."""
        envs, local = self._envs(envs_idx, "set_particles_vel"), self._particles(particles_idx_local,
                                                                                  "set_particles_vel")
        self._put(envs, local, vel=self._values(vels, len(envs), len(local), "set_particles_vel"))

    def fix_particles(self, particles_idx_local=None, envs_idx=None, zero_velocity=True) -> None:
        """Fix particles (Genesis' name): they leave the constraint solve (inverse mass 0), feel no gravity and move
        only by their own velocity, zeroed when `zero_velocity` (then they stay where they are). State, not model:
        resets and checkpoints carry it (`PBDSolver.free`)."""
        if not isinstance(zero_velocity, bool):
            raise InvalidInputError(f"{self.name}.fix_particles(zero_velocity={zero_velocity!r}): expected a bool.")
        envs, local = self._envs(envs_idx, "fix_particles"), self._particles(particles_idx_local, "fix_particles")
        fields = {"free": torch.zeros(len(envs), len(local), dtype=torch.bool, device=self._scene.device)}
        if zero_velocity:
            fields["vel"] = torch.zeros(len(envs), len(local), 3, dtype=self._scene.dtype, device=self._scene.device)
        self._put(envs, local, **fields)

    def release_particle(self, particles_idx_local=None, envs_idx=None) -> None:
        """Make fixed particles free again (Genesis' name), and unbind them from a link (`fix_particles_to_link`)."""
        envs, local = self._envs(envs_idx, "release_particle"), self._particles(particles_idx_local,
                                                                                 "release_particle")
        M, N, dev = len(envs), len(local), self._scene.device
        self._put(envs, local, free=torch.ones(M, N, dtype=torch.bool, device=dev),
                  link=torch.full((M, N), -1, dtype=torch.long, device=dev),
                  link_pos=torch.zeros(M, N, 3, dtype=self._scene.dtype, device=dev))

    def set_particles_active(self, actives, particles_idx_local=None, envs_idx=None) -> None:
        """Take particles out of the simulation (False) or back in (True), Genesis' name: an inactive particle keeps
        its position and velocity, feels no gravity, leaves every constraint it is part of (the constraint does not
        act on its other particles either), is no liquid neighbour and collides with nothing. `actives`: a bool,
        `(N,)` or `(len(envs), N)` bools for the N selected particles. State (`PBDSolver.active`)."""
        envs, local = self._envs(envs_idx, "set_particles_active"), self._particles(particles_idx_local,
                                                                                     "set_particles_active")
        a = actives.detach().cpu() if isinstance(actives, torch.Tensor) else actives
        if not (isinstance(a, (bool, np.bool_)) or np.asarray(a, dtype=object).size == 0
                or np.asarray(a).dtype == np.bool_):
            raise InvalidInputError(f"{self.name}.set_particles_active: actives must be bools (True: simulated), got "
                                    f"{actives!r}; pass e.g. [True, False] or a torch.bool tensor.")
        self._put(envs, local, active=self._values(np.asarray(a, dtype=np.bool_), len(envs), len(local),
                                                   "set_particles_active", tail=(), dtype=torch.bool))

    def get_particles_active(self, envs_idx=None) -> torch.Tensor:
        """`(B, n_particles)` bool: False where a particle is out of the simulation (`set_particles_active`)."""
        return self._get("active", envs_idx, "get_particles_active")

    def get_particles_link(self, envs_idx=None) -> torch.Tensor:
        """`(B, n_particles)` long: the scene-global rigid link a particle follows (`fix_particles_to_link`), -1 for
        none."""
        return self._get("link", envs_idx, "get_particles_link")

    def fix_particles_to_link(self, link_idx, particles_idx_local=None, envs_idx=None) -> None:
        """Bind particles to a rigid link (Genesis' name): each keeps its present position in the link's frame and
        from then on follows the link's pose exactly (one-way: the link does not feel the particles), as a fixed
        particle (`free` False) for the constraints and contacts. `link_idx`: a scene-global `RigidLink.idx`.
        `release_particle` unbinds. State (`PBDSolver.link`, `PBDSolver.link_pos`)."""
        rigid = getattr(self._scene, "rigid_solver", None) if self._scene.is_built else None
        envs, local = self._envs(envs_idx, "fix_particles_to_link"), self._particles(particles_idx_local,
                                                                                      "fix_particles_to_link")
        n_links = 0 if rigid is None else int(rigid.model.nbody) - 1
        if n_links == 0:
            raise InvalidInputError(f"{self.name}.fix_particles_to_link: the scene has no rigid links to fix particles "
                                    "to; add a rigid entity (e.g. gs.morphs.Box) before scene.build().")
        ok = isinstance(link_idx, (int, np.integer)) and not isinstance(link_idx, bool)
        if isinstance(link_idx, torch.Tensor) and link_idx.numel() == 1 and not link_idx.is_floating_point() \
                and link_idx.dtype != torch.bool:
            link_idx, ok = int(link_idx), True
        if not ok or not 0 <= int(link_idx) < n_links:
            raise InvalidInputError(f"{self.name}.fix_particles_to_link: link_idx must be a scene-global link index in "
                                    f"[0, {n_links}) (a RigidLink.idx, e.g. entity.base_link.idx), got {link_idx!r}.")
        link_idx = int(link_idx)
        from ..math.quat import quat_to_mat

        dtype, dev = self._scene.dtype, self._scene.device
        p = rigid.get_links_pos(links_idx=[link_idx], envs_idx=envs).reshape(len(envs), 3).to(dtype)
        R = quat_to_mat(rigid.get_links_quat(links_idx=[link_idx], envs_idx=envs).reshape(len(envs), 4).to(dtype))
        x = self._state.pos[envs][:, local + self.particle_start]  # (M, N, 3)
        local_pos = (x - p[:, None]) @ R  # R^T (x - p), row-wise
        M, N = len(envs), len(local)
        self._put(envs, local, free=torch.zeros(M, N, dtype=torch.bool, device=dev),
                  link=torch.full((M, N), link_idx, dtype=torch.long, device=dev), link_pos=local_pos)

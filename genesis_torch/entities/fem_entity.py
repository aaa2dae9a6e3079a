"""The FEM entity handle: one morph meshed into tetrahedra, one material; a contiguous slice of the FEM state's
vertices and elements (Genesis 1.4.5's `FEMEntity` API)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import InvalidInputError, SceneStateError
from ..rollout_params import release_consumed, track
from ..state import envs_index
from .base import SolverEntity
from .muscle_inputs import actuation_per_group, fibre_directions, muscle_groups

__all__ = ["FEMEntity", "FEMEntityState"]

_FREE, _HARD, _SOFT = 0, 1, 2  # FEMState.vc_mode values (solvers/fem/solver.py)


@dataclasses.dataclass(frozen=True)
class FEMEntityState:
    """One entity's slice of the FEM state (Genesis' `FEMEntityState` fields): `pos`, `vel` `(B, nv, 3)` (m, m/s) and
    `active` `(B, ne)` bool; no env dim when the scene was built with n_envs=0."""

    pos: torch.Tensor
    vel: torch.Tensor
    active: torch.Tensor


class FEMEntity(SolverEntity):
    """Tetrahedra of one morph (Box, Sphere, Cylinder, Mesh) with an FEM material.

    Attributes: `init_positions (nv, 3)` rest vertices (m, world), `elems (ne, 4)` vertex indices of the tetrahedra
    (local), `n_vertices`, `n_elements`, `v_start` / `el_start` (its first vertex / element in the solver, set at
    build). Setters take `envs_idx` (default: every env; an extension of Genesis' API) and leave other envs and
    other entities bitwise untouched; a failed call changes nothing.
    """

    def __init__(self, scene, idx: int, morph, material, name: str, verts: np.ndarray, elems: np.ndarray, *,
                 solver):
        self._scene, self._scene_solver = scene, solver
        self.idx, self.morph, self.material, self.name = idx, morph, material, name
        self.rest_verts = np.asarray(verts, np.float64)  #: (nv, 3) m
        self.rest_elems = np.asarray(elems, np.int64)  #: (ne, 4), positively oriented
        self.v_start = -1
        self.el_start = -1
        self.surface = None

    # ------------------------------------------------------------------ sizes
    @property
    def n_vertices(self) -> int:
        return len(self.rest_verts)

    @property
    def n_elements(self) -> int:
        return len(self.rest_elems)

    @property
    def init_positions(self) -> torch.Tensor:
        """Rest vertex positions `(nv, 3)` m, world frame (Genesis' name)."""
        return torch.as_tensor(self.rest_verts, dtype=self._scene.dtype)

    @property
    def elems(self) -> np.ndarray:
        """Vertex indices `(ne, 4)` of the tetrahedra, local to the entity."""
        return self.rest_elems

    def get_el2v(self) -> torch.Tensor:
        """Vertex indices `(ne, 4)` of the tetrahedra in the solver's numbering (Genesis' name)."""
        self._built("get_el2v")
        return torch.as_tensor(self.rest_elems + self.v_start, device=self._scene.device)

    def fingerprint(self) -> dict:
        from ..geometry.volume import TET_DEFAULTS

        return {"morph": self.morph.fingerprint(), "material": self.material.fingerprint(),
                "tet_options": {k: getattr(self.morph, k, v) for k, v in TET_DEFAULTS.items()},
                "n_vertices": self.n_vertices, "n_elements": self.n_elements}

    def __repr__(self) -> str:
        return f"FEMEntity({self.name}, {self.material.model}, {self.n_vertices} vertices, {self.n_elements} tets)"

    # ---------------------------------------------------------------- helpers
    def _built(self, what: str) -> None:
        if not self._scene.is_built:
            raise SceneStateError(f"{self.name}.{what}() needs a built scene; call scene.build() first.")

    def _envs(self, envs_idx, what: str) -> torch.Tensor:
        self._built(what)
        return envs_index(envs_idx, self._scene.batch_size, self._scene.device)

    @property
    def _vslice(self) -> slice:
        return slice(self.v_start, self.v_start + self.n_vertices)

    def _put(self, **fields) -> None:
        """Replace fields (each `(field, envs, cols, values)`) of the solver state, out of place."""
        state, new = self._state, {}
        for name, (envs, cols, values) in fields.items():
            old = getattr(state, name)
            new[name] = old.index_put((envs[:, None], cols[None, :] if cols.dim() == 1 else cols),
                                      values.to(old.dtype))
        self._set_state(state.replace(**new))

    def _cols(self) -> torch.Tensor:
        return torch.arange(self.v_start, self.v_start + self.n_vertices, device=self._scene.device)

    def _unbatch(self, t: torch.Tensor, envs_idx) -> torch.Tensor:
        return t[0] if self._scene.n_envs == 0 and envs_idx is None else t

    # ---------------------------------------------------------------- getters
    def get_state(self, envs_idx=None) -> FEMEntityState:
        """This entity's `pos`, `vel` and `active` (copies), equal to the slices of `scene.get_state()`."""
        envs = self._envs(envs_idx, "get_state")
        s = self._state
        es = slice(self.el_start, self.el_start + self.n_elements)
        return FEMEntityState(*(self._unbatch(t, envs_idx) for t in (
            s.pos[envs][:, self._vslice].clone(), s.vel[envs][:, self._vslice].clone(), s.active[envs][:, es].clone())))

    def get_pos(self, envs_idx=None) -> torch.Tensor:
        """Vertex positions `(B, nv, 3)` m."""
        return self.get_state(envs_idx).pos

    def get_vel(self, envs_idx=None) -> torch.Tensor:
        """Vertex velocities `(B, nv, 3)` m/s."""
        return self.get_state(envs_idx).vel

    # ---------------------------------------------------------------- setters
    def _per_vertex(self, value, envs, what: str, com_shift: bool) -> torch.Tensor:
        """`value` as `(len(envs), nv, 3)`: accepted (3,), (nv, 3), (len(envs), 3), (len(envs), nv, 3). With
        `com_shift`, the (3,) / (len(envs), 3) forms place the rest shape with its vertex mean there (Genesis)."""
        t, nv, n = self._tensor(value, what), self.n_vertices, len(envs)
        rest = torch.as_tensor(self.rest_verts, dtype=t.dtype, device=t.device)
        offset = rest - rest.mean(0) if com_shift else torch.zeros_like(rest)
        if tuple(t.shape) == (3,):
            return (offset + t).expand(n, nv, 3)
        if tuple(t.shape) == (nv, 3):
            return t.expand(n, nv, 3)
        if tuple(t.shape) == (n, 3):
            return offset[None] + t[:, None]
        if tuple(t.shape) == (n, nv, 3):
            return t
        raise InvalidInputError(f"{self.name}.{what}: got shape {tuple(t.shape)}; expected (3,), ({nv}, 3), ({n}, 3) "
                                f"or ({n}, {nv}, 3) ({nv} vertices, {n} selected envs).")

    def set_position(self, pos, envs_idx=None) -> None:
        """Vertex positions (m): `(3,)` places the rest shape with its vertex mean at `pos` (as Genesis: the
        deformation is reset), `(nv, 3)` sets every vertex, `(len(envs), 3)` / `(len(envs), nv, 3)` per env."""
        envs = self._envs(envs_idx, "set_position")
        self._put(pos=(envs, self._cols(), self._per_vertex(pos, envs, "set_position", True)))

    def set_velocity(self, vel, envs_idx=None) -> None:
        """Vertex velocities (m/s): `(3,)` for every vertex, `(nv, 3)`, `(len(envs), 3)` or `(len(envs), nv, 3)`."""
        envs = self._envs(envs_idx, "set_velocity")
        self._put(vel=(envs, self._cols(), self._per_vertex(vel, envs, "set_velocity", False)))

    def _set_active(self, value: bool, envs_idx) -> None:
        envs = self._envs(envs_idx, "activate" if value else "deactivate")
        cols = torch.arange(self.el_start, self.el_start + self.n_elements, device=self._scene.device)
        self._put(active=(envs, cols, torch.full((len(envs), self.n_elements), value, device=self._scene.device)))

    def activate(self, envs_idx=None) -> None:
        """Make the entity's elements exert forces again (Genesis' name)."""
        self._set_active(True, envs_idx)

    def deactivate(self, envs_idx=None) -> None:
        """Stop the entity's elements from exerting forces (its vertices still move ballistically; Genesis' name)."""
        self._set_active(False, envs_idx)

    def set_material_params(self, E=None, nu=None, envs_idx=None) -> None:
        """Young's modulus `E` (Pa, > 0) and/or Poisson's ratio `nu` (in (-1, 0.5)) of this entity's elements: a scalar
        (a tensor may require grad) for every selected env, or one value per selected env `(len(envs),)`. Model
        parameters, not state: `reset()` keeps them, checkpoints save them (`FEMSolver.params.*`)."""
        envs = self._envs(envs_idx, "set_material_params")
        solver, B, upd = self._solver, self._scene.batch_size, {}
        for name, value in release_consumed(solver.params).items():  # rollout_params.py: not on a freed graph
            setattr(solver.params, name, value)
        lo = 0.0 if self.material.model == "stable_neohookean" else -1.0
        for name, value, ok, rule in (("E", E, lambda v: v > 0, "> 0"),
                                      ("nu", nu, lambda v: (v > lo) & (v < 0.5), f"in ({lo:g}, 0.5)")):
            if value is None:
                continue
            t = self._tensor(value, f"set_material_params({name}=...)")
            if t.dim() == 0:
                t = t.expand(len(envs))
            if tuple(t.shape) != (len(envs),):
                raise InvalidInputError(f"{self.name}.set_material_params({name}=...): expected a scalar or "
                                        f"({len(envs)},) values, got shape {tuple(t.shape)}.")
            if not bool(ok(t.detach()).all()):
                raise InvalidInputError(f"{self.name}.set_material_params: {name} must be {rule}, got {value!r}.")
            cur = getattr(solver.params, name)
            cur = cur.expand(B, -1) if cur.shape[0] == 1 else cur
            cols = torch.arange(self.el_start, self.el_start + self.n_elements, device=cur.device)
            upd[name] = cur.index_put((envs[:, None], cols[None, :]), t[:, None].expand(-1, self.n_elements)
                                      .to(cur.dtype))
        for name, value in upd.items():
            setattr(solver.params, name, value)
        track(solver.params)

    # ---------------------------------------------------------------- vertex constraints
    def _verts(self, verts_idx_local, envs, what: str) -> torch.Tensor:
        """Local vertex indices as solver columns `(len(envs), n)` long: (n,) for every env or (len(envs), n)."""
        if verts_idx_local is None:
            verts_idx_local = range(self.n_vertices)
        if isinstance(verts_idx_local, (int, np.integer)) and not isinstance(verts_idx_local, bool):
            verts_idx_local = [int(verts_idx_local)]
        try:
            t = torch.as_tensor(np.asarray(verts_idx_local) if not isinstance(verts_idx_local, torch.Tensor)
                                else verts_idx_local, device=self._scene.device)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{self.name}.{what}: verts_idx_local must be ints, got {verts_idx_local!r}.") \
                from None
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.dim() not in (1, 2) or t.numel() == 0:
            raise InvalidInputError(f"{self.name}.{what}: verts_idx_local must be a non-empty list of ints (n,) or "
                                    f"per env ({len(envs)}, n), got {verts_idx_local!r}.")
        if t.dim() == 2 and t.shape[0] != len(envs):
            raise InvalidInputError(f"{self.name}.{what}: verts_idx_local has {t.shape[0]} rows for {len(envs)} envs.")
        if bool(((t < 0) | (t >= self.n_vertices)).any()):
            raise InvalidInputError(f"{self.name}.{what}: vertex indices must lie in [0, {self.n_vertices}).")
        t = t.long() + self.v_start
        return t.expand(len(envs), -1) if t.dim() == 1 else t

    def _targets(self, target_poss, cols, envs, what: str) -> torch.Tensor:
        n = cols.shape[1]
        if target_poss is None:
            return self._state.pos[envs[:, None], cols]
        t = self._tensor(target_poss, what)
        if tuple(t.shape) == (n, 3):
            return t.expand(len(envs), n, 3)
        if tuple(t.shape) == (len(envs), n, 3):
            return t
        if tuple(t.shape) == (3,) and n == 1:
            return t.expand(len(envs), 1, 3)
        raise InvalidInputError(f"{self.name}.{what}: target_poss has shape {tuple(t.shape)}; expected ({n}, 3) or "
                                f"({len(envs)}, {n}, 3).")

    def set_vertex_constraints(self, verts_idx_local, target_poss=None, link=None, is_soft_constraint=False,
                               stiffness=0.0, envs_idx=None) -> None:
        """Constrain vertices (Genesis' names): hard (default) pins each to its target (position = target, velocity
        0 after every substep); `is_soft_constraint=True` pulls it with a critically damped spring of `stiffness`
        k (1/s^2, per unit mass: acceleration -k (x - target) - 2 sqrt(k) v). `target_poss`: `(n, 3)` or
        `(len(envs), n, 3)` m; None: the vertices' current positions. `link`: a `RigidLink` of this scene: the targets
        (given or current) then keep their place in the link's frame as it moves (updated each substep from the link's
        pose after the rigid substep; one-way: the link feels nothing). The constraints are part of the state
        (`FEMSolver.vc_*`): resets and checkpoints restore them. The implicit solver needs
        `FEMOptions(enable_vertex_constraints=True)` (as Genesis)."""
        envs = self._envs(envs_idx, "set_vertex_constraints")
        o = self._scene_solver.options
        if o.use_implicit_solver and not o.enable_vertex_constraints:
            raise InvalidInputError(f"{self.name}.set_vertex_constraints: the implicit FEM solver needs "
                                    "gs.options.FEMOptions(enable_vertex_constraints=True) for vertex constraints.")
        if link is not None:
            from .rigid_joint import RigidLink

            if not isinstance(link, RigidLink) or getattr(link.entity, "_scene", None) is not self._scene:
                raise InvalidInputError(f"{self.name}.set_vertex_constraints(link={link!r}): expected a RigidLink of "
                                        "this scene (e.g. arm.get_link('hand')).")
        if not isinstance(is_soft_constraint, bool):
            raise InvalidInputError(f"{self.name}.set_vertex_constraints(is_soft_constraint={is_soft_constraint!r}): "
                                    "expected True or False.")
        if isinstance(stiffness, bool) or not isinstance(stiffness, (int, float)) or not np.isfinite(stiffness) \
                or stiffness < 0:
            raise InvalidInputError(f"{self.name}.set_vertex_constraints(stiffness={stiffness!r}): expected a "
                                    "non-negative finite number (1/s^2).")
        cols = self._verts(verts_idx_local, envs, "set_vertex_constraints")
        targets = self._targets(target_poss, cols, envs, "set_vertex_constraints")
        n = cols.shape[1]
        mode = torch.full((len(envs), n), _SOFT if is_soft_constraint else _HARD, dtype=torch.int8,
                          device=cols.device)
        link_idx = torch.full((len(envs), n), -1 if link is None else int(link.idx), dtype=torch.long,
                              device=cols.device)
        offset = torch.zeros_like(targets)
        if link is not None:  # the targets in the link's frame: R^T (target - p)
            from ..math.quat import quat_to_mat

            p = link.entity.get_links_pos(links_idx_local=[link.idx_local], envs_idx=envs).reshape(len(envs), 1, 3)
            q = link.entity.get_links_quat(links_idx_local=[link.idx_local], envs_idx=envs).reshape(len(envs), 4)
            R = quat_to_mat(q.to(targets.dtype))[:, None]
            offset = ((targets - p.to(targets.dtype))[..., None, :] @ R)[..., 0, :]
        self._put(vc_mode=(envs, cols, mode), vc_target=(envs, cols, targets),
                  vc_stiffness=(envs, cols, torch.full((len(envs), n), float(stiffness), device=cols.device)),
                  vc_link=(envs, cols, link_idx), vc_offset=(envs, cols, offset))

    def update_constraint_targets(self, verts_idx_local, target_poss, envs_idx=None) -> None:
        """New targets `(n, 3)` or `(len(envs), n, 3)` m of constrained vertices (Genesis' name)."""
        envs = self._envs(envs_idx, "update_constraint_targets")
        if target_poss is None:
            raise InvalidInputError(f"{self.name}.update_constraint_targets: give target_poss.")
        cols = self._verts(verts_idx_local, envs, "update_constraint_targets")
        targets = self._targets(target_poss, cols, envs, "update_constraint_targets")
        if not bool((self._state.vc_mode[envs[:, None], cols] != _FREE).all()):
            raise InvalidInputError(f"{self.name}.update_constraint_targets: some of these vertices are not "
                                    "constrained; call set_vertex_constraints first.")
        self._put(vc_target=(envs, cols, targets))

    def remove_vertex_constraints(self, verts_idx_local=None, envs_idx=None) -> None:
        """Free the given vertices (default: all of the entity's) in the given envs (Genesis' name)."""
        envs = self._envs(envs_idx, "remove_vertex_constraints")
        cols = self._verts(verts_idx_local, envs, "remove_vertex_constraints")
        self._put(vc_mode=(envs, cols, torch.zeros(cols.shape, dtype=torch.int8, device=cols.device)),
                  vc_link=(envs, cols, torch.full(cols.shape, -1, dtype=torch.long, device=cols.device)))

    # ---------------------------------------------------------------- muscles
    def _muscle(self, what: str) -> int:
        from ..materials.FEM import Muscle

        if not isinstance(self.material, Muscle):
            raise InvalidInputError(f"{self.name}.{what}: only entities with a gs.materials.FEM.Muscle material have "
                                    f"muscles (this one is {type(self.material).__name__}).")
        return self.material.n_groups

    def set_actuation(self, actu, envs_idx=None) -> None:
        """Muscle activations (Genesis' name; `FEM.Muscle` entities): `()` for every group, `(n_groups,)` per group,
        or `(len(envs), n_groups)` per env and group; each element takes its group's value (`set_muscle`). State
        (`FEMSolver.actu (B, ne)`): it stays until set again, resets and checkpoints restore it; a tensor that
        requires grad keeps its graph. Dimensionless: the active stress is E a along the fibre (docs/fem.md).
        Per-element activations are refused, as in Genesis."""
        envs = self._envs(envs_idx, "set_actuation")
        G = self._muscle("set_actuation")
        t = actuation_per_group(self.name, self._tensor(actu, "set_actuation(actu=...)"), len(envs), G, "element")
        cols = torch.arange(self.el_start, self.el_start + self.n_elements, device=self._scene.device)
        self._put(actu=(envs, cols, t[:, self.muscle_group]))

    @property
    def muscle_group(self) -> torch.Tensor:
        """Muscle group `(ne,)` long of every element (default 0; `set_muscle`)."""
        g = getattr(self, "_muscle_group", None)
        if g is None:
            g = self._muscle_group = torch.zeros(self.n_elements, dtype=torch.long, device=self._scene.device)
        return g

    @property
    def muscle_direction(self) -> torch.Tensor:
        """Unit fibre directions `(P, ne, 3)` of the elements (rest frame; default +z, as Genesis)."""
        self._built("muscle_direction")
        return self._solver.params.muscle_dir[:, self.el_start:self.el_start + self.n_elements].clone()

    def set_muscle(self, muscle_group=None, muscle_direction=None) -> None:
        """Muscle groups `(ne,)` ints in [0, n_groups) and/or unit fibre directions `(ne, 3)` or `(3,)` for all
        (rest frame) of the elements (Genesis' names; `FEM.Muscle` entities). Groups take effect at the next
        `set_actuation`; directions at once, in every env (model parameters, checkpointed as
        `FEMSolver.params.muscle_dir`). Inputs checked by `muscle_inputs` (shared with the MPM muscles)."""
        self._built("set_muscle")
        G = self._muscle("set_muscle")
        ne, group, fibre = self.n_elements, None, None
        if muscle_group is None and muscle_direction is None:
            raise InvalidInputError(f"{self.name}.set_muscle: give muscle_group and/or muscle_direction.")
        if muscle_group is not None:
            group = muscle_groups(self.name, self._tensor(muscle_group, "set_muscle(muscle_group=...)", dtype=None),
                                  ne, G, "FEM.Muscle")
        if muscle_direction is not None:
            fibre = fibre_directions(self.name, self._tensor(muscle_direction, "set_muscle(muscle_direction=...)"), ne)
        if group is not None:
            self._muscle_group = group.to(self._scene.device)
        if fibre is not None:
            p = self._solver.params
            cur = p.muscle_dir.detach().clone()
            cur[:, self.el_start:self.el_start + self.n_elements] = fibre.to(cur.dtype)
            p.muscle_dir = cur

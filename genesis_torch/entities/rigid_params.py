"""Genesis' per-env model setters of `RigidEntity` (domain randomisation): link masses, mass and COM shifts,
inertias, friction ratios and dof armature / damping / stiffness / frictionloss. Mixed into `RigidEntity`.

Each setter validates everything first (shape, finiteness, ranges, indices) and then replaces the solver's
parameter tensor out of place (`RigidSolver.set_params`): a failed call changes nothing, and no tensor a user or
autograd holds is written to. A parameter the call touches becomes `(B, ...)`; the others stay shared. Values may
carry gradients (e.g. a `requires_grad` mass shift): the step reads them as any other tensor.

These are model parameters, not state (as the dof gains): `scene.reset()` and `get_state()` do not include them,
checkpoints do (`RigidSolver.params.*`). MuJoCo's constant-derived regularisation scales (`dof_invweight0`,
`body_invweight0`) keep their build values, as when an `MjModel` array is edited without `mj_setConst`, except that
`set_mass` divides the links' `body_invweight0` by its ratio, as Genesis does (the solver's convergence scale is
the current sum_i M_ii, which follows every edit).
"""

from __future__ import annotations

import logging

import torch

from ..errors import InvalidInputError
from ..rollout_params import release_consumed, track
from ..solvers.rigid.model import BALL, FREE
from ..solvers.rigid.params import PRIMARY

logger = logging.getLogger("genesis_torch")


class ModelParamSetters:
    """Per-env model parameters of a rigid entity, with Genesis' names and arguments."""

    # ------------------------------------------------------------ helpers
    def _param_rows(self, name: str, envs: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The current values of parameter `name` at `[envs][:, cols]`, `(E, n, ...)`."""
        p = getattr(self._solver.params, name)
        return p.expand(self._scene.batch_size, *p.shape[1:])[envs][:, cols]

    def _put_params(self, envs: torch.Tensor, cols: torch.Tensor, **values) -> None:
        """Write `values[name] (E, n, ...)` to parameters `name` at `[envs, cols]` (out of place), then re-derive."""
        B = self._scene.batch_size
        self._release_consumed_params()
        new = {}
        for name, v in values.items():
            cur = getattr(self._solver.params, name)
            full = cur.expand(B, *cur.shape[1:])
            new[name] = full.index_put((envs[:, None], cols[None, :]), v.to(cur.dtype))
        self._solver.set_params(**new)
        track(self._solver.params)

    def _release_consumed_params(self) -> None:
        """Detach the parameters whose graph an earlier `backward()` consumed, before a setter builds on them
        (`rollout_params.py`: optimisation loops that set a parameter with grad in every iteration)."""
        stale = release_consumed(self._solver.params, PRIMARY)
        if stale:
            self._solver.set_params(**stale)

    def _links(self, links_idx_local) -> torch.Tensor:
        """MuJoCo body ids of the selected links."""
        return self._local(links_idx_local, self._body_ids, "link")

    def _nonnegative(self, t: torch.Tensor, what: str, fix: str) -> None:
        if bool((t < 0).any()):
            raise InvalidInputError(f"{what}: got a negative value ({float(t.min()):g}); {fix}")

    def _dof_setter(self, name: str, values, dofs_idx_local, envs_idx, what: str, unit: str) -> None:
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        v = self._values(values, len(envs), (len(dofs),), what)
        self._nonnegative(v, what, f"{name} must be >= 0 {unit}.")
        m = self._solver.model
        if name == "dof_stiffness":
            jt = m.jnt_type[m.dof_jnt[dofs]]
            ball_free = (jt == BALL) | (jt == FREE)
            if bool((v[:, ball_free] != 0).any()):
                raise InvalidInputError(f"{what}: stiffness applies to hinge/slide dofs; this selection gives a "
                                        "ball/free-joint dof a non-zero value. Pass dofs_idx_local of hinge/slide "
                                        "dofs.")
        if name == "dof_frictionloss":
            has_row = torch.isin(dofs, m.fric_dof)
            if bool((v[:, ~has_row] > 0).any()):
                bad = int(self._dof_ids.tolist().index(int(dofs[~has_row][0])))
                raise InvalidInputError(f"{what}: local dof {bad} has no frictionloss in the MJCF, so the model has no "
                                        "dry-friction constraint row for it; give its joint a frictionloss in the "
                                        "MJCF (any value > 0; it can then be set per env, including 0).")
        self._put_params(envs, dofs, **{name: v})

    # ----------------------------------------------------- dof parameters
    def set_dofs_armature(self, armature, dofs_idx_local=None, envs_idx=None) -> None:
        """Set the armature (rotor inertia on the mass matrix diagonal), `(B, n)` or `(n,)`, kg m^2 or kg, >= 0."""
        self._dof_setter("dof_armature", armature, dofs_idx_local, envs_idx, "set_dofs_armature", "(kg m^2 or kg)")

    def set_dofs_damping(self, damping, dofs_idx_local=None, envs_idx=None) -> None:
        """Set the joint damping, `(B, n)` or `(n,)`, N m s/rad or N s/m, >= 0."""
        self._dof_setter("dof_damping", damping, dofs_idx_local, envs_idx, "set_dofs_damping", "(N m s/rad or N s/m)")

    def set_dofs_stiffness(self, stiffness, dofs_idx_local=None, envs_idx=None) -> None:
        """Set the joint stiffness (spring to the MJCF's `springref`), `(B, n)` or `(n,)`, N m/rad or N/m, >= 0;
        hinge/slide dofs only (ball/free dofs accept 0)."""
        self._dof_setter("dof_stiffness", stiffness, dofs_idx_local, envs_idx, "set_dofs_stiffness", "(N m/rad or N/m)")

    def set_dofs_frictionloss(self, frictionloss, dofs_idx_local=None, envs_idx=None) -> None:
        """Set the dry joint friction, `(B, n)` or `(n,)`, N m or N, >= 0. Dofs whose joint has no frictionloss in the
        MJCF accept only 0 (the model has no friction row for them)."""
        self._dof_setter("dof_frictionloss", frictionloss, dofs_idx_local, envs_idx, "set_dofs_frictionloss",
                         "(N m or N)")

    def get_dofs_armature(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Armature (rotor inertia added to the mass matrix diagonal), `(B, n)` kg m^2 or kg."""
        return self._dof_param_rows("dof_armature", dofs_idx_local, envs_idx)

    def get_dofs_damping(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Joint damping, `(B, n)` N m s/rad or N s/m."""
        return self._dof_param_rows("dof_damping", dofs_idx_local, envs_idx)

    def get_dofs_stiffness(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Joint stiffness, `(B, n)` N m/rad or N/m (MuJoCo's `jnt_stiffness` of each dof's joint)."""
        return self._dof_param_rows("dof_stiffness", dofs_idx_local, envs_idx)

    def get_dofs_frictionloss(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Dry joint friction, `(B, n)` N m or N."""
        return self._dof_param_rows("dof_frictionloss", dofs_idx_local, envs_idx)

    def _dof_param_rows(self, name, dofs_idx_local, envs_idx):
        dofs, envs = self._local(dofs_idx_local, self._dof_ids, "dof"), self._envs(envs_idx)
        return self._out(self._param_rows(name, envs, dofs))

    # ---------------------------------------------------- link parameters
    def set_mass_shift(self, mass_shift, links_idx_local=None, envs_idx=None) -> None:
        """Set the mass shift of links, `(B, n_links)` or `(n_links,)` kg: each link's mass becomes its inertial mass
        plus the shift (a later call replaces the shift, it does not add to it). As in Genesis the rotational inertia
        about the COM is unchanged. The resulting masses must be >= 0."""
        links, envs = self._links(links_idx_local), self._envs(envs_idx)
        v = self._values(mass_shift, len(envs), (len(links),), "set_mass_shift")
        self._nonnegative(self._param_rows("link_mass", envs, links) + v, "set_mass_shift",
                          "the shift would make a link's mass (inertial mass + shift) negative.")
        self._put_params(envs, links, link_mass_shift=v)

    def set_COM_shift(self, com_shift, links_idx_local=None, envs_idx=None) -> None:
        """Set the shift of links' centres of mass in their link frames, `(B, n_links, 3)` or `(n_links, 3)` m (added
        to the MJCF's COM; a later call replaces it). Inertia about the COM and its principal axes are unchanged."""
        links, envs = self._links(links_idx_local), self._envs(envs_idx)
        v = self._values(com_shift, len(envs), (len(links), 3), "set_COM_shift")
        self._put_params(envs, links, link_com_shift=v)

    def set_links_inertial_mass(self, inertial_mass, links_idx_local=None, envs_idx=None) -> None:
        """Set links' inertial masses (MuJoCo's `body_mass`), `(B, n_links)` or `(n_links,)` kg, >= 0; the rotational
        inertia is unchanged (use `set_mass` to scale both) and a mass shift still adds to it."""
        links, envs = self._links(links_idx_local), self._envs(envs_idx)
        v = self._values(inertial_mass, len(envs), (len(links),), "set_links_inertial_mass")
        self._nonnegative(v, "set_links_inertial_mass", "masses must be >= 0 kg.")
        self._nonnegative(v + self._param_rows("link_mass_shift", envs, links), "set_links_inertial_mass",
                          "with the link's mass shift the mass would be negative; change the shift first.")
        self._put_params(envs, links, link_mass=v)

    def get_links_inertial_mass(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Inertial masses of the links (without mass shifts), `(B, n)` kg."""
        links, envs = self._links(links_idx_local), self._envs(envs_idx)
        return self._out(self._param_rows("link_mass", envs, links))

    def _scale_links_mass(self, links: torch.Tensor, mass: torch.Tensor, what: str) -> None:
        """Genesis' `set_mass`: ratio = `mass (B,)` / the links' total inertial mass, per env; the masses and
        rotational inertias of the moving links are scaled by it (links fixed to the world are skipped)."""
        B = self._scene.batch_size
        self._release_consumed_params()  # the ratio is built on the current masses
        envs = torch.arange(B, device=self._scene.device)
        total = self._param_rows("link_mass", envs, links).sum(-1)
        if bool((total <= 0).any()):
            raise InvalidInputError(f"{what}: the links have zero mass, so there is nothing to scale; use "
                                    "set_links_inertial_mass.")
        moving = links[self._solver.model.body_dofmask[links].any(-1)]
        if not moving.numel():
            logger.warning("%s: the links are fixed to the world; their mass has no effect, skipping.", what)
            return
        ratio = (mass / total)[:, None]
        self._put_params(envs, moving, link_mass=self._param_rows("link_mass", envs, moving) * ratio,
                         link_inertia=self._param_rows("link_inertia", envs, moving) * ratio[..., None],
                         link_invweight=self._param_rows("link_invweight", envs, moving) / ratio[..., None])

    def _positive_mass(self, mass, what: str) -> torch.Tensor:
        t = torch.as_tensor(mass, dtype=self._scene.dtype, device=self._scene.device)
        if t.dim() != 0 or not bool(torch.isfinite(t)) or float(t) <= 0:
            raise InvalidInputError(f"{what}({mass!r}): expected one positive finite number, kg.")
        return t.expand(self._scene.batch_size)

    def set_mass(self, mass) -> None:
        """Scale the entity's mass to `mass` kg (> 0) in every env, as Genesis: ratio = mass / total inertial mass of
        the entity's links (per env); the masses and rotational inertias of its moving links are multiplied by it and
        their `body_invweight0` divided (links fixed to the world keep theirs, so with a fixed base the total ends
        below or above `mass`)."""
        self._require_built("set_mass")
        self._scale_links_mass(self._links(None), self._positive_mass(mass, "set_mass"), "set_mass")

    def get_mass(self) -> float:
        """Total inertial mass of the entity's links, kg (env 0's when masses were set per env)."""
        self._require_built("get_mass")
        return float(self.get_links_inertial_mass(envs_idx=[0]).sum())

    # ---------------------------------------------------------- friction
    def set_friction_ratio(self, friction_ratio, links_idx_local=None, envs_idx=None) -> None:
        """Scale the friction of the geoms of links, `(B, n_links)` or `(n_links,)`, > 0: a contact's friction is
        the larger of its geoms' frictions times their ratios (MuJoCo's and Genesis' max rule; the higher-priority
        geom's where priorities differ; explicit `<pair>`s keep their own). A later call replaces the ratio."""
        links, envs = self._links(links_idx_local), self._envs(envs_idx)
        v = self._values(friction_ratio, len(envs), (len(links),), "set_friction_ratio")
        if bool((v <= 0).any()):
            raise InvalidInputError(f"set_friction_ratio: ratios must be > 0, got {float(v.min()):g}.")
        m = self._solver.mj_model
        geom_body = torch.as_tensor(m.geom_bodyid, device=self._scene.device)
        match = geom_body[:, None] == links[None, :]  # (ng, n)
        geoms = torch.nonzero(match.any(-1)).flatten()
        if not geoms.numel():
            return
        owner = match[geoms].to(torch.int64).argmax(-1)  # the selected link of each geom
        self._put_params(envs, geoms, geom_friction_ratio=v[:, owner])

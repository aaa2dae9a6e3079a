"""Batched collision checking of robot configurations for the motion planners (genesis_torch/planning).

A configuration of the robot is *invalid* when some contact that involves the robot's geoms (or the geoms of an
object attached to one of its links) has penetration above `eps` and its geom pair is not excluded for that env.
The excluded pairs are those already in contact (any detected contact of the robot, penetrating or within the
margin) at the start or at the goal of that env: Genesis' `PathPlanner.get_exclude_geom_pairs` excludes the same
pairs (Genesis pools them over all planned envs; here each env excludes its own). `eps` is Genesis'
`PENETRATION_EPS`: 1e-5 m in float32, 0 in float64.

Everything runs through the scene's own pipeline: forward kinematics (`solvers.rigid.kinematics`) and the narrow
phase (`solvers.rigid.collision.detect.detect`), on a batch of `K x B` configurations (`K` candidates per env),
never writing the scene state.
"""
from __future__ import annotations

import dataclasses

import torch

from ..math.quat import quat_mul, quat_to_mat
from ..solvers.rigid.collision.detect import detect
from ..solvers.rigid.kinematics import forward_kinematics

CHUNK = 64  #: candidates per env evaluated in one pass of the pipeline (bounds memory)


class CollisionChecker:
    """Collision test of robot configurations in envs `envs (Bs,)` of `entity`'s scene, the other bodies where the
    current state holds them.

    `attach`: None or `(link_body_id, obj_entity)`: a single-body free object carried rigidly by that link with its
    pose relative to the link at the start configuration (Genesis' `ee_link_name` / `with_entity`).
    """

    def __init__(self, entity, envs: torch.Tensor, eps: float, attach=None):
        solver = entity._solver
        self.solver, self.cm, self.envs = solver, solver.contact_model, envs
        self.eps = eps
        dev = envs.device
        self.base = entity._state.qpos[envs].clone()  # (Bs, nq) full qpos: the other bodies stay where they are
        self.q_cols = torch.as_tensor(entity._q_ids, dtype=torch.long, device=dev)
        geoms = self._pair_geoms()
        mine = torch.as_tensor(entity._geom_ids(), dtype=torch.long, device=dev)
        involved = torch.isin(geoms, mine)
        self.attach = None
        if attach is not None:
            body, obj = attach
            free = obj._free_base_qs("plan_path")
            self.attach = (int(body), torch.as_tensor(obj._q_ids[free], dtype=torch.long, device=dev))
            involved = involved | torch.isin(geoms, torch.as_tensor(obj._geom_ids(), dtype=torch.long, device=dev))
        self.involved = involved.any(-1)  # (P,) candidate pairs with a geom of the robot (or the carried object)
        self.exclude = torch.zeros(len(envs), geoms.shape[0], dtype=torch.bool, device=dev)  # (Bs, P)
        self.rel = None

    def _pair_geoms(self) -> torch.Tensor:
        cm = self.cm
        if not cm.groups:
            return torch.zeros(0, 2, dtype=torch.long, device=self.envs.device)
        return torch.cat([torch.stack((g.geom1, g.geom2), -1) for g in cm.groups])

    def set_attachment(self, q_start: torch.Tensor) -> None:
        """Record the carried object's pose in the link frame at `q_start (Bs, n_qs)` (the current object pose)."""
        if self.attach is None:
            return
        body, cols = self.attach
        kin = self._kin(self._full(q_start[None]))
        xpos, xquat = kin.xpos[:, body], kin.xquat[:, body]  # (Bs, 3), (Bs, 4) link pose
        opos, oquat = self.base[:, cols[:3]], self.base[:, cols[3:]]
        R = quat_to_mat(xquat)
        inv = xquat * xquat.new_tensor([1.0, -1.0, -1.0, -1.0])
        self.rel = ((R.transpose(-1, -2) @ (opos - xpos)[..., None])[..., 0], quat_mul(inv, oquat))

    def _full(self, q: torch.Tensor) -> torch.Tensor:
        """(K, Bs, n_qs) robot configurations -> (K * Bs, nq) scene qpos (env fastest)."""
        K, Bs = q.shape[:2]
        full = self.base[None].expand(K, -1, -1).clone()
        full[..., self.q_cols] = q.to(full.dtype)
        return full.reshape(K * Bs, -1)

    def _rows(self, x: torch.Tensor | None, K: int):
        """A per-env parameter `(1|B, ...)` for the flat `K x Bs` batch."""
        if x is None or x.shape[0] == 1:
            return x
        return x[self.envs].repeat(K, *([1] * (x.dim() - 1)))

    def _kin(self, qpos: torch.Tensor):
        K = qpos.shape[0] // len(self.envs)
        p = self.solver.params
        return forward_kinematics(self.solver.model, qpos, *(self._rows(x, K) for x in
                                                             (p.body_ipos, p.body_pos, p.body_quat, p.body_iquat)))

    def _contacts(self, q: torch.Tensor):
        """Contacts `ContactSet` of the flat batch of `q (K, Bs, n_qs)`, the carried object moved with its link."""
        K = q.shape[0]
        qpos = self._full(q)
        if self.attach is not None:
            body, cols = self.attach
            kin = self._kin(qpos)
            xpos, xquat = kin.xpos[:, body], kin.xquat[:, body]
            rp, rq = (r.repeat(K, 1) for r in self.rel)
            qpos[:, cols[:3]] = xpos + (quat_to_mat(xquat) @ rp[..., None])[..., 0]
            qpos[:, cols[3:]] = quat_mul(xquat, rq)
        kin = self._kin(qpos)
        cm = self.cm
        if cm.pair_env_active is not None and K > 1:
            cm = dataclasses.replace(cm, pair_env_active=cm.pair_env_active[self.envs].repeat(K, 1))
        elif cm.pair_env_active is not None:
            cm = dataclasses.replace(cm, pair_env_active=cm.pair_env_active[self.envs])
        return detect(cm, kin)

    def contact_pairs(self, q: torch.Tensor) -> torch.Tensor:
        """(Bs, P) bool: the candidate pairs with a detected contact involving the robot at `q (Bs, n_qs)`."""
        c = self._contacts(q[None])
        hit = torch.zeros_like(self.exclude)
        if c.dist.shape[1]:
            on = c.valid & self.involved[c.pair]
            rows = torch.arange(hit.shape[0], device=hit.device)[:, None].expand_as(c.pair)
            hit.index_put_((rows[on], c.pair[on]), torch.ones_like(c.pair[on], dtype=torch.bool))
        return hit

    def exclude_contacts_at(self, *qs: torch.Tensor) -> None:
        """Exclude, per env, the pairs in contact at each of `qs (Bs, n_qs)` (Genesis' start/goal exclusion)."""
        for q in qs:
            self.exclude |= self.contact_pairs(q)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """(K, Bs) bool, True where configuration `q (K, Bs, n_qs)` is in collision."""
        K, Bs = q.shape[:2]
        out = []
        for k0 in range(0, K, CHUNK):
            qk = q[k0:k0 + CHUNK]
            Kc = qk.shape[0]
            c = self._contacts(qk)
            if not c.dist.shape[1]:
                out.append(torch.zeros(Kc, Bs, dtype=torch.bool, device=q.device))
                continue
            excl = self.exclude.repeat(Kc, 1).gather(1, c.pair)
            bad = c.valid & (-c.dist > self.eps) & self.involved[c.pair] & ~excl
            out.append(bad.any(-1).reshape(Kc, Bs))
        return torch.cat(out, 0)

"""Runtime-settable model parameters of the rigid solver, `(1, ...)` shared or `(B, ...)` per env (DESIGN.md §4).

`RigidParams` holds what the user sets (Genesis' setters: gains, force ranges, link masses and their shifts, COM
shifts, inertias, dof armature / damping / stiffness / frictionloss, geom friction ratios, the pose of a fixed-base
entity's base body) and what the step reads
derived from it (`derive`): the effective link masses (mass + shift), subtree masses, COM positions (MJCF COM +
shift) and per-env contact friction. A parameter becomes `(B, ...)` the first time a setter touches one env; until
then it is the MJCF value with a leading 1, and every stage reads it with broadcasting, so a scene where nothing
is set computes bit for bit what a shared model computes.

MuJoCo's constant-derived quantities (`dof_invweight0`, `body_invweight0`: the constraint regularisation scales)
keep their build values, as when an `MjModel` array is edited without `mj_setConst`; only
Genesis' `set_mass` scales the links' `body_invweight0` (by 1 / ratio), as Genesis does.
"""

from __future__ import annotations

import dataclasses

import torch

from .linalg import subtree_sum
from .model import RigidModel

MJ_MINMU = 1e-5  # MuJoCo's lower bound on friction coefficients (mjMINMU)

# set by the user (and saved in checkpoints as `RigidSolver.params.<name>`), in this order
PRIMARY = ("gainprm", "biasprm", "forcerange", "dof_kp", "dof_kv", "dof_force_range", "link_mass", "link_mass_shift",
           "link_inertia", "link_com_shift", "link_invweight", "dof_armature", "dof_damping", "dof_stiffness",
           "dof_frictionloss", "geom_friction_ratio", "body_pos", "body_quat")


@dataclasses.dataclass
class RigidParams:
    """Actuator, dof-controller, inertial, joint and contact parameters. nb bodies (incl. the world), nv dofs,
    nu actuators, ng geoms, np candidate contact pairs."""

    gainprm: torch.Tensor  # (1|B, nu, 3)
    biasprm: torch.Tensor  # (1|B, nu, 3)
    forcerange: torch.Tensor  # (1|B, nu, 2) N or N m; (-inf, inf) where the MJCF sets no forcerange
    dof_kp: torch.Tensor  # (1|B, nv)
    dof_kv: torch.Tensor  # (1|B, nv)
    dof_force_range: torch.Tensor  # (1|B, nv, 2)
    link_mass: torch.Tensor | None = None  # (1|B, nb) kg, MuJoCo's body_mass (Genesis' inertial_mass)
    link_mass_shift: torch.Tensor | None = None  # (1|B, nb) kg, added to link_mass (Genesis' mass_shift)
    link_inertia: torch.Tensor | None = None  # (1|B, nb, 3) kg m^2, principal moments about the COM
    link_com_shift: torch.Tensor | None = None  # (1|B, nb, 3) m, added to the COM in the body frame
    link_invweight: torch.Tensor | None = None  # (1|B, nb, 2) MuJoCo's body_invweight0 (translation, rotation)
    dof_armature: torch.Tensor | None = None  # (1|B, nv) kg m^2 or kg
    dof_damping: torch.Tensor | None = None  # (1|B, nv) N m s/rad or N s/m
    dof_stiffness: torch.Tensor | None = None  # (1|B, nv) N m/rad or N/m (hinge/slide dofs; 0 elsewhere)
    dof_frictionloss: torch.Tensor | None = None  # (1|B, nv) N m or N
    geom_friction_ratio: torch.Tensor | None = None  # (1|B, ng) factor on each geom's friction
    body_pos: torch.Tensor | None = None  # (1|B, nb, 3) m, body frames in their parents' (MuJoCo's body_pos; set_pos)
    body_quat: torch.Tensor | None = None  # (1|B, nb, 4) wxyz, unit (MuJoCo's body_quat; set_quat)
    body_ipos0: torch.Tensor | None = None  # (B, nb, 3) m, COMs before link_com_shift: a heterogeneous entity's
    #   variants' (set at build, heterogeneous.py); None: the MJCF's `body_ipos`
    body_iquat: torch.Tensor | None = None  # (B, nb, 4) wxyz, principal inertia frames in the body frames: a
    #   heterogeneous entity's variants' (set at build); None: the MJCF's `body_iquat`
    dof_invweight: torch.Tensor | None = None  # (B, nv) MuJoCo's dof_invweight0 (limit and frictionloss rows), and
    lim_value: torch.Tensor | None = None  # (B, nl) joint-limit bounds, `lim_margin` (B, nl), `lim_solimp` (B, nl,
    lim_margin: torch.Tensor | None = None  # 5): a heterogeneous entity's variants' (set at build); None: the
    lim_solimp: torch.Tensor | None = None  # model's (`RigidModel.dof_invweight0`, `lim_value`, ...)
    body_mass0: torch.Tensor | None = None  # (B, nb) kg, the build-time link masses and their subtree masses of a
    subtree_mass0: torch.Tensor | None = None  # heterogeneous entity's variants; None: the model's
    # derived (`derive`), read by the step
    body_mass: torch.Tensor | None = None  # (1|B, nb) link_mass + link_mass_shift
    subtree_mass: torch.Tensor | None = None  # (1|B, nb)
    body_ipos: torch.Tensor | None = None  # (1|B, nb, 3) MJCF COM + link_com_shift
    pair_friction: torch.Tensor | None = None  # (1|B, np, 2), None while no ratio was set (the contact model's)
    ctrl_kp: torch.Tensor | None = None  # (1|B, nv) the dof controller's gains: dof_kp, or the MJCF actuator's kp
    ctrl_kv: torch.Tensor | None = None  # (1|B, nv)   (-biasprm[1]) / kv (-biasprm[2]) / forcerange on the dofs it
    ctrl_force_range: torch.Tensor | None = None  # (1|B, nv, 2)   drives (used when a control call overrides it)
    passive_dvel: torch.Tensor | None = None  # (1|B, nv, nv) d qfrc_passive / d qvel (dof and fixed-tendon damping)
    euler_damped: torch.Tensor | None = None  # (1|B,) bool: some dof of the env has damping (Euler's implicit damping)
    any_damping: bool = False  # some env has damping (else Euler integrates explicitly everywhere)

    def replace(self, **fields) -> "RigidParams":
        return dataclasses.replace(self, **fields)


def default_params(model: RigidModel, ngeom: int, dtype, device) -> RigidParams:
    """The MJCF's values, shared by all envs (leading dim 1)."""
    m, inf = model, float("inf")
    p = RigidParams(
        gainprm=m.act_gainprm[None], biasprm=m.act_biasprm[None],
        forcerange=torch.where(m.act_forcelimited[:, None], m.act_forcerange,
                               torch.tensor([-inf, inf], dtype=dtype, device=device))[None],
        dof_kp=torch.zeros(1, m.nv, dtype=dtype, device=device),
        dof_kv=torch.zeros(1, m.nv, dtype=dtype, device=device),
        # a joint's actuatorfrcrange (a URDF's <limit effort>, an MJCF's actuatorfrcrange) bounds its dofs' control force,
        # as Genesis' dofs_force_range; unlimited elsewhere
        dof_force_range=torch.where(m.dof_actfrclimited[:, None], m.dof_actfrcrange,
                                    torch.tensor([-inf, inf], dtype=dtype, device=device))[None].clone(),
        link_mass=m.body_mass[None], link_mass_shift=torch.zeros_like(m.body_mass)[None],
        link_inertia=m.body_inertia[None], link_com_shift=torch.zeros_like(m.body_ipos)[None],
        link_invweight=m.body_invweight0[None],
        dof_armature=m.dof_armature[None], dof_damping=m.dof_damping[None], dof_stiffness=m.dof_stiffness[None],
        dof_frictionloss=m.dof_frictionloss[None], geom_friction_ratio=torch.ones(1, ngeom, dtype=dtype, device=device),
        body_pos=m.body_pos[None], body_quat=m.body_quat[None])
    return derive(model, None, p)


def derive(model: RigidModel, cm, p: RigidParams) -> RigidParams:
    """`p` with its derived fields recomputed from the primary ones (out of place, differentiable).

    Envs whose link masses equal the MJCF's (a heterogeneous variant's: `body_mass0`) keep its subtree masses bit
    for bit; the others sum theirs.
    `cm` is the contact model (None: no contacts); the per-env friction of a candidate pair follows MuJoCo's
    `mj_contactParam` on geom frictions scaled by their ratios (the larger of the two, or the higher-priority geom's);
    explicit `<pair>`s keep their own friction.
    """
    mass = p.link_mass + p.link_mass_shift
    mass0, subtree0 = (model.body_mass, model.subtree_mass) if p.body_mass0 is None else (p.body_mass0,
                                                                                           p.subtree_mass0)
    default = (mass == mass0).all(-1, keepdim=True)
    subtree = torch.where(default, subtree0, subtree_sum(model, mass, dim=1))
    pair_friction = None
    ratio = p.geom_friction_ratio
    if cm is not None and not bool((ratio == 1).all()):
        r = ratio[:, cm.pair_fric_geom]  # (1|B, np, 2)
        scaled = torch.maximum(cm.pair_fric_base[:, 0] * r[..., 0], cm.pair_fric_base[:, 1] * r[..., 1])
        scaled = torch.clamp(scaled, min=MJ_MINMU)[..., None].expand(-1, -1, 2)
        pair_friction = torch.where(cm.pair_explicit[:, None], cm.pair_friction, scaled)
    damped = (p.dof_damping > 0).any(-1)
    if "eulerdamp" in model.disabled or "damper" in model.disabled:  # MuJoCo's mj_Euler: then no implicit damping
        damped = torch.zeros_like(damped)
    damper = 0.0 if "damper" in model.disabled else 1.0  # no damping forces, hence no damping derivative
    kp, kv, frange = p.dof_kp, p.dof_kv, p.dof_force_range
    if model.nu:  # dofs driven by an MJCF actuator: its gains (what get_dofs_kp / kv / force_range report)
        act, has = model.dof_actuator.clamp(min=0), model.dof_actuator >= 0
        kp = torch.where(has, -p.biasprm[:, act, 1], kp)
        kv = torch.where(has, -p.biasprm[:, act, 2], kv)
        frange = torch.where(has[:, None], p.forcerange[:, act], frange)
    ipos0 = model.body_ipos if p.body_ipos0 is None else p.body_ipos0
    return p.replace(body_mass=mass, subtree_mass=subtree, body_ipos=ipos0 + p.link_com_shift,
                     pair_friction=pair_friction, ctrl_kp=kp, ctrl_kv=kv, ctrl_force_range=frange,
                     passive_dvel=damper * (-torch.diag_embed(p.dof_damping) - model.ten_J.T @ (
                         model.ten_damping[:, None] * model.ten_J)),
                     euler_damped=damped, any_damping=bool(damped.any()))

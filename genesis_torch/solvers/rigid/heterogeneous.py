"""Heterogeneous rigid entities: `scene.add_entity([morph_a, morph_b, ...])` (Genesis 1.4.5).

Each env simulates one of the morphs ("variants"); envs are split into contiguous blocks of nearly equal size by
Genesis' rule (`variant_envs`). The variants must share their kinematic topology: the same bodies hanging from the
same parents through joints of the same names, types and numbers of dofs (`check_topology`). Their geometry, inertia,
body frames (e.g. a different `scale`, or the pose of a fixed base) and dof parameters may differ.

The scene still compiles ONE MuJoCo model (docs/rigid.md, "Heterogeneous entities"):
- structure: the first variant's spec, with the geoms of every other variant added to the corresponding bodies
  (`merge_specs`), every body's inertial fixed to the first variant's (so the added geoms change no mass);
- per-env model parameters (`RigidParams`, `(B, ...)`): each variant's masses, inertias, COMs (`body_ipos0`),
  inertia frames, body frames, `body_invweight0`, dof armature / damping / stiffness / frictionloss, joint-limit
  rows, actuator gains, taken from that variant compiled on its own at its own pose (`variant_models`,
  `variant_params`); its compiled geom sizes and poses (`patch_geoms`);
- a per-env geom activity mask: an env collides, renders and measures (AABB) only its variant's geoms
  (`geoms_env_active`; contacts: `ContactModel.pair_env_active`);
- per-env initial qpos: a variant's free root starts at its own morph pose (`initial_qpos`).
Each env block then computes what a scene built with that block's morph alone computes (tests/rigid/
test_heterogeneous.py). Model quantities that are not per-env parameters here (joint axes and anchors, limit solref,
actuator transmissions and control ranges, tendons, equality constraints, ...) must agree across variants: a
difference raises `UnsupportedFeatureError` naming it (`check_supported`).
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch

from ...errors import InvalidInputError, UnsupportedFeatureError
from .compose import _copy_option

__all__ = ["variant_envs", "check_topology", "check_same_options", "check_supported", "merge_specs", "patch_geoms",
           "variant_models", "variant_params", "geoms_env_active", "pair_env_active", "initial_qpos"]

# geom attributes copied from a variant's spec to the structure's (all that a compiled geom reads; not the name,
# class, frame or plugin: the compiled sizes and poses, frames and scale included, are written at build, `patch_geoms`)
_GEOM_ATTRS = ("type", "size", "pos", "quat", "fromto", "contype", "conaffinity", "condim", "priority", "friction",
               "solmix", "solref", "solimp", "margin", "gap", "mass", "density", "typeinertia", "fluid_ellipsoid",
               "fluid_coefs", "group", "rgba", "fitscale", "hfieldname", "userdata")
_MESH_ATTRS = ("file", "content_type", "refpos", "refquat", "scale", "inertia", "smoothnormal", "maxhullvert",
               "uservert", "usernormal", "usertexcoord", "userface", "userfacenormal", "userfacetexcoord")
_ALT_ATTRS = ("type", "axisangle", "xyaxes", "zaxis", "euler")
# compiled-model arrays (per body / joint / dof of the entity, and the entity's actuators, tendons, equalities) that
# are no per-env parameter here: every variant must have the same values
_SAME_BODY = ("body_gravcomp",)
_SAME_JNT = ("jnt_pos", "jnt_axis", "jnt_limited", "jnt_solref")
_SAME_MODEL = ("dof_solref", "dof_solimp", "actuator_trntype", "actuator_trnid", "actuator_gear",
               "actuator_gaintype", "actuator_biastype", "actuator_forcelimited", "actuator_ctrllimited",
               "actuator_ctrlrange", "actuator_dyntype", "actuator_dynprm", "tendon_adr", "tendon_stiffness",
               "tendon_damping", "tendon_range", "wrap_prm", "eq_type", "eq_data", "eq_obj1id", "eq_obj2id")


def variant_envs(n_variants: int, n_envs: int) -> np.ndarray:
    """The variant each env simulates, `(B,)` int: contiguous blocks, the first `B % n` one env larger (Genesis'
    `_balanced_variant_mapping`); with fewer envs than variants, env i simulates variant i (the last ones unused)."""
    if n_variants < 1 or n_envs < 1:
        raise InvalidInputError(f"variant_envs({n_variants}, {n_envs}): expected at least one variant and one env.")
    if n_envs < n_variants:
        return np.arange(n_envs)
    base, extra = divmod(n_envs, n_variants)
    sizes = np.r_[np.full(extra, base + 1), np.full(n_variants - extra, base)]
    return np.repeat(np.arange(n_variants), sizes)


def _joint_desc(m: mujoco.MjModel, j: int) -> tuple[str, str, int]:
    kind = mujoco.mjtJoint(int(m.jnt_type[j])).name.removeprefix("mjJNT_").lower()
    ndof = {"free": 6, "ball": 3}.get(kind, 1)
    return mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j) or "", kind, ndof


def check_topology(labels: list[str], models: list[mujoco.MjModel]) -> None:
    """Raise `InvalidInputError` naming the first difference of kinematic topology between variant 0 and another:
    body count, a body's parent, a body's joints (count, names, types, dof counts)."""
    m0 = models[0]
    for k, m in enumerate(models[1:], start=1):
        where = f"heterogeneous entity: variant {k} ({labels[k]}) vs variant 0 ({labels[0]})"
        if m.nbody != m0.nbody:
            raise InvalidInputError(f"{where}: {m.nbody - 1} links vs {m0.nbody - 1}; all variants must have the "
                                    "same links (same kinematic topology).")
        for b in range(1, m.nbody):
            name0 = mujoco.mj_id2name(m0, mujoco.mjtObj.mjOBJ_BODY, b) or f"link{b - 1}"
            if m.body_parentid[b] != m0.body_parentid[b]:
                raise InvalidInputError(f"{where}: link {b - 1} ('{name0}') hangs from link {m.body_parentid[b] - 1} "
                                        f"vs link {m0.body_parentid[b] - 1}; all variants must share the kinematic "
                                        "topology of variant 0.")
            if m.body_jntnum[b] != m0.body_jntnum[b]:
                raise InvalidInputError(f"{where}: link {b - 1} ('{name0}') has {m.body_jntnum[b]} joints vs "
                                        f"{m0.body_jntnum[b]}; give every variant the same joints.")
            for i in range(int(m.body_jntnum[b])):
                j, j0 = int(m.body_jntadr[b]) + i, int(m0.body_jntadr[b]) + i
                (n, t, d), (n0, t0, d0) = _joint_desc(m, j), _joint_desc(m0, j0)
                generated = n.endswith("_baselink_joint") and n0.endswith("_baselink_joint")  # primitives', meshes'
                if n != n0 and not generated:  # Genesis keeps variant 0's joints: names from files must match
                    raise InvalidInputError(f"{where}: joint {i} of link '{name0}' is named '{n}' vs '{n0}'; all "
                                            "variants must have the same joint names.")
                if t != t0 or d != d0:
                    raise InvalidInputError(f"{where}: joint '{n0}' is of type {t} ({d} dofs) vs {t0} ({d0} dofs); "
                                            "all variants must have the same joint types and dof counts.")


def check_same_options(labels: list[str], options: list[dict]) -> None:
    """The variants' files must give the same `<option>`s (`compose.file_options`): the scene model has one."""
    for k, opt in enumerate(options[1:], start=1):
        if opt != options[0]:
            diff = sorted(set(opt.items()) ^ set(options[0].items()))
            raise InvalidInputError(f"heterogeneous entity: variant {k} ({labels[k]}) and variant 0 ({labels[0]}) "
                                    f"give different <option>s {diff}; make the files' <option>s agree.")


def _copy(dst, src, attrs) -> None:
    for a in attrs:
        setattr(dst, a, getattr(src, a))


def _mesh_file(spec: mujoco.MjSpec, file: str) -> str:
    """A mesh file path that resolves from any spec: absolute, from the spec's model directory and meshdir."""
    if not file or os.path.isabs(file):
        return file
    return os.path.abspath(os.path.join(spec.modelfiledir or "", spec.meshdir or "", file))


def merge_specs(labels: list[str], specs: list[mujoco.MjSpec], models: list[mujoco.MjModel], scales: list[float]) \
        -> tuple[mujoco.MjSpec, np.ndarray]:
    """The structure spec: a copy of variant 0's spec with the geoms of each other variant added to the
    corresponding bodies (after variant 0's own), every body's inertial fixed to variant 0's compiled one.

    `models[k]` is `specs[k]` compiled alone, `scales[k]` its MJCF scale (1 for other morphs): geoms of another
    scale get their compiled sizes and poses at build (`patch_geoms`). Returns (spec, counts `(n_variants, nbody)`
    int: geoms each variant gives each body, world first). Meshes are copied under the names `v<k>/<name>`, named
    geoms likewise."""
    struct = specs[0].copy()
    struct.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_FALSE
    m0, nbody = models[0], models[0].nbody
    bodies = lambda spec: list(spec.bodies)  # noqa: E731  (world first, in compiled order for a single tree file)
    target = bodies(struct)
    counts = np.zeros((len(specs), nbody), np.int64)
    counts[0] = m0.body_geomnum
    for k, (spec, m) in enumerate(zip(specs[1:], models[1:]), start=1):
        src_bodies = bodies(spec)
        if len(src_bodies) != nbody:
            raise UnsupportedFeatureError(f"heterogeneous entity: variant {k} ({labels[k]}) has bodies MuJoCo "
                                          "merges or drops at compile; use files whose bodies compile as written.")
        meshes = {}
        if len(spec.meshes) and scales[k] != scales[0]:
            raise UnsupportedFeatureError(f"heterogeneous entity: variant {k} ({labels[k]}) has meshes and another "
                                          f"scale than variant 0 ({scales[k]} vs {scales[0]}); give mesh variants "
                                          "the same scale, or scale the files themselves.")
        for mesh in spec.meshes:
            copy = struct.add_mesh(name=f"v{k}/{mesh.name}")
            _copy(copy, mesh, _MESH_ATTRS)
            copy.file = _mesh_file(spec, mesh.file)
            meshes[mesh.name] = copy.name
        for b, (src, dst) in enumerate(zip(src_bodies, target)):
            geoms = list(src.geoms)
            for g in geoms:
                if g.plugin.active:
                    raise UnsupportedFeatureError(f"heterogeneous entity: variant {k} ({labels[k]}) has a geom "
                                                  "plugin; remove it.")
                new = dst.add_geom()
                _copy(new, g, _GEOM_ATTRS)
                _copy(new.alt, g.alt, _ALT_ATTRS)
                new.name = f"v{k}/{g.name}" if g.name else ""
                if g.meshname:
                    new.meshname = meshes[g.meshname]
                new.material = g.material if g.material and any(
                    mat.name == g.material for mat in struct.materials) else ""
            counts[k, b] = len(geoms)
        if not np.array_equal(counts[k], m.body_geomnum):
            raise UnsupportedFeatureError(f"heterogeneous entity: variant {k} ({labels[k]}): MuJoCo moves geoms "
                                          "between bodies at compile (fused static bodies); use files whose bodies "
                                          "compile as written.")
    for b, body in enumerate(target):
        if b == 0:
            continue
        body.explicitinertial = True
        body.mass, body.ipos, body.iquat = float(m0.body_mass[b]), m0.body_ipos[b].tolist(), m0.body_iquat[b].tolist()
        body.inertia, body.fullinertia = m0.body_inertia[b].tolist(), [float("nan")] + [0.0] * 5
    return struct, counts


# (not geom_solref: a time constant does not scale, and the scene may set it: RigidOptions.constraint_timeconst)
_GEOM_PATCH = ("geom_size", "geom_pos", "geom_quat", "geom_rbound", "geom_aabb", "geom_solimp", "geom_solmix",
               "geom_margin", "geom_gap", "geom_friction", "geom_priority", "geom_condim", "geom_contype",
               "geom_conaffinity", "geom_rgba", "geom_group")


def patch_geoms(m: mujoco.MjModel, body_ids: np.ndarray, models: list[mujoco.MjModel], counts: np.ndarray) -> None:
    """Give the scene model `m` each variant's compiled geom sizes, poses and contact parameters (`_GEOM_PATCH`,
    from `models[k]`, the variant compiled alone): a variant's MJCF `scale` is a compile-time frame of its own spec
    (it scales sizes, positions, margins, solimp widths, ...), which geoms copied into variant 0's spec do not carry.
    `body_ids (L,)`: the entity's bodies in `m`."""
    for i, b in enumerate(body_ids):
        start = int(m.body_geomadr[b])
        for k, vm in enumerate(models):
            n, src = int(counts[k, 1 + i]), int(vm.body_geomadr[1 + i])
            if n:
                for name in _GEOM_PATCH:
                    getattr(m, name)[start:start + n] = getattr(vm, name)[src:src + n]
            start += n


def variant_models(specs: list[mujoco.MjSpec], morphs) -> list[mujoco.MjModel]:
    """Each variant's spec compiled alone at its morph's pose (as `compose` attaches an entity: a world frame at
    `pos`, `quat`): the body frames, masses, inertias, `body_invweight0` and `qpos0` its envs simulate."""
    out = []
    for spec, morph in zip(specs, morphs):
        parent = mujoco.MjSpec()
        _copy_option(parent.option, spec.option)  # equal options: no attach conflict
        frame = parent.worldbody.add_frame(pos=list(morph.pos), quat=list(morph.quat))
        parent.attach(spec.copy(), prefix="variant/", frame=frame)
        out.append(parent.compile())
    return out


def _check_same(labels, models, names, sel_of, what) -> None:
    m0 = models[0]
    for k, m in enumerate(models[1:], start=1):
        for name in names:
            a, a0 = getattr(m, name), getattr(m0, name)
            sel = sel_of(m0)
            if a.shape[0] != a0.shape[0] or not np.array_equal(a[sel], a0[sel]):
                raise UnsupportedFeatureError(
                    f"heterogeneous entity: variant {k} ({labels[k]}) and variant 0 ({labels[0]}) differ in MuJoCo's "
                    f"{name} ({what}), which is not a per-env parameter here; see docs/rigid.md, 'Heterogeneous "
                    "entities', for what may differ.")


def check_supported(labels: list[str], models: list[mujoco.MjModel]) -> None:
    """Raise `UnsupportedFeatureError` where variants differ in a model quantity that has no per-env parameter."""
    m0 = models[0]
    if any((m.actuator_trntype != int(mujoco.mjtTrn.mjTRN_JOINT)).any() for m in models):
        raise UnsupportedFeatureError(f"heterogeneous entity ({labels[0]}, ...): variants with tendon or site "
                                      "actuators are not supported; drive the joints directly.")
    _check_same(labels, models, _SAME_BODY, lambda m: slice(1, None), "per link")
    _check_same(labels, models, _SAME_JNT, lambda m: slice(None), "per joint")
    _check_same(labels, models, _SAME_MODEL, lambda m: slice(None), "dofs, actuators, tendons, equalities")
    hs = [int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)]
    qadr = lambda m: m.jnt_qposadr[np.isin(m.jnt_type, hs)]  # noqa: E731
    _check_same(labels, models, ("qpos0", "qpos_spring"), qadr, "hinge/slide reference positions")


def _mj_value(m: mujoco.MjModel, name: str) -> np.ndarray:
    """`m.<name>`; `dof_stiffness`: the joint stiffness on each hinge/slide dof (0 elsewhere, as `RigidModel`)."""
    if name in ("actuator_gainprm", "actuator_biasprm"):  # the 3 parameters the actuation reads (`RigidModel`)
        return getattr(m, name)[:, :3]
    if name == "actuator_forcerange":  # unlimited: (-inf, inf), as `params.default_params`
        inf = np.array([-np.inf, np.inf])
        return np.where(m.actuator_forcelimited[:, None] > 0, m.actuator_forcerange, inf)
    if name != "dof_stiffness":
        return getattr(m, name)
    hs = np.isin(m.jnt_type, [int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)])
    out = np.zeros(m.nv)
    out[m.jnt_dofadr[hs]] = m.jnt_stiffness[hs]
    return out


def variant_params(params, model, parent: np.ndarray, entity_models: list[tuple], B: int, device, dtype) -> dict:
    """Per-env `RigidParams` fields `(B, ...)` for the heterogeneous entities: `entity_models` holds
    `(body_ids (L,), dof_ids (D,), actuator_ids (U,), models, envs_variant (B,))` per entity (ids in the scene).
    Returns the primary fields to set and the build-time ones (`body_ipos0`, `body_iquat`, `dof_invweight`, `lim_*`,
    `body_mass0`, `subtree_mass0`); `model` is the scene's `RigidModel`, `parent (nb,)` its MuJoCo `body_parentid`."""
    fields = {"link_mass": ("body", "body_mass"), "link_inertia": ("body", "body_inertia"),
              "link_invweight": ("body", "body_invweight0"), "body_pos": ("body", "body_pos"),
              "body_quat": ("body", "body_quat"), "body_ipos0": ("body", "body_ipos"),
              "body_iquat": ("body", "body_iquat"), "dof_invweight": ("dof", "dof_invweight0"),
              "dof_armature": ("dof", "dof_armature"), "dof_damping": ("dof", "dof_damping"),
              "dof_stiffness": ("dof", "dof_stiffness"), "dof_frictionloss": ("dof", "dof_frictionloss"),
              "gainprm": ("act", "actuator_gainprm"), "biasprm": ("act", "actuator_biasprm"),
              "forcerange": ("act", "actuator_forcerange")}
    out, raw = {}, {}
    for name, (kind, mj_name) in fields.items():
        base = {"body_ipos0": params.body_ipos, "body_iquat": model.body_iquat[None],
                "dof_invweight": model.dof_invweight0[None]}.get(name, getattr(params, name, None))
        rows = base.detach().expand(B, *base.shape[1:]).cpu().numpy().astype(np.float64).copy()
        for body_ids, dof_ids, act_ids, models, envs_variant in entity_models:
            ids = {"body": body_ids, "dof": dof_ids, "act": act_ids}[kind]
            if not len(ids):
                continue
            local = np.arange(1, len(body_ids) + 1) if kind == "body" else np.arange(len(ids))
            values = np.stack([_mj_value(m, mj_name)[local] for m in models])  # (n_variants, n, ...)
            rows[:, ids] = values[envs_variant]
        raw[name], out[name] = rows, torch.as_tensor(rows, device=device).to(dtype)
    if model.nlimit:
        out.update(_limit_params(model, entity_models, B, device, dtype))
    mass = raw["link_mass"]  # float64; the subtree masses as `model.build_model` sums them
    subtree = _subtree_matrix(parent)
    out["body_mass0"], out["subtree_mass0"] = out["link_mass"], torch.as_tensor(
        np.stack([subtree @ row for row in mass]), device=device).to(dtype)
    return out


def _subtree_matrix(parent: np.ndarray) -> np.ndarray:
    """`(nb, nb)`: 1 where body j is in the subtree of body i (`build_model`'s matrix)."""
    nb = len(parent)
    subtree = np.zeros((nb, nb))
    for b in range(nb):
        c = b
        while True:
            subtree[c, b] = 1.0
            if c == 0:
                break
            c = int(parent[c])
    return subtree


def _limit_params(model, entity_models: list[tuple], B: int, device, dtype) -> dict:
    """Per-env joint-limit rows' bounds, margins and solimp `(B, nl, ...)`: each variant's own (an MJCF `scale`
    scales a slide joint's range and margin and a limit's solimp width), its rows in the scene's row order."""
    from .model import build_model

    lim_dof = model.lim_dof.cpu().numpy()
    out = {n: getattr(model, n)[None].expand(B, *getattr(model, n).shape).cpu().numpy().astype(np.float64).copy()
           for n in ("lim_value", "lim_margin", "lim_solimp")}
    for _, dof_ids, _, models, envs_variant in entity_models:
        rows = np.nonzero(np.isin(lim_dof, dof_ids))[0]
        if not len(rows):
            continue
        built = [build_model(m, "cpu", torch.float64) for m in models]
        for name in out:
            values = np.stack([getattr(b, name).numpy() for b in built])
            if values.shape[1] != len(rows):
                raise UnsupportedFeatureError("heterogeneous entity: its variants limit different joints; give every "
                                              "variant the same limited joints.")
            out[name][:, rows] = values[envs_variant]
    return {n: torch.as_tensor(v, device=device).to(dtype) for n, v in out.items()}


def geoms_env_active(ngeom: int, entity_geoms: list[tuple], B: int) -> np.ndarray:
    """`(B, ngeom)` bool: the geoms each env collides and draws. `entity_geoms` holds `(geom_ids (G,) in the scene
    model, variant of each (G,), envs_variant (B,))` per heterogeneous entity; other geoms are active everywhere."""
    active = np.ones((B, ngeom), bool)
    for geom_ids, geom_variant, envs_variant in entity_geoms:
        active[:, geom_ids] = geom_variant[None, :] == envs_variant[:, None]
    return active


def pair_env_active(cm, active: torch.Tensor) -> torch.Tensor:
    """`(B, npair)` bool: candidate pairs (numbered group by group, as `ContactModel`) whose two geoms are active."""
    g1 = torch.cat([g.geom1 for g in cm.groups])
    g2 = torch.cat([g.geom2 for g in cm.groups])
    return active[:, g1] & active[:, g2]


def initial_qpos(qpos: torch.Tensor, entity_qs: list[tuple]) -> torch.Tensor:
    """`qpos (B, nq)` with each heterogeneous entity's entries set to its variants' `qpos0`: `entity_qs` holds
    `(q_ids (Q,), models, envs_variant (B,))` per entity."""
    qpos = qpos.clone()
    for q_ids, models, envs_variant in entity_qs:
        if not len(q_ids):
            continue
        values = np.stack([m.qpos0[:len(q_ids)] for m in models])[envs_variant]
        qpos[:, torch.as_tensor(q_ids, device=qpos.device)] = torch.as_tensor(values, device=qpos.device).to(qpos.dtype)
    return qpos

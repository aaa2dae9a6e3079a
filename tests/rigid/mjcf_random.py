"""Seeded generator of random MJCF kinematic trees used as parity test models.

``random_mjcf(seed, ...)`` returns an MJCF XML string describing a random tree of
bodies with explicit (physically valid) inertials, hinge/slide/ball/free joints with
random armature/damping/stiffness/limits, contact-free primitive geoms, fixed tendons
and a mix of actuator kinds (motor, position[+kv], velocity, general fixed/affine).
The output is a pure function of the arguments (``numpy.random.default_rng(seed)``).

``random_state(model, rng)`` samples a random ``(qpos, qvel, ctrl)`` for a compiled
``mujoco.MjModel`` (limits are sometimes violated slightly so that limit
constraints activate).

Conventions of the generated XML (useful for tests that inspect it):
  * bodies are named ``b{i}``, joints ``j{k}``, geoms ``g{i}``, tendons ``t{k}``,
    actuators ``a{k}``;
  * every actuator name ends with the kind that generated it:
    ``a{k}_motor``, ``a{k}_position``, ``a{k}_velocity``, ``a{k}_general_fixed``,
    ``a{k}_general_affine`` so the generating kind is recoverable after compilation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_mjcf", "random_state", "ACTUATOR_KINDS", "JOINT_TYPES"]

JOINT_TYPES = ("hinge", "slide", "ball", "free")
ACTUATOR_KINDS = ("motor", "position", "velocity", "general_fixed", "general_affine")

# Probabilities / ranges (kept fairly tame so that 200 implicitfast steps at dt=2ms
# from a random state stay finite for every seed).
_P_FREE_BASE = 0.5
_P_ZERO_JOINTS = 0.08
_P_MULTI_JOINT = 0.2
_P_LIMITED = 0.5
_P_STIFFNESS = 0.6
_P_ACTUATED = 0.55
_SINGLE_JOINT_WEIGHTS = {"hinge": 0.5, "slide": 0.25, "ball": 0.25}


def _f(x) -> str:
    """Deterministic compact float formatting."""
    x = float(x)
    if x == 0.0:
        return "0"
    return f"{x:.9g}"


def _vec(v) -> str:
    return " ".join(_f(x) for x in v)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    while True:
        v = rng.normal(size=n)
        nrm = np.linalg.norm(v)
        if nrm > 1e-3:
            return v / nrm


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _random_inertia(rng: np.random.Generator, mass: float) -> np.ndarray:
    """Full inertia of a solid ellipsoid with random semi-axes and orientation.

    Principal moments of an ellipsoid always satisfy the triangle inequality
    strictly (p_i + p_j - p_k = 2 m/5 a_k^2 > 0), and I = R diag(p) R^T.
    """
    a = rng.uniform(0.05, 0.25, size=3)
    a2 = a * a
    p = mass / 5.0 * np.array([a2[1] + a2[2], a2[0] + a2[2], a2[0] + a2[1]])
    R = _quat_to_mat(_unit(rng, 4))
    inertia = R @ np.diag(p) @ R.T
    return 0.5 * (inertia + inertia.T)


def _ctrlrange(rng, lo, hi):
    return f' ctrlrange="{_f(lo)} {_f(hi)}"'


def _actuator_xml(rng: np.random.Generator, idx: int, kind: str, trn: str,
                  rng_hint: tuple[float, float] | None) -> str:
    """One actuator element. ``trn`` is e.g. 'joint="j3"' or 'tendon="t0"'.

    ``rng_hint``: a (lo, hi) range of the transmission length (joint range when
    limited), used for position-actuator ctrlranges.
    """
    name = f"a{idx}_{kind}"
    gear = rng.uniform(0.5, 2.0)
    attrs = f'name="{name}" {trn} gear="{_f(gear)}"'
    has_ctrlrange = rng.random() < 0.5
    has_forcerange = rng.random() < 0.35
    fmax = rng.uniform(2.0, 20.0)
    if kind == "motor":
        body = f"<motor {attrs}"
        if has_ctrlrange:
            c = rng.uniform(0.5, 3.0)
            body += _ctrlrange(rng, -c, c)
    elif kind == "position":
        kp = rng.uniform(1.0, 20.0)
        body = f'<position {attrs} kp="{_f(kp)}"'
        if rng.random() < 0.6:
            body += f' kv="{_f(rng.uniform(0.1, 2.0))}"'
        if has_ctrlrange:
            if rng_hint is not None:
                lo, hi = rng_hint
            else:
                c = rng.uniform(0.3, 1.5)
                lo, hi = -c, c
            body += _ctrlrange(rng, lo, hi)
    elif kind == "velocity":
        kv = rng.uniform(0.1, 3.0)
        body = f'<velocity {attrs} kv="{_f(kv)}"'
        if has_ctrlrange:
            c = rng.uniform(0.5, 3.0)
            body += _ctrlrange(rng, -c, c)
    elif kind == "general_fixed":
        k = rng.uniform(1.0, 15.0)
        kv = rng.uniform(0.0, 1.5)
        b0 = rng.uniform(-0.5, 0.5)
        body = (f'<general {attrs} gaintype="fixed" biastype="affine" '
                f'gainprm="{_f(k)}" biasprm="{_f(b0)} {_f(-k)} {_f(-kv)}"')
        if has_ctrlrange:
            c = rng.uniform(0.5, 2.0)
            body += _ctrlrange(rng, -c, c)
    elif kind == "general_affine":
        g = (rng.uniform(0.5, 3.0), rng.uniform(-0.5, 0.5), rng.uniform(-0.1, 0.1))
        b = (rng.uniform(-1.0, 1.0), rng.uniform(-5.0, 0.0), rng.uniform(-1.0, -0.1))
        body = (f'<general {attrs} gaintype="affine" biastype="affine" '
                f'gainprm="{_vec(g)}" biasprm="{_vec(b)}"')
        if has_ctrlrange:
            c = rng.uniform(0.5, 2.0)
            body += _ctrlrange(rng, -c, c)
    else:  # pragma: no cover
        raise ValueError(kind)
    if has_forcerange:
        body += f' forcerange="{_f(-fmax)} {_f(fmax)}"'
    return body + "/>"


def random_mjcf(seed: int, *, n_bodies: int | None = None,
                joint_types=("hinge", "slide", "ball", "free"),
                limits: bool = True, actuators: bool = True, tendons: bool = True,
                stiffness: bool = True, multi_joint: bool = True,
                float_base: bool | None = None) -> str:
    """Return a random MJCF model (XML string) determined by ``seed`` and the options.

    Args:
      seed: RNG seed (``numpy.random.default_rng(seed)``); same arguments -> same string.
      n_bodies: number of bodies (default: random in [2, 8]).
      joint_types: allowed joint types, subset of ("hinge", "slide", "ball", "free").
      limits: allow joint ranges (with random solref/solimp/margin) on hinge/slide joints.
      actuators: add actuators (joint and, with ``tendons``, tendon transmissions).
      tendons: add 1-2 fixed tendons over 2-3 hinge/slide joints (if >= 2 exist).
      stiffness: allow joint stiffness/springref (hinge/slide) and tendon stiffness.
      multi_joint: allow bodies with 2-3 hinge/slide joints.
      float_base: True forces a free joint on the first body, False forbids it,
        None picks it with probability 0.5 if "free" is in ``joint_types``.
    """
    joint_types = tuple(joint_types)
    unknown = set(joint_types) - set(JOINT_TYPES)
    if unknown:
        raise ValueError(f"unknown joint types: {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    if n_bodies is None:
        n_bodies = int(rng.integers(2, 9))
    if n_bodies < 1:
        raise ValueError("n_bodies must be >= 1")

    # --- tree topology: parent[i] in {-1 (world), 0..i-1} -----------------------
    parent = [-1]
    for i in range(1, n_bodies):
        r = rng.random()
        if r < 0.15:
            parent.append(-1)
        elif r < 0.6:
            parent.append(i - 1)  # chain
        else:
            parent.append(int(rng.integers(0, i)))  # branch
    children = {i: [] for i in range(-1, n_bodies)}
    for i, p in enumerate(parent):
        children[p].append(i)

    # --- free base -----------------------------------------------------------
    draw_free = rng.random()
    if float_base is None:
        free_base = ("free" in joint_types) and draw_free < _P_FREE_BASE
    else:
        free_base = bool(float_base)

    single_types = [t for t in ("hinge", "slide", "ball") if t in joint_types]
    single_w = np.array([_SINGLE_JOINT_WEIGHTS[t] for t in single_types])
    hs_types = [t for t in ("hinge", "slide") if t in joint_types]

    # --- per body joint type lists ------------------------------------------
    body_joints: list[list[str]] = []
    for i in range(n_bodies):
        r_zero, r_multi = rng.random(), rng.random()
        if i == 0 and free_base:
            body_joints.append(["free"])
        elif not single_types or r_zero < _P_ZERO_JOINTS:
            body_joints.append([])
        elif multi_joint and hs_types and r_multi < _P_MULTI_JOINT:
            k = int(rng.integers(2, 4))
            body_joints.append([hs_types[int(rng.integers(len(hs_types)))] for _ in range(k)])
        else:
            t = single_types[int(rng.choice(len(single_types), p=single_w / single_w.sum()))]
            body_joints.append([t])

    # --- emit bodies -----------------------------------------------------------
    joint_info: list[dict] = []  # name, type, limited range
    body_xml: dict[int, list[str]] = {}
    for i in range(n_bodies):
        pos = rng.uniform(-0.3, 0.3, size=3)
        quat = _unit(rng, 4)
        mass = rng.uniform(0.1, 5.0)
        ipos = rng.uniform(-0.1, 0.1, size=3)
        inertia = _random_inertia(rng, mass)
        full = (inertia[0, 0], inertia[1, 1], inertia[2, 2],
                inertia[0, 1], inertia[0, 2], inertia[1, 2])
        lines = [f'<body name="b{i}" pos="{_vec(pos)}" quat="{_vec(quat)}">',
                 f'  <inertial pos="{_vec(ipos)}" mass="{_f(mass)}" fullinertia="{_vec(full)}"/>']
        for jt in body_joints[i]:
            jname = f"j{len(joint_info)}"
            armature = rng.uniform(0.0, 0.1)
            damping = rng.uniform(0.0, 2.0)
            attrs = f'name="{jname}" type="{jt}"'
            rng_lim = None
            if jt == "free":
                attrs += f' armature="{_f(armature)}" damping="{_f(0.05 * damping)}"'
            else:
                jpos = rng.uniform(-0.1, 0.1, size=3)
                attrs += f' pos="{_vec(jpos)}"'
                if jt != "ball":
                    attrs += f' axis="{_vec(_unit(rng, 3))}"'
                attrs += f' armature="{_f(armature)}" damping="{_f(damping)}"'
            if jt in ("hinge", "slide"):
                scale = 1.0 if jt == "hinge" else 0.2
                r_stiff, r_lim = rng.random(), rng.random()
                if stiffness and r_stiff < _P_STIFFNESS:
                    k = rng.uniform(0.0, 5.0)
                    sref = rng.uniform(-0.5, 0.5) * scale
                    attrs += f' stiffness="{_f(k)}" springref="{_f(sref)}"'
                if limits and r_lim < _P_LIMITED:
                    if jt == "hinge":
                        lo, hi = rng.uniform(-1.5, -0.2), rng.uniform(0.2, 1.5)
                    else:
                        lo, hi = rng.uniform(-0.3, -0.05), rng.uniform(0.05, 0.3)
                    solref = (rng.uniform(0.01, 0.05), rng.uniform(0.5, 1.5))
                    dmin = rng.uniform(0.8, 0.95)
                    solimp = (dmin, rng.uniform(max(0.95, dmin), 0.999),
                              rng.uniform(0.001, 0.05), 0.5, 2.0)
                    margin = 0.0 if rng.random() < 0.6 else rng.uniform(0.0, 0.05) * scale
                    attrs += (f' range="{_f(lo)} {_f(hi)}" solreflimit="{_vec(solref)}"'
                              f' solimplimit="{_vec(solimp)}"')
                    if margin > 0:
                        attrs += f' margin="{_f(margin)}"'
                    rng_lim = (lo, hi)
            lines.append(f"  <joint {attrs}/>")
            joint_info.append({"name": jname, "type": jt, "range": rng_lim})
        # one primitive geom, contacts disabled
        gtype = ("sphere", "capsule", "box")[int(rng.integers(3))]
        if gtype == "sphere":
            size = [rng.uniform(0.02, 0.08)]
        elif gtype == "capsule":
            size = [rng.uniform(0.02, 0.05), rng.uniform(0.03, 0.12)]
        else:
            size = rng.uniform(0.02, 0.08, size=3)
        lines.append(f'  <geom name="g{i}" type="{gtype}" size="{_vec(size)}" '
                     f'contype="0" conaffinity="0"/>')
        body_xml[i] = lines

    def emit(i: int, indent: str) -> list[str]:
        head, *rest = body_xml[i]
        out = [indent + head] + [indent + ln for ln in rest]
        for c in children[i]:
            out += emit(c, indent + "  ")
        out.append(indent + "</body>")
        return out

    world_lines: list[str] = []
    for c in children[-1]:
        world_lines += emit(c, "    ")

    hs_joints = [j for j in joint_info if j["type"] in ("hinge", "slide")]

    # --- tendons -------------------------------------------------------------
    tendon_lines: list[str] = []
    tendon_names: list[str] = []
    if tendons and len(hs_joints) >= 2:
        n_t = 1 if rng.random() < 0.6 else 2
        for t in range(n_t):
            k = min(int(rng.integers(2, 4)), len(hs_joints))
            sel = sorted(rng.choice(len(hs_joints), size=k, replace=False).tolist())
            attrs = f'name="t{t}"'
            if rng.random() < 0.5:
                attrs += f' damping="{_f(rng.uniform(0.0, 1.0))}"'
            r_st = rng.random()
            if stiffness and r_st < 0.5:
                attrs += f' stiffness="{_f(rng.uniform(0.0, 3.0))}"'
            tendon_lines.append(f"    <fixed {attrs}>")
            for s in sel:
                coef = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5)
                tendon_lines.append(f'      <joint joint="{hs_joints[s]["name"]}" coef="{_f(coef)}"/>')
            tendon_lines.append("    </fixed>")
            tendon_names.append(f"t{t}")

    # --- actuators -------------------------------------------------------------
    act_lines: list[str] = []
    if actuators:
        for j in hs_joints:
            r_act, r_kind = rng.random(), int(rng.integers(len(ACTUATOR_KINDS)))
            if r_act < _P_ACTUATED:
                act_lines.append("    " + _actuator_xml(
                    rng, len(act_lines), ACTUATOR_KINDS[r_kind], f'joint="{j["name"]}"', j["range"]))
        for t, tname in enumerate(tendon_names):
            r_act, r_kind = rng.random(), int(rng.integers(len(ACTUATOR_KINDS)))
            if t == 0 or r_act < 0.5:
                act_lines.append("    " + _actuator_xml(
                    rng, len(act_lines), ACTUATOR_KINDS[r_kind], f'tendon="{tname}"', None))

    xml = [f'<mujoco model="random_{seed}">',
           '  <compiler angle="radian" autolimits="true"/>',
           '  <option gravity="0 0 -9.81"/>',
           "  <worldbody>"] + world_lines + ["  </worldbody>"]
    if tendon_lines:
        xml += ["  <tendon>"] + tendon_lines + ["  </tendon>"]
    if act_lines:
        xml += ["  <actuator>"] + act_lines + ["  </actuator>"]
    xml.append("</mujoco>")
    return "\n".join(xml) + "\n"


def random_state(model, rng):
    """Random ``(qpos, qvel, ctrl)`` (float64 numpy arrays) for a compiled ``mujoco.MjModel``.

    * hinge/slide: limited joints sample uniformly in the range widened by 10% of its
      width on each side (so limits are sometimes violated slightly); unlimited hinges
      in [-1.5, 1.5] rad, unlimited slides in [-0.3, 0.3] m;
    * ball/free: random unit quaternions; free positions uniform in [-1, 1] m;
    * qvel ~ N(0, 1);
    * ctrl uniform in ctrlrange when ctrl-limited, else N(0, 1).

    ``rng`` is a ``numpy.random.Generator`` or anything ``default_rng`` accepts.
    """
    import mujoco

    rng = np.random.default_rng(rng)
    qpos = np.array(model.qpos0, dtype=np.float64).copy()
    for j in range(model.njnt):
        jt = int(model.jnt_type[j])
        adr = int(model.jnt_qposadr[j])
        if jt == mujoco.mjtJoint.mjJNT_FREE:
            qpos[adr:adr + 3] = rng.uniform(-1.0, 1.0, size=3)
            qpos[adr + 3:adr + 7] = _unit(rng, 4)
        elif jt == mujoco.mjtJoint.mjJNT_BALL:
            qpos[adr:adr + 4] = _unit(rng, 4)
        else:
            if model.jnt_limited[j]:
                lo, hi = model.jnt_range[j]
                w = hi - lo
                qpos[adr] = rng.uniform(lo - 0.1 * w, hi + 0.1 * w)
            elif jt == mujoco.mjtJoint.mjJNT_HINGE:
                qpos[adr] = rng.uniform(-1.5, 1.5)
            else:
                qpos[adr] = rng.uniform(-0.3, 0.3)
    qvel = rng.normal(size=model.nv)
    ctrl = np.empty(model.nu, dtype=np.float64)
    for a in range(model.nu):
        if model.actuator_ctrllimited[a]:
            lo, hi = model.actuator_ctrlrange[a]
            ctrl[a] = rng.uniform(lo, hi)
        else:
            ctrl[a] = rng.normal()
    return qpos, qvel, ctrl

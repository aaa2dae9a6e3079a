"""One MuJoCo model from a scene's rigid entities, with the files' `<option>`s resolved against the scene's options.

Every `<option>` attribute and `<flag>` bit of an MJCF/URDF entity is honoured, has documented no effect here, or
raises `UnsupportedFeatureError` naming it (docs/rigid.md, "Options"). Precedence, per option: a value given
explicitly in `SimOptions` / `RigidOptions` (`is_set`), else the files' value, else the project's default (Genesis'
where the project does not document another). MjSpec cannot tell an attribute written in a file from MuJoCo's
default, so a file "gives" exactly the attributes whose value differs from MuJoCo's default. Two files giving
different values raise `InvalidInputError` unless the scene sets the option explicitly.

The compiled model's `opt` is the resolved one, and every entity's spec is attached with that same option, so
MuJoCo's "Attach conflict" warning cannot arise.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ...errors import InvalidInputError, UnsupportedFeatureError
from ...options import RigidOptions, SimOptions, constraint_solver, integrator
from .timeconst import apply_constraint_timeconst, scene_timeconst

_D, _E = mujoco.mjtDisableBit, mujoco.mjtEnableBit
_DISABLE = {b.name.removeprefix("mjDSBL_").lower(): int(b) for b in _D.__members__.values() if b.name != "mjNDISABLE"}
_ENABLE = {b.name.removeprefix("mjENBL_").lower(): int(b) for b in _E.__members__.values() if b.name != "mjNENABLE"}
_INTEGRATORS = {integrator.Euler: int(mujoco.mjtIntegrator.mjINT_EULER),
                integrator.implicitfast: int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST),
                integrator.RK4: int(mujoco.mjtIntegrator.mjINT_RK4)}
_CONES = {"pyramidal": int(mujoco.mjtCone.mjCONE_PYRAMIDAL), "elliptic": int(mujoco.mjtCone.mjCONE_ELLIPTIC)}
_SOLVERS = {constraint_solver.Newton: int(mujoco.mjtSolver.mjSOL_NEWTON),
            constraint_solver.CG: int(mujoco.mjtSolver.mjSOL_CG)}

# <option> attributes carried in the compiled model and read by the solver or collision detection as they are
_CARRIED = ("ccd_iterations", "ccd_tolerance")
# attributes without effect on what this solver computes, accepted (why: docs/rigid.md, "Options")
_NO_EFFECT = ("jacobian", "magnetic", "noslip_tolerance", "sdf_iterations", "sdf_initpoints", "sleep_tolerance",
              "o_margin", "o_solref", "o_solimp", "o_friction")
_RAISE = {
    "noslip_iterations": "there is no noslip solver; remove the attribute (or set it to 0)",
    "density": "fluid forces are not supported; remove the attribute (or set it to 0)",
    "viscosity": "fluid forces are not supported; remove the attribute (or set it to 0)",
    "wind": "fluid forces are not supported; remove the attribute (or set it to 0 0 0)",
    "disableactuator": "disabling actuator groups is not supported; remove actuatorgroupdisable",
}
# <flag> bits: disabled ones honoured by the solver (contact, limit, gravity also through the scene options)
_FLAGS_HONOURED = ("constraint", "equality", "frictionloss", "limit", "contact", "spring", "damper", "gravity",
                   "clampctrl", "warmstart", "filterparent", "actuation", "eulerdamp", "refsafe")
# disabled bits without effect here: sensors are not computed, the midphase only saves time, nothing auto-resets, the
# solve is monolithic (MuJoCo's island-disabled path) and convex mesh pairs get one contact (multiccd disabled)
_FLAGS_NO_EFFECT = ("sensor", "midphase", "autoreset", "island", "multiccd")
# attribute -> (options object, field) that overrides it when given explicitly
_SCENE = {"integrator": "integrator", "cone": "cone", "impratio": "impratio", "iterations": "iterations",
          "ls_iterations": "ls_iterations", "tolerance": "tolerance", "solver": "constraint_solver",
          "ls_tolerance": "ls_tolerance", "flag contact": "enable_collision", "flag limit": "enable_joint_limit",
          "flag constraint": "disable_constraint"}


def _default_option():
    return mujoco.MjSpec().option


def _attributes(option) -> list[str]:
    return [a for a in dir(option) if not a.startswith("_") and a not in ("disableflags", "enableflags")
            and not callable(getattr(option, a))]


def _plain(value):
    return tuple(float(v) for v in value) if isinstance(value, np.ndarray) else value


def file_options(spec: mujoco.MjSpec) -> dict:
    """What a file's `<option>` gives: `{attribute: value}` for attributes that differ from MuJoCo's default, and
    `{"flag <name>": "disable" | "enable"}` for flag bits that differ."""
    opt, ref = spec.option, _default_option()
    out = {a: _plain(getattr(opt, a)) for a in _attributes(opt) if _plain(getattr(opt, a)) != _plain(getattr(ref, a))}
    for name, bit in _DISABLE.items():
        if (opt.disableflags ^ ref.disableflags) & bit:
            out[f"flag {name}"] = "disable" if opt.disableflags & bit else "enable"
    for name, bit in _ENABLE.items():
        if (opt.enableflags ^ ref.enableflags) & bit:
            out[f"flag {name}"] = "enable" if opt.enableflags & bit else "disable"
    return out


def _scene_given(name: str, sim: SimOptions, rigid: RigidOptions) -> bool:
    """Whether the scene's options set the file attribute `name` explicitly."""
    if name == "timestep":
        return sim.is_set("dt") or rigid.is_set("dt")
    if name in ("gravity", "flag gravity"):
        return sim.is_set("gravity") or (rigid.is_set("gravity") and rigid.gravity is not None)
    return name in _SCENE and rigid.is_set(_SCENE[name])


def _check_supported(name: str, value, label: str) -> None:
    """Raise `UnsupportedFeatureError` for a file attribute the solver cannot honour (not overridden by the scene)."""
    where = f"{label}: <option {name.removeprefix('flag ')}>" if not name.startswith("flag ") else \
        f"{label}: <flag {name.removeprefix('flag ')}=\"{value}\">"
    if name in _RAISE:
        raise UnsupportedFeatureError(f"{where}: {_RAISE[name]}.")
    if name == "integrator" and value not in _INTEGRATORS.values():
        raise UnsupportedFeatureError(f"{where} ({mujoco.mjtIntegrator(value).name}) is not supported; use Euler, "
                                      "implicitfast or RK4, or set RigidOptions(integrator=...).")
    if name == "solver" and value not in _SOLVERS.values():
        raise UnsupportedFeatureError(f"{where} ({mujoco.mjtSolver(value).name}): only the Newton and CG solvers "
                                      "exist; remove the attribute or set RigidOptions(constraint_solver=gs."
                                      "constraint_solver.Newton).")
    if name.startswith("flag "):
        flag = name.removeprefix("flag ")
        if flag in _FLAGS_HONOURED + _FLAGS_NO_EFFECT and value == "disable":
            return
        raise UnsupportedFeatureError(f"{where} is not supported by genesis-torch; remove it.")
    if name not in _RAISE and name not in _SCENE and name not in _CARRIED + _NO_EFFECT + ("timestep", "gravity"):
        raise UnsupportedFeatureError(f"{where} is not supported by genesis-torch; remove it.")


def merge_file_options(entities, sim: SimOptions, rigid: RigidOptions) -> dict:
    """The options the files give, merged over entities (`(label, spec)` pairs), each checked: `{name: value}`.

    Raises `InvalidInputError` when two files give different values for an option the scene does not set, and
    `UnsupportedFeatureError` for an option the solver cannot honour."""
    merged, source = {}, {}
    for label, spec in entities:
        for name, value in file_options(spec).items():
            if _scene_given(name, sim, rigid):
                continue  # the scene's explicit value wins: nothing of the file's is used
            _check_supported(name, value, label)
            if name in merged and merged[name] != value:
                fix = " or set the option explicitly in SimOptions/RigidOptions" if name in _SCENE or name in (
                    "timestep", "gravity", "flag gravity") else ""
                raise InvalidInputError(f"<option> conflict: {source[name]} gives {name}={merged[name]!r}, {label} "
                                        f"gives {name}={value!r}; make the files agree{fix}.")
            merged.setdefault(name, value)
            source.setdefault(name, label)
    return merged


def resolve(files: dict, sim: SimOptions, rigid: RigidOptions) -> tuple[SimOptions, RigidOptions]:
    """The scene's options with the files' merged values (`merge_file_options`) filled in where not given."""
    sim_values, rigid_values = {}, {}
    if rigid.is_set("dt") and rigid.dt is not None and not sim.is_set("dt"):
        sim_values["dt"] = rigid.dt * sim.substeps
    elif "timestep" in files:  # the file's timestep is the integration step: the scene substep
        sim_values["dt"] = files["timestep"] * sim.substeps
    if "gravity" in files:
        rigid_values["gravity"] = files["gravity"]
    by_value = {"integrator": {v: k for k, v in _INTEGRATORS.items()}, "cone": {v: k for k, v in _CONES.items()},
                "solver": {v: k for k, v in _SOLVERS.items()}}
    for name in ("integrator", "cone", "impratio", "iterations", "ls_iterations", "tolerance", "ls_tolerance",
                 "solver"):
        if name in files:
            value = files[name]
            rigid_values[_SCENE[name]] = by_value[name][value] if name in by_value else value
    for flag, field in (("flag contact", "enable_collision"), ("flag limit", "enable_joint_limit")):
        if flag in files:
            rigid_values[field] = files[flag] != "disable"
    if "flag constraint" in files:
        rigid_values["disable_constraint"] = files["flag constraint"] == "disable"
    return sim.resolved(**sim_values), rigid.resolved(**rigid_values)


def scene_option(files: dict, sim: SimOptions, rigid: RigidOptions):
    """The compiled model's `mjOption`: MuJoCo's defaults, the files' carried attributes and flags, and the resolved
    scene options (`sim`, `rigid` from `resolve`)."""
    opt = _default_option()
    for name, value in files.items():
        if not name.startswith("flag ") and name not in _SCENE and name not in ("timestep", "gravity"):
            setattr(opt, name, np.array(value) if isinstance(value, tuple) else value)
        elif name.startswith("flag ") and value == "disable":
            opt.disableflags |= _DISABLE[name.removeprefix("flag ")]
    opt.timestep = sim.substep_dt
    opt.gravity = list(rigid.gravity or sim.gravity)  # an explicit gravity also overrides a file's gravity flag
    opt.integrator, opt.cone = _INTEGRATORS[rigid.integrator], _CONES[rigid.cone]
    opt.solver = _SOLVERS[rigid.constraint_solver]
    opt.impratio, opt.iterations, opt.ls_iterations = rigid.impratio, rigid.iterations, rigid.ls_iterations
    opt.tolerance, opt.ls_tolerance = rigid.tolerance, rigid.ls_tolerance
    for field, flag in (("enable_collision", "contact"), ("enable_joint_limit", "limit")):
        opt.disableflags = (opt.disableflags & ~_DISABLE[flag]) | (0 if getattr(rigid, field) else _DISABLE[flag])
    bit = _DISABLE["constraint"]
    opt.disableflags = (opt.disableflags & ~bit) | (bit if rigid.disable_constraint else 0)
    return opt


def _copy_option(dst, src) -> None:
    for a in _attributes(src) + ["disableflags", "enableflags"]:
        setattr(dst, a, getattr(src, a))


def compose(entities, sim: SimOptions, rigid: RigidOptions):
    """Attach the entities' specs into one model.

    Args:
        entities: `(label, spec, pos (3,), quat (4,) wxyz, prefix, has_options, takes_timeconst)` per rigid entity;
            `has_options` is False for primitives (Box, Sphere, Plane, ...), which carry no options;
            `takes_timeconst` is True for the morphs whose constraints take the scene's `constraint_timeconst`
            (all but MJCF files: `timeconst.py`). The specs are not modified.
    Returns:
        (compiled `mujoco.MjModel`, resolved `SimOptions`, resolved `RigidOptions`).
    """
    files = merge_file_options([(e[0], e[1]) for e in entities if e[5]], sim, rigid)
    sim_r, rigid_r = resolve(files, sim, rigid)
    timeconst = scene_timeconst(rigid_r.constraint_timeconst, sim_r.substep_dt)
    parent = mujoco.MjSpec()
    _copy_option(parent.option, scene_option(files, sim_r, rigid_r))
    for label, spec, pos, quat, prefix, _, takes_timeconst in entities:
        child = spec.copy()
        if takes_timeconst:
            apply_constraint_timeconst(child, timeconst)
        _copy_option(child.option, parent.option)  # equal options: no attach conflict
        frame = parent.worldbody.add_frame(pos=list(pos), quat=list(quat))
        parent.attach(child, prefix=prefix, frame=frame)
    return parent.compile(), sim_r, rigid_r

"""Genesis' scene-wide constraint time constant (`RigidOptions.constraint_timeconst`) on the models it applies to.

Genesis gives every constraint whose model states no time constant of its own the scene's `constraint_timeconst`
(default 0.01 s): the geoms of its primitives, meshes, terrains and URDF files, and the joint limits and mimic
equalities of URDF files; MJCF files keep the `solref` they compile to (genesis-world 1.4.5,
`rigid_solver._sanitize_sol_params` with `gu.default_solver_params()` for those morphs). Here the value is MuJoCo's
`solref[0]` (time constant, s) of those elements, with `solref[1]` (damping ratio) left at 1 as Genesis' default.

As Genesis, the value given is first raised to twice the substep (Genesis' `TIME_CONSTANT_SAFETY_FACTOR`; its
`_sol_default_timeconst`), and `None` means that floor (as stiff as the timestep allows). The solver then also floors
each contact's mixed time constant at `2 dt` (MuJoCo's `refsafe`, on unless a file disables it), where Genesis floors
contacts too.
"""

from __future__ import annotations

import mujoco

from ...errors import InvalidInputError


def scene_timeconst(timeconst: float | None, substep_dt: float) -> float:
    """The time constant (s) the elements without their own get: `max(timeconst, 2 substep_dt)`, or the floor."""
    if timeconst is not None and not timeconst > 0:
        raise InvalidInputError(f"constraint_timeconst={timeconst!r}: expected a positive number of seconds or None.")
    floor = 2.0 * float(substep_dt)
    return floor if timeconst is None else max(float(timeconst), floor)


def apply_constraint_timeconst(spec: mujoco.MjSpec, timeconst: float) -> None:
    """Set `solref[0]` of every geom, joint limit and equality constraint of `spec` to `timeconst` s (damping ratios
    kept). Modifies `spec` (the scene's copy of one entity's spec)."""
    for geom in spec.geoms:
        geom.solref = [timeconst, float(geom.solref[1])]
    for joint in spec.joints:
        joint.solref_limit = [timeconst, float(joint.solref_limit[1])]
    for eq in spec.equalities:
        eq.solref = [timeconst, float(eq.solref[1])]

"""`gs.morphs.MJCF(scale)` and `gs.morphs.URDF(scale, merge_fixed_links, links_to_keep, fixed)`.

Scaling is checked against models scaled by hand: `model_xml(s)` writes every number of the file multiplied by the
factor of its dimension (L^a M^b T^c -> s^a (s^3)^b, docs/rigid.md "Scaling and merging"), so `model_xml(1)` is the
file and `model_xml(s)` its hand-scaled copy. Every float array of the two compiled models is compared, to
`REL` relative to the array's largest entry; a float64 scene of the scaled morph steps in parity with MuJoCo on the
hand-scaled model. Merging is checked against the structure Genesis' `merge_fixed_links` gives (link names, merged
masses) and against MuJoCo compiling a URDF whose fixed links were merged by hand.

Measured (MuJoCo 4.0.1): the scaled and hand-scaled MJCF compile bit-equal (relative difference 0.0 on all float
arrays, s = 0.5 and 3); scene vs MuJoCo on the hand-scaled model 7e-15 (qpos) and 1.4e-13 (qvel) over 100 steps.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.errors import IncompatibleCheckpointError, InvalidInputError

trimesh = pytest.importorskip("trimesh")

REL = 1e-12  # compiled arrays: max |scaled - hand-scaled| / max |hand-scaled|
PARITY = 1e-9  # scene vs MuJoCo on the hand-scaled model, qpos / qvel over STEPS float64 steps (smooth dynamics)
STEPS = 100
SCALES = (0.5, 3.0)


@pytest.fixture(autouse=True)
def _f64():
    gs.init(backend=gs.cpu, precision="64")
    yield
    gs.destroy()


def write_mesh(folder) -> str:
    """A tetrahedron OBJ (edges 0.1 m along the axes) written with trimesh; its path."""
    tet = trimesh.Trimesh([(0, 0, 0), (0.1, 0, 0), (0, 0.1, 0), (0, 0, 0.1)], [(0, 2, 1), (0, 1, 3), (0, 3, 2),
                                                                             (1, 2, 3)], process=False)
    path = f"{folder}/tet.obj"
    tet.export(path)
    return path


def model_xml(s: float, mesh: str) -> str:
    """The test model with every quantity multiplied by its dimension's factor (written out by hand, per attribute):
    L lengths (s), M masses and slide stiffness/damping/armature/kp (s^3), F forces (s^4), R rotational inertias,
    torques, motor gains and hinge stiffness/damping/armature (s^5). Angles, times, gears and ratios stay."""
    def f(*v, k):
        return " ".join(repr(x * k) for x in v)

    def L(*v): return f(*v, k=s)  # noqa: E704
    def M(*v): return f(*v, k=s ** 3)  # noqa: E704
    def F(*v): return f(*v, k=s ** 4)  # noqa: E704
    def R(*v): return f(*v, k=s ** 5)  # noqa: E704

    return f"""<mujoco model="scaled">
  <compiler angle="radian"/>
  <asset><mesh name="tet" file="{mesh}" scale="{L(1, 1, 1)}"/></asset>
  <default>
    <geom solimp="0.9 0.95 {L(0.001)} 0.5 2" friction="1 {L(0.005, 0.0001)}"/>
    <tendon width="{L(0.003)}"/>
    <default class="slide"><joint type="slide" solimplimit="0.9 0.95 {L(0.001)} 0.5 2"
      solimpfriction="0.9 0.95 {L(0.001)} 0.5 2"/></default>
  </default>
  <worldbody>
    <light pos="{L(0, 0, 3)}" range="{L(10)}" bulbradius="{L(0.02)}"/>
    <camera name="cam" pos="{L(1, -1, 1)}" xyaxes="1 0 0 0 1 0" ipd="{L(0.068)}"/>
    <geom name="floor" type="plane" size="{L(2, 2, 0.1)}"/>
    <site name="world_site" pos="{L(0.2, 0.3, 0.05)}" size="{L(0.02)}"/>
    <body name="cart" pos="{L(0, 0, 1)}">
      <joint name="slide" class="slide" axis="1 0 0" range="{L(-0.3, 0.3)}" damping="{M(0.5)}" stiffness="{M(2)}"
        springref="{L(0.05)}" armature="{M(0.01)}" frictionloss="{F(0.1)}" margin="{L(0.01)}"/>
      <geom name="box" type="box" size="{L(0.1, 0.05, 0.03)}" margin="{L(0.002)}" gap="{L(0.001)}"/>
      <site name="cart_site" pos="{L(0.1, 0, 0)}" size="{L(0.01)}"/>
      <body name="pole" pos="{L(0, 0, 0.05)}">
        <joint name="hinge" axis="0 1 0" damping="{R(0.02)}" armature="{R(0.001)}" range="-1 1"/>
        <inertial pos="{L(0, 0, 0.2)}" mass="{M(0.4)}" diaginertia="{R(0.006, 0.006, 0.0004)}"/>
        <geom type="capsule" fromto="{L(0, 0, 0, 0, 0, 0.4)}" size="{L(0.02)}"/>
        <geom type="cylinder" pos="{L(0.05, 0, 0.1)}" size="{L(0.03, 0.01)}"/>
        <geom type="ellipsoid" pos="{L(0, 0, 0.4)}" size="{L(0.04, 0.03, 0.02)}"/>
        <geom type="sphere" pos="{L(0, 0.05, 0.3)}" size="{L(0.015)}"/>
      </body>
    </body>
    <body name="blob" pos="{L(0.6, 0, 1)}">
      <freejoint/>
      <geom name="mesh" type="mesh" mesh="tet"/>
    </body>
  </worldbody>
  <equality><connect body1="blob" body2="pole" anchor="{L(-0.1, 0, 0.1)}" solimp="0.9 0.95 {L(0.001)} 0.5 2"/>
  </equality>
  <tendon><fixed name="t" range="{L(-0.2, 0.2)}" solimplimit="0.9 0.95 {L(0.001)} 0.5 2"
    solimpfriction="0.9 0.95 {L(0.001)} 0.5 2"><joint joint="slide" coef="1"/></fixed></tendon>
  <actuator>
    <position name="servo" joint="slide" kp="{M(50)}" ctrlrange="{L(-0.2, 0.2)}" forcerange="{F(-20, 20)}"/>
    <general name="torque" joint="hinge" gainprm="{R(1)}" ctrlrange="-1 1"/>
  </actuator>
  <keyframe><key name="k" qpos="{L(0.1)} 0.2 {L(0.6, 0, 1)} 1 0 0 0"/></keyframe>
</mujoco>
"""


def max_rel_diff(a: mujoco.MjModel, b: mujoco.MjModel) -> tuple[float, str]:
    """(largest relative difference, its array) over every float array of two models with the same structure; the
    integer arrays (structure, addresses, types) must be equal and non-finite entries identical."""
    worst = (0.0, "")
    for name in dir(b):
        y = getattr(b, name, None)
        if not isinstance(y, np.ndarray) or y.size == 0 or name.startswith("name"):
            continue
        x = getattr(a, name)
        assert x.shape == y.shape, name
        if y.dtype.kind != "f":
            np.testing.assert_array_equal(x, y, err_msg=name)
            continue
        finite = np.isfinite(y)
        np.testing.assert_array_equal(x[~finite], y[~finite], err_msg=name)
        scale = np.abs(y[finite]).max(initial=0.0)
        if scale > 0:
            worst = max(worst, (float(np.abs(x[finite] - y[finite]).max() / scale), name))
    return worst


@pytest.fixture
def mjcf_files(tmp_path):
    """(path of the unscaled model, mesh path)."""
    mesh = write_mesh(tmp_path)
    path = tmp_path / "model.xml"
    path.write_text(model_xml(1.0, mesh))
    return str(path), mesh


@pytest.mark.parametrize("s", SCALES)
def test_scaled_mjcf_compiles_to_the_hand_scaled_model(mjcf_files, s):
    """All 120+ float arrays (body_pos, body_mass, body_inertia, geom_size, geom_pos, jnt_range, mesh_vert, eq_data,
    tendon_range, actuator_gainprm, key_qpos, ...) agree to REL, integer arrays exactly (measured: 0.0, bit-equal)."""
    path, mesh = mjcf_files
    ours = gs.morphs.MJCF(file=path, scale=s).to_spec().compile()
    hand = mujoco.MjModel.from_xml_string(model_xml(s, mesh))
    err, name = max_rel_diff(ours, hand)
    assert err <= REL, f"{name} differs by {err:.3g} (relative)"
    unscaled = mujoco.MjModel.from_xml_path(path)
    assert max_rel_diff(ours, unscaled)[0] > 0.1  # the comparison sees a scale
    np.testing.assert_allclose(ours.body_mass[1:], unscaled.body_mass[1:] * s ** 3, rtol=1e-12)  # mesh mass too


def test_scale_one_leaves_the_model_as_written(mjcf_files):
    path, _ = mjcf_files
    ours = gs.morphs.MJCF(file=path, scale=1).to_spec().compile()
    assert max_rel_diff(ours, mujoco.MjModel.from_xml_path(path))[0] == 0.0


def _same_options(m: mujoco.MjModel, ref: mujoco.MjModel) -> mujoco.MjModel:
    m = copy.copy(m)
    for name in ("timestep", "tolerance", "iterations", "ls_iterations", "ls_tolerance", "integrator", "cone",
                 "impratio", "gravity", "disableflags", "enableflags"):
        setattr(m.opt, name, getattr(ref.opt, name))
    return m


@pytest.mark.parametrize("s", SCALES)
def test_scaled_scene_steps_in_parity_with_mujoco_on_the_hand_scaled_model(mjcf_files, s):
    """float64 scene of MJCF(scale=s) with a servo target vs MuJoCo stepping the hand-scaled file: qpos / qvel agree
    to PARITY (lengths relative to s) over STEPS steps (slide spring, damping, frictionloss, limits, the connect
    equality and a swinging pole)."""
    path, mesh = mjcf_files
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(tolerance=1e-12, iterations=100))
    robot = scene.add_entity(gs.morphs.MJCF(file=path, scale=s))
    scene.build()
    robot.control_dofs_position([0.1 * s], dofs_idx_local=[0])
    m = _same_options(mujoco.MjModel.from_xml_string(model_xml(s, mesh)), scene.rigid_solver.mj_model)
    d = mujoco.MjData(m)
    d.ctrl[0] = 0.1 * s
    err = 0.0
    for _ in range(STEPS):
        scene.step()
        mujoco.mj_step(m, d)
        state = scene.get_state().solvers["RigidSolver"]
        err = max(err, np.abs(state.qpos[0].numpy() - d.qpos).max() / s,
                  np.abs(state.dofs_vel[0].numpy() - d.qvel).max() / s)
    assert err <= PARITY, f"scene vs MuJoCo on the hand-scaled model: {err:.3g}"
    assert abs(d.qpos[1]) > 1e-3  # the pole did swing


def test_scaled_model_in_gravity_times_s_moves_like_the_original(mjcf_files):
    """MuJoCo's `similar` scaling is a change of units (accelerations are lengths per time^2, so gravity would scale by
    s too): in gravity s g the scaled model's trajectory is the original's with lengths times s (slide and free
    positions), angles and quaternions unchanged. (In gravity g it moves like the original in g / s.)"""
    path, _ = mjcf_files
    s = 2.0
    m1 = gs.morphs.MJCF(file=path).to_spec().compile()
    ms = gs.morphs.MJCF(file=path, scale=s).to_spec().compile()
    ms.opt.gravity = m1.opt.gravity * s
    for m in (m1, ms):
        m.opt.tolerance = 1e-14
    d1, ds = mujoco.MjData(m1), mujoco.MjData(ms)
    d1.ctrl[:] = ds.ctrl[:] = (0.1, 0.5)
    ds.ctrl[0] *= s
    length = np.array([1, 0, 1, 1, 1, 0, 0, 0, 0], bool)  # slide, hinge, free pos (3), free quat (4)
    for _ in range(STEPS):
        mujoco.mj_step(m1, d1)
        mujoco.mj_step(ms, ds)
    np.testing.assert_allclose(ds.qpos, np.where(length, s, 1.0) * d1.qpos, rtol=1e-9, atol=1e-9)


# --- URDF: scale and fixed-link merging -------------------------------------------------------------------------------

# (name, parent, joint type, joint origin (m), axis, limits, mass (kg), com (m), diagonal inertia (kg m^2),
# geometry as a function of the length scaler L)
LINKS = (
    ("base", None, None, None, None, None, 2.0, (0, 0, 0.01), (0.1, 0.2, 0.3),
     lambda L: f'<box size="{L(0.2, 0.2, 0.1)}"/>'),
    ("arm", "base", "revolute", (0, 0, 0.05), (0, 0, 1), (-1, 1), 1.0, (0, 0, 0.1), (0.01, 0.01, 0.005),
     lambda L: f'<cylinder radius="{L(0.03)}" length="{L(0.2)}"/>'),
    ("tool", "arm", "fixed", (0, 0, 0.2), None, None, 0.5, (0.01, 0, 0), (0.001, 0.002, 0.003),
     lambda L: f'<sphere radius="{L(0.04)}"/>'),
    ("tip", "tool", "fixed", (0, 0, 0.05), None, None, None, None, None, None),
    ("cam", "base", "fixed", (0.1, 0, 0), None, None, 0.1, (0, 0, 0), (1e-4, 1e-4, 1e-4), None),
    ("slider", "base", "prismatic", (0, 0.1, 0), (1, 0, 0), (-0.1, 0.2), 0.3, (0, 0, 0), (1e-3, 1e-3, 1e-3),
     lambda L: f'<box size="{L(0.02, 0.02, 0.02)}"/>'),
)
GEOM_AT = {"arm": (0, 0, 0.1)}  # collision origins (m); the others at the link origin


def _geoms(row) -> list:
    """A link's collision geometry as a list of (origin (m), geometry)."""
    if isinstance(row[9], list):
        return row[9]
    return [] if row[9] is None else [(GEOM_AT.get(row[0], (0, 0, 0)), row[9])]


def urdf_xml(s: float, links=LINKS) -> str:
    """The URDF with every length times s, masses times s^3, forces s^4, inertias and torques s^5 (by hand)."""
    def L(*v): return " ".join(repr(float(x * s)) for x in v)  # noqa: E704
    out = ['<robot name="r">']
    for name, parent, jtype, origin, axis, limits, mass, com, inertia, geom in links:
        body = ""
        if mass is not None:
            ixx, iyy, izz, *off = [float(x * s ** 5) for x in inertia]
            ixy, ixz, iyz = off or (0.0, 0.0, 0.0)
            body += (f'<inertial><origin xyz="{L(*com)}"/><mass value="{float(mass * s ** 3)!r}"/>'
                     f'<inertia ixx="{ixx!r}" iyy="{iyy!r}" izz="{izz!r}" ixy="{ixy!r}" ixz="{ixz!r}" iyz="{iyz!r}"/>'
                     '</inertial>')
        for xyz, g in _geoms((name, *[None] * 8, geom)):
            body += f'<collision><origin xyz="{L(*xyz)}"/><geometry>{g(L)}</geometry></collision>'
        out.append(f'<link name="{name}">{body}</link>')
        if parent is not None:
            extra = f'<axis xyz="{" ".join(map(str, axis))}"/>' if axis else ""
            if limits:
                slide = jtype == "prismatic"  # limits and velocity in m (m/s), effort in N; else rad, N m
                lo, hi = (L(*limits) if slide else " ".join(map(repr, limits))).split()
                effort, velocity = 10.0 * s ** (4 if slide else 5), s if slide else 1.0
                extra += f'<limit lower="{lo}" upper="{hi}" effort="{effort!r}" velocity="{velocity!r}"/>'
            out.append(f'<joint name="j_{name}" type="{jtype}"><parent link="{parent}"/><child link="{name}"/>'
                       f'<origin xyz="{L(*origin)}"/>{extra}</joint>')
    return "\n".join(out + ["</robot>"])


def merged(links, child: str):
    """`links` with `child` (attached by a fixed joint) merged into its parent by hand: masses added, the common centre
    of mass, inertias moved to it (parallel axes), geometry and children re-attached with the joint's offset."""
    by = {row[0]: row for row in links}
    name, parent, _, off, *_ = by[child]
    off = np.array(off, float)
    p, c = list(by[parent]), by[child]
    if c[6] is not None:
        parts = [(p[6], np.array(p[7], float), np.diag(p[8][:3])), (c[6], np.array(c[7], float) + off,
                                                                   np.diag(c[8][:3]))]
        mass = sum(m for m, _, _ in parts)
        com = sum(m * x for m, x, _ in parts) / mass
        inertia = sum(i + m * ((x - com) @ (x - com) * np.eye(3) - np.outer(x - com, x - com)) for m, x, i in parts)
        p[6], p[7] = mass, tuple(com)
        p[8] = (*np.diag(inertia), inertia[0, 1], inertia[0, 2], inertia[1, 2])
    p[9] = _geoms(p) + [(tuple(np.array(xyz) + off), g) for xyz, g in _geoms(c)]
    out = []
    for row in links:
        if row[0] == child:
            continue
        row = tuple(p) if row[0] == parent else row
        if row[1] == child:  # re-attach the grandchildren to the parent
            row = (row[0], parent, row[2], tuple(np.array(row[3]) + off), *row[4:])
        out.append(row)
    return tuple(out)


def body_names(m: mujoco.MjModel) -> list:
    return [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(1, m.nbody)]


def dynamics(m: mujoco.MjModel, seed: int = 0) -> tuple:
    """(mass matrix, world positions of the geoms) at a random configuration: what merging must not change."""
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    d.qpos[:] = m.qpos0
    d.qpos[7:] = rng.uniform(-0.1, 0.1, m.nq - 7)
    d.qpos[:3] = rng.uniform(-1, 1, 3)
    mujoco.mj_forward(m, d)
    full = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, full)
    return full, d.geom_xpos[np.argsort([tuple(x) for x in np.round(d.geom_xpos, 9)], axis=0)[:, 0]]


def _hand(links, s) -> mujoco.MjModel:
    """MuJoCo's model of the URDF `links`, scaled by `s` by hand, as written (nothing fused), with a free root."""
    spec = mujoco.MjSpec.from_string(urdf_xml(s, links))
    spec.compiler.fusestatic = False
    spec.worldbody.first_body().add_freejoint(name="root_joint")  # the name URDF() gives it (Genesis)
    _scale_defaults_urdf_cannot_write(spec, s)
    return spec.compile()


def _scale_defaults_urdf_cannot_write(spec: mujoco.MjSpec, s: float) -> None:
    """The lengths among MuJoCo's defaults that a URDF cannot state, times s by hand: geom torsional and rolling
    friction, contact and slide-joint limit / friction-loss impedance widths (solimp[2])."""
    def width(solimp):
        return [*solimp[:2], solimp[2] * s, *solimp[3:]]

    for g in spec.geoms:
        g.friction = [g.friction[0], g.friction[1] * s, g.friction[2] * s]
        g.solimp = width(g.solimp)
    for j in spec.joints:
        if j.type == mujoco.mjtJoint.mjJNT_SLIDE:
            j.solimp_limit, j.solimp_friction = width(j.solimp_limit), width(j.solimp_friction)


@pytest.fixture
def urdf_file(tmp_path):
    path = tmp_path / "r.urdf"
    path.write_text(urdf_xml(1.0))
    return str(path)


@pytest.mark.parametrize("s", (1.0, 2.0))
@pytest.mark.parametrize("keep, merges", [((), ("tip", "tool", "cam")), (("tool",), ("tip", "cam")),
                                          (("tip", "cam"), ("tool",))])
def test_urdf_merge_matches_the_hand_merged_file(urdf_file, s, keep, merges):
    """merge_fixed_links=True (the default) with links_to_keep vs the URDF whose fixed links were merged by hand:
    the same links, masses, mass matrix and geom positions (to REL); scaled by s like the hand-scaled file."""
    # default_armature=None: MuJoCo's compile of the hand-made file has no rotor inertia (Genesis' 0.1 is a URDF default)
    ours = gs.morphs.URDF(file=urdf_file, scale=s, links_to_keep=list(keep), default_armature=None).to_spec().compile()
    links = LINKS
    for child in merges:
        links = merged(links, child)
    hand = _hand(links, s)
    assert body_names(ours) == body_names(hand) == [row[0] for row in links]
    np.testing.assert_allclose(ours.body_mass, hand.body_mass, rtol=REL)
    for x, y in zip(dynamics(ours), dynamics(hand)):
        np.testing.assert_allclose(x, y, rtol=REL, atol=REL * np.abs(y).max())


def test_urdf_merging_changes_no_dynamics(urdf_file):
    """Genesis: merging 'can help improve simulation speed without affecting any dynamics'; links and masses follow
    merge_fixed_links / links_to_keep, the mass matrix and geom positions do not."""
    split = gs.morphs.URDF(file=urdf_file, merge_fixed_links=False).to_spec().compile()
    fused = gs.morphs.URDF(file=urdf_file).to_spec().compile()
    assert body_names(split) == ["base", "arm", "tool", "tip", "cam", "slider"]
    assert body_names(fused) == ["base", "arm", "slider"]
    np.testing.assert_allclose(fused.body_mass[1:], [2.1, 1.5, 0.3], rtol=REL)
    np.testing.assert_allclose(split.body_mass[1:], [2.0, 1.0, 0.5, 0.0, 0.1, 0.3], rtol=REL)
    for x, y in zip(dynamics(split), dynamics(fused)):
        np.testing.assert_allclose(x, y, rtol=REL, atol=REL * np.abs(y).max())
    kept = gs.morphs.URDF(file=urdf_file, merge_fixed_links=False, links_to_keep=["tip"]).to_spec().compile()
    assert body_names(kept) == body_names(split)  # links_to_keep changes nothing without merging


@pytest.mark.parametrize("s", (0.5, 2.0))
def test_scaled_urdf_compiles_to_the_hand_scaled_urdf(urdf_file, s):
    ours = gs.morphs.URDF(file=urdf_file, scale=s, merge_fixed_links=False, default_armature=None).to_spec().compile()
    err, name = max_rel_diff(ours, _hand(LINKS, s))
    assert err <= REL, f"{name} differs by {err:.3g} (relative)"


def test_fixed_urdf_keeps_its_base_link_in_a_scene(urdf_file):
    """fixed=True: the root stays a link welded to the world (Genesis), where MuJoCo alone would fuse it into the
    world; a kept massless link (an IK target) is a link of the entity; the scene steps."""
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.URDF(file=urdf_file, fixed=True, links_to_keep=["tip"], scale=0.5))
    scene.build()
    assert [link.name for link in robot.links] == ["base", "arm", "tip", "slider"]
    assert robot.n_dofs == 2
    np.testing.assert_allclose(scene.rigid_solver.mj_model.body_mass[1:3], [2.1 / 8, 1.5 / 8], rtol=REL)
    tip_z = robot.get_link("tip").get_pos()[2].item()
    for _ in range(5):
        scene.step()
    assert tip_z == pytest.approx(0.5 * (0.05 + 0.2 + 0.05))


@pytest.mark.parametrize("kwargs, words", [
    (dict(scale=0), "positive finite"), (dict(scale=-2.0), "positive finite"), (dict(scale=float("nan")), "finite"),
    (dict(scale=float("inf")), "finite"), (dict(scale="2"), "number"), (dict(scale=True), "number"),
    (dict(scale=None), "number"), (dict(scale=(1.0, 2.0, 1.0)), "anisotropic"), (dict(scale=(1.0, 1.0)), "number"),
    (dict(links_to_keep=["nope"]), "no link named ['nope']"), (dict(links_to_keep="tip"), "list of link names"),
    (dict(links_to_keep=[1]), "list of link names"), (dict(merge_fixed_links=1), "True or False"),
    (dict(fixed="yes"), "True or False"), (dict(prioritize_urdf=True), "unknown argument"),
])
def test_invalid_arguments_raise_naming_the_fix(urdf_file, kwargs, words):
    with pytest.raises(InvalidInputError) as info:
        gs.morphs.URDF(file=urdf_file, **kwargs)
    assert words in str(info.value)
    if "scale" in kwargs:
        with pytest.raises(InvalidInputError, match="scale"):
            gs.morphs.MJCF(file="franka.xml", scale=kwargs["scale"])


def test_equal_three_scales_are_one():
    assert gs.morphs.MJCF(file="franka.xml", scale=(2, 2, 2)) == gs.morphs.MJCF(file="franka.xml", scale=2.0)


def test_fingerprints_see_scale_and_merging(urdf_file, tmp_path):
    """A checkpoint of a scaled scene does not load into the unscaled one; merging options change the fingerprint."""
    prints = {repr(kw): gs.morphs.URDF(file=urdf_file, **kw).fingerprint() for kw in (
        {}, {"scale": 2.0}, {"merge_fixed_links": False}, {"links_to_keep": ["tip"]}, {"fixed": True})}
    assert len({repr(sorted(p.items())) for p in prints.values()}) == len(prints)
    scenes = []
    for s in (1.0, 2.0):
        scene = gs.Scene()
        scene.add_entity(gs.morphs.MJCF(file="franka.xml", scale=s))
        scene.build()
        scenes.append(scene)
    path = tmp_path / "scaled.safetensors"
    scenes[1].save_checkpoint(path)
    with pytest.raises(IncompatibleCheckpointError):
        scenes[0].load_checkpoint(path)

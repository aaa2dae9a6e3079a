"""Per-env model parameters (Genesis' domain-randomisation setters) against MuJoCo.

For each setter: the same MJCF in MuJoCo with the equivalent edit of the `MjModel` arrays (body_mass, body_ipos,
body_inertia, geom_friction, dof_damping, dof_armature, jnt_stiffness, dof_frictionloss; derived constants such as
`dof_invweight0` are left as compiled, as the solver does), stepped from the same state as env K of a batched scene
where only env K was changed: env K must follow MuJoCo to `TOL` (float64) and every other env must be bitwise the
env of a scene where nothing was set (isolation). Also: a scene where an env was set is bitwise the same when that
env is alone (batched == serial), checkpoints restore the parameters bitwise, `reset()` keeps them (they are model
parameters, not state), and a `requires_grad` mass shift has the gradient of central finite differences.

Measured max |diff| vs MuJoCo (qpos, qvel) after the steps below: see `test_setter_matches_mujoco` (printed with
`-s`); all below 1e-10 for the smooth model and the sliding contacts.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError

from .conftest import directional_fd_error

pytestmark = pytest.mark.usefixtures("single_thread")

TOL = 1e-9
N_ENVS, K = 3, 1  # env K is changed
ARM = """<mujoco><default><geom contype="0" conaffinity="0"/></default><worldbody>
  <body name="a" pos="0 0 1">
    <joint name="h1" type="hinge" axis="0 1 0" damping="0.1" armature="0.01" stiffness="2" frictionloss="0.05"/>
    <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
    <body name="b" pos="0.3 0 0">
      <joint name="h2" type="hinge" axis="0 0 1" damping="0.05" stiffness="1" frictionloss="0.02"/>
      <geom type="box" size="0.1 0.03 0.02" pos="0.1 0 0"/>
      <body name="c" pos="0.2 0 0">
        <joint name="s3" type="slide" axis="1 0 0" damping="0.2"/>
        <joint name="h3" type="hinge" axis="1 0 0"/>
        <geom type="sphere" size="0.05" pos="0.02 0.01 0"/>
      </body>
    </body>
  </body>
  <body name="free" pos="1 0 1"><freejoint/><geom type="box" size="0.1 0.05 0.03" pos="0.02 0.01 0"/></body>
</worldbody></mujoco>"""
SLIDE = """<mujoco><worldbody>
  <geom name="floor" type="plane" size="5 5 0.1" friction="0.6"/>
  <body name="box" pos="0 0 0.05"><freejoint/><geom type="box" size="0.05 0.05 0.05" friction="0.3"/></body>
  <body name="ball" pos="0.5 0.3 0.05"><freejoint/><geom type="sphere" size="0.05" friction="0.9" priority="1"/></body>
</worldbody></mujoco>"""


def _scene(xml, tmp_path, integ="implicitfast", n_envs=N_ENVS, requires_grad=False, tolerance=1e-8):
    path = tmp_path / "model.xml"
    path.write_text(xml)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.004, requires_grad=requires_grad),
                     rigid_options=gs.options.RigidOptions(integrator=getattr(gs.integrator, integ),
                                                           tolerance=tolerance))
    entity = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build(n_envs=n_envs)
    return scene, entity


def _init(scene, entity, xml):
    """A reproducible moving state per env (same in every scene of the test)."""
    rng = np.random.default_rng(7)
    B = scene.batch_size
    if xml is SLIDE:  # sliding along x and y at a few m/s
        vel = np.zeros((B, entity.n_dofs))
        vel[:, [0, 1, 6, 7]] = rng.uniform(-2.0, 2.0, (B, 4))
    else:
        entity.set_dofs_position(rng.uniform(-0.8, 0.8, (B, 4)), dofs_idx_local=[0, 1, 2, 3])
        vel = rng.uniform(-2.0, 2.0, (B, entity.n_dofs))
    entity.set_dofs_velocity(vel)


def _run(scene, steps):
    for _ in range(steps):
        scene.step()
    st = scene.get_state().solvers["RigidSolver"]
    return st.qpos.clone(), st.dofs_vel.clone()


def _mujoco(mjm, qpos, qvel, steps):
    # MuJoCo's compile-time shortcuts that assume the compiled inertias: "simple" bodies take their mass matrix
    # from the constant `dof_M0` (off: the general path, the same physics), and the subtree masses
    mjm.body_simple[:] = 0
    mjm.body_sameframe[1:] = 0  # (and "same frame" bodies, whose COM is taken as the body origin)
    mjm.dof_simplenum[:] = 0
    mjm.body_subtreemass[:] = 0
    for b in range(mjm.nbody - 1, -1, -1):
        mjm.body_subtreemass[b] += mjm.body_mass[b]
        if b:
            mjm.body_subtreemass[mjm.body_parentid[b]] += mjm.body_subtreemass[b]
    d = mujoco.MjData(mjm)
    d.qpos[:], d.qvel[:] = qpos, qvel
    for _ in range(steps):
        mujoco.mj_step(mjm, d)
    return d.qpos.copy(), d.qvel.copy()


def _body(entity, name):
    return [lk.name for lk in entity.links].index(name)


# (name, xml, our call on env K, the same edit of MuJoCo's model, steps)
CASES = {
    "mass_shift": (ARM, lambda e, k=K: e.set_mass_shift([0.3, -0.05, 0.7, 1.5], envs_idx=[k]),
                   lambda m, e: m.body_mass.__setitem__(slice(1, 5), m.body_mass[1:5] + [0.3, -0.05, 0.7, 1.5]), 60),
    "COM_shift": (ARM, lambda e, k=K: e.set_COM_shift([[0.02, -0.01, 0.03], [0, 0.02, 0], [0.01, 0, -0.02],
                                                       [0.05, 0, 0.01]], envs_idx=[k]),
                  lambda m, e: m.body_ipos.__setitem__(slice(1, 5), m.body_ipos[1:5] + [[0.02, -0.01, 0.03],
                                                       [0, 0.02, 0], [0.01, 0, -0.02], [0.05, 0, 0.01]]), 60),
    "links_inertial_mass": (ARM, lambda e, k=K: e.set_links_inertial_mass([0.5, 2.0], links_idx_local=[1, 3],
                                                                          envs_idx=[k]),
                            lambda m, e: m.body_mass.__setitem__([2, 4], [0.5, 2.0]), 60),
    "damping": (ARM, lambda e, k=K: e.set_dofs_damping([0.0, 0.4, 0.1, 0.3], dofs_idx_local=[0, 1, 2, 3], envs_idx=[k]),
                lambda m, e: m.dof_damping.__setitem__(slice(0, 4), [0.0, 0.4, 0.1, 0.3]), 60),
    "armature": (ARM, lambda e, k=K: e.set_dofs_armature([0.05, 0.2, 0.0, 0.1, 0.3], dofs_idx_local=[0, 1, 2, 3, 6],
                                                    envs_idx=[k]),
                 lambda m, e: m.dof_armature.__setitem__([0, 1, 2, 3, 6], [0.05, 0.2, 0.0, 0.1, 0.3]), 60),
    "stiffness": (ARM, lambda e, k=K: e.set_dofs_stiffness([5.0, 0.0, 3.0], dofs_idx_local=[0, 1, 2], envs_idx=[k]),
                  lambda m, e: m.jnt_stiffness.__setitem__(slice(0, 3), [5.0, 0.0, 3.0]), 60),
    "frictionloss": (ARM, lambda e, k=K: e.set_dofs_frictionloss([0.4, 0.0], dofs_idx_local=[0, 1], envs_idx=[k]),
                     lambda m, e: m.dof_frictionloss.__setitem__(slice(0, 2), [0.4, 0.0]), 60),
    "friction_ratio": (SLIDE, lambda e, k=K: e.set_friction_ratio([3.0, 0.2], envs_idx=[k]),
                       lambda m, e: m.geom_friction.__setitem__((slice(1, 3), 0), m.geom_friction[1:3, 0] * [3.0, 0.2]),
                       80),
}
INTEGRATORS = ("Euler", "implicitfast", "RK4")


@pytest.mark.parametrize("integ", INTEGRATORS)
@pytest.mark.parametrize("case", CASES)
def test_setter_matches_mujoco(case, integ, tmp_path, gs64):
    xml, ours, theirs, steps = CASES[case]
    scene, entity = _scene(xml, tmp_path, integ)
    ref_scene, ref_entity = _scene(xml, tmp_path, integ)
    _init(scene, entity, xml)
    _init(ref_scene, ref_entity, xml)
    st = scene.get_state().solvers["RigidSolver"]
    q0, v0 = st.qpos[K].numpy().copy(), st.dofs_vel[K].numpy().copy()
    ours(entity)
    qpos, qvel = _run(scene, steps)
    ref_qpos, ref_qvel = _run(ref_scene, steps)

    mjm = copy.deepcopy(scene.rigid_solver.mj_model)
    assert xml is SLIDE or not mjm.body_simple[1:].any()  # see _mujoco
    theirs(mjm, entity)
    mj_qpos, mj_qvel = _mujoco(mjm, q0, v0, steps)
    dq, dv = np.abs(qpos[K].numpy() - mj_qpos).max(), np.abs(qvel[K].numpy() - mj_qvel).max()
    print(f"{case} {integ}: max |qpos - MuJoCo| = {dq:.2e}, max |qvel - MuJoCo| = {dv:.2e}")
    assert dq < TOL and dv < TOL, (dq, dv)
    # the edit changes env K's motion (so the comparison means something) ...
    unchanged = _mujoco(copy.deepcopy(scene.rigid_solver.mj_model), q0, v0, steps)[0]
    assert np.abs(unchanged - mj_qpos).max() > 1e3 * TOL
    # ... and nothing of the other envs
    others = [b for b in range(N_ENVS) if b != K]
    assert torch.equal(qpos[others], ref_qpos[others]) and torch.equal(qvel[others], ref_qvel[others])


@pytest.mark.parametrize("case", ["mass_shift", "COM_shift", "armature", "friction_ratio"])
def test_batched_equals_serial(case, tmp_path, gs64):
    """Env K of the batch is bitwise the same scene built with one env and the same setter call."""
    xml, ours, _, steps = CASES[case]
    scene, entity = _scene(xml, tmp_path)
    _init(scene, entity, xml)
    ours(entity)
    qpos, qvel = _run(scene, steps)
    one, one_entity = _scene(xml, tmp_path, n_envs=1)
    _init_one(one, one_entity, xml)
    ours(one_entity, 0)
    q1, v1 = _run(one, steps)
    assert torch.equal(q1[0], qpos[K]) and torch.equal(v1[0], qvel[K])


def _init_one(scene, entity, xml):
    """Env K's initial state of `_init`, in a one-env scene."""
    rng = np.random.default_rng(7)
    if xml is SLIDE:
        vel = np.zeros((N_ENVS, entity.n_dofs))
        vel[:, [0, 1, 6, 7]] = rng.uniform(-2.0, 2.0, (N_ENVS, 4))
    else:
        pos = rng.uniform(-0.8, 0.8, (N_ENVS, 4))
        entity.set_dofs_position(pos[K:K + 1], dofs_idx_local=[0, 1, 2, 3])
        vel = rng.uniform(-2.0, 2.0, (N_ENVS, entity.n_dofs))
    entity.set_dofs_velocity(vel[K:K + 1])


def test_checkpoint_and_reset_keep_parameters(tmp_path, gs64):
    """Parameters are saved and restored bitwise (stepping after a load repeats the steps after the save);
    `reset()` keeps them (model parameters, not state); a loaded scene reports the same values."""
    scene, entity = _scene(ARM, tmp_path)
    _init(scene, entity, ARM)
    for case in ("mass_shift", "COM_shift", "damping", "armature", "stiffness", "frictionloss"):
        CASES[case][1](entity)
    entity.set_mass(3.0)
    scene.save_checkpoint(tmp_path / "ck.safetensors")
    after = _run(scene, 20)
    fresh, fresh_entity = _scene(ARM, tmp_path)
    fresh.load_checkpoint(tmp_path / "ck.safetensors")
    for getter in ("get_links_inertial_mass", "get_dofs_damping", "get_dofs_armature", "get_dofs_stiffness",
                   "get_dofs_frictionloss"):
        assert torch.equal(getattr(fresh_entity, getter)(), getattr(entity, getter)()), getter
    again = _run(fresh, 20)
    assert all(torch.equal(a, b) for a, b in zip(after, again))
    mass = entity.get_links_inertial_mass()
    scene.reset()
    assert torch.equal(entity.get_links_inertial_mass(), mass)
    assert entity.get_dofs_damping()[K, 1] == 0.4


def test_set_mass_scales_mass_and_inertia(tmp_path, gs64):
    """Genesis' `set_mass`: one ratio (target / total inertial mass) scales the moving links' masses and inertias;
    `RigidLink.set_mass` sets one link's. Against MuJoCo with body_mass and body_inertia scaled alike."""
    scene, entity = _scene(ARM, tmp_path)
    _init(scene, entity, ARM)
    st = scene.get_state().solvers["RigidSolver"]
    q0, v0 = st.qpos[0].numpy().copy(), st.dofs_vel[0].numpy().copy()
    total = entity.get_mass()
    entity.set_mass(2 * total)
    entity.get_link("b").set_mass(0.7)
    assert entity.get_link("b").get_mass() == pytest.approx(0.7)
    qpos, qvel = _run(scene, 50)
    mjm = copy.deepcopy(scene.rigid_solver.mj_model)
    mjm.body_mass[1:] *= 2
    mjm.body_inertia[1:] *= 2
    ratio = 0.7 / mjm.body_mass[2]
    mjm.body_mass[2] *= ratio
    mjm.body_inertia[2] *= ratio
    mj_qpos, mj_qvel = _mujoco(mjm, q0, v0, 50)
    assert np.abs(qpos[0].numpy() - mj_qpos).max() < TOL and np.abs(qvel[0].numpy() - mj_qvel).max() < TOL


def test_unset_scene_is_unchanged_and_getters(tmp_path, gs64):
    """Getters report the MJCF's values per env before any call, and the per-env values after."""
    scene, entity = _scene(ARM, tmp_path)
    m = scene.rigid_solver.mj_model
    np.testing.assert_array_equal(entity.get_dofs_damping()[0].numpy(), m.dof_damping)
    np.testing.assert_array_equal(entity.get_dofs_stiffness()[0].numpy(), m.jnt_stiffness[m.dof_jntid])
    entity.set_dofs_damping([9.0], dofs_idx_local=[1], envs_idx=[2])
    d = entity.get_dofs_damping()
    assert d[2, 1] == 9.0 and d[0, 1] == m.dof_damping[1] and d.shape == (N_ENVS, entity.n_dofs)
    assert scene.rigid_solver.params.dof_armature.shape[0] == 1  # untouched parameters stay shared


def test_invalid_input_changes_nothing(tmp_path, gs64):
    scene, entity = _scene(ARM, tmp_path)
    before = {k: getattr(scene.rigid_solver.params, k) for k in ("link_mass_shift", "dof_damping", "dof_frictionloss")}
    bad = [
        (lambda: entity.set_mass_shift([-100.0, 0, 0, 0]), "negative"),
        (lambda: entity.set_mass_shift([0.1, 0.2]), "shape"),
        (lambda: entity.set_mass_shift([0.1, 0, 0, float("nan")]), "finite"),
        (lambda: entity.set_mass_shift([0.1, 0, 0, 0], envs_idx=[5]), "5"),
        (lambda: entity.set_dofs_damping([-1.0], dofs_idx_local=[0]), "negative"),
        (lambda: entity.set_dofs_frictionloss([0.3], dofs_idx_local=[2]), "frictionloss in the MJCF"),
        (lambda: entity.set_dofs_stiffness([1.0], dofs_idx_local=[5]), "hinge/slide"),
        (lambda: entity.set_friction_ratio([0.0, 1, 1, 1]), "> 0"),
        (lambda: entity.set_mass(-1.0), "positive"),
        (lambda: entity.set_COM_shift([1.0, 2.0, 3.0]), "shape"),
    ]
    for call, words in bad:
        with pytest.raises(InvalidInputError, match=words):
            call()
    for k, v in before.items():
        assert getattr(scene.rigid_solver.params, k) is v, k


def test_mass_shift_gradient(tmp_path, gs64):
    """d(final pose) / d(mass shift) by autograd equals central finite differences (float64, smooth dynamics)."""
    scene, entity = _scene(ARM, tmp_path, "Euler", n_envs=1, requires_grad=True)
    _init(scene, entity, ARM)
    start = scene.get_state()
    w = torch.linspace(-1.0, 1.0, scene.rigid_solver.model.nq, dtype=torch.float64)

    def loss(shift):
        scene.reset(state=start)
        entity.set_mass_shift(shift)
        qpos, _ = _run(scene, 15)
        return (qpos[0] * w).sum()

    shift = torch.tensor([0.3, -0.05, 0.7, 1.5], dtype=torch.float64, requires_grad=True)
    direction = torch.tensor([0.5, -0.3, 0.8, 0.1], dtype=torch.float64)
    rel = directional_fd_error(loss, shift, direction)
    print(f"mass shift gradient: relative error vs central differences {rel:.1e}")
    assert rel <= 1e-5, rel


def test_set_mass_with_contacts(tmp_path, gs64):
    """`set_mass` on sliding free bodies: masses and inertias scale, and so does the contacts' regularisation
    (Genesis divides the links' invweight by the ratio): MuJoCo with body_mass, body_inertia, body_invweight0 and
    its simple bodies' constant `dof_M0` scaled alike. Both constraint solvers run to a tight tolerance: their
    stopping test is relative to the compiled mean inertia, which the heavier bodies make loose (1e-7 apart)."""
    scene, entity = _scene(SLIDE, tmp_path, tolerance=1e-14)
    _init(scene, entity, SLIDE)
    st = scene.get_state().solvers["RigidSolver"]
    q0, v0 = st.qpos[K].numpy().copy(), st.dofs_vel[K].numpy().copy()
    entity.set_mass(3 * entity.get_mass())
    qpos, qvel = _run(scene, 80)
    mjm = copy.deepcopy(scene.rigid_solver.mj_model)
    mjm.body_mass[1:] *= 3
    mjm.body_inertia[1:] *= 3
    mjm.body_invweight0[1:] /= 3
    mjm.dof_M0[:] *= 3
    mjm.opt.tolerance = 1e-14
    mj_qpos, mj_qvel = _mujoco(mjm, q0, v0, 80)
    dq, dv = np.abs(qpos[K].numpy() - mj_qpos).max(), np.abs(qvel[K].numpy() - mj_qvel).max()
    print(f"set_mass with contacts: max |qpos - MuJoCo| = {dq:.2e}, max |qvel - MuJoCo| = {dv:.2e}")
    assert dq < TOL and dv < TOL, (dq, dv)
    assert torch.equal(scene.rigid_solver.params.link_invweight[K, 1:],
                       torch.as_tensor(mjm.body_invweight0[1:]))

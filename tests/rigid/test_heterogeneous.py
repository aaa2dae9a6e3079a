"""Heterogeneous rigid entities, `scene.add_entity([morph_a, morph_b, ...])` (Genesis 1.4.5): each env block of the
heterogeneous scene computes what a scene built with that block's morph alone computes (float64; so MuJoCo parity
holds transitively: the homogeneous scenes are the ones tests/rigid/test_parity.py and test_collision_* check against
MuJoCo 4.0.1); Genesis' block split; topology checks; state contract; per-env queries and rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError
from genesis_torch.solvers.rigid.heterogeneous import variant_envs

pytestmark = pytest.mark.usefixtures("single_thread", "gs64")

TILT = (0.9689124, 0.174941, 0.174941, 0.0)  # wxyz, ~28 deg: the shapes land on an edge / rim, roll and slide
PRIMS = lambda: [gs.morphs.Box(size=(0.2, 0.3, 0.16), pos=(0.0, 0.0, 0.4), quat=TILT),  # noqa: E731
                 gs.morphs.Sphere(radius=0.12, pos=(0.1, 0.0, 0.5)),
                 gs.morphs.Cylinder(radius=0.1, height=0.25, pos=(0.0, 0.1, 0.45), quat=TILT)]

TWO_LINK = """<mujoco><worldbody>
  <body name="base" pos="0 0 {z}"><freejoint name="root"/>
    <geom type="box" size="0.1 0.08 0.05" density="{rho}"/>
    <body name="arm" pos="0.12 0 0"><joint name="hinge" type="hinge" axis="0 1 0" damping="{damping}"/>
      <geom type="capsule" size="0.03 0.08" pos="0.08 0 0" quat="0.7071068 0 0.7071068 0" density="{rho}"/>
    </body>
  </body>
</worldbody></mujoco>"""


def _scene(morph, n_envs, dt=0.005):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt))
    scene.add_entity(gs.morphs.Plane())
    entity = scene.add_entity(morph)
    scene.build(n_envs=n_envs)
    return scene, entity


def _trajectory(scene, entity, steps, kick=True):
    if kick:  # a spin about a tilted axis: contacts move over the shapes
        n = scene.batch_size
        v = torch.zeros(n, entity.n_dofs, dtype=torch.float64)
        v[:, 0], v[:, 3], v[:, 4] = 0.3, 2.0, -1.5
        entity.set_dofs_velocity(v)
    out = []
    for _ in range(steps):
        scene.step()
        out.append(torch.cat((entity.get_qpos(), entity.get_dofs_velocity()), -1))
    return torch.stack(out, 1)  # (B, T, nq + nv)


def _mjcf(tmp_path, name, **kw):
    values = dict(z=0.3, rho=1000.0, damping=0.0) | kw
    path = tmp_path / f"{name}.xml"
    path.write_text(TWO_LINK.format(**values))
    return str(path)


@pytest.mark.parametrize(("n_variants", "n_envs", "expected"), [
    (3, 5, [0, 0, 1, 1, 2]), (3, 7, [0, 0, 0, 1, 1, 2, 2]), (2, 4, [0, 0, 1, 1]), (4, 2, [0, 1]), (3, 1, [0])])
def test_block_split_is_genesis_rule(n_variants, n_envs, expected):
    """Genesis' `_balanced_variant_mapping`: blocks of B // n envs, the first B % n of them one larger."""
    assert variant_envs(n_variants, n_envs).tolist() == expected


def test_primitives_each_block_equals_its_homogeneous_scene():
    """Box / Sphere / Cylinder falling and rolling on a plane, 5 envs (blocks 2, 2, 1), 120 steps."""
    scene, entity = _scene(PRIMS(), 5)
    assert entity._envs_variant.tolist() == [0, 0, 1, 1, 2]
    traj = _trajectory(scene, entity, 120)
    for k, morph in enumerate(PRIMS()):
        envs = np.nonzero(entity._envs_variant == k)[0]
        ref_scene, ref = _scene(morph, len(envs))
        ref_traj = _trajectory(ref_scene, ref, 120)
        assert torch.equal(traj[envs], ref_traj), (k, (traj[envs] - ref_traj).abs().max())
        assert float(traj[envs, -1, 2].min()) < 0.2  # it landed (the contacts were exercised)


def test_mjcf_scales_and_masses(tmp_path):
    """One MJCF at two `scale`s and a denser, damped copy of it (masses, inertias, COMs, body frames, dof damping
    differ per env); 3 envs, 150 steps with a fall and a hinge swinging."""
    light, dense = _mjcf(tmp_path, "light"), _mjcf(tmp_path, "dense", rho=3000.0, damping=0.05)
    variants = lambda: [gs.morphs.MJCF(file=light), gs.morphs.MJCF(file=light, scale=1.4),  # noqa: E731
                        gs.morphs.MJCF(file=dense, pos=(0.2, 0.0, 0.1))]
    scene, entity = _scene(variants(), 3)
    masses = entity.get_links_inertial_mass().tolist()
    assert masses[1][0] == pytest.approx(masses[0][0] * 1.4 ** 3, rel=1e-12)
    assert masses[2][0] == pytest.approx(masses[0][0] * 3, rel=1e-12)
    traj = _trajectory(scene, entity, 150)
    for k, morph in enumerate(variants()):
        ref_scene, ref = _scene(morph, 1)
        ref_traj = _trajectory(ref_scene, ref, 150)
        assert torch.equal(traj[k:k + 1], ref_traj), (k, (traj[k:k + 1] - ref_traj).abs().max())
    assert float((traj[:, :, 7] - traj[:, :1, 7]).abs().max()) > 0.05  # the hinge moved


def test_topology_mismatch_names_the_difference(tmp_path):
    one_link = tmp_path / "one.xml"
    one_link.write_text('<mujoco><worldbody><body name="b"><freejoint name="root"/><geom size="0.1"/></body>'
                        '</worldbody></mujoco>')
    slide = tmp_path / "slide.xml"
    slide.write_text(TWO_LINK.format(z=0.3, rho=1000.0, damping=0.0).replace('type="hinge"', 'type="slide"'))
    scene = gs.Scene()
    with pytest.raises(InvalidInputError, match="1 links vs 2"):
        scene.add_entity([gs.morphs.MJCF(file=_mjcf(tmp_path, "a")), gs.morphs.MJCF(file=str(one_link))])
    with pytest.raises(InvalidInputError, match="joint 'hinge' is of type slide"):
        scene.add_entity([gs.morphs.MJCF(file=_mjcf(tmp_path, "a")), gs.morphs.MJCF(file=str(slide))])
    with pytest.raises(InvalidInputError, match="0 joints vs 1"):
        scene.add_entity([gs.morphs.Box(size=(0.1, 0.1, 0.1)), gs.morphs.Sphere(radius=0.1, fixed=True)])
    renamed = tmp_path / "renamed.xml"
    renamed.write_text(TWO_LINK.format(z=0.3, rho=1000.0, damping=0.0).replace('"hinge"', '"elbow"', 1))
    with pytest.raises(InvalidInputError, match="named 'elbow' vs 'hinge'"):
        scene.add_entity([gs.morphs.MJCF(file=_mjcf(tmp_path, "a")), gs.morphs.MJCF(file=str(renamed))])
    assert not scene.entities  # nothing was added by the failed calls


def test_unsupported_difference_raises(tmp_path):
    """A joint axis is no per-env parameter: variants differing in it raise, naming MuJoCo's field."""
    tilted = tmp_path / "tilted.xml"
    tilted.write_text(TWO_LINK.format(z=0.3, rho=1000.0, damping=0.0).replace('axis="0 1 0"', 'axis="1 0 0"'))
    with pytest.raises(UnsupportedFeatureError, match="jnt_axis"):
        gs.Scene().add_entity([gs.morphs.MJCF(file=_mjcf(tmp_path, "a")), gs.morphs.MJCF(file=str(tilted))])


def test_morph_properties_and_single_morph_list():
    scene = gs.Scene()
    het = scene.add_entity(PRIMS())
    one = scene.add_entity([gs.morphs.Sphere(radius=0.1, pos=(1.0, 0.0, 0.2))])
    assert [type(m).__name__ for m in het.morphs] == ["Box", "Sphere", "Cylinder"]
    assert het.main_morph is het.morphs[0]
    with pytest.raises(InvalidInputError, match="morphs"):
        het.morph  # noqa: B018
    assert one.morph is one.main_morph and len(one.morphs) == 1  # a one-morph list is that morph
    with pytest.raises(InvalidInputError, match="non-empty"):
        scene.add_entity([])
    with pytest.raises(InvalidInputError, match="supported for rigid, kinematic entities only"):
        scene.add_entity([gs.morphs.Box(size=(0.1, 0.1, 0.1)), gs.morphs.Box(size=(0.2, 0.1, 0.1))],
                         material=gs.materials.MPM.Elastic())


def test_state_contract(tmp_path):
    """get_state / set_state, reset of some envs (back to each env's variant pose) and a checkpoint round trip
    repeat the heterogeneous trajectory bitwise."""
    scene, entity = _scene(PRIMS(), 4)
    q0 = entity.get_qpos().clone()
    assert torch.equal(q0[:, :3], torch.tensor([[0.0, 0.0, 0.4], [0.0, 0.0, 0.4], [0.1, 0.0, 0.5], [0.0, 0.1, 0.45]],
                                               dtype=torch.float64))
    for _ in range(20):
        scene.step()
    snap = scene.get_state()
    path = tmp_path / "het.pkl"
    scene.save_checkpoint(path)
    after = _trajectory(scene, entity, 30, kick=False)
    scene.reset(snap)
    assert torch.equal(_trajectory(scene, entity, 30, kick=False), after)
    scene.load_checkpoint(path)
    assert torch.equal(_trajectory(scene, entity, 30, kick=False), after)
    scene.reset(envs_idx=[1, 3])
    q = entity.get_qpos()
    assert torch.equal(q[[1, 3]], q0[[1, 3]]) and not torch.equal(q[[0, 2]], q0[[0, 2]])


def test_per_env_queries():
    """Masses, COMs and AABBs are each env's variant's."""
    scene, entity = _scene(PRIMS(), 3)
    mass = entity.get_links_inertial_mass()[:, 0]
    expected = torch.tensor([200 * 0.2 * 0.3 * 0.16, 200 * 4 / 3 * np.pi * 0.12 ** 3, 200 * np.pi * 0.1 ** 2 * 0.25],
                            dtype=torch.float64)
    assert torch.allclose(mass, expected, rtol=1e-12, atol=0)
    aabb = entity.get_AABB()
    sphere = aabb[1]
    assert torch.allclose(sphere, torch.tensor([[-0.02, -0.12, 0.38], [0.22, 0.12, 0.62]], dtype=torch.float64),
                          atol=1e-12)
    half_z = (aabb[:, 1, 2] - aabb[:, 0, 2]) / 2
    assert half_z[0] > 0.12 and half_z[2] > 0.12  # tilted box / cylinder, not the sphere's 0.12


def test_camera_draws_each_env_its_variant():
    """A camera above the shapes: the sphere env shows fewer entity pixels than the box env, and each env's image
    equals the one of the homogeneous scene of its variant."""
    morphs = lambda: [gs.morphs.Box(size=(0.3, 0.3, 0.3), pos=(0, 0, 0.2), fixed=True),  # noqa: E731
                      gs.morphs.Sphere(radius=0.15, pos=(0, 0, 0.2), fixed=True)]

    def render(morph, n_envs, env_idx):
        scene = gs.Scene()
        entity = scene.add_entity(morph)
        cam = scene.add_camera(res=(64, 64), pos=(0.0, 0.0, 2.0), lookat=(0.0, 0.0, 0.0), fov=30, env_idx=env_idx)
        scene.build(n_envs=n_envs)
        try:
            return cam.render(segmentation=True)[2], entity
        except UnsupportedFeatureError as exc:
            pytest.skip(f"no offscreen OpenGL here: {exc}")

    seg_box, entity = render(morphs(), 2, 0)
    seg_sphere, _ = render(morphs(), 2, 1)
    link = entity.links[0].idx
    n_box, n_sphere = int((seg_box == link).sum()), int((seg_sphere == link).sum())
    assert n_box > 1.15 * n_sphere > 0
    assert np.array_equal(seg_box, render(morphs()[0], 0, 0)[0])
    assert np.array_equal(seg_sphere, render(morphs()[1], 0, 0)[0])


def test_fixed_bases_at_variant_poses():
    """Fixed variants at their own poses (per-env root body frames): each env's box sits where its morph says."""
    scene, entity = _scene([gs.morphs.Box(size=(0.2, 0.2, 0.2), pos=(0.0, 0.0, 0.1), fixed=True),
                            gs.morphs.Box(size=(0.4, 0.2, 0.2), pos=(1.0, 0.5, 0.1), fixed=True)], 2)
    scene.step()
    aabb = entity.get_AABB()
    assert torch.allclose(aabb[0], torch.tensor([[-0.1, -0.1, 0.0], [0.1, 0.1, 0.2]], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(aabb[1], torch.tensor([[0.8, 0.4, 0.0], [1.2, 0.6, 0.2]], dtype=torch.float64), atol=1e-12)
    assert torch.equal(entity.get_links_pos()[:, 0], torch.tensor([[0.0, 0.0, 0.1], [1.0, 0.5, 0.1]],
                                                                   dtype=torch.float64))


def test_go2_at_two_scales():
    """Genesis' RL use: the Go2 URDF at scale 1 and 1.2 (per-env inertia frames, limit rows' dof_invweight0, masses,
    body frames), falling onto the plane on its 12 limited joints: each env equals its homogeneous scene bitwise."""
    # without Genesis' default rotor inertia, as this scenario (joints swinging to their limits by step 50) was set up
    variants = lambda: [gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0.0, 0.0, 0.42),  # noqa: E731
                                       default_armature=None),
                        gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0.0, 0.0, 0.5), scale=1.2,
                                       default_armature=None)]
    scene, entity = _scene(variants(), 2, dt=0.01)
    traj = _trajectory(scene, entity, 50, kick=False)
    assert entity.get_contacts()["valid_mask"].sum(-1).min() >= 3  # standing on feet / body: contacts act
    for k, morph in enumerate(variants()):
        ref_scene, ref = _scene(morph, 1, dt=0.01)
        assert torch.equal(traj[k:k + 1], _trajectory(ref_scene, ref, 50, kick=False)), k
    assert float((traj[:, -1, 7:19] - traj[:, 0, 7:19]).abs().max()) > 1.0  # the joints swung to their limits


def test_set_friction_keeps_each_env_its_variant():
    """`set_friction` rebuilds the contact model: the variants' contact mask carries over (bitwise as homogeneous)."""
    morphs = lambda: PRIMS()[:2]  # noqa: E731
    scene, entity = _scene(morphs(), 2)
    entity.set_friction(0.3)
    traj = _trajectory(scene, entity, 80)
    for k, morph in enumerate(morphs()):
        ref_scene, ref = _scene(morph, 1)
        ref.set_friction(0.3)
        assert torch.equal(traj[k:k + 1], _trajectory(ref_scene, ref, 80)), k


def test_particle_solvers_raise_before_building():
    scene = gs.Scene()
    scene.add_entity(PRIMS())
    scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.1), pos=(0.5, 0.5, 0.5)), material=gs.materials.MPM.Elastic())
    with pytest.raises(UnsupportedFeatureError, match="heterogeneous rigid entities cannot share a scene"):
        scene.build()
    assert not scene.is_built


def test_blocks_follow_mujoco():
    """Direct MuJoCo 4.0.1 check (float64, 100 steps, spinning and sliding on the plane): each env block against
    `mj_step` on the model of its homogeneous scene. Measured: box 5.3e-13, sphere 1.8e-9 (rolling contact; the
    homogeneous scene's own difference, which the heterogeneous env reproduces bitwise)."""
    import mujoco

    morphs = lambda: [gs.morphs.Box(size=(0.2, 0.3, 0.16), pos=(0.0, 0.0, 0.3)),  # noqa: E731
                      gs.morphs.Sphere(radius=0.12, pos=(0.1, 0.0, 0.3))]
    scene, entity = _scene(morphs(), 2)
    v = torch.zeros(2, 6, dtype=torch.float64)
    v[:, 0], v[:, 4] = 0.5, 3.0
    entity.set_dofs_velocity(v)
    datas = []
    for k, morph in enumerate(morphs()):
        m = _scene(morph, 1)[0].rigid_solver.mj_model
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:] = entity.get_qpos()[k].numpy(), v[k].numpy()
        datas.append((m, d))
    err = np.zeros(2)
    for _ in range(100):
        scene.step()
        for k, (m, d) in enumerate(datas):
            mujoco.mj_step(m, d)
            err[k] = max(err[k], np.abs(entity.get_qpos()[k].numpy() - d.qpos).max(),
                         np.abs(entity.get_dofs_velocity()[k].numpy() - d.qvel).max())
    assert datas[0][1].ncon > 0 and datas[1][1].ncon > 0
    assert err[0] < 5e-12 and err[1] < 1e-8, err

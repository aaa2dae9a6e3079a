"""MPM options, materials, morph sampling and the entity handle: validation (errors name the problem and leave the
scene unchanged) and behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, SceneStateError, UnsupportedFeatureError

from ..conftest import cpu_runtime
from ..test_state_contract import bits
from .conftest import small_scene

MPM = gs.materials.MPM


@pytest.mark.parametrize("kwargs,match", [
    (dict(grid_density=0), "grid_density"), (dict(lower_bound=(0, 0, 1), upper_bound=(1, 1, 0.5)), "upper bound"),
    (dict(boundary="bouncy"), "boundary"), (dict(enable_CPIC=True), "CPIC"), (dict(dt=-1.0), "dt"),
    (dict(particle_size=0.0), "particle_size"), (dict(foo=1), "unknown"),
    (dict(lower_bound=(0, 0, 0), upper_bound=(0.05, 1, 1)), "7"), (dict(use_sparse_grid=True), "deprecated"),
    (dict(flip_ratio=1.5), "flip_ratio"), (dict(flip_ratio=-0.1), "flip_ratio"), (dict(flip_ratio=True), "flip_ratio"),
    (dict(flip_ratio=float("nan")), "flip_ratio")])
def test_mpm_options_are_validated(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        gs.options.MPMOptions(**kwargs)


def test_mpm_options_defaults_follow_genesis():
    o = gs.options.MPMOptions()
    assert (o.dt, o.gravity, o.grid_density, o.enable_CPIC) == (None, None, 64, False)
    assert (o.lower_bound, o.upper_bound, o.particle_size) == ((-1.0, -1.0, 0.0), (1.0, 1.0, 1.0), 0.01)
    assert gs.options.MPMOptions(grid_density=128).particle_size == 0.005


@pytest.mark.parametrize("cls,kwargs,err", [
    (MPM.Elastic, dict(E=-1.0), InvalidInputError), (MPM.Elastic, dict(nu=0.5), InvalidInputError),
    (MPM.Elastic, dict(model="stvk"), InvalidInputError), (MPM.Sand, dict(friction_angle=95), InvalidInputError),
    (MPM.Snow, dict(yield_lower=1.5), InvalidInputError), (MPM.Liquid, dict(viscous=True), UnsupportedFeatureError),
    (MPM.ElastoPlastic, dict(von_mises_yield_stress=0), InvalidInputError),
    (MPM.Elastic, dict(sampler="pbs"), UnsupportedFeatureError), (MPM.Elastic, dict(rho=float("nan")),
                                                                  InvalidInputError)])
def test_materials_are_validated(cls, kwargs, err):
    with pytest.raises(err):
        cls(**kwargs)


def cube_obj(folder) -> str:
    """A unit cube centred at 0, 12 outward-facing triangles, as an .obj file."""
    v = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)])
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6], [0, 2, 6],
             [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    path = folder / "cube.obj"
    path.write_text("".join(f"v {a} {b} {c}\n" for a, b, c in v) + "".join(f"f {a + 1} {b + 1} {c + 1}\n"
                                                                          for a, b, c in faces))
    return str(path)


def test_sampling_counts_and_shapes(tmp_path):
    with cpu_runtime("64"):
        scene = gs.Scene(mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                           grid_density=16, particle_size=0.05))
        box = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.2, 0.3, 0.4)), material=MPM.Elastic())
        sph = scene.add_entity(gs.morphs.Sphere(pos=(0.3, 0.3, 0.3), radius=0.1), material=MPM.Sand())
        cyl = scene.add_entity(gs.morphs.Cylinder(pos=(0.7, 0.7, 0.5), radius=0.1, height=0.2, euler=(90, 0, 0)),
                               material=MPM.Snow(sampler="random"))
        # a unit cube as an OBJ mesh, scaled to the Box above: the same lattice
        mesh = scene.add_entity(gs.morphs.Mesh(file=cube_obj(tmp_path), pos=(0.5, 0.5, 0.5), scale=(0.2, 0.3, 0.4)),
                                material=MPM.Liquid())
        assert box.n_particles == 4 * 6 * 8 == mesh.n_particles
        np.testing.assert_allclose(np.sort(mesh.sampled_pos, 0), np.sort(box.sampled_pos, 0), atol=1e-12)
        # a sphere of radius 2 spacings: the lattice points of (-1.5..1.5)^3 h within 2 h
        assert sph.n_particles == 32
        assert np.all(np.abs(cyl.sampled_pos[:, 1] - 0.7) <= 0.1 + 1e-12)  # rotated: the axis lies along y
        scene.build(n_envs=2)
        assert scene.get_state()["MPMSolver"].pos.shape == (2, box.n_particles + sph.n_particles + cyl.n_particles
                                                            + mesh.n_particles, 3)
        torch.testing.assert_close(box.get_particles_pos()[1], torch.as_tensor(box.sampled_pos))


def test_scene_validation_changes_nothing(tmp_path):
    with cpu_runtime("32"):
        scene = gs.Scene(mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                           grid_density=16))
        with pytest.raises(InvalidInputError, match="Box, Sphere, Cylinder or Mesh"):
            scene.add_entity(gs.morphs.Plane(), material=MPM.Elastic())
        with pytest.raises(UnsupportedFeatureError, match="is not supported"):  # (a Mesh is rigid without material)
            scene.add_entity(gs.morphs.Mesh(file=cube_obj(tmp_path)), material=object())
        assert scene.entities == []
        e = scene.add_entity(gs.morphs.Box(pos=(0.1, 0.5, 0.5), size=(0.1, 0.1, 0.1)), material=MPM.Elastic())
        with pytest.raises(InvalidInputError, match="outside the MPM domain"):
            scene.build()
        assert not scene.is_built and scene.rigid_solver is None and scene.mpm_solver is None
        with pytest.raises(SceneStateError):
            e.get_particles_pos()
    with pytest.raises(InvalidInputError, match="whole number"):
        gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2), mpm_options=gs.options.MPMOptions(dt=3e-3))


def test_entity_setters_validate_and_touch_only_their_slice():
    with cpu_runtime("64"):
        scene, (elastic, liquid) = small_scene(3)
        before = scene.get_state()["MPMSolver"]
        n = elastic.n_particles
        for call, match in [(lambda: elastic.set_velocity(np.zeros((n + 1, 3))), "shape"),
                            (lambda: elastic.set_velocity([0, float("nan"), 0]), "finite"),
                            (lambda: elastic.set_position([0, 0, 5.0]), "domain"),
                            (lambda: elastic.set_active([1] * n), "bools"),
                            (lambda: elastic.set_velocity((1, 0, 0), envs_idx=[3]), "outside"),
                            (lambda: elastic.set_material_params(E=-1.0), "E must be"),
                            (lambda: elastic.set_material_params(nu=0.5), "nu must be")]:
            with pytest.raises(InvalidInputError, match=match):
                call()
        after = scene.get_state()["MPMSolver"]
        assert all(bits(getattr(after, f)) == bits(getattr(before, f)) for f in before.field_names())
        elastic.set_velocity((1.0, 2.0, 3.0), envs_idx=[1])
        liquid.set_position((0.6, 0.5, 0.45), envs_idx=[2])
        v = scene.get_state()["MPMSolver"].vel
        assert (elastic.get_particles_vel(envs_idx=[1]) == torch.tensor([1.0, 2.0, 3.0], dtype=v.dtype)).all()
        assert bits(v[[0, 2]]) == bits(before.vel[[0, 2]]) and bits(v[:, n:]) == bits(before.vel[:, n:])
        torch.testing.assert_close(liquid.get_particles_pos(envs_idx=[2])[0].mean(0),
                                   torch.tensor([0.6, 0.5, 0.45], dtype=v.dtype))
        liquid.set_active(False, envs_idx=[0])
        assert not liquid.get_particles_active()[0].any() and liquid.get_particles_active()[1:].all()
        frozen = liquid.get_particles_pos()[0].clone()
        scene.step()
        assert bits(liquid.get_particles_pos()[0]) == bits(frozen), "inactive particles do not move"
        assert not torch.equal(liquid.get_particles_pos()[1], before.pos[1, n:])


def test_walls_and_floor_hold_particles():
    """A liquid column dropped onto the floor for 0.4 s stays inside the walls for every boundary rule."""
    for boundary in ("sticky", "slip", "separate"):
        with cpu_runtime("32"):
            scene, (elastic, liquid) = small_scene(0, dt=2e-3, boundary=boundary)
            z0 = scene.get_state()["MPMSolver"].pos[..., 2]
            for _ in range(200):
                scene.step()
            z = scene.get_state()["MPMSolver"].pos[..., 2]
            assert torch.isfinite(z).all() and z.min() > 1.5 / 16, boundary
            assert z.mean() < z0.mean() - 0.1, f"{boundary}: the material should have fallen onto the floor"


def test_rigid_collider_pushes_particles():
    """A fixed rigid sphere inside a falling liquid: no particle ends inside it (one-way coupling)."""
    with cpu_runtime("32"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3),
                         mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                           grid_density=32, particle_size=1 / 64))
        scene.add_entity(gs.morphs.Sphere(pos=(0.5, 0.5, 0.3), radius=0.1, fixed=True))
        water = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.6), size=(0.2, 0.2, 0.1)),
                                 material=MPM.Liquid(E=5e4))
        scene.build()
        for _ in range(150):
            scene.step()
        d = (water.get_particles_pos() - torch.tensor([0.5, 0.5, 0.3])).norm(dim=-1)
        assert d.min() > 0.1 - 1.5 / 32, f"a particle is {0.1 - d.min():.4f} m inside the collider"
        assert water.get_particles_pos()[:, 2].min() < 0.25, "the liquid flowed around the sphere"


def test_moving_rigid_box_pushes_particles_at_its_velocity():
    """A free rigid box moving at 1 m/s along x (no gravity) hits an elastic block: no particle ends inside the box and
    the block leaves at least at the box's speed and at most at twice it (the elastic limit of a ball bouncing off a
    moving wall) - so the collider moves with the rigid velocity of the substep."""
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-3, gravity=(0.0, 0.0, 0.0)),
                         mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                           grid_density=32, particle_size=1 / 64))
        box = scene.add_entity(gs.morphs.Box(pos=(0.25, 0.5, 0.5), size=(0.1, 0.2, 0.2)))
        block = scene.add_entity(gs.morphs.Box(pos=(0.42, 0.5, 0.5), size=(0.1, 0.1, 0.1)),
                                 material=MPM.Elastic(E=2e3, nu=0.3, rho=100.0))
        scene.build()
        box.set_dofs_velocity(torch.tensor([1.0, 0, 0, 0, 0, 0], dtype=torch.float64))
        for _ in range(200):
            scene.step()
        x_box = float(box.get_links_pos()[0, 0])
        assert abs(x_box - 0.45) < 1e-9, "the rigid box moves on unaffected (one-way coupling)"
        pos, vel = block.get_particles_pos(), block.get_particles_vel()
        assert pos[:, 0].min() > x_box + 0.05 - 1.5 / 32, "a particle ended inside the moving box"
        vx = float(vel[:, 0].mean())
        assert 0.98 < vx < 2.0, f"mean x velocity {vx:.3f} m/s; the box moves at 1 m/s"


def test_getters_return_contiguous_tensors_after_steps(gs_cpu):
    """The solver keeps particle fields component-major between steps; what the handle returns is plain contiguous
    (users may `.view` it) and equal to the state's values."""
    scene = gs.Scene(mpm_options=gs.options.MPMOptions(lower_bound=(0.0, 0.0, 0.0), upper_bound=(1.0, 1.0, 1.0),
                                                       grid_density=16))
    e = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.2, 0.2, 0.2)), material=gs.materials.MPM.Elastic())
    scene.build(n_envs=2)
    scene.step()
    state = scene.get_state()["MPMSolver"]
    assert not state.pos.is_contiguous(), "stored component-major after a step"
    for got, field in ((e.get_particles_pos(), "pos"), (e.get_particles_vel(), "vel")):
        assert got.is_contiguous() and got.view(-1).numel() == got.numel()
        torch.testing.assert_close(got, getattr(state, field)[:, e.particle_start:e.particle_end], rtol=0, atol=0)

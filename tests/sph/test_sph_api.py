"""SPH options, materials, sampling, the scene keyword and the entity handle: validation (errors name the problem and
leave the scene unchanged) and behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, SceneStateError, UnsupportedFeatureError

from ..conftest import cpu_runtime
from ..test_state_contract import bits
from .conftest import SPH, tank_scene


@pytest.mark.parametrize("kwargs,match", [
    (dict(pressure_solver="PCISPH"), "pressure_solver"), (dict(particle_size=0.0), "particle_size"),
    (dict(lower_bound=(0, 0, 1), upper_bound=(1, 1, 0.5)), "upper bound"), (dict(dt=-1.0), "dt"),
    (dict(hash_grid_cell_size=0.01), "support radius"), (dict(hash_grid_res=(0, 1, 1)), "hash_grid_res"),
    (dict(max_divergence_error=0), "max_divergence_error"), (dict(max_density_error_percent=-1), "max_density"),
    (dict(max_density_solver_iterations=0), "int >= 1"), (dict(max_divergence_solver_iterations=2.5), "int >= 1"),
    (dict(gravity=(0, 0)), "gravity"), (dict(foo=1), "unknown")])
def test_sph_options_are_validated(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        gs.options.SPHOptions(**kwargs)


def test_sph_options_defaults_follow_genesis():
    o = gs.options.SPHOptions()
    assert (o.dt, o.gravity, o.particle_size, o.pressure_solver) == (None, None, 0.02, "WCSPH")
    assert (o.lower_bound, o.upper_bound) == ((-100.0, -100.0, 0.0), (100.0, 100.0, 100.0))
    assert (o.hash_grid_res, o.hash_grid_cell_size, o.support_radius) == (None, 0.04, 0.04)
    assert (o.max_divergence_error, o.max_density_error_percent) == (0.1, 0.05)
    assert (o.max_divergence_solver_iterations, o.max_density_solver_iterations) == (100, 100)
    assert gs.options.SPHOptions(particle_size=0.01).hash_grid_cell_size == 0.02
    # hash_grid_res cannot change the neighbours found: not part of the fingerprint
    assert gs.options.SPHOptions(hash_grid_res=(1, 1, 1)).fingerprint() == o.fingerprint()
    with pytest.raises(InvalidInputError, match="frozen"):
        o.dt = 1e-3


def test_liquid_defaults_and_validation():
    m = SPH.Liquid()
    assert (m.rho, m.stiffness, m.exponent, m.mu, m.gamma, m.sampler) == (1000.0, 50000.0, 7.0, 0.005, 0.01, "regular")
    for kwargs, err in [(dict(rho=0), InvalidInputError), (dict(stiffness=-1.0), InvalidInputError),
                        (dict(mu=-0.1), InvalidInputError), (dict(gamma=float("nan")), InvalidInputError),
                        (dict(exponent=True), InvalidInputError), (dict(sampler="pbs"), UnsupportedFeatureError),
                        (dict(sampler="pbs-32"), UnsupportedFeatureError), (dict(sampler="grid"), InvalidInputError)]:
        with pytest.raises(err):
            SPH.Liquid(**kwargs)
    assert SPH.Liquid(mu=0.0, gamma=0.0).mu == 0.0


def test_sampling_from_morphs_and_scene_validation():
    with cpu_runtime("64"):
        scene = gs.Scene(sph_options=gs.options.SPHOptions(particle_size=0.05, lower_bound=(0, 0, 0),
                                                           upper_bound=(1, 1, 1)))
        a = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.2, 0.3, 0.4)), material=SPH.Liquid())
        b = scene.add_entity(gs.morphs.Box(lower=(0.0, 0.0, 0.0), upper=(0.2, 0.3, 0.4)), material=SPH.Liquid())
        s = scene.add_entity(gs.morphs.Sphere(pos=(0.3, 0.3, 0.3), radius=0.1), material=SPH.Liquid())
        c = scene.add_entity(gs.morphs.Cylinder(pos=(0.7, 0.7, 0.5), radius=0.1, height=0.2),
                             material=SPH.Liquid(sampler="random"))
        assert a.n_particles == b.n_particles == 4 * 6 * 8 and s.n_particles == 32
        np.testing.assert_allclose(a.sampled_pos - a.sampled_pos.mean(0), b.sampled_pos - b.sampled_pos.mean(0))
        assert np.all(np.linalg.norm(c.sampled_pos[:, :2] - 0.7, axis=1) <= 0.1 + 1e-12)
        with pytest.raises(InvalidInputError, match="Box, Sphere, Cylinder or Mesh"):
            scene.add_entity(gs.morphs.Plane(), material=SPH.Liquid())
        out = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.98), size=(0.2, 0.2, 0.2)), material=SPH.Liquid())
        with pytest.raises(InvalidInputError, match="outside the SPH domain"):
            scene.build()
        assert not scene.is_built and scene.sph_solver is None
        with pytest.raises(SceneStateError, match="build"):
            out.get_particles_pos()
    with pytest.raises(InvalidInputError, match="whole number"):
        gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2), sph_options=gs.options.SPHOptions(dt=3e-3))
    with pytest.raises(InvalidInputError, match="SPHOptions"):
        gs.Scene(sph_options=gs.options.MPMOptions())


def test_surface_and_vis_options_are_accepted():
    with cpu_runtime("32"):
        scene = gs.Scene(sph_options=gs.options.SPHOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1)),
                         vis_options=gs.options.VisOptions(visualize_sph_boundary=True))
        w = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.2), size=(0.1, 0.1, 0.1)), material=SPH.Liquid(),
                             surface=gs.surfaces.Default(color=(0.4, 0.8, 1.0), vis_mode="particle"))
        scene.build()
        assert w.surface.vis_mode == "particle" and scene.sph_options.pressure_solver == "WCSPH"


def test_handle_getters_setters_and_isolation():
    with cpu_runtime("64"):
        scene, (_, box, water) = tank_scene(3)
        n = water.n_particles
        S = scene.get_state()["SPHSolver"]
        assert water.get_particles_pos().shape == (3, n, 3) and water.get_particles_density().shape == (3, n)
        assert water.get_particles_pressure().shape == (3, n) and water.get_particles_active().dtype == torch.bool
        torch.testing.assert_close(water.get_mass(), torch.full((3,), n * 0.8 * 0.02 ** 3 * 1000.0,
                                                                  dtype=torch.float64))
        for call, match in [(lambda: water.set_velocity(np.zeros((n + 1, 3))), "shape"),
                            (lambda: water.set_velocity([0, float("nan"), 0]), "finite"),
                            (lambda: water.set_position([0.1, 0.1, 5.0]), "domain"),
                            (lambda: water.set_active([1] * n), "bools"),
                            (lambda: water.set_velocity((1, 0, 0), envs_idx=[3]), "outside")]:
            with pytest.raises(InvalidInputError, match=match):
                call()
        after = scene.get_state()["SPHSolver"]
        assert all(bits(getattr(after, f)) == bits(getattr(S, f)) for f in S.field_names()), "a failed call changed"
        water.set_velocity((1.0, 2.0, 3.0), envs_idx=[1])
        v = scene.get_state()["SPHSolver"].vel
        assert (water.get_particles_vel(envs_idx=[1]) == torch.tensor([1.0, 2.0, 3.0], dtype=v.dtype)).all()
        assert bits(v[[0, 2]]) == bits(S.vel[[0, 2]])
        water.set_position((0.08, 0.1, 0.12), envs_idx=[1])  # Genesis: the sampled shape at that centre, at rest
        torch.testing.assert_close(water.get_particles_pos(envs_idx=[1])[0].mean(0),
                                   torch.tensor([0.08, 0.1, 0.12], dtype=v.dtype))
        assert not water.get_particles_vel(envs_idx=[1]).any()
        water.set_active(False, envs_idx=[0])
        assert not water.get_particles_active()[0].any() and water.get_particles_active()[1:].all()
        assert water.get_mass()[0] == 0
        frozen = scene.get_state()["SPHSolver"].select(torch.tensor([0]))
        scene.step()
        now = scene.get_state()["SPHSolver"].select(torch.tensor([0]))
        assert all(bits(getattr(now, f)) == bits(getattr(frozen, f)) for f in now.field_names()), "inactive moved"
        water.activate(envs_idx=[0])
        assert water.get_particles_active().all()


def test_n_envs_zero_getters_drop_the_env_dim():
    with cpu_runtime("32"):
        scene, (water,) = tank_scene(0, rigid=False)
        assert water.get_particles_pos().shape == (water.n_particles, 3)
        assert water.get_particles_density().shape == (water.n_particles,) and water.get_mass().shape == ()
        assert water.particle_size == 0.02 and "SPHEntity" in repr(water)


def test_particle_subset_setters():
    with cpu_runtime("64"):
        scene, (water,) = tank_scene(2, rigid=False)
        before = scene.get_state()["SPHSolver"]
        for call, match in [(lambda: water.set_particles_vel([[1, 0, 0]], particles_idx_local=[water.n_particles]),
                             "particles_idx_local"),
                            (lambda: water.set_particles_vel(torch.zeros(3, 3), particles_idx_local=[0, 1]), "shape"),
                            (lambda: water.set_particles_pos([0, 0, 9.0], particles_idx_local=[0]), "domain"),
                            (lambda: water.set_particles_active([1], particles_idx_local=[0]), "bools")]:
            with pytest.raises(InvalidInputError, match=match):
                call()
        after = scene.get_state()["SPHSolver"]
        assert all(bits(getattr(after, f)) == bits(getattr(before, f)) for f in before.field_names())
        water.set_particles_vel([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]], particles_idx_local=[3, 7], envs_idx=[1])
        v = water.get_particles_vel()
        assert v[1, 3].tolist() == [0.0, 0.0, 1.0] and v[1, 7].tolist() == [0.0, 2.0, 0.0]
        assert bits(v[0]) == bits(before.vel[0]) and not v[1, [0, 1, 2, 4, 5, 6]].any()
        water.set_particles_pos([0.05, 0.1, 0.25], particles_idx_local=[3])
        x = water.get_particles_pos()
        assert (x[:, 3] == torch.tensor([0.05, 0.1, 0.25], dtype=x.dtype)).all()
        assert not water.get_particles_vel()[:, 3].any()
        water.set_particles_active(False, particles_idx_local=[0, 1], envs_idx=[0])
        a = water.get_particles_active()
        assert not a[0, :2].any() and a[0, 2:].all() and a[1].all()

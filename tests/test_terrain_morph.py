"""gs.morphs.Terrain: Genesis 1.4.5's arguments and generators (geometry/terrain.py), its placement as a MuJoCo
height field, and the terrain entity's accessors.

Generators against their closed forms (flat, stairs, pyramid stairs, sloped, wave) or their defining properties
(value sets of obstacles / stones, integer random heights, the central platforms); seeds: randomize=False draws
each subterrain from RandomState(0) (reproducible), randomize=True from NumPy's global generator. Placement: MuJoCo
itself, by casting rays down onto the compiled hfield (`mj_ray`) at random points: the hit height equals
`surface_height` (grid point (i, j) at pos + (i hs, j hs), cells split along (i+1, j)-(i, j+1)) to 1e-6 m (float32
elevations in MuJoCo's hfield_data), also turned and moved, and `get_terrain_height` in a built scene agrees.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError
from genesis_torch.geometry import terrain as tg


def _one(kind, size=(12.0, 12.0), hs=0.25, vs=0.005, **params):
    return gs.morphs.Terrain(n_subterrains=(1, 1), subterrain_size=size, horizontal_scale=hs, vertical_scale=vs,
                             subterrain_types=kind, subterrain_parameters={kind: params} if params else None)


def test_defaults_are_genesis():
    t = gs.morphs.Terrain()
    assert t.n_subterrains == (3, 3) and t.subterrain_size == (12.0, 12.0)
    assert (t.horizontal_scale, t.vertical_scale, t.uv_scale) == (0.25, 0.005, 1.0)
    assert t.subterrain_types[0] == ("flat_terrain", "random_uniform_terrain", "stepping_stones_terrain")
    assert t.height_field.shape == (3 * 48 + 1, 3 * 48 + 1)
    assert t.subterrain_parameters["random_uniform_terrain"] == {"min_height": -0.1, "max_height": 0.1, "step": 0.1,
                                                                 "downsampled_scale": 0.5}
    assert not t.randomize and t.collision and t.visualization


def test_flat_is_zero():
    assert np.all(_one("flat_terrain").height_field == 0)


def test_pyramid_stairs_closed_form():
    """Ring k (k = min(8, d // 3), d the grid distance to the border) sits at k step heights (-0.1 m = -20 units)."""
    h = _one("pyramid_stairs_terrain").height_field
    i, j = np.meshgrid(np.arange(49), np.arange(49), indexing="ij")
    d = np.minimum(np.minimum(i, j), np.minimum(48 - i, 48 - j))
    assert np.array_equal(h, -20.0 * np.minimum(8, d // 3))


def test_stairs_sloped_wave_closed_forms():
    h = _one("stairs_terrain", step_width=0.5, step_height=0.05).height_field  # w = 2 cells, s = 10 units
    rows = np.arange(49)
    assert np.array_equal(h, np.where(rows < 48, 10.0 * (rows // 2 + 1), 0.0)[:, None].repeat(49, 1))
    h = _one("sloped_terrain", slope=-0.5).height_field  # top = int(-0.5 * 50 * 49) = -1225
    assert np.allclose(h, (-1225 * rows / 49)[:, None].repeat(49, 1), rtol=0, atol=1e-12)
    h = _one("wave_terrain", num_waves=2.0, amplitude=0.1).height_field
    a, dv = 10.0, 49 / (4 * math.pi)
    assert np.allclose(h, a * np.cos(rows[None, :] / dv) + a * np.sin(rows[:, None] / dv), atol=1e-12)


def test_random_generators_value_sets():
    h = _one("discrete_obstacles_terrain").height_field  # H = 10 units, platform of 4 cells at the centre
    assert set(np.unique(h)) <= {-10.0, -5.0, 0.0, 5.0, 10.0} and len(np.unique(h)) >= 4
    assert np.all(h[22:26, 22:26] == 0)
    h = _one("stepping_stones_terrain", platform_size=1.0).height_field
    assert set(np.unique(h)) <= {-2000.0} | set(np.arange(-41.0, 40.0)) and np.all(h[22:26, 22:26] == 0)
    assert (h == -2000).mean() > 0.2  # the gaps between stones
    h = _one("random_uniform_terrain").height_field
    assert np.array_equal(h, np.rint(h)) and h.std() > 5 and abs(h.mean()) < 10


def test_seeds():
    a, b = _one("random_uniform_terrain"), _one("random_uniform_terrain")
    assert np.array_equal(a.height_field, b.height_field)  # randomize=False: RandomState(0) for every subterrain
    grid = gs.morphs.Terrain(n_subterrains=(1, 2), subterrain_size=(4.0, 4.0), subterrain_types="random_uniform_terrain")
    assert np.array_equal(grid.height_field[:, 1:16], grid.height_field[:, 17:32])  # both drew seed 0
    kw = dict(n_subterrains=(1, 2), subterrain_size=(4.0, 4.0), subterrain_types="random_uniform_terrain",
              randomize=True)
    np.random.seed(7)
    r1 = gs.morphs.Terrain(**kw).height_field
    np.random.seed(7)
    r2 = gs.morphs.Terrain(**kw).height_field
    r3 = gs.morphs.Terrain(**kw).height_field
    assert np.array_equal(r1, r2) and not np.array_equal(r1, r3)
    assert not np.array_equal(r1[:, 1:16], r1[:, 17:32]) and not np.array_equal(r1, grid.height_field)
    named = [gs.morphs.Terrain(name="test_seeds_cache", **kw).height_field for _ in range(2)]
    assert np.array_equal(*named)  # `name`: generated once per process for these options


def test_tiling_shares_boundaries_with_the_higher_value():
    t = gs.morphs.Terrain(n_subterrains=(2, 1), subterrain_size=(2.0, 2.0),
                          subterrain_types=[["pyramid_stairs_terrain"], ["flat_terrain"]],
                          subterrain_parameters={"pyramid_stairs_terrain": {"step_height": 0.05, "step_width": 0.25}})
    h = t.height_field
    assert h.shape == (17, 9)
    stairs = _one("pyramid_stairs_terrain", size=(2.0, 2.0), step_height=0.05, step_width=0.25).height_field
    assert np.array_equal(h[:8], stairs[:8]) and np.all(h[9:] == 0)
    assert np.array_equal(h[8], np.maximum(stairs[8], 0))


def test_height_field_argument():
    field = np.arange(12.0).reshape(3, 4)
    t = gs.morphs.Terrain(height_field=field, horizontal_scale=0.5, vertical_scale=0.1)
    assert np.array_equal(t.height_field, field) and np.allclose(t.height_field_m, field * 0.1)
    assert np.array_equal(gs.morphs.Terrain(height_field=torch.tensor(field)).height_field, field)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(subterrain_types="lava_terrain"), InvalidInputError, "unsupported subterrain type"),
    (dict(subterrain_types=[["flat_terrain", "flat_terrain"]]), InvalidInputError, "shaped n_subterrains"),
    (dict(subterrain_types=None), InvalidInputError, "shaped n_subterrains"),  # Genesis' 3 x 3 default grid
    (dict(subterrain_parameters={"stairs_terrain": {"step": 1}}), InvalidInputError, "unknown parameter"),
    (dict(subterrain_parameters={"mountain": {}}), InvalidInputError, "unknown subterrain type"),
    (dict(subterrain_size=(12.1, 12.0)), InvalidInputError, "divisible by `horizontal_scale`|divisible by horizontal"),
    (dict(collision=False, visualization=False), InvalidInputError, "neither seen nor touched"),
    (dict(offset_pos=(1, 0, 0)), UnsupportedFeatureError, "offset_pos"),
    (dict(horizontal_scale=0.0), InvalidInputError, "horizontal_scale"),
    (dict(height_field=np.ones(5)), InvalidInputError, "2D array"),
    (dict(height_field=[[0.0, np.nan], [0.0, 0.0]]), InvalidInputError, "finite"),
    (dict(randomize=1), InvalidInputError, "randomize"),
    (dict(name="a", from_stored="b"), InvalidInputError, "from_stored"),
    (dict(scale=2.0), InvalidInputError, "unknown argument"),
])
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gs.morphs.Terrain(**{"n_subterrains": (1, 1), "subterrain_size": (12.0, 12.0), "subterrain_types": "flat_terrain",
                             **kwargs})


def test_base_morph_options_as_other_morphs(caplog):
    kw = dict(n_subterrains=(1, 1), subterrain_size=(2.0, 2.0), subterrain_types="flat_terrain")
    t = gs.morphs.Terrain(offset_pos=(0, 0, 0), offset_quat=(1, 0, 0, 0), requires_jac_and_IK=True, **kw)
    assert t.collision and t.visualization and "deprecated" in caplog.text
    hidden = gs.morphs.Terrain(visualization=False, **kw).to_spec().geoms[0]
    ghost = gs.morphs.Terrain(collision=False, **kw).to_spec().geoms[0]
    assert hidden.group == 3 and (ghost.contype, ghost.conaffinity) == (0, 0)
    assert gs.morphs.Terrain(name="x", from_stored="x", **kw).name == "x"


def _ray_heights(m, d, xy):
    """World z of the first geom hit by rays cast straight down from z = 50 at world points xy (N, 2)."""
    out = []
    geomid = np.zeros(1, dtype=np.int32)
    for x, y in xy:
        dist = mujoco.mj_ray(m, d, np.array([x, y, 50.0]), np.array([0.0, 0.0, -1.0]), None, 1, -1, geomid)
        out.append(50.0 - dist if dist >= 0 else np.nan)
    return np.array(out)


@pytest.mark.parametrize("euler", [(0.0, 0.0, 0.0), (0.0, 0.0, 30.0)])
def test_hfield_surface_is_genesis_placement(euler):
    """The compiled hfield's surface (MuJoCo's ray cast) is Genesis' terrain mesh: corner (0, 0) at pos, the field
    along +x (rows) and +y (columns), cells split along (i+1, j)-(i, j+1); get_terrain_height agrees."""
    t = gs.morphs.Terrain(pos=(1.0, -2.0, 0.3), euler=euler, n_subterrains=(1, 1), subterrain_size=(4.0, 3.0),
                          horizontal_scale=0.5, subterrain_types="random_uniform_terrain",
                          subterrain_parameters={"random_uniform_terrain": {"downsampled_scale": 0.5,
                                                                            "min_height": -0.3, "max_height": 0.3}})
    scene = gs.Scene(show_viewer=False)
    ent = scene.add_entity(t)
    scene.build()
    m = scene.rigid_solver.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    rng = np.random.default_rng(0)
    local = rng.uniform((0.01, 0.01), (3.99, 2.99), size=(200, 2))
    yaw = math.radians(euler[2])
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    world = local @ rot.T + np.array([1.0, -2.0])
    expect = tg.surface_height(t.height_field_m, 0.5, local[:, 0], local[:, 1]) + 0.3
    assert np.abs(_ray_heights(m, d, world) - expect).max() <= 1e-6
    got = ent.get_terrain_height(torch.tensor(world)).numpy()
    assert np.abs(got - expect).max() <= 1e-6  # the scene's float32
    assert ent.terrain_hf.shape == (9, 7) and np.allclose(ent.terrain_scale, (0.5, 0.005))
    assert float(ent.get_terrain_height([1.0 + 0.25 * rot[0, 0], -2.0 + 0.25 * rot[1, 0]])) == pytest.approx(
        tg.surface_height(t.height_field_m, 0.5, np.array([0.25]), np.array([0.0]))[0] + 0.3, abs=1e-6)
    far = ent.get_terrain_height(torch.tensor([[1.0 - 2.0, -2.0], [float("nan"), 0.0]]))
    assert torch.isnan(far).all()  # beyond one cell outside, and non-finite input


def test_terrain_entity_in_batched_scene():
    scene = gs.Scene(show_viewer=False)
    ent = scene.add_entity(gs.morphs.Terrain(n_subterrains=(1, 1), subterrain_size=(2.0, 2.0),
                                             subterrain_types="pyramid_stairs_terrain"))
    scene.build(n_envs=3)
    h = ent.get_terrain_height(torch.tensor([[1.0, 1.0], [0.1, 0.1]]))
    assert h.shape == (3, 2) and torch.allclose(h[:, 0], torch.full((3,), -0.1))  # the centre: one step down
    per_env = ent.get_terrain_height(torch.zeros(2, 1, 2) + 1.0, envs_idx=[0, 2])
    assert per_env.shape == (2, 1)
    with pytest.raises(InvalidInputError):
        ent.get_terrain_height(torch.zeros(3, 3))
    assert ent.get_link("baselink").idx_local == 0 and ent.n_dofs == 0
    aabb = ent.get_AABB()  # the height field's box, its 1 m base below the lowest point included
    assert torch.allclose(aabb[0], torch.tensor([[0.0, 0.0, -1.1], [2.0, 2.0, 0.0]]).expand(3, 2, 3), atol=1e-6)


def test_geom_metadata_height_field_as_genesis_scripts_read_it(gs_cpu):
    """Genesis' terrain examples: `(geom,) = terrain.geoms; geom.metadata["height_field"]` times vertical_scale is the
    surface under grid point (i, j) at (i, j) * horizontal_scale; a sphere dropped there rests on it."""
    hs, vs = 0.25, 0.005
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005))
    terrain = scene.add_entity(gs.morphs.Terrain(n_subterrains=(1, 1), subterrain_size=(3.0, 3.0),
                                                 horizontal_scale=hs, vertical_scale=vs,
                                                 subterrain_types="pyramid_stairs_terrain"))
    ball = scene.add_entity(gs.morphs.Sphere(pos=(1.0, 1.5, 1.0), radius=0.05))
    scene.build()
    (geom,) = terrain.geoms
    hf = geom.metadata["height_field"]
    assert hf.shape == terrain.terrain_hf.shape and np.array_equal(hf * vs, terrain.terrain_hf)
    assert not hf.flags.writeable and ball.geoms[0].metadata == {}
    i, j = 4, 6  # the grid point under the ball
    for _ in range(200):
        scene.step()
    assert float(ball.get_pos()[2]) == pytest.approx(hf[i, j] * vs + 0.05, abs=2e-3)

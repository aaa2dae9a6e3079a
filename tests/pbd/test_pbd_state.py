"""The state contract (DESIGN.md §2-6) for PBD scenes: checkpoints round-trip and continue bitwise (f32 and f64,
`fix_particles`, `fix_particles_to_link` and `set_particles_active` state included), partial resets leave other envs
bitwise untouched, batched == serial and permutations permute results (bitwise: constraints of one colour share no
particle, so every scatter is a plain sum per particle), a NaN stays in its env, entity setters validate and change
nothing when they raise."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from ..test_state_contract import bits
from .conftest import PBD, grid_obj

KINDS = ("cloth", "coupled", "elastic", "liquid")
FIELDS = ("pos", "vel", "free", "active", "link", "link_pos", "coll_ref")


def make(kind, n_envs):
    """A small pinned cloth and free particles; "coupled": a falling rigid ball under the cloth as well; "elastic": an
    elastic tetgen-meshed cube as well; "liquid": a block of position-based liquid as well."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3),
                     pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0), upper_bound=(1, 1, 2),
                                                       particle_size=0.05))
    ents = []
    if kind == "coupled":
        ents.append(scene.add_entity(gs.morphs.Sphere(pos=(0.0, 0.0, 0.7), radius=0.15)))
    ents.append(scene.add_entity(gs.morphs.Mesh(file=grid_obj(4), pos=(0, 0, 1.0), scale=0.8),
                                 material=PBD.Cloth(stretch_compliance=1e-5)))
    ents.append(scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.4), size=(0.1, 0.1, 0.1)),
                                 material=PBD.Particle(sampler="regular")))
    if kind == "elastic":
        pytest.importorskip("tetgen")
        ents.insert(0, scene.add_entity(gs.morphs.Box(pos=(-0.4, 0.0, 0.3), size=(0.2, 0.2, 0.2)),
                                        material=PBD.Elastic(stretch_compliance=1e-6)))
    if kind == "liquid":
        ents.insert(0, scene.add_entity(gs.morphs.Box(pos=(-0.5, 0.0, 0.2), size=(0.3, 0.3, 0.3)),
                                        material=PBD.Liquid(sampler="regular")))
    scene.build(n_envs=n_envs)
    return scene, ents


def randomize(scene, ents, seed):
    """Random per-env velocities; per env: fixed cloth particles, two fixed to the rigid ball's link ("coupled"), one
inactive particle per PBD entity."""
    rng = np.random.default_rng(seed)
    B = scene.batch_size
    for e in ents:
        if isinstance(e, gs.RigidEntity):
            continue
        e.set_velocity(torch.as_tensor(rng.normal(0, 0.4, (B, e.n_particles, 3)), dtype=scene.dtype),
                       envs_idx=list(range(B)))
    cloth = ents[-2]
    ball = next((e for e in ents if isinstance(e, gs.RigidEntity)), None)
    for b in range(B):
        picks = rng.choice(cloth.n_particles, 4, replace=False).tolist()
        cloth.fix_particles(picks[:2], envs_idx=[b])
        if ball is not None:  # two more follow the falling ball
            cloth.fix_particles_to_link(ball.base_link.idx, picks[2:], envs_idx=[b])
        for e in ents:  # one particle of each PBD entity out of the simulation
            if not isinstance(e, gs.RigidEntity):
                e.set_particles_active(False, [int(rng.integers(e.n_particles))], envs_idx=[b])


def run(scene, k):
    for _ in range(k):
        scene.step()
    return scene.get_state()


def assert_bitwise(got: gs.SimState, want: gs.SimState, rows_got=None, rows_want=None, what=""):
    for name, st in want.solvers.items():
        for field, b in st.tensors().items():
            a = getattr(got.solvers[name], field)
            if rows_got is not None:
                a = a[torch.as_tensor(rows_got)]
            if rows_want is not None:
                b = b[torch.as_tensor(rows_want)]
            assert bits(a) == bits(b), f"{what}: {name}.{field} differs"


@pytest.mark.parametrize("precision", ["32", "64"])
@pytest.mark.parametrize("suffix", [".pkl", ".safetensors"])
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip_and_continue_bitwise(kind, suffix, precision, tmp_path):
    with cpu_runtime(precision):
        scene, ents = make(kind, 2)
        randomize(scene, ents, 1)
        run(scene, 2)
        scene.save_checkpoint(tmp_path / f"c{suffix}")
        saved = scene.get_state()
        continued = run(scene, 3)
        fresh, fents = make(kind, 2)
        fresh.load_checkpoint(tmp_path / f"c{suffix}")
        assert fresh.t == 2
        assert_bitwise(fresh.get_state(), saved, what="after load")
        c = fents[-2]
        assert bits(c.get_particles_free()) == bits(saved["PBDSolver"].free[:, c.particle_start:c.particle_end])
        fixed = ~fents[-2].get_particles_free()
        pos_fixed = fents[-2].get_particles_pos()[fixed]
        assert_bitwise(run(fresh, 3), continued, what="continued")
        assert torch.equal(fents[-2].get_particles_pos()[fixed & (c.get_particles_link() < 0)],
                           pos_fixed[(c.get_particles_link() < 0)[fixed]])  # fixed particles stay fixed after load
        assert bits(c.get_particles_active()) == bits(saved["PBDSolver"].active[:, c.particle_start:c.particle_end])
        if suffix == ".pkl":
            payload = pickle.loads((tmp_path / "c.pkl").read_bytes())
            assert {f"PBDSolver.{f}" for f in FIELDS} <= set(payload["arrays"])


def test_checkpoint_of_another_pbd_configuration_is_refused(tmp_path):
    with cpu_runtime("64"):
        scene, _ = make("cloth", 1)
        scene.save_checkpoint(tmp_path / "c.pkl")
        other = gs.Scene(pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0), upper_bound=(1, 1, 2),
                                                           particle_size=0.05))
        other.add_entity(gs.morphs.Mesh(file=grid_obj(4), pos=(0, 0, 1.0), scale=0.8),
                         material=PBD.Cloth(stretch_compliance=1e-4))
        other.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.4), size=(0.1, 0.1, 0.1)),
                         material=PBD.Particle(sampler="regular"))
        other.build(n_envs=1)
        before = other.get_state()
        with pytest.raises(gs.errors.IncompatibleCheckpointError, match="fingerprint"):
            other.load_checkpoint(tmp_path / "c.pkl")
        assert_bitwise(other.get_state(), before, what="refused load")


@pytest.mark.parametrize("kind", KINDS)
def test_partial_reset_leaves_other_envs_bitwise(kind):
    with cpu_runtime("32"):
        scene, ents = make(kind, 4)
        build = scene.get_state()
        randomize(scene, ents, 2)
        S = run(scene, 2)
        run(scene, 2)
        before = scene.get_state()
        scene.reset(envs_idx=[2, 0])
        assert scene.t == 4
        assert_bitwise(scene.get_state(), build, [0, 2], [0, 2], what="reset envs")
        assert_bitwise(scene.get_state(), before, [1, 3], [1, 3], what="untouched envs")
        scene.reset(state=S, envs_idx=torch.tensor([False, True, False, False]))
        assert_bitwise(scene.get_state(), S, [1], [1], what="reset to S")
        assert_bitwise(scene.get_state(), before, [3], [3], what="untouched env 3")
        scene.reset()
        assert scene.t == 0
        assert_bitwise(scene.get_state(), build, what="full reset")


@pytest.mark.parametrize("precision", ["32", "64"])
@pytest.mark.parametrize("kind", KINDS)
def test_batched_equals_serial_and_permutation_bitwise(kind, precision):
    with cpu_runtime(precision):
        scene, ents = make(kind, 3)
        randomize(scene, ents, 3)
        S = scene.get_state()
        batched = run(scene, 3)
        single, _ = make(kind, 1)
        for i in range(3):
            single.reset(state=gs.SimState(t=0, solvers={k: s.select(torch.tensor([i])) for k, s in S.solvers.items()},
                                           fingerprint=S.fingerprint))
            assert_bitwise(run(single, 3), batched, rows_want=[i], what=f"serial env {i}")
        perm = torch.tensor([2, 0, 1])
        scene.reset(state=gs.SimState(t=0, solvers={k: s.select(perm) for k, s in S.solvers.items()},
                                      fingerprint=S.fingerprint))
        assert_bitwise(run(scene, 3), batched, rows_want=perm.tolist(), what="permuted")


def test_nan_in_one_env_stays_there():
    with cpu_runtime("64"):
        scene, ents = make("cloth", 3)
        randomize(scene, ents, 4)
        S = scene.get_state()
        clean = run(scene, 2)
        vel = S["PBDSolver"].vel.clone()
        vel[1, 5] = float("nan")
        scene._pbd_state = S["PBDSolver"].replace(vel=vel)
        assert torch.equal(scene.pbd_solver.get_error_envs_mask(), torch.tensor([False, True, False]))
        for _ in range(2):
            with pytest.raises(gs.errors.SimulationDivergedError, match=r"PBDSolver envs \[1\]"):
                scene.step()
        assert_bitwise(scene.get_state(), clean, [0, 2], [0, 2], what="envs next to a NaN env")


def test_entity_api_validates_and_changes_nothing_on_error():
    with cpu_runtime("32"):
        scene, ents = make("cloth", 2)
        cloth = ents[0]
        assert cloth.n_vertices == cloth.n_particles == 25 and cloth.n_faces == 32 and cloth.faces.shape == (32, 3)
        assert ents[1].n_vertices == 0 and ents[1].faces is None
        before = scene.get_state()
        for call in (lambda: cloth.set_position(np.zeros((3, 3))), lambda: cloth.set_velocity([np.nan, 0, 0]),
                     lambda: cloth.fix_particles([25]), lambda: cloth.fix_particles([0.5]),
                     lambda: cloth.release_particle([-1]), lambda: cloth.set_particles_pos(np.zeros((2, 3)), [1]),
                     lambda: cloth.fix_particles(zero_velocity="yes"), lambda: cloth.find_closest_particle([0, 0])):
            with pytest.raises(gs.errors.InvalidInputError):
                call()
        assert_bitwise(scene.get_state(), before, what="after refused calls")
        cloth.set_position((0.1, 0.0, 1.2), envs_idx=[1])
        x = cloth.get_particles_pos()
        assert torch.equal(x[0], before["PBDSolver"].pos[0, :25])
        torch.testing.assert_close(x[1], before["PBDSolver"].pos[1, :25] + torch.tensor([0.1, 0.0, 0.2]))
        i = cloth.find_closest_particle((0.5, 0.5, 1.2))
        assert i.shape == (2,) and int(i[1]) == 24
        cloth.fix_particles(3, envs_idx=[0])
        cloth.release_particle(3)
        assert bool(cloth.get_particles_free().all())
        scene2 = gs.Scene()
        surface = gs.surfaces.Default(vis_mode="particle")
        assert scene2.add_entity(gs.morphs.Mesh(file=grid_obj(4)), material=PBD.Cloth(), surface=surface).surface \
            is surface
        with pytest.raises(gs.errors.InvalidInputError, match="Mesh"):
            scene2.add_entity(gs.morphs.Box(), material=PBD.Cloth())
        for bad in (dict(rho=0.0), dict(stretch_relaxation=1.5), dict(static_friction=-1.0)):
            with pytest.raises(gs.errors.InvalidInputError):
                PBD.Cloth(**bad)
        with pytest.raises(gs.errors.UnsupportedFeatureError, match="pbs"):
            PBD.Liquid(sampler="pbs")
        with pytest.raises(gs.errors.InvalidInputError, match="hash_grid_cell_size"):
            gs.options.PBDOptions(particle_size=0.1, hash_grid_cell_size=0.1)
        with pytest.raises(gs.errors.InvalidInputError, match="max_stretch_solver_iterations"):
            gs.options.PBDOptions(max_stretch_solver_iterations=0)

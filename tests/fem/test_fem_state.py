"""The state contract (DESIGN.md §4-6) for FEM scenes, explicit and implicit, with vertex constraints active and
coupled to a rigid body: checkpoints round-trip and continue bitwise, partial resets leave other envs bitwise
untouched, batched == serial and permutations permute results (bitwise: vertex sums use a fixed gather order), a
NaN stays in its env."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from ..test_state_contract import bits

KINDS = ("explicit", "implicit", "coupled")  # coupled: explicit with a rigid ball dropped on the block
FEM_FIELDS = ("pos", "vel", "active", "vc_mode", "vc_target", "vc_stiffness", "vc_link", "vc_offset", "actu")


def make(kind, n_envs):
    implicit = kind == "implicit"
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3 if implicit else 1e-3),
                     fem_options=gs.options.FEMOptions(use_implicit_solver=implicit, enable_vertex_constraints=True,
                                                       n_pcg_iterations=40))
    ents = []
    if kind == "coupled":
        ents.append(scene.add_entity(gs.morphs.Sphere(pos=(0.0, 0.0, 0.45), radius=0.05)))
    ents.append(scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.3), size=(0.2, 0.1, 0.1)),
                                 material=gs.materials.FEM.Elastic(E=2e4, nu=0.3, rho=500.0,
                                                                   model="linear_corotated")))
    ents.append(scene.add_entity(gs.morphs.Box(pos=(0.3, 0.0, 0.2), size=(0.1, 0.1, 0.1)),
                                 material=gs.materials.FEM.Muscle(E=3e4, nu=0.25, rho=800.0, model="linear",
                                                                  n_groups=2)))
    scene.build(n_envs=n_envs)
    return scene, ents


def randomize(scene, ents, seed):
    """Random per-env velocities, per-env E, a hard and a soft constraint with per-env targets, one entity
    deactivated in env 0."""
    rng = np.random.default_rng(seed)
    B = scene.batch_size
    envs = list(range(B))
    for e in ents:
        if isinstance(e, gs.RigidEntity):
            continue
        e.set_velocity(torch.as_tensor(rng.normal(0, 0.4, (B, e.n_vertices, 3)), dtype=scene.dtype), envs_idx=envs)
    fem = [e for e in ents if not isinstance(e, gs.RigidEntity)]
    fem[0].set_material_params(E=torch.as_tensor(rng.uniform(1e4, 3e4, B), dtype=scene.dtype), envs_idx=envs)
    X = fem[0].init_positions
    fem[0].set_vertex_constraints([0, 1], X[[0, 1]][None] + torch.as_tensor(rng.normal(0, 0.01, (B, 2, 3)),
                                                                             dtype=scene.dtype), envs_idx=envs)
    fem[1].set_vertex_constraints([2], is_soft_constraint=True, stiffness=400.0, envs_idx=envs)
    ne = fem[1].n_elements  # a muscle: random fibres, two groups, per-env activations (state FEMSolver.actu)
    fibre = rng.normal(size=(ne, 3))
    fem[1].set_muscle(muscle_group=np.arange(ne) % 2, muscle_direction=fibre / np.linalg.norm(fibre, axis=1)[:, None])
    fem[1].set_actuation(torch.as_tensor(rng.uniform(0.0, 0.3, (B, 2)), dtype=scene.dtype), envs_idx=envs)
    if scene.n_envs:
        fem[1].deactivate(envs_idx=[0])


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
        fresh, _ = make(kind, 2)
        fresh.load_checkpoint(tmp_path / f"c{suffix}")
        assert fresh.t == 2
        assert_bitwise(fresh.get_state(), saved, what="after load")
        assert bits(fresh.fem_solver.params.E) == bits(scene.fem_solver.params.E)
        assert bits(fresh.fem_solver.params.muscle_dir) == bits(scene.fem_solver.params.muscle_dir.expand(2, -1, -1))
        assert_bitwise(run(fresh, 3), continued, what="continued")
        if suffix == ".pkl":
            payload = pickle.loads((tmp_path / "c.pkl").read_bytes())
            assert {f"FEMSolver.{f}" for f in FEM_FIELDS} | {"FEMSolver.params.E", "FEMSolver.params.nu",
                                                              "FEMSolver.params.muscle_dir"} \
                <= set(payload["arrays"])


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
        E = scene.fem_solver.params.E
        batched = run(scene, 3)
        single, _ = make(kind, 1)
        for i in range(3):
            single.reset(state=gs.SimState(t=0, solvers={k: s.select(torch.tensor([i])) for k, s in S.solvers.items()},
                                           fingerprint=S.fingerprint))
            single.fem_solver.params.E = E[i:i + 1]
            single.fem_solver.params.muscle_dir = scene.fem_solver.params.muscle_dir  # shared (P = 1) fibres
            assert_bitwise(run(single, 3), batched, rows_want=[i], what=f"serial env {i}")
        perm = torch.tensor([2, 0, 1])
        scene.reset(state=gs.SimState(t=0, solvers={k: s.select(perm) for k, s in S.solvers.items()},
                                      fingerprint=S.fingerprint))
        scene.fem_solver.params.E = E[perm]
        assert_bitwise(run(scene, 3), batched, rows_want=perm.tolist(), what="permuted")


@pytest.mark.parametrize("kind", ["explicit", "implicit"])
def test_nan_in_one_env_stays_there(kind):
    with cpu_runtime("64"):
        scene, ents = make(kind, 3)
        randomize(scene, ents, 4)
        S = scene.get_state()
        frozen = {f: bits(getattr(S["FEMSolver"], f)) for f in FEM_FIELDS}
        clean = run(scene, 2)
        vel = S["FEMSolver"].vel.clone()
        vel[1, 5] = float("nan")
        scene._fem_state = S["FEMSolver"].replace(vel=vel)
        expected = torch.tensor([False, True, False])
        assert torch.equal(scene.fem_solver.get_error_envs_mask(), expected)
        for _ in range(2):
            with pytest.raises(gs.errors.SimulationDivergedError, match=r"FEMSolver envs \[1\]"):
                scene.step()
        poisoned = scene.get_state()
        assert_bitwise(poisoned, clean, [0, 2], [0, 2], what="envs next to a NaN env")
        assert {f: bits(getattr(S["FEMSolver"], f)) for f in FEM_FIELDS} == frozen, "a snapshot changed"


def test_state_shapes_and_n_envs_zero():
    with cpu_runtime("32"):
        scene, ents = make("coupled", 0)
        S = run(scene, 1)["FEMSolver"]
        nv = sum(e.n_vertices for e in ents[1:])
        ne = sum(e.n_elements for e in ents[1:])
        assert (S.pos.shape, S.vel.shape, S.active.shape, S.vc_mode.shape) == ((1, nv, 3), (1, nv, 3), (1, ne),
                                                                              (1, nv))
        assert S.active.dtype == torch.bool
        st = ents[1].get_state()
        assert st.pos.shape == (ents[1].n_vertices, 3) and st.active.shape == (ents[1].n_elements,)
        assert bits(st.pos) == bits(S.pos[0, :ents[1].n_vertices])


def test_checkpoint_of_another_fem_configuration_is_refused(tmp_path):
    with cpu_runtime("64"):
        scene, _ = make("explicit", 1)
        scene.save_checkpoint(tmp_path / "c.pkl")
        other, _ = make("implicit", 1)
        before = other.get_state()
        with pytest.raises(gs.errors.IncompatibleCheckpointError, match="fingerprint"):
            other.load_checkpoint(tmp_path / "c.pkl")
        assert_bitwise(other.get_state(), before, what="refused load")

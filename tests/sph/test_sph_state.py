"""The state contract (DESIGN.md §2-6) on SPH scenes, WCSPH and DFSPH, with a free rigid box in the tank (one-way
boundary): checkpoints round-trip and continue bitwise (f32, f64, pickle and safetensors), partial resets leave other
envs bitwise untouched, batched == serial and permutations permute results (bitwise: the pair sums run in a fixed
CSR order per env, and each env's DFSPH iterations stop on its own error), a NaN stays in its env."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from ..test_state_contract import bits
from .conftest import tank_scene

SOLVERS = ("WCSPH", "DFSPH")
SPH_FIELDS = ("pos", "vel", "active", "rho", "p", "kappa", "ref")


def randomize(scene, ents, seed):
    """Random per-env particle velocities, a few inactive particles, random box velocities."""
    rng = np.random.default_rng(seed)
    B = scene.batch_size
    for e in ents:
        if isinstance(e, gs.RigidEntity):
            if e.n_dofs:
                e.set_dofs_velocity(torch.as_tensor(rng.normal(0, 0.3, (B, e.n_dofs)), dtype=scene.dtype)
                                    if scene.n_envs else torch.as_tensor(rng.normal(0, 0.3, e.n_dofs),
                                                                         dtype=scene.dtype))
            continue
        e.set_velocity(torch.as_tensor(rng.normal(0, 0.3, (B, e.n_particles, 3)), dtype=scene.dtype),
                       envs_idx=list(range(B)))
        e.set_active(torch.as_tensor(rng.random((B, e.n_particles)) > 0.05), envs_idx=list(range(B)))


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
@pytest.mark.parametrize("solver", SOLVERS)
def test_checkpoint_round_trip_and_continue_bitwise(solver, suffix, precision, tmp_path):
    with cpu_runtime(precision):
        scene, ents = tank_scene(2, solver=solver)
        randomize(scene, ents, 1)
        run(scene, 2)
        scene.save_checkpoint(tmp_path / f"c{suffix}")
        saved = scene.get_state()
        continued = run(scene, 2)
        fresh, _ = tank_scene(2, solver=solver)
        fresh.load_checkpoint(tmp_path / f"c{suffix}")
        assert fresh.t == 2
        assert_bitwise(fresh.get_state(), saved, what="after load")
        assert_bitwise(run(fresh, 2), continued, what="continued")
        if suffix == ".pkl":
            payload = pickle.loads((tmp_path / "c.pkl").read_bytes())
            assert {f"SPHSolver.{f}" for f in SPH_FIELDS} | {"RigidSolver.qpos"} <= set(payload["arrays"])


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    with cpu_runtime("64"):
        scene, _ = tank_scene(1)
        scene.save_checkpoint(tmp_path / "c.pkl")
        other, _ = tank_scene(1, solver="DFSPH")
        before = other.get_state()
        with pytest.raises(gs.errors.IncompatibleCheckpointError, match="fingerprint"):
            other.load_checkpoint(tmp_path / "c.pkl")
        assert_bitwise(other.get_state(), before, what="refused load")


@pytest.mark.parametrize("solver", SOLVERS)
def test_partial_reset_leaves_other_envs_bitwise(solver):
    with cpu_runtime("32"):
        scene, ents = tank_scene(4, solver=solver)
        build = scene.get_state()
        randomize(scene, ents, 2)
        S = run(scene, 1)
        run(scene, 1)
        before = scene.get_state()
        scene.reset(envs_idx=[2, 0])
        assert scene.t == 2
        assert_bitwise(scene.get_state(), build, [0, 2], [0, 2], what="reset envs")
        assert_bitwise(scene.get_state(), before, [1, 3], [1, 3], what="untouched envs")
        scene.reset(state=S, envs_idx=torch.tensor([False, True, False, False]))
        assert_bitwise(scene.get_state(), S, [1], [1], what="reset to S")
        assert_bitwise(scene.get_state(), before, [3], [3], what="untouched env 3")
        scene.reset()
        assert scene.t == 0
        assert_bitwise(scene.get_state(), build, what="full reset")


@pytest.mark.parametrize("precision", ["32", "64"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_batched_equals_serial_and_permutation_bitwise(solver, precision):
    with cpu_runtime(precision):
        scene, ents = tank_scene(3, solver=solver)
        randomize(scene, ents, 3)
        S = scene.get_state()
        batched = run(scene, 2)
        single, _ = tank_scene(1, solver=solver)
        for i in range(3):
            single.reset(state=gs.SimState(t=0, solvers={k: s.select(torch.tensor([i])) for k, s in S.solvers.items()},
                                           fingerprint=S.fingerprint))
            assert_bitwise(run(single, 2), batched, rows_want=[i], what=f"serial env {i}")
        perm = torch.tensor([2, 0, 1])
        scene.reset(state=gs.SimState(t=0, solvers={k: s.select(perm) for k, s in S.solvers.items()},
                                      fingerprint=S.fingerprint))
        assert_bitwise(run(scene, 2), batched, rows_want=perm.tolist(), what="permuted")


def test_nan_in_one_env_stays_there_and_snapshots_stay_valid():
    with cpu_runtime("64"):
        scene, ents = tank_scene(3, rigid=False)
        randomize(scene, ents, 4)
        S = scene.get_state()
        frozen = {f: bits(getattr(S["SPHSolver"], f)) for f in SPH_FIELDS}
        clean = run(scene, 2)
        vel = S["SPHSolver"].vel.clone()
        vel[1, 5] = float("nan")
        bad = gs.SimState(t=0, solvers={"SPHSolver": S["SPHSolver"].replace(vel=vel)}, fingerprint=S.fingerprint)
        with pytest.raises(gs.errors.InvalidInputError, match="NaN"):
            scene.reset(state=bad)
        scene._sph_state = bad["SPHSolver"]
        expected = torch.tensor([False, True, False])
        assert torch.equal(scene.sph_solver.get_error_envs_mask(), expected)
        for _ in range(2):
            with pytest.raises(gs.errors.SimulationDivergedError, match=r"SPHSolver envs \[1\]") as err:
                scene.step()
            assert torch.equal(err.value.envs_mask, expected)
        poisoned = scene.get_state()
        assert_bitwise(poisoned, clean, [0, 2], [0, 2], what="envs next to a NaN env")
        assert not torch.isfinite(poisoned["SPHSolver"].pos[1]).all()
        assert {f: bits(getattr(S["SPHSolver"], f)) for f in SPH_FIELDS} == frozen, "a snapshot changed"
        ser = S.serializable()
        assert pickle.loads(pickle.dumps(ser))["SPHSolver"].pos.shape == S["SPHSolver"].pos.shape


def test_state_shapes_and_n_envs_zero():
    with cpu_runtime("32"):
        scene, ents = tank_scene(0)
        S = run(scene, 1)
        n = ents[-1].n_particles
        m = S["SPHSolver"]
        assert (m.pos.shape, m.vel.shape, m.active.shape, m.rho.shape, m.p.shape, m.kappa.shape) == \
            ((1, n, 3), (1, n, 3), (1, n), (1, n), (1, n), (1, n))
        assert m.active.dtype == torch.bool and set(S.solvers) == {"RigidSolver", "SPHSolver"}
        assert scene.sph_solver.model.colliders.kinds == ["box"], "the ground plane on the floor wall is left out"

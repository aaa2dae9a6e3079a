"""The state contract (DESIGN.md §2-6) for MPM scenes and coupled rigid + MPM scenes: checkpoints round-trip and
continue bitwise, partial resets leave other envs bitwise untouched, batched == serial and permutations permute
results (bitwise: CPU `index_add` sums each env's rows in particle order), a NaN stays in its env."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from ..test_state_contract import bits
from .conftest import small_scene

#: flip: the coupled scene with a PIC/FLIP blend (MPMOptions.flip_ratio); dense_sand: the MPM scene with a dilatant
#: `Sand` box (dilatancy softening, its state in Jp) falling onto the others
KINDS = ("mpm", "coupled", "flip", "dense_sand")
MPM_FIELDS = ("pos", "vel", "C", "F", "Jp", "active")


def make(kind, n_envs):
    sand = gs.materials.MPM.Sand.plane_strain(30.0, E=2e4, nu=0.3, rho=1500.0, dilatancy_angle=20.0,
                                               critical_volume_strain=0.1) if kind == "dense_sand" else None
    return small_scene(n_envs, coupled=kind not in ("mpm", "dense_sand"), sand=sand,
                       **({"flip_ratio": 0.7} if kind == "flip" else {}))


def randomize(scene, ents, seed):
    """Random per-env velocities, a few inactive particles, per-env E (model parameter)."""
    rng = np.random.default_rng(seed)
    B = scene.batch_size
    for e in ents:
        if isinstance(e, gs.RigidEntity):
            e.set_dofs_velocity(torch.as_tensor(rng.normal(0, 0.3, (B, e.n_dofs)), dtype=scene.dtype)
                                if scene.n_envs else torch.as_tensor(rng.normal(0, 0.3, e.n_dofs), dtype=scene.dtype))
            continue
        v = torch.as_tensor(rng.normal(0, 0.4, (B, e.n_particles, 3)), dtype=scene.dtype)
        e.set_velocity(v, envs_idx=list(range(B)))
        e.set_active(torch.as_tensor(rng.random((B, e.n_particles)) > 0.05), envs_idx=list(range(B)))
    ents[-2].set_material_params(E=torch.as_tensor(rng.uniform(1e4, 3e4, B), dtype=scene.dtype),
                                 envs_idx=list(range(B)))


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


@pytest.mark.parametrize("suffix", [".pkl", ".safetensors"])
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip_and_continue_bitwise(kind, suffix, tmp_path):
    with cpu_runtime("64"):
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
        assert bits(fresh.mpm_solver.params.E) == bits(scene.mpm_solver.params.E)
        assert_bitwise(run(fresh, 3), continued, what="continued")
        payload = pickle.loads((tmp_path / "c.pkl").read_bytes()) if suffix == ".pkl" else None
        if payload is not None:
            assert {f"MPMSolver.{f}" for f in MPM_FIELDS} | {"MPMSolver.params.E", "MPMSolver.params.nu"} \
                <= set(payload["arrays"])


def test_checkpoint_of_another_mpm_configuration_is_refused(tmp_path):
    with cpu_runtime("64"):
        scene, _ = make("mpm", 1)
        scene.save_checkpoint(tmp_path / "c.pkl")
        other = gs.Scene(mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                           grid_density=16, particle_size=1 / 32))
        other.add_entity(gs.morphs.Box(pos=(0.4, 0.5, 0.35), size=(0.16, 0.16, 0.12)),
                         material=gs.materials.MPM.Snow())
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
        E = scene.mpm_solver.params.E
        batched = run(scene, 3)
        single, _ = make(kind, 1)
        for i in range(3):
            single.reset(state=gs.SimState(t=0, solvers={k: s.select(torch.tensor([i])) for k, s in S.solvers.items()},
                                           fingerprint=S.fingerprint))
            single.mpm_solver.params.E = E[i:i + 1]
            assert_bitwise(run(single, 3), batched, rows_want=[i], what=f"serial env {i}")
        perm = torch.tensor([2, 0, 1])
        scene.reset(state=gs.SimState(t=0, solvers={k: s.select(perm) for k, s in S.solvers.items()},
                                      fingerprint=S.fingerprint))
        scene.mpm_solver.params.E = E[perm]
        assert_bitwise(run(scene, 3), batched, rows_want=perm.tolist(), what="permuted")


def test_nan_in_one_env_stays_there_and_snapshots_stay_valid():
    with cpu_runtime("64"):
        scene, ents = make("mpm", 3)
        randomize(scene, ents, 4)
        S = scene.get_state()
        frozen = {f: bits(getattr(S["MPMSolver"], f)) for f in MPM_FIELDS}
        clean = run(scene, 2)
        vel = S["MPMSolver"].vel.clone()
        vel[1, 5] = float("nan")
        bad = gs.SimState(t=0, solvers={"MPMSolver": S["MPMSolver"].replace(vel=vel)}, fingerprint=S.fingerprint)
        with pytest.raises(gs.errors.InvalidInputError, match="NaN"):
            scene.reset(state=bad)
        scene._mpm_state = bad["MPMSolver"]
        expected = torch.tensor([False, True, False])
        assert torch.equal(scene.mpm_solver.get_error_envs_mask(), expected)
        for _ in range(2):  # each step is applied, then names the diverged env (SimOptions(on_divergence="raise"))
            with pytest.raises(gs.errors.SimulationDivergedError, match=r"MPMSolver envs \[1\]") as err:
                scene.step()
            assert torch.equal(err.value.envs_mask, expected)
        poisoned = scene.get_state()
        assert_bitwise(poisoned, clean, [0, 2], [0, 2], what="envs next to a NaN env")
        assert not torch.isfinite(poisoned["MPMSolver"].pos[1]).all()
        assert {f: bits(getattr(S["MPMSolver"], f)) for f in MPM_FIELDS} == frozen, "a snapshot changed"
        ser = S.serializable()
        assert pickle.loads(pickle.dumps(ser))["MPMSolver"].pos.shape == S["MPMSolver"].pos.shape


def test_state_shapes_and_n_envs_zero():
    with cpu_runtime("32"):
        scene, ents = make("coupled", 0)
        S = run(scene, 1)
        n = sum(e.n_particles for e in ents[1:])
        m = S["MPMSolver"]
        assert (m.pos.shape, m.vel.shape, m.C.shape, m.F.shape, m.Jp.shape, m.active.shape) == \
            ((1, n, 3), (1, n, 3), (1, n, 3, 3), (1, n, 3, 3), (1, n), (1, n))
        assert m.active.dtype == torch.bool and set(S.solvers) == {"RigidSolver", "MPMSolver"}
        assert ents[1].get_particles_pos().shape == (ents[1].n_particles, 3)


def test_deterministic_scatter_path_matches_index_add():
    """`segment_sum` (the sort + segment_reduce scatter used on CUDA under gs.init(deterministic=True)) equals
    `index_add` and is differentiable; `gs.init` validates the flag."""
    from genesis_torch.solvers.mpm.transfer import segment_sum

    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 50, (2000,), generator=g)
    src = torch.randn(2000, generator=g, dtype=torch.float64, requires_grad=True)
    got = segment_sum(idx, src, 64)
    want = torch.zeros(64, dtype=torch.float64).index_add(0, idx, src)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    weights = torch.randn(64, generator=g, dtype=torch.float64)
    (gs_grad,) = torch.autograd.grad((got * weights).sum(), src)
    torch.testing.assert_close(gs_grad, weights[idx], rtol=0, atol=0)
    with pytest.raises(gs.errors.InvalidInputError, match="deterministic"):
        gs.init(backend=gs.cpu, deterministic="yes")
    gs.destroy()


@pytest.mark.slow
@pytest.mark.parametrize("flip_ratio", [0.0, 0.7])
def test_compiled_step_matches_eager(flip_ratio):
    """MPMOptions(compile=True) fuses the particle stages with torch.compile: same results to rounding, same
    checkpoint fingerprint (APIC and a PIC/FLIP blend)."""
    with cpu_runtime("64"):
        eager, ents = small_scene(2, flip_ratio=flip_ratio)
        compiled, cents = small_scene(2, compile=True, flip_ratio=flip_ratio)
        assert compiled.fingerprint == eager.fingerprint
        for scene, es in ((eager, ents), (compiled, cents)):
            randomize(scene, es, 5)
            run(scene, 4)
        for f in MPM_FIELDS[:-1]:
            torch.testing.assert_close(getattr(compiled.get_state()["MPMSolver"], f),
                                       getattr(eager.get_state()["MPMSolver"], f), rtol=1e-9, atol=1e-11)

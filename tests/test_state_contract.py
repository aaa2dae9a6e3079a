"""The scene-state contract (DESIGN.md §2.3–2.5, §5, §6): complete states, bitwise resets and checkpoints,
isolation of envs.

Every comparison here is bitwise (raw bytes, so NaN payloads and signed zeros count) unless a test says otherwise;
the one exception, batched vs. serial, documents its tolerance and why.
"""

from __future__ import annotations

import dataclasses
import pickle
import pickletools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import genesis_torch as gs

from .conftest import SCENE_KINDS, cpu_runtime

FIELDS = ("qpos", "dofs_vel", "links_pos", "links_quat", "ctrl", "act", "qacc_warmstart", "dofs_ctrl_mode",
          "dofs_ctrl_target", "dofs_ctrl_vel")
SETTINGS = dict(deadline=None, database=None)


# ------------------------------------------------------------------------------------------------ helpers
def bits(t: torch.Tensor) -> tuple:
    """Everything that makes two tensors bitwise equal: dtype, shape and raw bytes."""
    t = t.detach().cpu().contiguous()
    return t.dtype, tuple(t.shape), t.numpy().tobytes()


def assert_state_bitwise(got, want, rows_got=None, rows_want=None, what=""):
    """Every field of RigidState `got` (rows `rows_got`, default all) equals `want` (rows `rows_want`) bitwise."""
    for n in FIELDS:
        a, b = getattr(got, n), getattr(want, n)
        if rows_got is not None:
            a = a[torch.as_tensor(rows_got, dtype=torch.long)]
        if rows_want is not None:
            b = b[torch.as_tensor(rows_want, dtype=torch.long)]
        if bits(a) != bits(b):
            diff = (a.double() - b.double()).abs().nan_to_num(float("inf")).max().item() if a.shape == b.shape else "-"
            raise AssertionError(f"{what}: field {n} differs (shapes {tuple(a.shape)} vs {tuple(b.shape)}, "
                                 f"max |diff| {diff})")


def rigid(scene):
    return scene.get_state()["RigidSolver"]


def sim_state(rs, like: gs.SimState, t=None) -> gs.SimState:
    return gs.SimState(t=like.t if t is None else t, solvers={"RigidSolver": rs}, fingerprint=like.fingerprint)


def dof_params(entity):
    lo, hi = entity.get_dofs_force_range()
    return [bits(entity.get_dofs_kp()), bits(entity.get_dofs_kv()), bits(lo), bits(hi)]


def randomize(scene, entity, rng: np.random.Generator, gains: bool = False) -> None:
    """Random qpos (near the current one), velocities, actuator ctrl, dof-controller modes/targets, warm start.

    Positions and velocities go through the public setters; ctrl / modes / targets / warm start through
    `reset(state=...)` with those fields replaced. `gains` also randomises kp / kv / force range per env.
    """
    B, n = scene.batch_size, entity.n_dofs
    env = (lambda a: a) if scene.n_envs else (lambda a: a[0])  # n_envs=0 setters take unbatched values
    rs = rigid(scene)
    as_t = lambda a: torch.as_tensor(a, dtype=rs.qpos.dtype)  # noqa: E731
    entity.set_qpos(env(rs.qpos + as_t(0.25 * rng.standard_normal(rs.qpos.shape))))
    entity.set_dofs_velocity(env(as_t(0.5 * rng.standard_normal((B, n)))))
    if gains:
        kp, kv = entity.get_dofs_kp(), entity.get_dofs_kv()
        if (kp > 100).any():  # franka: scale its servo gains, keeping them stable
            entity.set_dofs_kp(kp * as_t(rng.uniform(0.5, 1.5, kp.shape)))
            entity.set_dofs_kv(kv * as_t(rng.uniform(0.5, 1.5, kv.shape)))
        else:
            entity.set_dofs_kp(env(as_t(rng.uniform(0, 20, (B, n)))))
            entity.set_dofs_kv(env(as_t(rng.uniform(0, 2, (B, n)))))
        r = as_t(rng.uniform(5, 100, (B, n)))
        entity.set_dofs_force_range(env(-r), env(r))
    S = scene.get_state()
    rs = S["RigidSolver"]
    mode = rng.integers(0, 4, size=rs.dofs_ctrl_mode.shape)
    hs = np.broadcast_to(entity._dof_is_hs, mode.shape)
    mode = np.where(~hs & (mode == 2), 1, mode)  # position control only on hinge/slide dofs, as the API enforces
    rs = dataclasses.replace(
        rs, ctrl=as_t(rng.standard_normal(rs.ctrl.shape)),
        dofs_ctrl_mode=torch.as_tensor(mode, dtype=torch.int8),
        dofs_ctrl_target=as_t(0.3 * rng.standard_normal(rs.dofs_ctrl_target.shape)),
        dofs_ctrl_vel=as_t(0.3 * rng.standard_normal(rs.dofs_ctrl_vel.shape)),
        qacc_warmstart=as_t(rng.standard_normal(rs.qacc_warmstart.shape)))
    scene.reset(state=sim_state(rs, S))


def run(scene, k: int):
    for _ in range(k):
        scene.step()
    return rigid(scene)


# ------------------------------------------------------------------------------------------------ checkpoints
@settings(max_examples=40, **SETTINGS)
@given(kind=st.sampled_from(SCENE_KINDS), seed=st.integers(0, 10_000), n_envs=st.sampled_from([0, 1, 2, 3, 5]),
       suffix=st.sampled_from([".pkl", ".pickle", ".safetensors", ".ckpt"]), precision=st.sampled_from(["32", "64"]),
       pre_steps=st.integers(0, 2), k=st.integers(1, 3))
def test_checkpoint_round_trip_and_continue_bitwise(make_scene, kind, seed, n_envs, suffix, precision, pre_steps, k):
    rng = np.random.default_rng(seed)
    with cpu_runtime(precision), tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ckpt{suffix}"
        scene, robot = make_scene(kind, n_envs, seed=seed)
        randomize(scene, robot, rng, gains=True)
        run(scene, pre_steps)
        scene.save_checkpoint(path)
        saved, saved_params = scene.get_state(), dof_params(robot)
        continued = run(scene, k)  # the original, never stopped

        fresh, fresh_robot = make_scene(kind, n_envs, seed=seed)
        fresh.load_checkpoint(path)
        assert fresh.t == saved.t == pre_steps
        assert_state_bitwise(rigid(fresh), saved["RigidSolver"], what="fresh scene after load")
        assert dof_params(fresh_robot) == saved_params
        assert_state_bitwise(run(fresh, k), continued, what="fresh scene continued")
        assert fresh.t == scene.t == pre_steps + k

        scene.load_checkpoint(path)  # same scene: back in time, then forward again
        assert scene.t == pre_steps
        assert_state_bitwise(rigid(scene), saved["RigidSolver"], what="same scene after load")
        assert dof_params(robot) == saved_params
        assert_state_bitwise(run(scene, k), continued, what="same scene continued")


@pytest.mark.parametrize("suffix", [".pkl", ".safetensors"])
def test_save_load_continue_equals_never_stopping(make_scene, gs_cpu, suffix, tmp_path):
    """A long run interrupted by save → new scene → load equals the uninterrupted run, bitwise."""
    rng = np.random.default_rng(1)
    a, ra = make_scene("franka", 2)
    randomize(a, ra, rng)
    start = a.get_state()
    straight = run(a, 6)
    a.reset(state=start)
    run(a, 3)
    a.save_checkpoint(tmp_path / f"mid{suffix}")
    b, _ = make_scene("franka", 2)
    b.load_checkpoint(tmp_path / f"mid{suffix}")
    assert_state_bitwise(run(b, 3), straight, what="resumed run")
    assert b.t == 6


def test_checkpoint_file_contents_and_format_detection(make_scene, gs_cpu, tmp_path):
    scene, robot = make_scene("franka", 2)
    randomize(scene, robot, np.random.default_rng(5))
    run(scene, 3)
    scene.save_checkpoint(tmp_path / "c.pkl")
    payload = pickle.loads((tmp_path / "c.pkl").read_bytes())  # the documented plain dict
    assert set(payload) == {"timestamp", "step_index", "arrays", "metadata"} and payload["step_index"] == 3
    meta = payload["metadata"]
    assert (meta["n_envs"], meta["dtype"], meta["fingerprint"], meta["step_index"]) == (2, "float32",
                                                                                       scene.fingerprint, 3)
    assert {"format", "format_version", "genesis_torch_version", "timestamp"} <= set(meta)
    state_keys = {f"RigidSolver.{n}" for n in FIELDS}
    assert state_keys <= set(payload["arrays"])
    for n in FIELDS:
        assert bits(torch.from_numpy(payload["arrays"][f"RigidSolver.{n}"])) == bits(getattr(rigid(scene), n)), n
    # the format comes from the bytes, not the name
    (tmp_path / "c.pkl").rename(tmp_path / "really_a_pickle.safetensors")
    scene.save_checkpoint(tmp_path / "c.safetensors")
    (tmp_path / "c.safetensors").rename(tmp_path / "really_safetensors.pkl")
    saved = scene.get_state()
    run(scene, 1)
    for name in ("really_a_pickle.safetensors", "really_safetensors.pkl"):
        scene.load_checkpoint(tmp_path / name)
        assert scene.t == 3
        assert_state_bitwise(rigid(scene), saved["RigidSolver"], what=name)


# ------------------------------------------------------------------------------------------------ resets
ENV_FORMS = ("list", "tuple", "range", "np_int64", "np_int32", "tensor_int64", "tensor_int32", "mask_np",
             "mask_list", "mask_tensor", "int", "np_int", "np_0d", "tensor_0d", "empty", "empty_np", "empty_tensor")
EMPTY = {"empty": [], "empty_np": np.array([]), "empty_tensor": torch.tensor([])}


@st.composite
def envs_idx_strategy(draw, B: int):
    """(envs_idx in some accepted form, the set of envs it selects)."""
    form = draw(st.sampled_from(ENV_FORMS))
    if form in EMPTY:
        return EMPTY[form], set()
    if form in ("int", "np_int", "np_0d", "tensor_0d"):
        i = draw(st.integers(0, B - 1))
        return {"int": i, "np_int": np.int64(i), "np_0d": np.array(i), "tensor_0d": torch.tensor(i)}[form], {i}
    if form == "range":
        start, step = draw(st.integers(0, B - 1)), draw(st.integers(1, 3))
        stop = draw(st.integers(start, B))
        r = range(start, stop, step)
        return r, set(r)
    if form.startswith("mask"):
        mask = draw(st.lists(st.booleans(), min_size=B, max_size=B))
        value = {"mask_np": np.array(mask), "mask_list": mask, "mask_tensor": torch.tensor(mask)}[form]
        return value, {i for i, m in enumerate(mask) if m}
    idx = draw(st.lists(st.integers(0, B - 1), min_size=1, max_size=2 * B))  # any order, duplicates allowed
    value = {"list": idx, "tuple": tuple(idx), "np_int64": np.array(idx, np.int64), "np_int32": np.array(idx, np.int32),
             "tensor_int64": torch.tensor(idx), "tensor_int32": torch.tensor(idx, dtype=torch.int32)}[form]
    return value, set(idx)


@settings(max_examples=60, **SETTINGS)
@given(data=st.data(), kind=st.sampled_from(SCENE_KINDS), n_envs=st.sampled_from([0, 1, 2, 3, 5]),
       target=st.sampled_from(["build", "rows", "single"]), precision=st.sampled_from(["32", "64"]),
       seed=st.integers(0, 10_000))
def test_partial_reset_every_envs_idx_form(make_scene, data, kind, n_envs, target, precision, seed):
    rng = np.random.default_rng(seed)
    with cpu_runtime(precision):
        scene, robot = make_scene(kind, n_envs, seed=seed)
        B = scene.batch_size
        build = scene.get_state()
        randomize(scene, robot, rng)
        run(scene, 1)
        S = scene.get_state()  # a state of this scene (rows target)
        if target == "single":
            other, other_robot = make_scene(kind, data.draw(st.sampled_from([0, 1])), seed=seed)
            randomize(other, other_robot, rng)
            S = other.get_state()
        randomize(scene, robot, rng)
        run(scene, 1)
        envs_idx, selected = data.draw(envs_idx_strategy(B))
        before, t = scene.get_state(), scene.t
        if target == "build":
            scene.reset(envs_idx=envs_idx)
        else:
            scene.reset(state=S, envs_idx=envs_idx)
        after = rigid(scene)
        assert scene.t == t, "a partial reset must not change t"
        want = (build if target == "build" else S)["RigidSolver"]
        for i in range(B):
            if i in selected:
                assert_state_bitwise(after, want, [i], [0 if target == "single" else i], what=f"reset env {i}")
            else:
                assert_state_bitwise(after, before["RigidSolver"], [i], [i], what=f"untouched env {i}")


def test_full_resets_set_t_and_keep_the_build_target(make_scene, gs_cpu):
    rng = np.random.default_rng(2)
    scene, robot = make_scene("random", 3, seed=5)
    build = scene.get_state()
    randomize(scene, robot, rng)
    run(scene, 4)
    S = scene.get_state()
    run(scene, 2)
    scene.reset(state=S)
    assert scene.t == 4
    assert_state_bitwise(rigid(scene), S["RigidSolver"], what="reset(state=S)")
    scene.reset(state=sim_state(S["RigidSolver"].select(torch.tensor([1])), S, t=17))  # S's single env to all
    assert scene.t == 17
    assert_state_bitwise(rigid(scene), S["RigidSolver"], rows_want=[1, 1, 1], what="reset(state=single env)")
    scene.reset()
    assert scene.t == 0
    assert_state_bitwise(rigid(scene), build["RigidSolver"], what="reset() after reset(state=S)")
    scene.reset(state=S)
    run(scene, 1)
    scene.reset(envs_idx=[0, 2])
    assert scene.t == 5, "partial reset to the build state must not touch t"


# ------------------------------------------------------------------------------------------------ isolation
# Batched vs. serial is bitwise: the rigid solver computes every env with the same sequence of elementwise ops and
# short reductions (solvers/rigid/linalg.py), never with batched BLAS/LAPACK kernels whose rounding depends on an
# env's position in the batch.
ISOLATION_CASES = [("franka", 0), ("box", 0), ("random", 0), ("random", 3), ("random", 7), ("pile", 0), ("pile", 1)]


def batched_and_serial(make_scene, kind, seed, k=5):
    """(batched results (4 envs), [serial results of env i run alone with n_envs=1])."""
    rng = np.random.default_rng(seed)
    scene, robot = make_scene(kind, 4, seed=seed)
    randomize(scene, robot, rng)
    S = scene.get_state()
    batched = run(scene, k)
    single, _ = make_scene(kind, 1, seed=seed)
    serial = []
    for i in range(4):
        single.reset(state=sim_state(S["RigidSolver"].select(torch.tensor([i])), S))
        serial.append(run(single, k))
    return batched, serial


@pytest.mark.parametrize("precision", ["32", "64"])
@pytest.mark.parametrize("kind,seed", ISOLATION_CASES)
def test_batched_equals_serial_bitwise(make_scene, kind, seed, precision):
    with cpu_runtime(precision):
        batched, serial = batched_and_serial(make_scene, kind, seed)
        for i, s in enumerate(serial):
            assert_state_bitwise(s, batched, rows_want=[i], what=f"env {i}")


def test_n_envs_zero_and_one_are_bitwise_the_same_run(make_scene, gs_cpu):
    rng = np.random.default_rng(3)
    one, robot = make_scene("random", 1, seed=11)
    randomize(one, robot, rng)
    S = one.get_state()
    zero, _ = make_scene("random", 0, seed=11)
    zero.reset(state=S)
    assert_state_bitwise(run(zero, 4), run(one, 4), what="n_envs=0 vs n_envs=1")


@pytest.mark.parametrize("precision", ["32", "64"])
@pytest.mark.parametrize("kind,seed", [("franka", 0), ("random", 3), ("pile", 2)])
def test_permuting_envs_permutes_results(make_scene, kind, seed, precision):
    with cpu_runtime(precision):
        rng = np.random.default_rng(seed)
        scene, robot = make_scene(kind, 4, seed=seed)
        randomize(scene, robot, rng)
        S = scene.get_state()
        result = run(scene, 4)
        perm = torch.tensor([2, 0, 3, 1])
        scene.reset(state=sim_state(S["RigidSolver"].select(perm), S))
        permuted = run(scene, 4)
        assert_state_bitwise(permuted, result.select(perm), what="permuted")
        scene.reset(state=sim_state(S["RigidSolver"].select(torch.tensor([0, 1, 2, 3])), S))
        assert_state_bitwise(run(scene, 4), result, what="identity permutation")


@pytest.mark.parametrize("kind,seed,bad_env,field", [("franka", 0, 0, "dofs_vel"), ("random", 3, 3, "dofs_vel"),
                                                     ("random", 7, 1, "qpos"), ("franka", 1, 2, "ctrl")])
def test_nan_in_one_env_does_not_reach_the_others(make_scene, gs_cpu, kind, seed, bad_env, field):
    rng = np.random.default_rng(seed)
    scene, robot = make_scene(kind, 4, seed=seed)
    randomize(scene, robot, rng)
    S = scene.get_state()
    clean = run(scene, 3)
    rs = S["RigidSolver"]
    value = getattr(rs, field).clone()
    value[bad_env] = float("nan")
    bad = sim_state(dataclasses.replace(rs, **{field: value}), S)
    with pytest.raises(gs.errors.InvalidInputError, match="NaN"):  # a NaN state is refused as input ...
        scene.reset(state=bad)
    assert_state_bitwise(rigid(scene), clean, what="scene after a refused NaN reset")
    scene._rigid_state = bad["RigidSolver"]  # ... so inject it as a diverged simulation would produce it
    expected_mask = torch.arange(4) == bad_env
    t0 = scene.t
    assert torch.equal(scene.rigid_solver.get_error_envs_mask(), expected_mask)
    for _ in range(3):  # each step is applied, then names the diverged env (SimOptions(on_divergence="raise"))
        with pytest.raises(gs.errors.SimulationDivergedError, match=f"RigidSolver envs \\[{bad_env}\\]") as err:
            scene.step()
        assert torch.equal(err.value.envs_mask, expected_mask)
    poisoned = rigid(scene)
    assert scene.t == t0 + 3
    others = [i for i in range(4) if i != bad_env]
    assert_state_bitwise(poisoned, clean, others, others, what="envs next to a NaN env")
    assert not torch.isfinite(poisoned.dofs_vel[bad_env]).all(), "the NaN should stay in its own env"
    scene.reset(envs_idx=[bad_env])  # recovery: a partial reset clears it without touching the others
    assert torch.isfinite(rigid(scene).dofs_vel).all()
    assert not scene.rigid_solver.get_error_envs_mask().any()
    assert_state_bitwise(rigid(scene), poisoned, others, others, what="others after resetting the NaN env")


# ------------------------------------------------------------------------------------------------ snapshots
def test_get_state_snapshot_stays_valid(make_scene, gs_cpu, tmp_path):
    rng = np.random.default_rng(4)
    scene, robot = make_scene("franka", 3)
    randomize(scene, robot, rng)
    run(scene, 1)
    scene.save_checkpoint(tmp_path / "c.pkl")
    snap = scene.get_state()
    frozen = {n: bits(getattr(snap["RigidSolver"], n)) for n in FIELDS}
    t = snap.t
    run(scene, 2)
    robot.set_qpos(torch.zeros(2, robot.n_qs), envs_idx=[0, 2])
    robot.set_dofs_position(torch.ones(robot.n_dofs) * 0.1, envs_idx=[1])
    robot.set_dofs_velocity(torch.ones(3, robot.n_dofs))
    robot.control_dofs_position(torch.zeros(robot.n_dofs), envs_idx=[1])
    robot.control_dofs_position(torch.full((3, 2), 0.2), dofs_idx_local=[0, 1])
    robot.set_dofs_kp(torch.ones(robot.n_dofs) * 10)
    scene.reset(envs_idx=[1])
    scene.reset()
    scene.load_checkpoint(tmp_path / "c.pkl")
    run(scene, 1)
    assert snap.t == t
    assert {n: bits(getattr(snap["RigidSolver"], n)) for n in FIELDS} == frozen


def test_serializable_is_cpu_detached_contiguous_and_picklable(make_scene):
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005, requires_grad=True))
        robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build(n_envs=2)
        v = torch.full((2, robot.n_dofs), 0.1, dtype=torch.float64, requires_grad=True)
        robot.set_dofs_velocity(v)
        run(scene, 2)
        live = scene.get_state()
        assert live["RigidSolver"].qpos.requires_grad, "precondition: the live state carries a graph"
        assert not live["RigidSolver"].links_pos.is_contiguous(), "precondition: a non-contiguous field"
        ser = live.serializable()
        for n in FIELDS:
            t = getattr(ser["RigidSolver"], n)
            assert t.device.type == "cpu" and t.is_contiguous() and not t.requires_grad and t.grad_fn is None, n
            if t.numel():  # a copy, not a view of the live tensor
                assert t.untyped_storage().data_ptr() != getattr(live["RigidSolver"], n).untyped_storage().data_ptr(), n
        blob = pickle.dumps(ser)
        names = {arg for _, arg, _ in pickletools.genops(blob) if isinstance(arg, str)}
        assert not names & {"Scene", "RigidEntity", "RigidModel", "ActuatorParams", "MjModel"}, "refers to the scene"
        back = pickle.loads(blob)
        assert back.t == live.t == 2
        run(scene, 3)
        scene.reset(state=back)
        assert scene.t == 2
        assert_state_bitwise(rigid(scene), live["RigidSolver"], what="reset(state=unpickled serializable)")


@pytest.mark.parametrize("n_envs", [0, 1, 3])
@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_every_state_field_has_leading_dim_B(make_scene, gs_cpu, kind, n_envs):
    scene, robot = make_scene(kind, n_envs, seed=2)
    run(scene, 1)
    S = scene.get_state()
    rs = S["RigidSolver"]
    B = max(n_envs, 1)
    assert S.n_envs == rs.n_envs == B == scene.batch_size
    assert set(rs.field_names()) >= set(FIELDS)
    for n in rs.field_names():
        assert getattr(rs, n).shape[0] == B, n
    nq, nv, nl = robot.n_qs, robot.n_dofs, sum(e.n_links for e in scene.rigid_entities)  # a Plane has a link too
    assert rs.qpos.shape == (B, nq) and rs.dofs_vel.shape == (B, nv)
    assert rs.links_pos.shape == (B, nl, 3) and rs.links_quat.shape == (B, nl, 4)
    assert rs.dofs_ctrl_mode.shape == rs.dofs_ctrl_target.shape == rs.qacc_warmstart.shape == (B, nv)
    arrays = S.serializable().to_arrays()
    assert all(a.shape[0] == B for a in arrays.values())
    assert set(arrays) == {f"RigidSolver.{n}" for n in rs.field_names()}

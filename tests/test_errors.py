"""Fail loudly, lose nothing (DESIGN.md §2.6): bad input raises a `genesis_torch.errors` exception naming the problem,
and the scene (state, t, parameters) is exactly as it was before the call."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle

import numpy as np
import pytest
import safetensors.numpy
import torch

import genesis_torch as gs
from genesis_torch.errors import (CheckpointError, GenesisError, IncompatibleCheckpointError, InvalidInputError,
                                  SceneStateError, UnsafeCheckpointError, UnsupportedFeatureError)

from .test_state_contract import FIELDS, bits, dof_params, randomize, rigid, run, sim_state


@contextlib.contextmanager
def unchanged(scene, entity):
    """Assert that the block leaves every state field, `t` and the dof parameters bitwise as they were."""
    state = {n: bits(getattr(rigid(scene), n)) for n in FIELDS}
    t, params = scene.t, dof_params(entity)
    yield
    assert {n: bits(getattr(rigid(scene), n)) for n in FIELDS} == state, "a failed call changed the state"
    assert scene.t == t, "a failed call changed t"
    assert dof_params(entity) == params, "a failed call changed the dof parameters"


@pytest.fixture
def franka3(make_scene, gs_cpu):
    """A franka scene with 3 envs in a random, stepped state."""
    scene, robot = make_scene("franka", 3)
    randomize(scene, robot, np.random.default_rng(0))
    run(scene, 2)
    return scene, robot


# ------------------------------------------------------------------------------------------------ envs_idx
BAD_ENVS = {
    "out of range": ([0, 3], "outside"),
    "negative": ([-1], "outside"),
    "negative int": (-1, "outside"),
    "too large int": (3, "outside"),
    "out of range tensor": (torch.tensor([5]), "outside"),
    "out of range np": (np.array([0, 7]), "outside"),
    "float list": ([0.0, 1.0], "ints"),
    "float np": (np.array([0.5]), "ints"),
    "float tensor": (torch.tensor([0.0]), "dtype"),
    "2-D list": ([[0, 1]], "1-D"),
    "2-D tensor": (torch.tensor([[0], [1]]), "shape"),
    "2-D np": (np.zeros((1, 1), np.int64), "1-D"),
    "short mask list": ([True, False], "mask"),
    "long mask np": (np.ones(4, bool), "mask"),
    "short mask tensor": (torch.tensor([True]), "mask"),
    "2-D mask tensor": (torch.ones(1, 3, dtype=torch.bool), "mask"),
    "bool scalar": (True, "ambiguous"),
    "np bool scalar": (np.bool_(False), "ambiguous"),
    "bool scalar tensor": (torch.tensor(True), "mask"),
    "string": ("0", "ints"),
    "ragged": ([[0], [1, 2]], "envs_idx"),
}


@pytest.mark.parametrize("name", list(BAD_ENVS))
def test_bad_envs_idx_raises_and_changes_nothing(franka3, name):
    scene, robot = franka3
    bad, words = BAD_ENVS[name]
    S = scene.get_state()
    calls = [
        lambda: scene.reset(envs_idx=bad),
        lambda: scene.reset(state=S, envs_idx=bad),
        lambda: robot.set_dofs_velocity(torch.zeros(robot.n_dofs), envs_idx=bad),
        lambda: robot.set_dofs_position(torch.zeros(robot.n_dofs), envs_idx=bad),
        lambda: robot.set_qpos(torch.zeros(robot.n_qs), envs_idx=bad),
        lambda: robot.control_dofs_position(torch.zeros(robot.n_dofs), envs_idx=bad),
        lambda: robot.set_dofs_kp(torch.ones(robot.n_dofs), envs_idx=bad),
        lambda: robot.get_dofs_position(envs_idx=bad),
    ]
    for call in calls:
        with unchanged(scene, robot), pytest.raises(InvalidInputError, match=words):
            call()


BAD_VALUES = {
    "nan position": (lambda r: r.set_dofs_position(torch.full((r.n_dofs,), float("nan")))),
    "inf velocity": (lambda r: r.set_dofs_velocity(torch.full((r.n_dofs,), float("inf")))),
    "wrong shape": (lambda r: r.set_dofs_velocity(torch.zeros(2, r.n_dofs))),
    "wrong length": (lambda r: r.set_qpos(torch.zeros(r.n_qs + 1))),
    "dof out of range": (lambda r: r.set_dofs_velocity(torch.zeros(1), dofs_idx_local=[r.n_dofs])),
    "negative dof": (lambda r: r.get_dofs_velocity(dofs_idx_local=[-1])),
    "float dofs": (lambda r: r.get_dofs_velocity(dofs_idx_local=[0.5])),
    "nan target": (lambda r: r.control_dofs_position(torch.full((r.n_dofs,), float("nan")))),
    "nan kp": (lambda r: r.set_dofs_kp(torch.full((r.n_dofs,), float("nan")))),
    "lower > upper": (lambda r: r.set_dofs_force_range(torch.ones(r.n_dofs), torch.zeros(r.n_dofs))),
    "strings": (lambda r: r.set_dofs_velocity("fast")),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_bad_setter_values_raise_and_change_nothing(franka3, name):
    scene, robot = franka3
    with unchanged(scene, robot), pytest.raises(InvalidInputError):
        BAD_VALUES[name](robot)


def test_position_control_of_free_dofs_raises(make_scene, gs_cpu):
    scene, box = make_scene("box", 2)
    with unchanged(scene, box), pytest.raises(InvalidInputError, match="ball/free"):
        box.control_dofs_position(torch.zeros(6))
    with unchanged(scene, box), pytest.raises(InvalidInputError, match="ball/free"):
        box.set_dofs_position(torch.zeros(6))


def test_bad_reset_states_raise_and_change_nothing(franka3, make_scene):
    scene, robot = franka3
    S = scene.get_state()
    rs = S["RigidSolver"]
    other, _ = make_scene("box", 3)
    five, _ = make_scene("franka", 5)
    bad = {
        "not a state": ({"qpos": rs.qpos}, "SimState"),
        "foreign scene": (other.get_state(), "different configuration"),
        "other n_envs": (five.get_state(), "RigidSolver.qpos"),
        "other dtype": (sim_state(rs.map(lambda t: t.double() if t.is_floating_point() else t), S), "dtype"),
        "wrong width": (sim_state(dataclasses.replace(rs, qpos=rs.qpos[:, :-1]), S), "RigidSolver.qpos"),
        "list field": (sim_state(dataclasses.replace(rs, ctrl=rs.ctrl.tolist()), S), "ctrl"),
    }
    for name, (state, words) in bad.items():
        with unchanged(scene, robot), pytest.raises(InvalidInputError, match=words):
            scene.reset(state=state)
        with unchanged(scene, robot), pytest.raises(InvalidInputError, match=words):
            scene.reset(state=state, envs_idx=[0])


# ------------------------------------------------------------------------------------------------ options
BAD_OPTIONS = {
    "unknown sim option": (lambda: gs.options.SimOptions(dtt=0.01), "dtt"),
    "negative dt": (lambda: gs.options.SimOptions(dt=-0.01), "dt"),
    "zero dt": (lambda: gs.options.SimOptions(dt=0.0), "dt"),
    "nan dt": (lambda: gs.options.SimOptions(dt=float("nan")), "dt"),
    "string dt": (lambda: gs.options.SimOptions(dt="0.01"), "dt"),
    "substeps=0": (lambda: gs.options.SimOptions(substeps=0), "substeps"),
    "fractional substeps": (lambda: gs.options.SimOptions(substeps=1.5), "substeps"),
    "bool substeps": (lambda: gs.options.SimOptions(substeps=True), "substeps"),
    "2-vector gravity": (lambda: gs.options.SimOptions(gravity=(0.0, -9.81)), "gravity"),
    "nan gravity": (lambda: gs.options.SimOptions(gravity=(0.0, 0.0, float("nan"))), "gravity"),
    "string gravity": (lambda: gs.options.SimOptions(gravity="down"), "gravity"),
    "scalar gravity": (lambda: gs.options.SimOptions(gravity=-9.81), "gravity"),
    "bad requires_grad": (lambda: gs.options.SimOptions(requires_grad="yes"), "requires_grad"),
    "unknown rigid option": (lambda: gs.options.RigidOptions(integrater=gs.integrator.Euler), "integrater"),
    "string integrator": (lambda: gs.options.RigidOptions(integrator="Euler"), "integrator"),
    "int integrator": (lambda: gs.options.RigidOptions(integrator=1), "integrator"),
    "bad rigid gravity": (lambda: gs.options.RigidOptions(gravity=(1, 2)), "gravity"),
    "zero iterations": (lambda: gs.options.RigidOptions(iterations=0), "iterations"),
    "unknown cone": (lambda: gs.options.RigidOptions(cone="conical"), "cone"),
    "zero impratio": (lambda: gs.options.RigidOptions(impratio=0.0), "impratio"),
    "negative ls_tolerance": (lambda: gs.options.RigidOptions(ls_tolerance=-1.0), "ls_tolerance"),
    "zero max_collision_pairs": (lambda: gs.options.RigidOptions(max_collision_pairs=0), "max_collision_pairs"),
    "float max_collision_pairs": (lambda: gs.options.RigidOptions(max_collision_pairs=8.0), "max_collision_pairs"),
    "negative rigid dt": (lambda: gs.options.RigidOptions(dt=-1e-3), "dt"),
    "unknown scene arg": (lambda: gs.Scene(sim_option=gs.options.SimOptions()), "sim_option"),
    "options swapped": (lambda: gs.Scene(sim_options=gs.options.RigidOptions()), "sim_options"),
    "dt mismatch": (lambda: gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, substeps=2),
                                     rigid_options=gs.options.RigidOptions(dt=0.01)), "dt"),
    "bad precision": (lambda: gs.init(backend=gs.cpu, precision="16"), "precision"),
    "bad backend": (lambda: gs.init(backend="tpu"), "backend"),
    "bad seed": (lambda: gs.init(backend=gs.cpu, seed=-1), "seed"),
}


@pytest.mark.parametrize("name", list(BAD_OPTIONS))
def test_bad_options_raise(gs_cpu, name):
    make, words = BAD_OPTIONS[name]
    with pytest.raises(InvalidInputError, match=words):
        make()


def test_options_are_frozen():
    opts = gs.options.SimOptions(dt=0.01)
    with pytest.raises(InvalidInputError, match="frozen"):
        opts.dt = 0.02
    assert opts.dt == 0.01


@pytest.mark.parametrize("n_envs", [-1, 1.5, True, "2", None])
def test_bad_n_envs_raises_and_scene_stays_unbuilt(gs_cpu, n_envs):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Box())
    with pytest.raises(InvalidInputError, match="n_envs"):
        scene.build(n_envs=n_envs)
    assert not scene.is_built
    scene.build(n_envs=2)  # still usable
    assert scene.batch_size == 2


# ------------------------------------------------------------------------------------------------ phases & models
def test_calls_in_the_wrong_phase_raise(gs_cpu, tmp_path):
    scene = gs.Scene()
    with pytest.raises(SceneStateError, match="entity"):
        scene.build()
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    path = tmp_path / "x.pkl"
    for call in (scene.step, scene.get_state, scene.reset, lambda: scene.save_checkpoint(path),
                 lambda: scene.load_checkpoint(path), lambda: robot.get_dofs_position(), lambda: robot.n_dofs,
                 lambda: robot.set_dofs_velocity([0.0] * 9), lambda: robot.get_links_pos()):
        with pytest.raises(SceneStateError, match="build"):
            call()
    assert not path.exists()
    scene.build(n_envs=1)
    with pytest.raises(SceneStateError, match="add_entity"):
        scene.add_entity(gs.morphs.Box())
    with pytest.raises(SceneStateError, match="build"):
        scene.build()
    assert len(scene.entities) == 1 and scene.t == 0
    scene.step()
    assert scene.t == 1


EQUALITY_MJCF = """<mujoco><worldbody>
  <body name="a"><joint name="ja" type="hinge"/><geom size="0.1" mass="1"/></body>
  <body name="b" pos="1 0 0"><joint name="jb" type="hinge"/><geom size="0.1" mass="1"/></body>
</worldbody><equality><joint joint1="ja" joint2="jb" active="false"/></equality></mujoco>"""


def test_mjcf_with_inactive_equality_raises_unsupported(gs_cpu, tmp_path):
    path = tmp_path / "eq.xml"
    path.write_text(EQUALITY_MJCF)
    scene = gs.Scene()
    with pytest.raises(UnsupportedFeatureError, match="equality"):
        scene.add_entity(gs.morphs.MJCF(file=str(path)))
    assert scene.entities == []
    scene.add_entity(gs.morphs.Box())
    scene.build()  # the failed add left nothing behind


def test_invalid_mjcf_raises_invalid_input(gs_cpu, tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<mujoco><worldbody><body><joint type='hinge'/><geom type='sphere' size='-1'/></body>"
                    "</worldbody></mujoco>")
    with pytest.raises(GenesisError):
        gs.Scene().add_entity(gs.morphs.MJCF(file=str(path)))


BAD_MORPHS = {
    "Box unknown": (lambda: gs.morphs.Box(pos=(0, 0, 0), sise=(1, 1, 1)), "sise"),
    "Box 2 sizes": (lambda: gs.morphs.Box(size=(1, 1)), "size"),
    "Box negative size": (lambda: gs.morphs.Box(size=(1, -1, 1)), "size"),
    "Box nan pos": (lambda: gs.morphs.Box(pos=(0, float("nan"), 0)), "pos"),
    "Box euler and quat": (lambda: gs.morphs.Box(euler=(0, 0, 0), quat=(1, 0, 0, 0)), "euler"),
    "Box zero quat": (lambda: gs.morphs.Box(quat=(0, 0, 0, 0)), "quat"),
    "Box fixed not bool": (lambda: gs.morphs.Box(fixed="yes"), "fixed"),
    "Sphere size": (lambda: gs.morphs.Sphere(size=1.0), "size"),
    "Sphere radius 0": (lambda: gs.morphs.Sphere(radius=0), "radius"),
    "Cylinder unknown": (lambda: gs.morphs.Cylinder(length=1.0), "length"),
    "Plane unknown": (lambda: gs.morphs.Plane(size=(1, 1)), "size"),
    "Plane zero normal": (lambda: gs.morphs.Plane(normal=(0, 0, 0)), "normal"),
    "MJCF unknown": (lambda: gs.morphs.MJCF(file="franka.xml", scaling=2.0), "scaling"),
    "MJCF scale not positive": (lambda: gs.morphs.MJCF(file="franka.xml", scale=0.0), "scale"),
    "MJCF missing file": (lambda: gs.morphs.MJCF(file="no_such_robot.xml"), "no_such_robot"),
    "MJCF file not str": (lambda: gs.morphs.MJCF(file=3), "file"),
    "URDF fixed not bool": (lambda: gs.morphs.URDF(file="franka.xml", fixed=1), "fixed"),
}


@pytest.mark.parametrize("name", list(BAD_MORPHS))
def test_bad_morph_arguments_raise(name):
    make, words = BAD_MORPHS[name]
    with pytest.raises(InvalidInputError, match=words):
        make()


def test_add_entity_rejects_non_morphs(gs_cpu):
    scene = gs.Scene()
    with pytest.raises(InvalidInputError, match="morph"):
        scene.add_entity("franka.xml")
    assert scene.entities == []


# ------------------------------------------------------------------------------------------------ checkpoint files
SUFFIXES = [".pkl", ".safetensors"]


def edit_pickle(path, edit) -> None:
    """Load our own (trusted) pickle checkpoint, apply `edit(payload)`, write it back."""
    payload = pickle.loads(path.read_bytes())
    edit(payload)
    path.write_bytes(pickle.dumps(payload, protocol=4))


def edit_safetensors(path, edit) -> None:
    """Like `edit_pickle` for a safetensors checkpoint: `edit` gets `{"arrays": ..., "metadata": ...}`."""
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    meta = json.loads(header["__metadata__"]["genesis_torch"])
    payload = {"arrays": dict(safetensors.numpy.load(raw)), "metadata": meta}
    edit(payload)
    meta = {"genesis_torch": json.dumps(payload["metadata"])}
    path.write_bytes(safetensors.numpy.save(payload["arrays"], metadata=meta))


def edit_checkpoint(path, edit):
    (edit_pickle if path.suffix == ".pkl" else edit_safetensors)(path, edit)


def assert_load_fails(scene, robot, path, error, words):
    with unchanged(scene, robot), pytest.raises(error, match=words) as info:
        scene.load_checkpoint(path)
    assert type(info.value) is error, f"expected exactly {error.__name__}, got {type(info.value).__name__}"
    return info.value


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncated_checkpoint(franka3, tmp_path, suffix):
    scene, robot = franka3
    path = tmp_path / f"c{suffix}"
    scene.save_checkpoint(path)
    run(scene, 1)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 12):
        path.write_bytes(data[:cut])
        assert_load_fails(scene, robot, path, CheckpointError, "truncated|corrupt|neither")
    path.write_bytes(b"")
    assert_load_fails(scene, robot, path, CheckpointError, "neither")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_foreign_checkpoints(franka3, make_scene, tmp_path, suffix):
    scene, robot = franka3
    path = tmp_path / f"c{suffix}"
    box, _ = make_scene("box", 3)
    box.save_checkpoint(path)
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "different scene configuration")

    five, _ = make_scene("franka", 5)
    five.save_checkpoint(path)
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "n_envs=5")

    other_dt, _ = make_scene("franka", 3, dt=0.002)
    other_dt.save_checkpoint(path)
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "different scene configuration")

    gs.init(backend=gs.cpu, precision="64")  # the fixture destroys the runtime afterwards
    double, double_robot = make_scene("franka", 3)
    double.save_checkpoint(path)
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "float64")
    assert_load_fails(double, double_robot, tmp_path / "missing.pkl", CheckpointError, "does not exist")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_edited_checkpoints(franka3, tmp_path, suffix):
    scene, robot = franka3
    path = tmp_path / f"c{suffix}"
    scene.save_checkpoint(path)
    run(scene, 1)
    good = path.read_bytes()

    def nan(p):
        p["arrays"]["RigidSolver.dofs_vel"][1, 2] = np.nan
    edit_checkpoint(path, nan)
    assert_load_fails(scene, robot, path, CheckpointError, "RigidSolver.dofs_vel.*NaN")

    path.write_bytes(good)
    edit_checkpoint(path, lambda p: p["arrays"].pop("RigidSolver.qacc_warmstart"))
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "RigidSolver.qacc_warmstart")

    path.write_bytes(good)

    def widen(p):
        p["arrays"]["RigidSolver.qpos"] = np.zeros((3, 10), np.float32)
    edit_checkpoint(path, widen)
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "RigidSolver.qpos.*shape")

    path.write_bytes(good)

    def retype(p):
        p["arrays"]["RigidSolver.ctrl"] = p["arrays"]["RigidSolver.ctrl"].astype(np.float64)
    edit_checkpoint(path, retype)
    assert_load_fails(scene, robot, path, IncompatibleCheckpointError, "RigidSolver.ctrl.*dtype")

    path.write_bytes(good)

    def move_link(p):
        p["arrays"]["RigidSolver.links_pos"][0, 3, 0] += 0.5
    edit_checkpoint(path, move_link)
    assert_load_fails(scene, robot, path, CheckpointError, "link poses")

    path.write_bytes(good)
    scene.load_checkpoint(path)  # the untouched file still loads
    assert scene.t == 2


class _Touch:
    """A pickle payload that, if unpickled by plain pickle, creates a file (the side effect we must not see)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_it(franka3, tmp_path):
    scene, robot = franka3
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    scene.save_checkpoint(path)
    payload = pickle.loads(path.read_bytes())
    payload["arrays"]["RigidSolver.qpos"] = _Touch(marker)  # hidden inside an otherwise valid checkpoint
    nested = pickle.dumps(payload, protocol=4)
    for blob in (pickle.dumps(_Touch(marker), protocol=4), nested):
        path.write_bytes(blob)
        err = assert_load_fails(scene, robot, path, UnsafeCheckpointError, "system")
        assert "nothing was executed" in str(err)
        assert not marker.exists(), "the pickle's payload ran"
    pickle.loads(nested)  # control: plain pickle really would have run it
    assert marker.exists()


def test_failed_load_keeps_parameters(franka3, tmp_path):
    """Parameters are restored by load too, so a late failure must not leave them half-written."""
    scene, robot = franka3
    path = tmp_path / "c.pkl"
    robot.set_dofs_kp(torch.full((robot.n_dofs,), 123.0))
    scene.save_checkpoint(path)
    robot.set_dofs_kp(torch.full((robot.n_dofs,), 456.0))

    def break_link(p):
        p["arrays"]["RigidSolver.links_quat"][2, 1, 0] = 0.0
    edit_pickle(path, break_link)
    assert_load_fails(scene, robot, path, CheckpointError, "link poses")
    assert (robot.get_dofs_kp() == 456.0).all()


def test_checkpoint_write_failure_leaves_no_file(franka3, tmp_path):
    scene, robot = franka3
    with unchanged(scene, robot), pytest.raises(CheckpointError, match="does not exist"):
        scene.save_checkpoint(tmp_path / "no_folder" / "c.pkl")
    target = tmp_path / "c.safetensors"
    scene.save_checkpoint(target)
    before = target.read_bytes()
    nan = rigid(scene)
    scene._rigid_state = dataclasses.replace(nan, dofs_vel=nan.dofs_vel * float("nan"))  # as a divergence would
    with pytest.raises(GenesisError, match="NaN"):
        scene.save_checkpoint(target)  # a diverged state is refused, and the old file is intact
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


HFIELD = '<asset><hfield name="h" nrow="3" ncol="3" size="1 1 0.1 0.1"/></asset>'


@pytest.mark.parametrize("asset,geoms,match", [
    ("", '<body pos="0 0 1"><freejoint/><geom type="sphere" size="0.1" condim="4"/></body>', "condim 4"),
    # a height field collides with every convex type (collision/hfield.py), not with a plane (nor does MuJoCo's)
    (HFIELD, '<body pos="0 0 1"><freejoint/><geom type="hfield" hfield="h" mass="1"/></body>', "plane and hfield"),
])
def test_unsupported_contact_features_raise_at_build(gs_cpu, tmp_path, asset, geoms, match):
    """Contacts the solver cannot simulate are refused at build with the geoms named; the scene stays unbuilt."""
    path = tmp_path / "c.xml"
    path.write_text(f"<mujoco>{asset}<worldbody>{geoms}</worldbody></mujoco>")
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.MJCF(file=str(path)))
    with pytest.raises(UnsupportedFeatureError, match=match):
        scene.build()
    assert not scene.is_built

"""Contact capacity with Genesis' meaning: `RigidOptions(max_collision_pairs)` counts geom pairs (each with its
collider's maximum number of contacts), `max_contacts` caps the contacts of one env; a scene Genesis accepts runs."""

from __future__ import annotations

import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import ContactOverflowError, InvalidInputError
from genesis_torch.solvers.rigid.collision.detect import _pair_slots


def boxes_scene(n_boxes: int, n_envs: int = 2, **rigid) -> gs.Scene:
    """A plane, `n_boxes` 10 cm cubes resting on it 30 cm apart and a sphere away from them."""
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(**rigid))
    scene.add_entity(gs.morphs.Plane())
    for i in range(n_boxes):
        scene.add_entity(gs.morphs.Box(pos=(0.3 * i, 0.0, 0.049), size=(0.1, 0.1, 0.1)))
    scene.add_entity(gs.morphs.Sphere(pos=(0.0, 1.0, 0.5), radius=0.1))
    scene.build(n_envs=n_envs)
    return scene


def genesis_tower(layers: int, max_collision_pairs: int | None = None, n_envs: int = 0) -> gs.Scene:
    """Genesis' examples/collision/tower.py with `layers` of two crossed 2 m x 0.25 m x 0.1 m boards (the example
    has 50) and its cylinder dropped from above; dt 0.004 s; built with `n_envs` (0: no env dim).
    Also the scene of benchmarks/rigid_stack.py."""
    rigid = {} if max_collision_pairs is None else {"max_collision_pairs": max_collision_pairs}
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.004), rigid_options=gs.options.RigidOptions(**rigid))
    scene.add_entity(gs.morphs.Plane())
    w, length, h = 0.25, 2.0, 0.1
    for i in range(layers):
        z = i * (h - 1e-3) + 0.5 * h
        size, offsets = ((w, length, h), ((-0.4 * length, 0), (0.4 * length, 0))) if i % 2 == 0 else \
            ((length, w, h), ((0, -0.4 * length), (0, 0.4 * length)))
        for x, y in offsets:
            scene.add_entity(gs.morphs.Box(size=size, pos=(x, y, z)))
    scene.add_entity(gs.morphs.Cylinder(radius=2.0, height=1.0, pos=(0.0, 0.0, layers * h + 5.0)))
    scene.build(n_envs=n_envs)
    return scene


def test_default_is_genesis_150_pairs_and_capacities_are_not_fingerprinted(gs_cpu):
    o = gs.options.RigidOptions()
    assert o.max_collision_pairs == 150 and o.max_contacts is None
    fp = o.fingerprint()
    assert "max_collision_pairs" not in fp and "max_contacts" not in fp
    assert gs.options.RigidOptions(max_collision_pairs=3, max_contacts=7).fingerprint() == fp
    for bad in (0, -1, 2.0, True, "8"):
        with pytest.raises(InvalidInputError, match="max_contacts"):
            gs.options.RigidOptions(max_contacts=bad)


def test_capacity_is_the_slots_of_the_pairs_with_the_most_contacts(gs_cpu):
    """Candidate pairs: plane-sphere (1 slot), 3 plane-box (4, MuJoCo's box-plane maximum), 3 sphere-box (1),
    3 box-box (8, mjMAXCONPAIR of box-box): capacity = sum of the largest `max_collision_pairs` of them."""
    for pairs, expected in ((1, 8), (3, 24), (4, 28), (7, 37), (150, 40)):
        scene = boxes_scene(3, max_collision_pairs=pairs)
        cm = scene.rigid_solver.contact_model
        slots = sorted(_pair_slots(cm.groups, scene.rigid_solver.mj_model, "cpu", torch.float64), reverse=True)
        assert slots == [8, 8, 8, 4, 4, 4, 1, 1, 1, 1]
        assert cm.max_contacts == cm.max_pair_slots == expected, pairs
    assert boxes_scene(3, max_contacts=5).rigid_solver.contact_model.max_contacts == 5
    assert boxes_scene(3, max_contacts=500).rigid_solver.contact_model.max_contacts == 40


def test_too_few_pairs_raises_naming_max_collision_pairs_and_changes_nothing(gs_cpu):
    """Three boxes on the floor have 12 contacts; one pair's worth of slots (8) cannot hold them."""
    scene = boxes_scene(3, max_collision_pairs=1)
    before = scene.get_state()["RigidSolver"].qpos.clone()
    with pytest.raises(ContactOverflowError, match=r"up to 12 contacts, 4 more than the 8 slots.*max_collision_pairs=1"):
        scene.step()
    assert scene.t == 0 and torch.equal(scene.get_state()["RigidSolver"].qpos, before)
    ok = boxes_scene(3, max_collision_pairs=2)  # 16 slots
    for _ in range(5):
        ok.step()
    c = ok.entities[1].get_contacts()
    assert int(c["valid_mask"][0].sum()) == 4


def contact_count(scene: gs.Scene) -> int:
    """Contacts of env 0 in the current state (the forward pass of the next step)."""
    solver = scene.rigid_solver
    return int(solver.forward(scene.get_state()["RigidSolver"]).contacts.valid[0].sum())


def test_genesis_tower_runs_with_more_contacts_than_the_old_buffer(gs_cpu):
    """Genesis' tower (here 8 layers) under the default capacity: 2 boards on the floor and 4 crossing board pairs
    per layer above, each with 4 contacts: 8 + 7 * 16 = 120, beyond the 64 slots of the old per-contact meaning."""
    scene = genesis_tower(8)
    for _ in range(3):
        scene.step()
    assert contact_count(scene) == 120
    z = torch.stack([e.get_pos()[..., 2] for e in scene.entities[1:-1]])
    assert torch.isfinite(z).all() and float((z[2:] - z[:-2]).min()) > 0.09  # still stacked


@pytest.mark.slow
def test_genesis_tower_of_100_boards_at_200_pairs(gs_cpu):
    """Genesis' tower as in its example: 100 boards and `max_collision_pairs=200` (8 + 49 * 16 = 792 resting
    contacts, 1600 slots)."""
    scene = genesis_tower(50, max_collision_pairs=200)
    assert scene.rigid_solver.contact_model.max_contacts == 1600
    for _ in range(2):
        scene.step()
    assert contact_count(scene) == 792

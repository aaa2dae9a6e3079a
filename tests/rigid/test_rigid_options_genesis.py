"""`gs.options.RigidOptions` against Genesis 1.4.5's field list: every Genesis field is implemented, accepted with
no effect (and left out of the fingerprint), accepted only at the value implemented, or refused naming why;
`disable_constraint` matches MuJoCo's `constraint` disable flag (float64, 3 envs, a box dropped on a plane falls
through it exactly as in MuJoCo)."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError

# Genesis 1.4.5 RigidOptions fields and defaults (genesis/options/solvers.py, with the dt/gravity mixins)
GENESIS_DEFAULTS = dict(
    dt=None, gravity=None, enable_collision=True, enable_joint_limit=True, enable_self_collision=True,
    enable_neutral_collision=False, enable_adjacent_collision=False, disable_constraint=False,
    max_collision_pairs=150, max_contacts=None, multiplier_collision_broad_phase=8,
    integrator=gs.integrator.approximate_implicitfast, IK_max_targets=6, batch_links_info=False,
    batch_joints_info=False,
    batch_dofs_info=False, constraint_solver=gs.constraint_solver.Newton, iterations=25, tolerance=None,
    ls_iterations=50, ls_tolerance=1e-2, noslip_iterations=0, noslip_tolerance=1e-6, friction_cone="pyramidal",
    contact_resolution=None, enable_torsional_friction=False, enable_rolling_friction=False, impratio=None,
    contact_pruning_tolerance=0.02, sparse_solve=None, box_box_detection=False, use_hibernation=False,
    hibernation_thresh_vel=None, max_dynamic_constraints=8, enable_multi_contact=True,
    enable_mujoco_compatibility=False, use_gjk_collision=None, enable_contact_patch=None,
    broadphase_traversal=None, use_contact_island=True, constraint_timeconst=0.01)
# Genesis values this solver does not implement -> the error names the field
UNSUPPORTED = dict(noslip_iterations=5, contact_resolution="signorini",
                   enable_torsional_friction=True, enable_rolling_friction=True, use_hibernation=True,
                   enable_multi_contact=False, use_gjk_collision=False, enable_contact_patch=True)
NO_EFFECT = dict(enable_neutral_collision=True, multiplier_collision_broad_phase=4, IK_max_targets=2,
                 noslip_tolerance=1e-3, contact_pruning_tolerance=None, sparse_solve=True, hibernation_thresh_vel=1e-3,
                 max_dynamic_constraints=2, enable_mujoco_compatibility=True, broadphase_traversal="SAP",
                 box_box_detection=False, use_contact_island=True, batch_dofs_info=True)


def test_every_genesis_field_at_its_default():
    o = gs.options.RigidOptions(**GENESIS_DEFAULTS)
    assert o.cone == "pyramidal" and o.tolerance == 1e-8 and o.impratio == 1.0  # None: left out
    assert o.iterations == 25 and o.max_collision_pairs == 150 and not o.disable_constraint
    assert not o.is_set("tolerance") and o.is_set("cone")


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unimplemented_values_raise(name):
    with pytest.raises(UnsupportedFeatureError, match=f"RigidOptions\\({name}="):
        gs.options.RigidOptions(**{name: UNSUPPORTED[name]})


def test_no_effect_fields_leave_the_fingerprint():
    base = gs.options.RigidOptions().fingerprint()
    assert gs.options.RigidOptions(**NO_EFFECT).fingerprint() == base
    assert not set(NO_EFFECT) & set(base)
    assert gs.options.RigidOptions(disable_constraint=True).fingerprint() != base


def test_friction_cone_is_cone():
    assert gs.options.RigidOptions(friction_cone="elliptic").cone == "elliptic"

    class Member:  # what an enum member of Genesis' gs.friction_cone looks like
        name = "elliptic"
    assert gs.options.RigidOptions(friction_cone=Member()).cone == "elliptic"
    with pytest.raises(InvalidInputError, match="friction_cone"):
        gs.options.RigidOptions(friction_cone="elliptic", cone="pyramidal")
    with pytest.raises(InvalidInputError, match="cone"):
        gs.options.RigidOptions(friction_cone="round")


def test_disable_constraint_matches_mujoco(gs64):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(disable_constraint=True))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.1), size=(0.1, 0.1, 0.1), euler=(10, 0, 0)))
    scene.build(n_envs=3)
    m = copy.copy(scene.rigid_solver.mj_model)
    assert m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONSTRAINT
    d = mujoco.MjData(m)
    for _ in range(200):
        scene.step()
        mujoco.mj_step(m, d)
    s = scene.get_state().solvers["RigidSolver"]
    assert d.qpos[2] < -0.2  # fell through the plane
    np.testing.assert_allclose(s.qpos.numpy(), np.tile(d.qpos, (3, 1)), atol=1e-12, rtol=0)
    np.testing.assert_allclose(s.dofs_vel.numpy(), np.tile(d.qvel, (3, 1)), atol=1e-12, rtol=0)


def test_approximate_implicitfast_is_implicitfast():
    """Genesis' default integrator name is an alias: same member, same fingerprint, MuJoCo's implicitfast step."""
    assert gs.integrator.approximate_implicitfast is gs.integrator.implicitfast
    o = gs.options.RigidOptions(integrator=gs.integrator.approximate_implicitfast)
    assert o.integrator is gs.integrator.implicitfast
    assert o.fingerprint() == gs.options.RigidOptions(integrator=gs.integrator.implicitfast).fingerprint()

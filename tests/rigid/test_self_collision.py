"""RigidOptions(enable_self_collision, enable_adjacent_collision): an arm whose links fold onto each other, simulated
in a scene with each setting and compared with MuJoCo on the same MJCF written by hand with the equivalent contact
filters (`<exclude>`s, or `filterparent` disabled), in float64: qpos/qvel over the run, the candidate body pairs, and
which of the arm's own links touch (docs/rigid.md, "Self-collision")."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from genesis_torch.solvers.rigid.collision.detect import candidate_pairs

STEPS = 300
PARITY = 1e-6  # qpos (rad) / qvel (rad/s) vs MuJoCo over the run, as tests/rigid/test_contact_validation.py
TOL = 1e-12  # both constraint solvers' tolerance
Q0 = [0.3, 2.7, 2.7]  # link 2 folded back over link 1 and link 3 over link 2: the links touch as they fall

# a far plane, base welded to the world (its box overlaps link 1 at the joint), three hinged capsules in one plane
ARM = """<mujoco><option timestep="0.002" integrator="implicitfast" tolerance="{tol}" iterations="100">{flag}</option>
<worldbody><geom type="plane" pos="0 0 -2" size="0 0 1"/>
 <body name="base"><geom type="box" size="0.05 0.05 0.05"/>
  <body name="l1"><joint type="hinge" axis="0 1 0"/><geom type="capsule" fromto="0.04 0 0 0.36 0 0" size="0.03"/>
   <body name="l2" pos="0.4 0 0"><joint type="hinge" axis="0 1 0"/>
    <geom type="capsule" fromto="0.04 0 0 0.36 0 0" size="0.03"/>
    <body name="l3" pos="0.4 0 0"><joint type="hinge" axis="0 1 0"/>
     <geom type="capsule" fromto="0.04 0 0 0.36 0 0" size="0.03"/>
 </body></body></body></body>
</worldbody><contact>{excludes}</contact></mujoco>"""

ALL_PAIRS = [("base", "l1"), ("base", "l2"), ("base", "l3"), ("l1", "l2"), ("l1", "l3"), ("l2", "l3")]
# (enable_self_collision, enable_adjacent_collision) -> (the equivalent MuJoCo filters, the arm's touching link pairs)
CASES = {
    # Genesis' defaults: parent-child pairs are off; MuJoCo keeps base-l1 (the parent is welded to the world)
    (True, False): (dict(excludes=[("base", "l1")]), {("l1", "l3")}),
    (False, False): (dict(excludes=ALL_PAIRS), set()),
    # adjacent pairs collide: MuJoCo's parent filter disabled (l1-l2, l2-l3), base-l1 kept as MuJoCo does
    (True, True): (dict(flag='<flag filterparent="disable"/>'), {("base", "l1"), ("l1", "l2"), ("l1", "l3"),
                                                                   ("l2", "l3"), ("base", "l3")}),
}


def arm_xml(excludes=(), flag="") -> str:
    ex = "".join(f'<exclude body1="{a}" body2="{b}"/>' for a, b in excludes)
    return ARM.format(tol=TOL, flag=flag, excludes=ex)


PLANE_LINK = "entity1/plane_baselink"  # the scene's Plane is a static link (MuJoCo's reference: a world geom)


def _body_pairs(m: mujoco.MjModel, pairs, strip: str = "") -> set:
    def name(b):
        n = m.body(int(b)).name
        return "world" if n == PLANE_LINK else n.removeprefix(strip)

    return {tuple(sorted((name(m.geom_bodyid[p["g1"]]), name(m.geom_bodyid[p["g2"]])))) for p in pairs}


@pytest.mark.parametrize("self_collision, adjacent", list(CASES))
def test_self_collision_matches_mujoco_filters(gs64, single_thread, tmp_path, self_collision, adjacent):
    filters, touching = CASES[(self_collision, adjacent)]
    path = tmp_path / "arm.xml"
    path.write_text(arm_xml().replace('<geom type="plane" pos="0 0 -2" size="0 0 1"/>', ""))
    gs = gs64
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(tolerance=TOL, iterations=100,
                                                           enable_self_collision=self_collision,
                                                           enable_adjacent_collision=adjacent))
    arm = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.add_entity(gs.morphs.Plane(pos=(0, 0, -2)))  # far below: keeps a candidate pair when the arm has none
    scene.build()
    arm.set_qpos(torch.tensor(Q0, dtype=torch.float64))
    m = mujoco.MjModel.from_xml_string(arm_xml(**filters))
    d = mujoco.MjData(m)
    d.qpos[:] = Q0

    ours_model = scene.rigid_solver.mj_model
    assert _body_pairs(ours_model, candidate_pairs(ours_model), "entity0/") == _body_pairs(m, candidate_pairs(m))
    names = [ours_model.body(b).name.removeprefix("entity0/") for b in range(ours_model.nbody)]
    names = ["world" if n == PLANE_LINK else n for n in names]
    err, ours_touch, ref_touch = 0.0, set(), set()
    for _ in range(STEPS):
        scene.step()
        mujoco.mj_step(m, d)
        state = scene.get_state().solvers["RigidSolver"]
        err = max(err, np.abs(state.qpos[0].numpy() - d.qpos).max(), np.abs(state.dofs_vel[0].numpy() - d.qvel).max())
        c = arm.get_contacts(with_entity=arm)
        ours_touch |= {tuple(sorted((names[a + 1], names[b + 1]))) for a, b in zip(c["link_a"].tolist(),
                                                                                  c["link_b"].tolist())}
        ref_touch |= {tuple(sorted((m.body(m.geom_bodyid[k.geom1]).name, m.body(m.geom_bodyid[k.geom2]).name)))
                      for k in d.contact[:d.ncon]}
    assert err <= PARITY, f"qpos/qvel differ from MuJoCo by {err:.3g}"
    assert ours_touch == ref_touch == touching, (ours_touch, ref_touch)


def test_self_collision_options_validated(gs64):
    gs = gs64
    for name in ("enable_self_collision", "enable_adjacent_collision"):
        with pytest.raises(gs.errors.InvalidInputError, match=name):
            gs.options.RigidOptions(**{name: 1})
    opts = gs.options.RigidOptions()
    assert opts.enable_self_collision is True and opts.enable_adjacent_collision is False  # Genesis' defaults

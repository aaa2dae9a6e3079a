"""`RigidEntity.plan_path` (Genesis 1.4.5's motion planning, genesis_torch/planning): Franka paths checked waypoint by
waypoint with MuJoCo (`mj_forward` on the solver's own MjModel) as the independent collision oracle, obstacle
avoidance, batched goals, the straight path without collisions, input errors and the untouched scene state."""
import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError

EPS = 1e-5  # Genesis' PENETRATION_EPS in float32: a contact penetrating more is a collision
HOME = [0, -0.785, 0, -2.356, 0, 1.571, 0.785, 0.04, 0.04]


def _scene(n_envs=0, obstacle=False):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    if obstacle:  # a post in front of the robot, in the way of a sweep of joint 1 from -1 to 1
        scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.4), pos=(0.5, 0.0, 0.5), fixed=True))
    else:
        scene.add_entity(gs.morphs.Box(size=(0.04, 0.04, 0.04), pos=(0.65, 0.0, 0.02)))
    franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
    scene.build(n_envs=n_envs)
    return scene, franka


def _mj_collisions(franka, waypoints, base_qpos, exclude=True, carried=None):
    """MuJoCo oracle: per waypoint `(N, n_qs)`, the number of contacts of the robot's geoms penetrating > EPS,
    minus the geom pairs in contact at the first and last waypoint (Genesis' exclusion). `base_qpos`: the scene
    qpos `(nq,)` the other bodies keep. `carried`: (link name, free single-body entity) moved rigidly with that link
    from its pose at the first waypoint (its geoms count as the robot's)."""
    m = franka._solver.mj_model
    d = mujoco.MjData(m)
    mine = set(franka._geom_ids().tolist())
    cols = np.asarray(franka._q_ids)
    rel = None
    if carried is not None:
        body = int(franka._body_ids[franka.get_link(carried[0]).idx_local])
        ocols = np.asarray(carried[1]._q_ids)
        mine |= set(carried[1]._geom_ids().tolist())

    def place(q):
        d.qpos[:] = base_qpos
        d.qpos[cols] = q
        if carried is None:
            return
        mujoco.mj_kinematics(m, d)
        xpos, xquat, R = d.xpos[body].copy(), d.xquat[body].copy(), d.xmat[body].reshape(3, 3).copy()
        if rel is None:  # the object's pose in the link frame at the first waypoint
            inv = np.empty(4)
            mujoco.mju_negQuat(inv, xquat)
            rq = np.empty(4)
            mujoco.mju_mulQuat(rq, inv, base_qpos[ocols[3:]])
            return R.T @ (base_qpos[ocols[:3]] - xpos), rq
        oq = np.empty(4)
        mujoco.mju_mulQuat(oq, xquat, rel[1])
        d.qpos[ocols[:3]] = xpos + R @ rel[0]
        d.qpos[ocols[3:]] = oq

    def contacts(q):
        place(q)
        mujoco.mj_forward(m, d)
        return [(int(c.geom1), int(c.geom2), float(c.dist)) for c in d.contact[:d.ncon]
                if int(c.geom1) in mine or int(c.geom2) in mine]

    w = np.asarray(waypoints, dtype=np.float64)
    if carried is not None:
        rel = place(w[0])
    excluded = {frozenset(c[:2]) for q in (w[0], w[-1]) for c in contacts(q)} if exclude else set()
    return [sum(1 for g1, g2, dist in contacts(q) if -dist > EPS and frozenset((g1, g2)) not in excluded)
            for q in w]


def _ik_goal(franka, pos, envs_idx=None):
    q = franka.inverse_kinematics(link=franka.get_link("hand"), pos=pos, quat=np.array([0, 1, 0, 0]),
                                  envs_idx=envs_idx)
    q[..., -2:] = 0.04
    return q


def _state(scene):
    s = scene.get_state().solvers["RigidSolver"]
    return {k: v.clone() for k, v in vars(s).items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("planner", ["RRTConnect", "RRT"])
def test_franka_path_to_an_ik_goal_is_collision_free_at_every_waypoint(gs_cpu, planner):
    scene, franka = _scene()
    franka.set_qpos(np.array(HOME))
    goal = _ik_goal(franka, np.array([0.65, 0.0, 0.25]))
    before = _state(scene)
    torch.manual_seed(0)
    path, ok = franka.plan_path(goal, planner=planner, return_valid_mask=True)
    assert path.shape == (300, 9) and ok.shape == () and bool(ok)
    assert float((path[0] - torch.tensor(HOME)).abs().max()) <= 1e-6
    assert float((path[-1] - goal).abs().max()) <= 1e-6
    lo, hi = franka.get_dofs_limit()
    assert bool(((path >= lo) & (path <= hi)).all()), "every waypoint within the joint limits"
    base = scene.get_state().solvers["RigidSolver"].qpos[0].double().numpy()
    hits = _mj_collisions(franka, path.double().numpy(), base)
    assert max(hits) == 0, f"MuJoCo finds penetrating contacts at waypoints {np.nonzero(hits)[0].tolist()}"
    after = _state(scene)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), \
        "planning leaves the scene state bitwise unchanged"


def test_an_obstacle_between_start_and_goal_is_avoided(gs_cpu):
    scene, franka = _scene(obstacle=True)
    start = torch.tensor([0, -0.3, 0, -2.0, 0, 1.8, 0.785, 0.04, 0.04])
    start[0] = -1.0
    goal = start.clone()
    goal[0] = 1.0
    franka.set_qpos(start)
    base = scene.get_state().solvers["RigidSolver"].qpos[0].double().numpy()
    line = franka.plan_path(goal, ignore_collision=True, num_waypoints=60)
    assert max(_mj_collisions(franka, line.double().numpy(), base)) > 0, "the straight sweep hits the post"
    torch.manual_seed(0)
    path, ok = franka.plan_path(goal, return_valid_mask=True)
    assert bool(ok)
    assert float((path[0] - start).abs().max()) <= 1e-6 and float((path[-1] - goal).abs().max()) <= 1e-6
    hits = _mj_collisions(franka, path.double().numpy(), base)
    assert max(hits) == 0, f"MuJoCo finds penetrating contacts at waypoints {np.nonzero(hits)[0].tolist()}"


def test_batched_envs_plan_to_their_own_goals(gs_cpu):
    scene, franka = _scene(n_envs=3)
    franka.set_qpos(np.array(HOME))
    goal = _ik_goal(franka, np.array([[0.65, 0.0, 0.25], [0.5, 0.3, 0.35], [0.45, -0.3, 0.3]]))
    before = _state(scene)
    torch.manual_seed(1)
    path, ok = franka.plan_path(goal, return_valid_mask=True, num_waypoints=100)
    assert path.shape == (100, 3, 9) and ok.tolist() == [True] * 3
    assert float((path[0] - torch.tensor(HOME)).abs().max()) <= 1e-6
    assert float((path[-1] - goal).abs().max()) <= 1e-6
    base = scene.get_state().solvers["RigidSolver"].qpos
    for b in range(3):
        assert max(_mj_collisions(franka, path[:, b].double().numpy(), base[b].double().numpy())) == 0
    sub = franka.plan_path(goal[[2]], envs_idx=[2], num_waypoints=20)
    assert sub.shape == (20, 1, 9) and float((sub[-1, 0] - goal[2]).abs().max()) <= 1e-6
    after = _state(scene)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_ignore_collision_gives_the_straight_interpolation(gs_cpu):
    scene, franka = _scene()
    franka.set_qpos(np.array(HOME))
    goal = torch.tensor(HOME) + torch.tensor([0.5, 0.2, -0.3, 0.4, 0.1, -0.2, 0.3, -0.02, -0.02])
    path = franka.plan_path(goal, ignore_collision=True, num_waypoints=11)
    s = torch.arange(11.0)[:, None] / 10
    expected = torch.tensor(HOME) + s * (goal - torch.tensor(HOME))
    torch.testing.assert_close(path, expected, rtol=0, atol=1e-6)
    assert torch.equal(path[0], torch.tensor(HOME)) and torch.equal(path[-1], goal)


def test_goal_outside_limits_fails_and_goal_in_contact_is_planned(gs_cpu):
    scene, franka = _scene()
    franka.set_qpos(np.array(HOME))
    before = _state(scene)
    bad = torch.tensor(HOME)
    bad[3] = 0.5  # joint 4's range is [-3.07, -0.07]
    path, ok = franka.plan_path(bad, return_valid_mask=True)
    assert not bool(ok) and not path.any(), "Genesis: no plan (zero path) for a goal outside the joint limits"
    torch.manual_seed(0)
    path, ok = franka.plan_path(torch.tensor(HOME), max_nodes=3, max_retry=0, return_valid_mask=True,
                                qpos_start=_ik_goal(franka, np.array([0.65, 0.0, 0.25])))
    assert not bool(ok) and not path.any(), "3 nodes cannot reach the goal: a failed env, zero path"
    after = _state(scene)
    assert all(torch.equal(before[k], after[k]) for k in before), "failed calls change nothing"
    # the goal pushes the fingers into the floor / cube: its contact pairs are excluded (as Genesis), so it is planned to
    goal = _ik_goal(franka, np.array([0.65, 0.0, 0.06]))
    base = scene.get_state().solvers["RigidSolver"].qpos[0].double().numpy()
    assert _mj_collisions(franka, goal[None].double().numpy(), base, exclude=False)[0] > 0, "the goal penetrates"
    torch.manual_seed(0)
    path, ok = franka.plan_path(goal, return_valid_mask=True, num_waypoints=50)
    assert bool(ok) and float((path[-1] - goal).abs().max()) <= 1e-6


def test_same_seed_same_path(gs_cpu):
    scene, franka = _scene()
    franka.set_qpos(np.array(HOME))
    goal = _ik_goal(franka, np.array([0.5, 0.2, 0.3]))
    torch.manual_seed(3)
    a = franka.plan_path(goal, num_waypoints=30)
    torch.manual_seed(3)
    b = franka.plan_path(goal, num_waypoints=30)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"qpos_goal": [0.0] * 8}, "qpos_goal"),
    ({"qpos_goal": HOME, "qpos_start": [[0.0] * 9] * 2}, "qpos_start"),
    ({"qpos_goal": HOME, "planner": "PRM"}, "unknown planner"),
    ({"qpos_goal": HOME, "resolution": 0.0}, "resolution"),
    ({"qpos_goal": HOME, "timeout": -1.0}, "timeout"),
    ({"qpos_goal": HOME, "num_waypoints": 1}, "num_waypoints"),
    ({"qpos_goal": HOME, "max_retry": -1}, "max_retry"),
    ({"qpos_goal": HOME, "envs_idx": [0]}, "envs_idx"),
    ({"qpos_goal": HOME, "ee_link_name": "hand"}, "with_entity"),
    ({"qpos_goal": [float("nan")] * 9}, "finite"),
])
def test_invalid_inputs_raise_with_the_fix(gs_cpu, kwargs, match):
    scene, franka = _scene()
    before = _state(scene)
    with pytest.raises(InvalidInputError, match=match):
        franka.plan_path(**kwargs)
    after = _state(scene)
    assert all(torch.equal(before[k], after[k]) for k in before)


def _run_tutorial():
    import pathlib
    import runpy
    gs.destroy()
    try:
        return runpy.run_path(str(pathlib.Path(__file__).parent / "genesis_scripts" / "ik_motion_planning_grasp.py"),
                              run_name="__main__")
    finally:
        gs.destroy()


def test_ik_motion_planning_grasp_tutorial_plans_tracks_and_grasps():
    """The port of Genesis' tutorial: the plan is valid, from the model pose exactly to the IK pre-grasp pose, the
    arm tracking it reaches the pre-grasp hand pose, and the 4 cm cube ends up between the squeezing fingers."""
    g = _run_tutorial()
    path, start, goal = g["path"], g["start_qpos"], g["pregrasp"]
    assert bool(g["path_ok"]) and path.shape == (200, 9)
    assert float((path[0] - start).abs().max()) <= 1e-6 and float((path[-1] - goal).abs().max()) <= 1e-6
    hand = g["pregrasp_hand_pos"]
    assert float((hand - torch.tensor([0.65, 0.0, 0.25])).norm()) < 0.012, f"pre-grasp hand at {hand.tolist()}"
    assert 0.035 < float(g["grasp_width"]) < 0.045, "the closed gripper is held open by the 4 cm cube"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the cube slips out early in the lift: held by Genesis' 0.5 N finger force it "
                   "rises to 7.7 cm in 20 steps, then the fingers close past it (to 0) and it falls back to the "
                   "floor; afterwards joint 1 drifts from -0.09 to -0.27 rad with no contact (not reproduced from "
                   "rest with the same controls); the position-closed grasp (franka_pick_place.py) lifts it")
def test_ik_motion_planning_grasp_tutorial_lifts_the_cube():
    g = _run_tutorial()
    assert float(g["cube_pos"][2]) > 0.12, f"the cube was lifted to {float(g['cube_pos'][2]):.3f} m"


def test_a_carried_object_is_kept_clear_of_the_obstacle(gs_cpu):
    """Genesis' `ee_link_name` / `with_entity`: a 30 cm rod hanging under the hand moves with it, and its contacts
    count; MuJoCo, moving the rod with the hand the same way, finds no penetration along the path."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.4), pos=(0.5, 0.0, 0.5), fixed=True))
    rod = scene.add_entity(gs.morphs.Box(size=(0.02, 0.02, 0.3), pos=(0.0, 0.0, 2.0)))
    franka = scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
    scene.build()
    start = torch.tensor([-1.0, -0.3, 0, -2.0, 0, 1.8, 0.785, 0.04, 0.04])
    goal = start.clone()
    goal[0] = 1.0
    franka.set_qpos(start)
    rod.set_pos(franka.get_link("hand").get_pos() + torch.tensor([0.0, 0.0, -0.25]))
    before = _state(scene)
    base = scene.get_state().solvers["RigidSolver"].qpos[0].double().numpy()
    line = franka.plan_path(goal, ignore_collision=True, num_waypoints=60)
    assert max(_mj_collisions(franka, line.double().numpy(), base, carried=("hand", rod))) > 0
    torch.manual_seed(0)
    path, ok = franka.plan_path(goal, return_valid_mask=True, ee_link_name="hand", with_entity=rod)
    assert bool(ok) and float((path[-1] - goal).abs().max()) <= 1e-6
    hits = _mj_collisions(franka, path.double().numpy(), base, carried=("hand", rod))
    assert max(hits) == 0, f"MuJoCo finds penetrating contacts at waypoints {np.nonzero(hits)[0].tolist()}"
    after = _state(scene)
    assert all(torch.equal(before[k], after[k]) for k in before), "the rod is not moved either"
    with pytest.raises(gs.errors.UnsupportedFeatureError, match="single-link"):
        franka.plan_path(goal, ee_link_name="hand", with_entity=franka)

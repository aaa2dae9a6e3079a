"""The whole-step graph's function (`step_graph.build_step_graph`) run eagerly, and the traceable solve
(`newton.solve_fixed`, `line_search(budget=...)`): the same bits as the eager reference step and solve, with the
host check sending every step the graph cannot finish to the reference path. Compiled runs: test_compile.py (slow).
"""

import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.rigid import newton, step_graph

HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04, 0.04]


def _franka(graph: bool, integrator=gs.integrator.implicitfast, cube: bool = False, n_envs: int = 3):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002),
                     rigid_options=gs.options.RigidOptions(compile=graph, integrator=integrator))
    if cube:
        scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    if cube:
        scene.add_entity(gs.morphs.Box(pos=(0.5, 0, 0.1), size=(0.05, 0.05, 0.05)))
    scene.build(n_envs=n_envs)
    s = scene.rigid_solver
    if graph:  # the graph's function itself, not compiled; the staged (two-graph) path eager too
        s._graph, s._compiled = s._graph_fn, None
    return scene, robot


def _trajectory(graph, integrator=gs.integrator.implicitfast, cube=False, steps=30):
    scene, robot = _franka(graph, integrator, cube)
    robot.set_dofs_position(HOME)
    robot.set_dofs_position([0.045, 0.045], dofs_idx_local=[7, 8], envs_idx=[2])  # past the finger limits
    robot.control_dofs_position(torch.tensor(HOME, dtype=torch.float64) + 0.2)
    out = []
    for _ in range(steps):
        scene.step()
        out.append(scene.get_state()["RigidSolver"])
    return out, scene.rigid_solver


@pytest.mark.parametrize("integrator", [gs.integrator.implicitfast, gs.integrator.Euler])
def test_step_function_is_the_eager_step(integrator):
    with gs_init64():
        eager, _ = _trajectory(False, integrator)
        graph, s = _trajectory(True, integrator)
    assert s.graph_steps == 30  # every step went through the graph's function
    for e, g in zip(eager, graph):
        for name in e.field_names():
            assert torch.equal(getattr(e, name), getattr(g, name)), name


def test_step_function_with_contacts_is_the_eager_step():
    """A cube falls on the plane: steps with a near pair are redone on the staged path, the others run the graph."""
    with gs_init64():
        eager, _ = _trajectory(False, cube=True, steps=80)
        graph, s = _trajectory(True, cube=True, steps=80)
    assert 0 < s.graph_redone and s.graph_steps > s.graph_redone  # both paths were taken
    for e, g in zip(eager, graph):
        for name in e.field_names():
            assert torch.equal(getattr(e, name), getattr(g, name)), name


def _ant_trajectory(graph: bool, n_envs: int = 4, steps: int = 40):
    """Bundled ant.xml dropped on a plane, each env with its own joint targets: the graph detects the plane-sphere
    and plane-capsule contacts itself (`step_graph.contacts_in_graph`)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005),
                     rigid_options=gs.options.RigidOptions(compile=graph))
    scene.add_entity(gs.morphs.Plane())
    ant = scene.add_entity(gs.morphs.MJCF(file="ant.xml"))
    scene.build(n_envs=n_envs)
    s = scene.rigid_solver
    if graph:
        s._graph, s._compiled = s._graph_fn, None
    targets = torch.rand(n_envs, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) - 0.5
    ant.control_dofs_position(targets, dofs_idx_local=list(range(6, 14)))
    out, ncon = [], 0
    for _ in range(steps):
        scene.step()
        out.append(scene.get_state()["RigidSolver"])
        if not graph:
            ncon = max(ncon, int(s.forward(out[-1]).contacts.valid.sum(-1).max()))
    return out, s, ncon


@pytest.fixture
def contacts_in_graph(monkeypatch):
    monkeypatch.setattr(step_graph, "CONTACTS_IN_GRAPH", True)


def test_contacts_stay_out_of_the_graph_by_default():
    with gs_init64():
        assert not step_graph.CONTACTS_IN_GRAPH
        _, s, _ = _ant_trajectory(True, steps=1)
        assert not step_graph.contacts_in_graph(s.contact_model)


@pytest.mark.usefixtures("contacts_in_graph")
def test_step_function_with_contacts_in_graph_is_the_eager_step():
    """Ant on a plane (4 envs, 40 steps, the feet landing and pushing): every step runs the graph's function with its
    own contact detection (`detect.detect_static`) and is bitwise the eager step, none redone."""
    from genesis_torch.solvers.rigid.collision.detect import static_plan

    with gs_init64():
        eager, _, ncon = _ant_trajectory(False)
        graph, s, _ = _ant_trajectory(True)
        assert step_graph.contacts_in_graph(s.contact_model) and not static_plan(s.contact_model).other
    assert ncon >= 3  # the feet touch the plane
    assert s.graph_steps == 40 and s.graph_redone == 0
    for e, g in zip(eager, graph):
        for name in e.field_names():
            assert torch.equal(getattr(e, name), getattr(g, name)), name


@pytest.mark.usefixtures("contacts_in_graph")
def test_detect_static_is_detect():
    """`detect_static` (all candidate pairs, C = min(max_contacts, slots)) holds `detect`'s contacts, in its order,
    with its bits; its further slots are invalid; franka + cube (282 slots) stays out of the graph."""
    from genesis_torch.solvers.rigid.collision.detect import detect, detect_static

    with gs_init64():
        states, s, _ = _ant_trajectory(False, steps=30)
        kin = s.kinematics(states[-1].qpos)
        ref, got = detect(s.contact_model, kin), detect_static(s.contact_model, kin)
        C = ref.dist.shape[1]
        assert 0 < C < got.dist.shape[1] and not bool(got.valid[:, C:].any())
        for name in ("dist", "pos", "frame", "pair", "valid", "overflow"):
            a, b = getattr(ref, name), getattr(got, name)
            b = b if name == "overflow" else b[:, :C]
            if name != "overflow":
                a, b = a[ref.valid], b[ref.valid]
            assert torch.equal(a, b), name
        assert torch.equal(ref.valid, got.valid[:, :C])
        scene, _ = _franka(False, cube=True)
        assert not step_graph.contacts_in_graph(scene.rigid_solver.contact_model)


class gs_init64:
    def __enter__(self):
        gs.init(backend=gs.cpu, precision="64")

    def __exit__(self, *exc):
        gs.destroy()


def _solve_inputs():
    """Rows, M, qacc_smooth and warm start of a cube pressed into a plane, moving differently in 3 envs (its
    pyramidal contact rows take the eager Newton solve 4 iterations)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002))
    scene.add_entity(gs.morphs.Plane())
    cube = scene.add_entity(gs.morphs.Box(pos=(0.5, 0, 0.02), size=(0.05, 0.05, 0.05)))
    scene.build(n_envs=3)
    cube.set_dofs_velocity([[0.0] * 6, [1.0, 0.5, -1.0, 3.0, 1.0, 0.0], [0.5, 0.0, -2.0, 0.0, 4.0, 1.0]])
    s = scene.rigid_solver
    state = s._current_state()
    f = s.forward(state)
    return f.rows, f.smooth.qM, f.smooth.qacc_smooth, state.qacc_warmstart, s.options


def test_solve_fixed_is_solve_when_complete():
    with gs_init64():
        rows, M, a0, warm, o = _solve_inputs()
        ref, ref_force = newton.solve(rows, M, a0, warm, o.iterations, o.tolerance, o.ls_iterations, o.ls_tolerance)
        qacc, force, complete = newton.solve_fixed(rows, M, a0, warm, 6, o.tolerance, o.ls_iterations,
                                                   o.ls_tolerance, max_iterations=o.iterations, ls_budget=(8, 8))
        assert bool(complete)
        assert torch.equal(qacc, ref) and torch.equal(force, ref_force)
        # too few iterations (the solve needs 4): reported, never passed off as done
        _, _, short = newton.solve_fixed(rows, M, a0, warm, 3, o.tolerance, o.ls_iterations, o.ls_tolerance,
                                         max_iterations=o.iterations, ls_budget=(8, 8))
        assert not bool(short)
        # the option's own cap reached: that is where the eager solve stops too
        capped, _, at_cap = newton.solve_fixed(rows, M, a0, warm, 2, o.tolerance, o.ls_iterations, o.ls_tolerance,
                                               max_iterations=2, ls_budget=(8, 8))
        ref2, _ = newton.solve(rows, M, a0, warm, 2, o.tolerance, o.ls_iterations, o.ls_tolerance)
        assert bool(at_cap) and torch.equal(capped, ref2)


def test_line_search_budget_reports_unfinished_envs():
    """A budget of no rounds leaves envs whose search needs more unfinished, flagged; a large budget gives the
    eager search's alpha in every env."""
    from genesis_torch.solvers.rigid.line_search import line_search
    from genesis_torch.solvers.rigid.linalg import matvec

    with gs_init64():
        rows, M, a0, warm, o = _solve_inputs()
        p = newton._Point.at(rows, M, a0, a0)
        direction = -p.grad * 50.0  # a poor direction: the search has to bracket
        Jp = rows.mv(direction)
        args = (rows, p.jar, Jp, (direction * p.Mdiff).sum(-1), (direction * matvec(M, direction)).sum(-1),
                direction.norm(dim=-1), 1.0 / torch.diagonal(M, dim1=-2, dim2=-1).sum(-1), o.ls_iterations,
                o.tolerance, o.ls_tolerance)
        ref = line_search(*args)
        alpha, incomplete = line_search(*args, budget=(50, 50))
        assert not bool(incomplete.any()) and torch.equal(alpha, ref)
        alpha0, incomplete0 = line_search(*args, budget=(0, 0))
        assert bool(incomplete0.any())
        assert torch.equal(alpha0[~incomplete0], ref[~incomplete0])


def test_graph_constants():
    assert step_graph.GRAPH_ITERATIONS >= 1 and all(n >= 0 for n in step_graph.GRAPH_LS_BUDGET)
    assert step_graph.GRAPH_CONTACT_ITERATIONS >= 1 and all(n >= 0 for n in step_graph.GRAPH_CONTACT_LS_BUDGET)
    assert step_graph.GRAPH_MAX_SLOTS >= 1


def test_each_solver_has_its_own_graph_code():
    """Dynamo keeps compiled graphs per code object, guarded on the closure: solvers sharing one would recompile in
    turn and fail past its recompile limit (8) under fullgraph. Each solver's step function has its own."""
    with gs_init64():
        codes = []
        for _ in range(3):
            scene = gs.Scene(rigid_options=gs.options.RigidOptions(compile=True))
            scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
            scene.build()
            codes.append(scene.rigid_solver._graph_fn.__code__)
        assert len({id(c) for c in codes}) == 3


def test_failed_compile_falls_back_to_eager(caplog):
    """The default (compile=None): a graph that cannot compile (here: a stand-in that raises) leaves the scene
    eager with one warning, the step's result the eager step's."""
    gs.init(backend=gs.cpu, precision="64", compile=True)
    try:
        def franka():
            scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002))  # RigidOptions(compile=None)
            scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
            scene.build(n_envs=2)
            return scene

        scene, ref = franka(), franka()
        s = scene.rigid_solver
        assert s.compile_mode == "graph"  # the default follows gs.init(compile=True)

        def broken(*args):
            raise RuntimeError("no C++ compiler")

        s._graph, s._graph_traced = broken, True  # past the eager first step
        ref.rigid_solver._graph = None  # the eager reference
        with caplog.at_level("WARNING", logger="genesis_torch"):
            scene.step()
        ref.step()
        assert s._graph is None and "compiling the step failed" in caplog.text
        a, b = scene.get_state()["RigidSolver"], ref.get_state()["RigidSolver"]
        for name in a.field_names():
            assert torch.equal(getattr(a, name), getattr(b, name)), name
    finally:
        gs.destroy()


def test_graph_stands_aside_under_autograd():
    """Under the default, a step that autograd records (here: a control that requires grad) runs eagerly: the graph
    (a stand-in that would raise) is not called, and the gradient reaches the control."""
    gs.init(backend=gs.cpu, precision="64", compile=True)
    try:
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002))
        robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build()
        s = scene.rigid_solver

        def not_called(*args):
            raise AssertionError("the graph ran under autograd")

        s._graph, s._graph_traced = not_called, True
        state = s._current_state()
        ctrl = torch.zeros_like(state.ctrl, requires_grad=True)
        import dataclasses

        new = s.step(dataclasses.replace(state, ctrl=ctrl))
        new.dofs_vel.sum().backward()
        assert s.graph_steps == 0 and ctrl.grad is not None and bool(ctrl.grad.abs().sum() > 0)
    finally:
        gs.destroy()


@pytest.mark.parametrize("env,expected", [(None, False), ("0", False), ("1", True), ("true", True)])
def test_runtime_compile_default_is_eager(monkeypatch, env, expected):
    """gs.init() leaves the rigid step eager unless GENESIS_TORCH_COMPILE turns it on (docs/decisions.md: a cold
    compile costs about a minute here and contact-rich steps gain nothing); an explicit argument wins."""
    if env is None:
        monkeypatch.delenv("GENESIS_TORCH_COMPILE", raising=False)
    else:
        monkeypatch.setenv("GENESIS_TORCH_COMPILE", env)
    try:
        assert gs.init(backend=gs.cpu).compile is expected
        gs.destroy()
        assert gs.init(backend=gs.cpu, compile=not expected).compile is (not expected)
        gs.destroy()
        gs.init(backend=gs.cpu)
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002))
        scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build()
        assert (scene.rigid_solver.compile_mode == "graph") is expected
    finally:
        gs.destroy()


@pytest.mark.parametrize("bad", ["yes", 1, 0.0])
def test_compile_switches_refuse_non_bools(bad):
    """gs.init(compile=...) and RigidOptions(compile=...) take True, False or None; anything else raises
    InvalidInputError naming the argument, and a refused gs.init leaves the runtime as it was."""
    from genesis_torch._runtime import get_runtime
    from genesis_torch.errors import InvalidInputError

    with gs_init64():
        before = get_runtime()
        with pytest.raises(InvalidInputError, match=r"gs.init\(compile="):
            gs.init(backend=gs.cpu, compile=bad)
        assert get_runtime() is before
        with pytest.raises(InvalidInputError, match=r"RigidOptions\(compile="):
            gs.options.RigidOptions(compile=bad)

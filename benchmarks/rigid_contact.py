"""Rigid contacts: env-steps/s of genesis-torch next to MuJoCo's threaded `mujoco.rollout` on the same compiled model
(`scene.rigid_solver.mj_model`: same timestep, integrator, cone, initial state and controls), in the same run; plus
where the time of a step goes. Prints markdown tables.

Scenes (both on `gs.morphs.Plane()`, default RigidOptions: implicitfast, pyramidal cones, condim 3, Newton):

    franka_cube  bundled `franka.xml` over a 5 cm cube (`gs.morphs.Box`) at (0.5, 0, 0.025): arm posed by IK
                 (held by its position actuators), fingers commanded from open (0.04 m) to 0.02 m. The initial state
                 is the grasp 0.2 s later (fingers squeezing the cube, ~5 N each; 12 contacts: 4 cube-plane,
                 4 per finger). dt = 0.002.
    ant          bundled `ant.xml` (free torso, 8 hinges, 8 position actuators) settled on its feet for 1 s; every
                 env gets its own seeded random joint targets (uniform in ctrlrange), redrawn every `HOLD` steps,
                 so the envs' contact sets differ. dt = 0.005.
    humanoid     bundled `humanoid.xml` (free torso, 19 motor-driven hinges) settled 2 s (it falls and lies on the
                 plane, ~17 contacts); per env seeded random motor controls in [-1, 1], redrawn every `HOLD`
                 steps. dt = 0.005.

The initial states are settled by MuJoCo (float64) on the scene's compiled model and copied into every env.

    python benchmarks/rigid_contact.py [--scenes franka_cube ant humanoid] [--n-envs 1 64 1024 4096] [--steps 10]
        [--env-steps 4096] [--mj-env-steps 20000] [--repeats 5] [--breakdown 4096] [--threads N] [--compile]

genesis-torch (eager, float32) times `steps` = max(2, min(--steps, --env-steps // n_envs)) steps from the initial
state (`scene.reset(state=init)` before each run, not timed), `repeats` times, after one untimed step, and reports
the median. MuJoCo's `mujoco.rollout` runs the same initial state and controls for max(steps, --mj-env-steps //
n_envs) steps (a longer window: it is fast, and short windows are noisy), median of `repeats`; its state after
`steps` steps is compared with genesis-torch's. `--threads` sets torch's threads and rollout's (default: one per
core); with fewer than the cores, rollout on all cores is reported as well. `--breakdown N` times the stages of the
timed steps at n_envs = N by wrapping the pipeline's functions (eager CPU torch is synchronous, so the wall-clock
of each call is its cost). With the defaults a run takes ~6 min on 2 cores with 1 thread (4096 envs: ~10 s per
eager step); on a machine shared with other processes prefer `--threads 1`: two OpenMP threads competing with another
process for two cores made eager steps 2-9x slower in this project's measurements. `--compile` runs the scenes
under `gs.init(compile=True)` (the whole-step graph; pass `--breakdown` with no value: the stage timers wrap the
eager functions) and adds the first two steps' wall-clock (the first runs the graph's function eagerly and then
compiles it: cold, or from inductor's on-disk cache) and how many timed graph steps were redone eagerly.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import statistics
import time

import mujoco
import numpy as np
import torch
from mujoco import rollout

import genesis_torch as gs
from genesis_torch.tools import progress

# Franka over the cube: IK (damped least squares on the `tcp` site) for the TCP at (0.5, 0, 0.015) with the
# orientation of the `home` keyframe (hand pointing down, fingers sliding along world y); fingers open.
GRASP = [0.0, 0.5016, 0.0, -2.3533, 0.0, 2.8549, 0.785, 0.04, 0.04]
SQUEEZE = GRASP[:7] + [0.02, 0.02]  # finger targets 5 mm inside the cube's faces
HOLD = 10  # ant: steps between redraws of the random joint targets
SEED = 0


def median_time(fn, repeats: int, before=None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------------- scenes
class _Scene:
    """A benchmark scene: `make` adds the entities; the initial state of every env is the state MuJoCo reaches on
    the scene's own compiled model after `settle_s` seconds from the qpos and ctrl set by `start` (float64), so the
    timed windows hold steady contacts at every n_envs."""

    name, dt, settle_s = "", 0.0, 0.0

    def __init__(self):
        self._settled = None

    def make(self, scene) -> None:
        raise NotImplementedError

    def start(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:  # qpos and ctrl before settling
        pass

    def settled_state(self, m: mujoco.MjModel):
        if self._settled is None:
            d = mujoco.MjData(m)
            self.start(m, d)
            for _ in range(round(self.settle_s / m.opt.timestep)):
                mujoco.mj_step(m, d)
            self._settled = d.qpos.copy(), d.qvel.copy(), d.ctrl.copy()
        return self._settled

    def build(self, n_envs: int):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=self.dt))
        self.make(scene)
        scene.build(n_envs=n_envs)
        qpos, qvel, _ = self.settled_state(scene.rigid_solver.mj_model)
        B = max(n_envs, 1)
        for e in scene.entities:
            if e.n_qs:
                e.set_qpos(np.tile(qpos[e.q_start:e.q_start + e.n_qs], (B, 1)))
                e.set_dofs_velocity(np.tile(qvel[e.dof_start:e.dof_start + e.n_dofs], (B, 1)))
        return scene


class FrankaCube(_Scene):
    name, dt, settle_s = "franka_cube", 0.002, 0.2

    def make(self, scene):
        scene.add_entity(gs.morphs.Plane())
        self.robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.add_entity(gs.morphs.Box(pos=(0.5, 0, 0.025), size=(0.05, 0.05, 0.05)))

    def start(self, m, d):
        d.qpos[:9], d.ctrl[:] = GRASP, SQUEEZE  # arm over the cube, fingers open, closing

    def build(self, n_envs: int):
        scene = super().build(n_envs)
        self.robot.control_dofs_position(SQUEEZE)  # the 9 position actuators' ctrl
        return scene

    def controls(self, n_envs: int, steps: int, nu: int) -> np.ndarray:
        """(n_envs, steps, nu) MJCF ctrl of every step (constant here)."""
        return np.broadcast_to(np.asarray(SQUEEZE, dtype=np.float64), (n_envs, steps, nu))

    def apply(self, scene, ctrl: torch.Tensor, k: int) -> None:
        pass  # constant, set at build


class Ant(_Scene):
    name, dt, settle_s = "ant", 0.005, 1.0

    def make(self, scene):
        scene.add_entity(gs.morphs.Plane())
        self.robot = scene.add_entity(gs.morphs.MJCF(file="ant.xml"))
        self.act_dofs = list(range(6, 14))  # the 8 hinges, in actuator order

    def controls(self, n_envs: int, steps: int, nu: int) -> np.ndarray:
        """(n_envs, steps, nu): per env, uniform in ctrlrange, redrawn every HOLD steps; seeded, so genesis-torch
        and MuJoCo get the same numbers (genesis-torch in its float dtype)."""
        rng = np.random.default_rng(SEED)
        lo, hi = np.array([-0.6, -0.45] * 4), np.array([0.6, 0.9] * 4)
        blocks = rng.uniform(lo, hi, size=(n_envs, -(-steps // HOLD), nu))
        return np.repeat(blocks, HOLD, axis=1)[:, :steps]

    def apply(self, scene, ctrl: torch.Tensor, k: int) -> None:
        if k % HOLD == 0:
            self.robot.control_dofs_position(ctrl[:, k], dofs_idx_local=self.act_dofs)


class Humanoid(_Scene):
    """Bundled `humanoid.xml` (free torso, 19 hinges driven by motors), settled 2 s: with no control it falls and
    lies on the plane (~17 contacts); then per env seeded random motor controls in [-1, 1], redrawn every `HOLD`
    steps, so it writhes on the ground and the envs' contact sets differ."""

    name, dt, settle_s = "humanoid", 0.005, 2.0

    def make(self, scene):
        scene.add_entity(gs.morphs.Plane())
        self.robot = scene.add_entity(gs.morphs.MJCF(file="humanoid.xml"))
        self.act_dofs = list(range(6, 25))  # the 19 hinges, in actuator order
        self.gear = None

    def controls(self, n_envs: int, steps: int, nu: int) -> np.ndarray:
        """(n_envs, steps, nu) motor ctrl, uniform in [-1, 1], redrawn every HOLD steps (seeded)."""
        rng = np.random.default_rng(SEED)
        blocks = rng.uniform(-1.0, 1.0, size=(n_envs, -(-steps // HOLD), nu))
        return np.repeat(blocks, HOLD, axis=1)[:, :steps]

    def apply(self, scene, ctrl: torch.Tensor, k: int) -> None:
        if k % HOLD == 0:  # a motor's ctrl = force / gear (control_dofs_force)
            if self.gear is None:
                gear = scene.rigid_solver.mj_model.actuator_gear[:, 0]
                self.gear = torch.as_tensor(gear, dtype=ctrl.dtype, device=ctrl.device)
            self.robot.control_dofs_force(ctrl[:, k] * self.gear, dofs_idx_local=self.act_dofs)


SCENES = {"franka_cube": FrankaCube, "ant": Ant, "humanoid": Humanoid}


# ----------------------------------------------------------------------------------------------------- runs
def bench_torch(sc, n_envs: int, steps: int, mj_steps: int, repeats: int, breakdown: bool) -> dict:
    """Seconds per step over `steps` steps from the initial state (median of `repeats` timed runs, after one untimed
    step), the MJCF controls of every step (B, mj_steps, nu) and, with `breakdown`, the stage timers of the timed
    runs."""
    scene = sc.build(n_envs)
    m = scene.rigid_solver.mj_model
    ctrl_np = sc.controls(max(n_envs, 1), mj_steps, m.nu)
    ctrl = torch.as_tensor(np.ascontiguousarray(ctrl_np[:, :steps]), dtype=scene.dtype)
    sc.apply(scene, ctrl, 0)
    init = scene.get_state()

    def run():
        for k in range(steps):
            sc.apply(scene, ctrl, k)
            scene.step()

    reset = lambda: scene.reset(state=init)  # noqa: E731
    t0 = time.perf_counter()
    scene.step()  # warm-up (compiled: the graph's function runs eagerly once, then compiles)
    first_s = time.perf_counter() - t0
    if scene.rigid_solver.compile_mode:
        scene.step()
        first_s = (first_s, time.perf_counter() - t0 - first_s)
        reset()
    solver = scene.rigid_solver
    graph0 = (solver.graph_steps, solver.graph_redone)
    with stage_timers(scene) if breakdown else contextlib.nullcontext((None,) * 3) as (times, calls, ls_loops):
        step_s = median_time(run, repeats, before=reset) / steps
    s0 = init["RigidSolver"]
    out = {"step_s": step_s, "first_s": first_s,
           "graph": (solver.graph_steps - graph0[0], solver.graph_redone - graph0[1]), "mj_model": m, "ctrl": ctrl_np, "qpos": scene._rigid_state.qpos.double().numpy(),
           "init_qpos": s0.qpos.double().numpy(), "init_qvel": s0.dofs_vel.double().numpy()}
    if breakdown:
        f = scene.rigid_solver.forward(scene._rigid_state)
        out["breakdown"] = dict(times=times, calls=calls, ls_loops=np.array(ls_loops), nsteps=steps * repeats,
                                total=sum(times[k] for k in (SMOOTH, ROWS, SOLVE, FINISH)), nrows=f.rows.nr,
                                ncon=f.contacts.valid.sum(-1).double(), ls_cap=scene.rigid_options.ls_iterations,
                                max_contacts=scene.rigid_options.max_collision_pairs)
    return out


def bench_mujoco(m: mujoco.MjModel, qpos0: np.ndarray, qvel0: np.ndarray, ctrl: np.ndarray, repeats: int,
                 nthread: int):
    """Seconds per env-step batch with `mujoco.rollout` on `nthread` threads (one MjData per thread) over
    ctrl.shape[1] steps, the qpos after every step (B, steps, nq) and the thread count."""
    datas = [mujoco.MjData(m) for _ in range(nthread)]
    d = datas[0]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    init = np.zeros((qpos0.shape[0], mujoco.mj_stateSize(m, spec)))
    for i in range(qpos0.shape[0]):  # each env's own state (they are equal here, but be general)
        d.qpos[:], d.qvel[:] = qpos0[i], qvel0[i]
        mujoco.mj_getState(m, d, init[i], spec)
    steps = ctrl.shape[1]
    ctrl = np.ascontiguousarray(ctrl)
    with rollout.Rollout(nthread=nthread) as r:
        state, _ = r.rollout(m, datas, init, ctrl)  # warm-up
        t = median_time(lambda: r.rollout(m, datas, init, ctrl), repeats) / steps
    return t, state[:, :, 1:1 + m.nq], nthread


# -------------------------------------------------------------------------------------------------- profile
SMOOTH = "smooth dynamics: kinematics, M, bias, actuation, M⁻¹f (`smooth_stage`)"
ROWS = "constraint rows, all kinds (`constraint_stage`)"
DETECT = "↳ collision detection (`collision/detect.py::detect`)"
CROWS = "↳ contact rows (`contact_rows`)"
SOLVE = "constraint solve (`newton.solve`)"
NEWTON = "↳ Newton iterations (`newton_iteration`)"
LS = "  ↳ line searches (`line_search`)"
HESS = "  ↳ Hessians M + J^T D J (`newton.hessian`)"
RT = "row costs/forces/Hessians (`row_terms`, inside the solve)"
FINISH = "integration + kinematics of the new state (`finish_stage`)"


@contextlib.contextmanager
def stage_timers(scene):
    """Wrap the functions of a step with wall-clock timers; yields ({name: seconds}, {name: calls}, ls_loops) where
    ls_loops lists the loop iterations of each line search (its `row_terms` calls minus the one at alpha = 0)."""
    from genesis_torch.solvers.rigid import constraints, line_search, newton, pipeline
    from genesis_torch.solvers.rigid import solver as solver_mod

    times, calls, ls_loops = collections.defaultdict(float), collections.Counter(), []
    patched = []
    in_ls = [None]

    def timer(fn, name):
        def timed(*a, **k):
            if name == RT and in_ls[0] is not None:
                in_ls[0] += 1
            if name == LS:
                in_ls[0] = 0
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times[name] += time.perf_counter() - t0
                calls[name] += 1
                if name == LS:
                    ls_loops.append(in_ls[0] - 1)
                    in_ls[0] = None
        return timed

    def wrap(owner, attr, name):
        fn = getattr(owner, attr)
        setattr(owner, attr, timer(fn, name))
        patched.append((owner, attr, fn))

    wrap(solver_mod, "smooth_stage", SMOOTH)
    wrap(solver_mod, "constraint_stage", ROWS)
    wrap(pipeline, "detect", DETECT)
    wrap(pipeline, "contact_rows", CROWS)
    wrap(newton, "solve", SOLVE)
    wrap(newton, "newton_iteration", NEWTON)
    wrap(newton, "line_search", LS)
    wrap(newton, "hessian", HESS)
    for owner in (constraints, newton, line_search):  # each module calls row_terms by its own name
        wrap(owner, "row_terms", RT)
    wrap(solver_mod, "finish_stage", FINISH)
    groups = scene.rigid_solver.contact_model.groups
    fns = [g.fn for g in groups]
    for g in groups:
        g.fn = timer(g.fn, f"  ↳ narrow phase `{g.fn.__name__}` ({g.geom1.numel()} candidate pairs)")
    try:
        yield times, calls, ls_loops
    finally:
        for owner, attr, fn in patched:
            setattr(owner, attr, fn)
        for g, fn in zip(groups, fns):
            g.fn = fn


def print_breakdown(name: str, n_envs: int, step_s: float, bd: dict) -> None:
    """Per-stage wall-clock of the timed steps (means over all timed runs; markdown)."""
    times, calls, loops, n, stages = bd["times"], bd["calls"], bd["ls_loops"], bd["nsteps"], bd["total"]
    print(f"\n{name}, {n_envs} envs, where the time goes (means over the {n} timed steps; median step "
          f"{step_s * 1e3:,.0f} ms): {bd['nrows']} constraint row slots per env (max_collision_pairs = "
          f"{bd['max_contacts']}); contacts per env at the end: mean {bd['ncon'].mean():.1f}, max "
          f"{int(bd['ncon'].max())}; Newton iterations per step {calls[NEWTON] / n:.1f}; line-search loop iterations "
          f"per line search: median {np.median(loops):.0f}, max {loops.max()}, {np.mean(loops >= bd['ls_cap']):.0%} at "
          f"the cap (ls_iterations = {bd['ls_cap']})")
    print("\n| stage | ms / step | share | calls / step |")
    print("|---|---|---|---|")
    order = ([SMOOTH, ROWS, DETECT] + [k for k in times if "narrow phase" in k]
             + [CROWS, SOLVE, NEWTON, HESS, LS, RT, FINISH])
    for k in order:
        if k in times:
            print(f"| {k} | {times[k] / n * 1e3:,.1f} | {times[k] / stages:.0%} | {calls[k] / n:.1f} |")
    print(f"| sum of the four top-level stages (the rest of a step: controls, overflow check, new state) | "
          f"{stages / n * 1e3:,.1f} | 100% | |", flush=True)


# ----------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run (upper bound)")
    parser.add_argument("--env-steps", type=int, default=4096, help="steps = max(2, min(steps, this // n_envs))")
    parser.add_argument("--mj-env-steps", type=int, default=20000, help="MuJoCo steps = max(steps, this // n_envs)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--breakdown", type=int, nargs="*", default=[4096], help="n_envs to time stage by stage")
    parser.add_argument("--compile", action="store_true",
                        help="gs.init(compile=True): the whole step as one graph (contacts inside where the model "
                             "allows, docs/rigid.md); reports the first two steps' time (the second compiles) and "
                             "the steps the graph redid eagerly")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads and MuJoCo rollout threads (default: one per core)")
    args = parser.parse_args()
    gs.init(backend=gs.cpu, compile=args.compile)  # float32
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), mujoco {mujoco.__version__}")
    for name in args.scenes:
        sc = SCENES[name]()
        print(f"\n### {name}\n")
        extra = args.threads != (os.cpu_count() or 1)
        print("| n_envs | genesis-torch steps × repeats | MuJoCo steps × repeats | genesis-torch env-steps/s | "
              "MuJoCo rollout env-steps/s (threads) | ratio |" + (" MuJoCo, all cores (threads) |" if extra else "")
              + " max qpos diff after the genesis-torch window |"
              + (" first step (incl. compile) + second step | graph steps redone |" if args.compile else ""))
        print("|---|---|---|---|---|---|---|" + ("---|" if extra else "") + ("---|---|" if args.compile else ""))
        breakdowns = []
        for n in progress(args.n_envs, desc=name, unit="case"):  # on a terminal only (gs.tools.progress)
            B = max(n, 1)
            steps = max(2, min(args.steps, args.env_steps // B))
            mj_steps = max(steps, args.mj_env_steps // B)  # MuJoCo is fast: a longer window for a stable figure
            t = bench_torch(sc, n, steps, mj_steps, args.repeats, n in args.breakdown)
            mj, mj_qpos, nthread = bench_mujoco(t["mj_model"], t["init_qpos"], t["init_qvel"], t["ctrl"],
                                                args.repeats, args.threads)
            ours, peer = B / t["step_s"], B / mj
            diff = np.abs(t["qpos"] - mj_qpos[:, steps - 1]).max()
            all_cores = ""
            if args.threads != (os.cpu_count() or 1):
                mj_all, _, n_all = bench_mujoco(t["mj_model"], t["init_qpos"], t["init_qvel"], t["ctrl"], args.repeats,
                                                os.cpu_count() or 1)
                all_cores = f" {B / mj_all:,.0f} ({n_all}) |"
            graph = ""
            if args.compile:
                (f1, f2), (gsteps, redone) = t["first_s"], t["graph"]
                graph = f" {f1:.1f} s + {f2:.1f} s | {redone} / {gsteps} |"
            print(f"| {n} | {steps} × {args.repeats} | {mj_steps} × {args.repeats} | {ours:,.0f} | {peer:,.0f} "
                  f"({nthread}) | {ours / peer:.4f} |{all_cores} {diff:.1e} |{graph}", flush=True)
            if "breakdown" in t:
                breakdowns.append((n, t["step_s"], t["breakdown"]))
        for n, step_s, bd in breakdowns:
            print_breakdown(name, n, step_s, bd)

if __name__ == "__main__":
    main()

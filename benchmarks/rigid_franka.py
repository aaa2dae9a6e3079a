"""Franka (franka.xml, 9 dofs, position actuators holding `home`, dt = 0.002, implicitfast, no contacts):
env-steps/s of genesis-torch next to MuJoCo's threaded `mujoco.rollout` on the same compiled model, in the same
run; plus partial-reset, get_state, save and load times. Prints a markdown table.

    python benchmarks/rigid_franka.py [--n-envs 1 64 1024 4096] [--steps 50] [--repeats 5] [--compile 4096]
        [--threads T] [--profile 4096]

`--compile N...` also measures `RigidOptions(compile=True)` at those n_envs (the whole step as one graph; the
first two steps compile, their time is printed as "first steps" and not counted in env-steps/s; "redone" counts the
graph steps the host check sent to the eager step).
`--profile N...` prints instead the eager step's torch.profiler self CPU time per stage at those n_envs (each aten
op counted in the innermost stage function it runs in; docs/rigid.md "Per-stage profile").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import mujoco
import numpy as np
import torch
from mujoco import rollout

import genesis_torch as gs
from genesis_torch.tools import progress

HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04, 0.04]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_torch(n_envs: int, steps: int, repeats: int, compiled: bool = False) -> dict:
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002), rigid_options=gs.options.RigidOptions(compile=compiled))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    robot.set_dofs_position(HOME)
    robot.control_dofs_position(HOME)
    t0 = time.perf_counter()
    for _ in range(2):  # warm-up: compiled, the first step runs the graph's function eagerly, the second compiles
        scene.step()
    first_s = time.perf_counter() - t0
    scene.step()
    solver = scene.rigid_solver

    def run():
        for _ in range(steps):
            scene.step()

    step_s = median_time(run, repeats) / steps
    init = scene.get_state()
    idx = list(range(0, n_envs, 2)) or [0]
    reset_s = median_time(lambda: scene.reset(state=init, envs_idx=idx), repeats * 4)
    get_s = median_time(scene.get_state, repeats * 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.safetensors")
        save_s = median_time(lambda: scene.save_checkpoint(path), repeats)
        load_s = median_time(lambda: scene.load_checkpoint(path), repeats)
        size = os.path.getsize(path)
    return {"first_s": first_s, "step_s": step_s, "redone": (solver.graph_redone, solver.graph_steps), "reset_s": reset_s, "get_s": get_s, "save_s": save_s, "load_s": load_s,
            "size": size, "mj_model": scene.rigid_solver.mj_model}


def bench_mujoco(mj_model: mujoco.MjModel, n_envs: int, steps: int, repeats: int, threads: int | None = None) -> float:
    """Seconds per env-step batch with `mujoco.rollout` on `threads` threads (None: all cores; one MjData each)."""
    nthread = threads or os.cpu_count() or 1
    datas = [mujoco.MjData(mj_model) for _ in range(nthread)]
    d = datas[0]
    d.qpos[:] = HOME
    d.ctrl[:] = HOME
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros(mujoco.mj_stateSize(mj_model, spec))
    mujoco.mj_getState(mj_model, d, state, spec)
    init = np.tile(state, (n_envs, 1))
    ctrl = np.tile(np.array(HOME), (n_envs, steps, 1))
    with rollout.Rollout(nthread=nthread) as r:
        r.rollout(mj_model, datas, init, ctrl)  # warm-up
        return median_time(lambda: r.rollout(mj_model, datas, init, ctrl), repeats) / steps


def profile_stages(n_envs: int, steps: int = 5) -> None:
    """Print the eager step's self CPU time per stage and the top ops (torch.profiler), `steps` steps after 3."""
    import collections

    from torch.profiler import ProfilerActivity, profile, record_function

    from genesis_torch.solvers.rigid import dynamics, newton, pipeline
    from genesis_torch.solvers.rigid import solver as solver_mod

    stages = [(pipeline, "forward_kinematics", "forward kinematics"), (solver_mod, "forward_kinematics",
              "forward kinematics"), (pipeline, "body_inertias", "body inertias"),
              (pipeline, "mass_matrix", "mass matrix"), (pipeline, "bias_forces", "bias forces"),
              (pipeline, "passive_forces", "passive"), (pipeline, "actuation", "actuation"),
              (pipeline, "solve_spd", "M and H solves"), (pipeline, "implicit_matrix", "implicit matrix"),
              (pipeline, "detect", "collision detection"), (pipeline, "joint_limit_rows", "limit rows"),
              (newton, "solve", "constraint solve"), (pipeline, "integrate_pos", "integration")]
    saved = []
    for mod, name, label in stages:
        f = getattr(mod, name)
        saved.append((mod, name, f))

        def wrapped(*a, _f=f, _label=label, **k):
            with record_function("stage:" + _label):
                return _f(*a, **k)
        setattr(mod, name, wrapped)
    try:
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.002))
        robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build(n_envs=n_envs)
        robot.set_dofs_position(HOME)
        robot.control_dofs_position(HOME)
        for _ in range(3):
            scene.step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                scene.step()
    finally:
        for mod, name, f in saved:
            setattr(mod, name, f)
    per_stage, per_op = collections.defaultdict(float), collections.defaultdict(float)
    for e in prof.events():
        if e.name.startswith("stage:"):
            continue
        p = e.cpu_parent
        while p is not None and not p.name.startswith("stage:"):
            p = p.cpu_parent
        stage = p.name[6:] if p is not None else "driver, rows assembly, rest"
        per_stage[stage] += e.self_cpu_time_total
        per_op[(stage, e.name)] += e.self_cpu_time_total
    total = sum(per_stage.values())
    print(f"{n_envs} envs: {total / steps / 1e3:.1f} ms self CPU per step")
    print("| stage | ms per step | share | top ops (ms) |\n|---|---|---|---|")
    for stage, t in sorted(per_stage.items(), key=lambda x: -x[1]):
        ops = sorted(((o, v) for (s, o), v in per_op.items() if s == stage), key=lambda x: -x[1])[:3]
        print(f"| {stage} | {t / steps / 1e3:.2f} | {t / total:.0%} | " +
              ", ".join(f"{o.replace('aten::', '')} {v / steps / 1e3:.2f}" for o, v in ops) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", type=int, nargs="*", default=[], help="n_envs to also run compiled")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads and MuJoCo rollout threads (default: torch's default, all cores)")
    parser.add_argument("--profile", type=int, nargs="*", default=[],
                        help="n_envs to profile per stage (eager, torch.profiler) instead of the table")
    args = parser.parse_args()
    gs.init(backend=gs.cpu)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        for n in args.profile:
            profile_stages(n)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), mujoco {mujoco.__version__}")
    print("| n_envs | mode | genesis-torch env-steps/s | MuJoCo rollout env-steps/s | ratio | partial reset | "
          "reset / step | get_state | save | load | checkpoint | first steps | redone |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    runs = [(n, False) for n in args.n_envs] + [(n, True) for n in args.compile]
    for n, compiled in progress(runs, desc="cases", unit="case"):  # on a terminal only (gs.tools.progress)
        t = bench_torch(n, args.steps, args.repeats, compiled)
        mj = bench_mujoco(t["mj_model"], n, args.steps, args.repeats, args.threads)
        ours, peer = n / t["step_s"], n / mj
        print(f"| {n} | {'compiled' if compiled else 'eager'} | {ours:,.0f} | {peer:,.0f} | {ours / peer:.2f} | "
              f"{t['reset_s'] * 1e6:,.0f} µs | {t['reset_s'] / t['step_s']:.1%} | {t['get_s'] * 1e6:.1f} µs | "
              f"{t['save_s'] * 1e3:.1f} ms | {t['load_s'] * 1e3:.1f} ms | {t['size'] / 1024:,.0f} KiB | "
              f"{t['first_s']:.1f} s | {t['redone'][0]}/{t['redone'][1]} |", flush=True)


if __name__ == "__main__":
    main()

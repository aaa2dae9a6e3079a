"""Many-body contact scenes at small n_envs: steps/s of genesis-torch next to MuJoCo's `mj_step` on the same compiled
model (`scene.rigid_solver.mj_model`: same timestep, integrator, cone, initial state), in the same run. Prints a
markdown table.

Scenes (Genesis' examples/collision/tower.py: layers of two crossed 2 m x 0.25 m x 0.1 m boards on a plane, its
cylinder (radius 2 m) dropped from 5 m above the top; dt = 0.004 s, default RigidOptions):

    stack16   8 layers, 16 boards (~120 contacts once settled), nv = 102
    tower100  50 layers, 100 boards (792 resting contacts), `max_collision_pairs=200` as the example; nv = 606

    python benchmarks/rigid_stack.py [--scenes stack16 tower100] [--n-envs 1] [--warmup 5] [--steps 10]
        [--repeats 5] [--check-steps 100] [--threads 1] [--breakdown]

genesis-torch (eager, float32) steps `warmup` steps untimed, then times `steps` steps `repeats` times (each run
from the state after the warm-up) and reports the median. MuJoCo (float64) does the same on one thread with
`mj_step`. `--check-steps N` then steps both N steps from the initial state and reports whether the boards are
still stacked (every board above the one two places below it by more than 0.09 m: the boards are 0.1 m thick,
stacked 0.099 m apart; the cylinder lands after ~1 s, 250 steps). `--breakdown` times the stages of the timed steps
(`rigid_contact.stage_timers`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import platform
import statistics
import sys
import time

import mujoco
import numpy as np
import torch

import genesis_torch as gs

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from rigid_contact import print_breakdown, stage_timers, SMOOTH, ROWS, SOLVE, FINISH  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tests.rigid.test_contact_capacity import genesis_tower  # noqa: E402  (Genesis' tower example)

SCENES = {"stack16": (8, None), "tower100": (50, 200)}


def standing(z: np.ndarray) -> bool:
    """Board heights (nboards,) in stacking order: still a tower (each board > 0.09 m above the one two below)."""
    return bool(np.isfinite(z).all() and (z[2:] - z[:-2]).min() > 0.09)


def median_time(fn, repeats: int, before) -> float:
    times = []
    for _ in range(repeats):
        before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, n_envs: int, args) -> dict:
    layers, pairs = SCENES[name]
    scene = genesis_tower(layers, pairs, n_envs)
    boards = scene.entities[1:-1]
    m = scene.rigid_solver.mj_model
    init = scene.get_state()
    qpos0 = init["RigidSolver"].qpos.double().numpy()[0]
    for _ in range(args.warmup):
        scene.step()
    warm = scene.get_state()

    def run():
        for _ in range(args.steps):
            scene.step()

    timers = stage_timers(scene) if args.breakdown else contextlib.nullcontext((None,) * 3)
    with timers as (times, calls, loops):
        step_s = median_time(run, args.repeats, lambda: scene.reset(state=warm)) / args.steps
    out = {"step_s": step_s, "nv": m.nv}
    if args.breakdown:
        f = scene.rigid_solver.forward(scene._rigid_state)
        out["breakdown"] = dict(times=times, calls=calls, ls_loops=np.array(loops), nsteps=args.steps * args.repeats,
                                total=sum(times[k] for k in (SMOOTH, ROWS, SOLVE, FINISH)), nrows=f.rows.nr,
                                ncon=f.contacts.valid.sum(-1).double(), ls_cap=scene.rigid_options.ls_iterations,
                                max_contacts=scene.rigid_options.max_collision_pairs)
    out["ncon"] = int(scene.rigid_solver.forward(scene._rigid_state).contacts.valid[0].sum())
    # MuJoCo, one thread, float64, from the same initial qpos
    d = mujoco.MjData(m)
    d.qpos[:] = qpos0
    for _ in range(args.warmup):
        mujoco.mj_step(m, d)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros(mujoco.mj_stateSize(m, spec))
    mujoco.mj_getState(m, d, state, spec)
    mj_steps = max(args.steps, 200)

    def mj_run():
        for _ in range(mj_steps):
            mujoco.mj_step(m, d)

    out["mj_step_s"] = median_time(mj_run, args.repeats, lambda: mujoco.mj_setState(m, d, state, spec)) / mj_steps
    out["mj_ncon"] = int(d.ncon)
    if args.check_steps:
        scene.reset(state=init)
        for _ in range(args.check_steps):
            scene.step()
        zadr = [b.q_start + 2 for b in boards]  # free joints: qpos (x, y, z, quat)
        out["standing"] = standing(scene.get_state()["RigidSolver"].qpos.double().numpy()[0, zadr])
        d = mujoco.MjData(m)
        d.qpos[:] = qpos0
        for _ in range(args.check_steps):
            mujoco.mj_step(m, d)
        out["mj_standing"] = standing(d.qpos[zadr])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    gs.init(backend=gs.cpu, logging_level="warning")  # float32
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), mujoco {mujoco.__version__}, load "
          f"{os.getloadavg()[0]:.2f}; genesis_torch from {pathlib.Path(gs.__file__).parent}")
    print("\n| scene | nv | n_envs | contacts (ours / MuJoCo) | genesis-torch ms / step | genesis-torch steps/s "
          "(env-steps/s) | MuJoCo mj_step steps/s (1 thread) | ratio | standing after check (ours / MuJoCo) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.scenes:
        for n in args.n_envs:
            r = bench(name, n, args)
            B = max(n, 1)
            print(f"| {name} | {r['nv']} | {n} | {r['ncon']} / {r['mj_ncon']} | {r['step_s'] * 1e3:,.1f} | "
                  f"{1 / r['step_s']:,.3g} "
                  f"({B / r['step_s']:,.0f}) | {1 / r['mj_step_s']:,.0f} | {r['mj_step_s'] * B / r['step_s']:.4f} | "
                  f"{r.get('standing')} / {r.get('mj_standing')} |", flush=True)
            if "breakdown" in r:
                print_breakdown(name, n, r["step_s"], r["breakdown"])


if __name__ == "__main__":
    main()

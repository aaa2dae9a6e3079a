"""MPM throughput: particle-substeps per second for elastic cubes of ~10k, 50k and 200k particles at n_envs 1 and 16;
with `--ratios`, the same cube in domains of several domain / particle volume ratios against Genesis.

Run: `python benchmarks/mpm.py [--precision 32] [--steps 5] [--sizes 10000 50000 200000] [--envs 1 16] [--compile]`.

Ratios: `python benchmarks/mpm.py --ratios 1 10 100 --sizes 10000 --envs 1 16 --threads 1 --peer PYTHON`: a cube of
`size` particles (particle size dx / 2, grid density 64, corotated `Elastic`, dt = 2e-4 s, one substep per step)
resting just above the floor of a cubic domain whose volume inside the walls is `ratio` times the cube's (at least
the cube plus one cell on each side: the tightest domain reports its actual ratio). Columns: ours (automatic grid:
sparse or dense, solvers/mpm/grid.py), ours forced dense (the grid before the sparse one), and Genesis' CPU backend
on the same scene in a subprocess of the peer venv (`bash /work/shared/peers/genesis-venv.sh` prints its python;
OMP_NUM_THREADS and QD_NUM_THREADS = `--threads`); with `--compile` also ours automatic with
`MPMOptions(compile=True)` (its warm-up step compiles). "rows per env" is the grid the automatic choice used on the
last substep (a box, the touched blocks or all nodes). Median of `--repeat` timed runs of `--steps` steps after one
warm-up step.
Each case builds a scene with one `Elastic` cube (corotated) dropping in a 1 m box at grid density 64 and particle
size 0.5 dx, does one warm-up step, then times `--steps` steps `--repeat` times and reports the best. Prints one row
per case. With `genesis-world`
installed (import genesis), the same scene runs on Genesis's CPU backend for comparison; otherwise its column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import torch

import genesis_torch as gs
from genesis_torch.tools import progress

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer import run_peer  # noqa: E402


def cube_side(n_particles: int, ps: float) -> float:
    return round(n_particles ** (1 / 3)) * ps


def ours(n_particles: int, n_envs: int, steps: int, precision: str, material: str, repeat: int,
         compile: bool = False) -> tuple[int, float]:
    gs.destroy()
    gs.init(backend=gs.cpu, precision=precision)
    gd = 64
    ps = 0.5 / gd
    side = cube_side(n_particles, ps)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-4),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       grid_density=gd, particle_size=ps, compile=compile))
    mat = {"elastic": gs.materials.MPM.Elastic(), "liquid": gs.materials.MPM.Liquid(),
           "sand": gs.materials.MPM.Sand()}[material]
    e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.1 + side / 2), size=(side,) * 3), material=mat)
    scene.build(n_envs=n_envs)
    scene.step()
    best = float("inf")
    for _ in range(repeat):  # best of `repeat`: the machine is shared, the minimum is the least disturbed run
        t0 = time.perf_counter()
        for _ in range(steps):
            scene.step()
        best = min(best, time.perf_counter() - t0)
    return e.n_particles, e.n_particles * max(n_envs, 1) * steps / best


#: the ratio scene, written once for both simulators (`gs` is genesis_torch here, genesis in the peer)
RATIO_SCENE = """
def make(gs, size, ratio, n_envs):
    gd = 64
    dx = 1.0 / gd
    ps = 0.5 * dx
    side = round(size ** (1 / 3)) * ps
    inner = max(side * ratio ** (1 / 3), side + 2 * dx)  # the domain inside its walls (3 cells per side)
    half = round((inner / 2 + 3 * dx) * gd) / gd  # whole cells
    height = round((inner + 6 * dx) * gd) / gd
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-4),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-half, -half, 0.0), upper_bound=(half, half, height),
                                                       grid_density=gd, particle_size=ps, **MPM_EXTRA), **EXTRA)
    e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 3 * dx + 0.5 * dx + side / 2), size=(side,) * 3),
                         material=gs.materials.MPM.Elastic())
    scene.build(n_envs=n_envs)
    actual = (2 * half - 6 * dx) ** 2 * (height - 6 * dx) / side ** 3
    return scene, e, actual


def timed(scene, steps, repeat):
    scene.step()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(steps):
            scene.step()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)
"""

RATIO_PEER = """
import json, statistics, sys, time
import genesis as gs
EXTRA = dict(show_viewer=False)
MPM_EXTRA = {}
""" + RATIO_SCENE + """
size, ratio, n_envs, steps, repeat, precision = json.loads(sys.argv[1])
gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
scene, e, actual = make(gs, size, ratio, n_envs)
t = timed(scene, steps, repeat)
print(json.dumps({"n": int(e.n_particles), "rate": e.n_particles * max(n_envs, 1) * steps / t}))
"""


def ours_ratio(size, ratio, n_envs, steps, repeat, precision, grid_mode, compile=False):
    """(particles, actual ratio, dense nodes per env, grid rows per env of the last substep, particle-substeps/s)."""
    from genesis_torch.solvers.mpm.solver import MPMSolver

    gs.destroy()
    gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
    if compile:
        torch._dynamo.reset()  # each case compiles its own kernels (no recompile limit across cases)
    ns = {"time": time, "statistics": statistics, "EXTRA": {}, "MPM_EXTRA": {"compile": compile}}
    exec(RATIO_SCENE, ns)
    MPMSolver.grid_mode = grid_mode
    try:
        scene, e, actual = ns["make"](gs, size, ratio, n_envs)
        t = ns["timed"](scene, steps, repeat)
    finally:
        MPMSolver.grid_mode = "auto"
    m = scene.mpm_solver.model
    return e.n_particles, actual, m.n_nodes, scene.mpm_solver.last_grid_rows, e.n_particles * max(n_envs, 1) * steps / t


def peer_ratio(python, size, ratio, n_envs, steps, repeat, precision, threads) -> str:
    got = run_peer(python, RATIO_PEER, [size, ratio, n_envs, steps, repeat, precision], threads,
                   QD_NUM_THREADS=str(threads))
    return got if isinstance(got, str) else f"{got['rate']:,.0f}"


def ratio_table(a) -> None:
    print(f"torch {torch.__version__}, {a.threads} thread(s), float{a.precision}, {a.steps} steps, median of "
          f"{a.repeat}; load average {os.getloadavg()[0]:.2f}")
    print("| particles | n_envs | domain / particle volume | dense nodes per env | rows per env (auto) | ours (auto) | "
          "ours (dense) | ours (auto, compiled) | Genesis | auto / Genesis | compiled / Genesis | auto / dense |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in a.sizes:
        for ratio in a.ratios:
            for B in a.envs:
                n, actual, nodes, rows, auto = ours_ratio(size, ratio, B, a.steps, a.repeat, a.precision, "auto")
                dense = ours_ratio(size, ratio, B, a.steps, a.repeat, a.precision, "dense")[-1]
                comp = (ours_ratio(size, ratio, B, a.steps, a.repeat, a.precision, "auto", True)[-1]
                        if a.compile else float("nan"))
                theirs = peer_ratio(a.peer, size, ratio, B, a.steps, a.repeat, a.precision, a.threads)
                try:
                    g = float(theirs.replace(",", ""))
                    vs, vc = f"{auto / g:.2f}", f"{comp / g:.2f}"
                except ValueError:
                    vs = vc = "-"
                print(f"| {n:,} | {B} | {actual:.1f} | {nodes:,} | {rows:,} | {auto:,.0f} | {dense:,.0f} | "
                      f"{comp:,.0f} | {theirs} | {vs} | {vc} | {auto / dense:.2f} |", flush=True)
    print(f"load average at the end {os.getloadavg()}")


def genesis_figure(n_particles: int, steps: int) -> str:
    try:
        import genesis  # noqa: F401
    except ImportError:
        return "genesis-world not installed"
    return "see RESULTS.md"  # pragma: no cover - not installable on this machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--precision", default="32", choices=["32", "64"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions of --steps steps; the best is reported")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--material", default="elastic", choices=["elastic", "liquid", "sand"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--compile", action="store_true", help="MPMOptions(compile=True); the warm-up step compiles")
    ap.add_argument("--ratios", type=float, nargs="+", default=None,
                    help="domain / particle volume ratios: the table against Genesis (--peer) instead of the sizes")
    ap.add_argument("--peer", default=None, help="python of the genesis-world venv (for --ratios)")
    ap.add_argument("--one", type=int, nargs=2, metavar=("PARTICLES", "N_ENVS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.ratios:
        ratio_table(args)
        return
    if args.one:  # a single case in this process: print "particles rate"
        got, rate = ours(*args.one, args.steps, args.precision, args.material, args.repeat, args.compile)
        print(got, rate)
        return
    print(f"torch {torch.__version__}, {args.threads} threads, float{args.precision}, {args.material}"
          f"{', compiled' if args.compile else ''}")
    print(f"{'particles':>10} {'n_envs':>6} {'particle-substeps/s':>20}   genesis (CPU)")
    cases = [(n, B) for n in args.sizes for B in args.envs]
    for n, B in progress(cases, desc="cases", unit="case"):  # on a terminal only (gs.tools.progress)
        if n * max(B, 1) > 3_500_000:  # ~1.7 kB per particle at the peak (measured, eager): stay inside 23 GB
            print(f"{n:>10} {B:>6} {'skipped (memory)':>20}")
            continue
        if args.compile:  # one process per case: each compiled scene has its own kernels (recompile limit)
            cmd = [sys.executable, __file__, "--one", str(n), str(B), "--steps", str(args.steps), "--repeat",
                   str(args.repeat), "--precision", args.precision, "--material", args.material, "--threads",
                   str(args.threads), "--compile"]
            got, rate = (float(v) for v in subprocess.run(cmd, capture_output=True, text=True,
                                                          check=True).stdout.split()[-2:])
            got = int(got)
        else:
            got, rate = ours(n, B, args.steps, args.precision, args.material, args.repeat, args.compile)
        print(f"{got:>10} {B:>6} {rate:>20,.0f}   {genesis_figure(n, args.steps)}", flush=True)


if __name__ == "__main__":
    main()

"""MPM throughput: particle-substeps per second for elastic cubes of ~10k, 50k and 200k particles at n_envs 1 and 16;
with `--ratios`, the same cube in domains of several domain / particle volume ratios against Genesis; with
`--scene sand_column`, issue 20's sand column against Genesis.

Sizes: `python benchmarks/mpm.py [--precision 32] [--steps 5] [--repeat 3] [--sizes 10000 50000 200000] [--envs 1 16]
[--compile]`. Each case builds a scene with one corotated `Elastic` cube dropping in a 1 m box at grid density 64 and
particle size 0.5 dx, does one warm-up step, then times `--steps` steps `--repeat` times and reports the *best* of
those runs (the least disturbed on a shared machine). One row per case; Genesis does not run in this mode.

Ratios: `python benchmarks/mpm.py --ratios 1 10 100 --sizes 10000 --envs 1 16 --threads 1 --peer PYTHON`: a cube of
`size` particles (particle size dx / 2, grid density 64, corotated `Elastic`, dt = 2e-4 s, one substep per step)
resting just above the floor of a cubic domain whose volume inside the walls is `ratio` times the cube's (at least
the cube plus one cell on each side: the tightest domain reports its actual ratio). Columns: ours (automatic grid:
sparse or dense, solvers/mpm/grid.py), ours forced dense (the grid before the sparse one), and Genesis' CPU backend
on the same scene in a subprocess of the peer venv (`bash /work/shared/peers/genesis-venv.sh` prints its python;
OMP_NUM_THREADS and QD_NUM_THREADS = `--threads`); with `--compile` also ours automatic with
`MPMOptions(compile=True)` (its warm-up step compiles). "rows per env" is the grid the automatic choice used on the
last substep (a box, the touched blocks or all nodes).

Sand column: `python benchmarks/mpm.py --scene sand_column --envs 1 16 --threads 1 --steps 5 --repeat 5 --peer PYTHON`:
`SAND_SCENE` (a 4,800-particle `MPM.Sand(friction_angle=30)` slab on a rigid plane in a 1.2 x 0.18 x 0.36 m domain
at 128 cells/m), timed (a) from the start of the collapse and (b) with every env at the state one env reaches after
0.3 s (the column spread; each simulator runs its own one-env collapse first), ours auto, ours dense, (with
`--compile`) ours auto compiled, and Genesis.

In the ratio and sand modes every figure is the *median* of `--repeat` timed runs of `--steps` steps after one
warm-up step (`TIMED`, the same loop in both simulators).
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
"""

#: the timing loop of both simulators: one warm-up step, then the median of `repeat` runs of `steps` steps (s)
TIMED = """
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
""" + RATIO_SCENE + TIMED + """
size, ratio, n_envs, steps, repeat, precision = json.loads(sys.argv[1])
gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
scene, e, actual = make(gs, size, ratio, n_envs)
t = timed(scene, steps, repeat)
print(json.dumps({"n": int(e.n_particles), "rate": e.n_particles * max(n_envs, 1) * steps / t}))
"""


def _scene_namespace(source: str, compile: bool) -> dict:
    """The namespace of a scene source (the same text the peer runs) with the shared timing loop `TIMED`."""
    if compile:
        torch._dynamo.reset()  # each case compiles its own kernels (no recompile limit across cases)
    ns = {"time": time, "statistics": statistics, "EXTRA": {}, "MPM_EXTRA": {"compile": compile}}
    exec(source + TIMED, ns)
    return ns


def ours_ratio(size, ratio, n_envs, steps, repeat, precision, grid_mode, compile=False):
    """(particles, actual ratio, dense nodes per env, grid rows per env of the last substep, particle-substeps/s)."""
    from genesis_torch.solvers.mpm.solver import MPMSolver

    gs.destroy()
    gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
    ns = _scene_namespace(RATIO_SCENE, compile)
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


#: issue 20's sand column, written once for both simulators: a quasi-2-D slab of `MPM.Sand(friction_angle=30)`,
#: 0.12 x 0.02 x 0.25 m at particle size 5 mm (24 x 4 x 50 = 4,800 particles, regular lattice in both), standing on a
#: rigid plane z = 0 in the middle of a 1.2 x 0.18 x 0.36 m domain at 128 cells/m (155 x 25 x 47 nodes), dt = 1e-4 s
#: (0.43 of the elastic CFL bound dx / c at Genesis' Sand defaults E = 1e6 Pa, nu = 0.2, rho = 1000), one MPM
#: substep per step; everything else Genesis 1.4.5's defaults
SAND_SCENE = """
SPREAD_STEPS = 3000  # 0.3 s: the column has collapsed and spread (phase b)


def make_sand(gs, n_envs):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-4),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.6, -0.09, -0.04), upper_bound=(0.6, 0.09, 0.32),
                                                       grid_density=128, particle_size=0.005, **MPM_EXTRA), **EXTRA)
    scene.add_entity(gs.morphs.Plane())
    e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.125), size=(0.12, 0.02, 0.25)),
                         material=gs.materials.MPM.Sand(friction_angle=30.0, sampler="regular"))
    scene.build(n_envs=n_envs)
    return scene, e
"""

SAND_PEER = """
import json, statistics, sys, time
import numpy as np
import torch
import genesis as gs
EXTRA = dict(show_viewer=False)
MPM_EXTRA = {}
""" + SAND_SCENE + TIMED + """
n_envs, steps, repeat, precision, phase, cache = json.loads(sys.argv[1])
gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
FIELDS = ("pos", "vel", "C", "F", "Jp", "actu", "active")
if phase == "prepare":  # run one env to the spread state and keep its particle state
    scene, e = make_sand(gs, 1)
    for _ in range(SPREAD_STEPS):
        scene.step()
    st = scene.sim.mpm_solver.get_state(scene.sim.cur_substep_local)
    arrays = {k: getattr(st, k).cpu().numpy() for k in FIELDS}
    np.savez(cache, **arrays)
    x = arrays["pos"][0, :, 0]
    print(json.dumps({"n": int(e.n_particles), "x_min": float(x.min()), "x_max": float(x.max())}))
    sys.exit()
scene, e = make_sand(gs, n_envs)
if phase == "spread":  # every env to the spread state of the one-env run
    state = scene.get_state()
    mpm = next(s for s in state if type(s).__name__ == "MPMSolverState")
    got = np.load(cache)
    for k in FIELDS:
        getattr(mpm, k)[:] = torch.as_tensor(got[k]).to(getattr(mpm, k).dtype).expand_as(getattr(mpm, k))
    scene.reset(state)
t = timed(scene, steps, repeat)
print(json.dumps({"n": int(e.n_particles), "s_per_step": t / steps}))
"""


def ours_sand(n_envs, steps, repeat, precision, grid_mode, spread_state=None, compile=False):
    """(particles, grid rows per env of the last substep, s per substep) of our sand column at `n_envs`, from the
    start or (`spread_state`: a one-env SimState) with every env at that state; `compile`: `MPMOptions(compile=True)`
    (the warm-up step compiles)."""
    from genesis_torch.solvers.mpm.solver import MPMSolver

    ns = _scene_namespace(SAND_SCENE, compile)
    MPMSolver.grid_mode = grid_mode
    try:
        scene, e = ns["make_sand"](gs, n_envs)
        if spread_state is not None:
            scene.reset(state=spread_state)
        t = ns["timed"](scene, steps, repeat)
    finally:
        MPMSolver.grid_mode = "auto"
    return e.n_particles, scene.mpm_solver.last_grid_rows, t / steps


def ours_sand_spread(precision):
    """Our one-env sand column after `SPREAD_STEPS` substeps: (SimState, particles' x extent (min, max) m)."""
    ns = _scene_namespace(SAND_SCENE, False)
    scene, e = ns["make_sand"](gs, 1)
    for _ in range(ns["SPREAD_STEPS"]):
        scene.step()
    x = e.get_particles_pos()[..., 0]
    return scene.get_state(), (float(x.min()), float(x.max()))


def sand_table(a) -> None:
    """ms per MPM substep and particle-substeps/s of the sand column: phases (a) from the start and (b) spread, at
    each `--envs`; ours auto, ours dense, (`--compile`) ours auto compiled, Genesis (`--peer`), in this order, in one
    run."""
    gs.destroy()
    gs.init(backend=gs.cpu, precision=a.precision, logging_level="warning")
    print(f"genesis_torch from {pathlib.Path(gs.__file__).parent}; torch {torch.__version__}, {a.threads} thread(s), "
          f"float{a.precision}, {a.steps} steps, median of {a.repeat}; load average {os.getloadavg()}")
    t0 = time.perf_counter()
    spread, extent = ours_sand_spread(a.precision)
    print(f"ours: spread state after 0.3 s in {time.perf_counter() - t0:.0f} s, particles' x from {extent[0]:.3f} "
          f"to {extent[1]:.3f} m")
    cache = f"/tmp/sand_column_genesis_{os.getpid()}.npz"
    prep = run_peer(a.peer, SAND_PEER, [1, 0, 0, a.precision, "prepare", cache], a.threads,
                    QD_NUM_THREADS=str(a.threads))
    where = prep if isinstance(prep, str) else f"x from {prep['x_min']:.3f} to {prep['x_max']:.3f} m"
    print(f"Genesis: spread state {where}")
    print("| phase | n_envs | particles | rows per env (auto) | ours auto ms | ours dense ms | ours compiled ms | "
          "Genesis ms | ours auto particle-substeps/s | ours dense | Genesis | auto / Genesis | compiled / Genesis | "
          "auto / dense |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for phase in ("start", "spread"):
        for B in a.envs:
            st = spread if phase == "spread" else None
            n, rows, auto = ours_sand(B, a.steps, a.repeat, a.precision, "auto", st)
            dense = ours_sand(B, a.steps, a.repeat, a.precision, "dense", st)[-1]
            comp = ours_sand(B, a.steps, a.repeat, a.precision, "auto", st, True)[-1] if a.compile else float("nan")
            got = run_peer(a.peer, SAND_PEER, [B, a.steps, a.repeat, a.precision, phase, cache], a.threads,
                           QD_NUM_THREADS=str(a.threads))
            g = float("nan") if isinstance(got, str) else got["s_per_step"]
            rate = lambda t: f"{n * B / t:,.0f}"  # noqa: E731
            print(f"| {phase} | {B} | {n:,} | {rows:,} | {auto * 1e3:.2f} | {dense * 1e3:.2f} | {comp * 1e3:.2f} | "
                  f"{got if isinstance(got, str) else f'{g * 1e3:.2f}'} | {rate(auto)} | {rate(dense)} | "
                  f"{'-' if isinstance(got, str) else rate(g)} | {g / auto:.2f} | {g / comp:.2f} | "
                  f"{dense / auto:.2f} |", flush=True)
    if os.path.exists(cache):  # Genesis' spread state, written by its "prepare" run
        os.remove(cache)
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
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed repetitions of --steps steps: the best is reported (sizes), the median (--ratios, "
                    "--scene)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--material", default="elastic", choices=["elastic", "liquid", "sand"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--compile", action="store_true", help="MPMOptions(compile=True); the warm-up step compiles")
    ap.add_argument("--ratios", type=float, nargs="+", default=None,
                    help="domain / particle volume ratios: the table against Genesis (--peer) instead of the sizes")
    ap.add_argument("--peer", default=None, help="python of the genesis-world venv (for --ratios, --scene)")
    ap.add_argument("--scene", default=None, choices=["sand_column"],
                    help="issue 20's sand column against Genesis (--peer) instead of the sizes")
    ap.add_argument("--one", type=int, nargs=2, metavar=("PARTICLES", "N_ENVS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.scene == "sand_column":
        sand_table(args)
        return
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

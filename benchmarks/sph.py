"""SPH throughput: particle-substeps per second of a dam break (a water block in a tank, falling and spreading) at
~10k, 50k and 200k particles, n_envs 1 and 16, WCSPH and DFSPH, with Genesis' SPH on the same scene in the same run
when its peer venv is given.

Run: `python benchmarks/sph.py [--sizes 10000 50000 200000] [--envs 1 16] [--solvers WCSPH DFSPH] [--steps 5]
[--repeat 3] [--precision 32] [--threads 1] [--advance 0] [--peer PYTHON]`.
Each case builds one scene (Genesis' defaults: SPHOptions(particle_size=0.02), SPH.Liquid(), SimOptions(dt=4e-3,
substeps=10) as Genesis' examples) with a block of `size` particles against one wall of a tank twice its length, does
one warm-up step, then times `--steps` steps `--repeat` times and reports the median (particle-substeps: particles x
envs x substeps). `--peer`: the python of the Genesis venv (`bash /work/shared/peers/genesis-venv.sh` prints it);
the same case then runs there in a subprocess on Genesis' CPU backend (kernels compile on first use; the warm-up
step is not timed). Also prints the peak resident memory per particle of our case (`resource.getrusage`, the
process's high-water mark, so the largest case dominates: run one case per process with `--sizes N --envs B` for
a clean figure). `--advance T`: first simulate T seconds untimed (both sides), so that the timed window is the fast
flow of the collapse (T = 0.2: speeds ~1-2 m/s, the Verlet lists rebuilt on most substeps) instead of its first
milliseconds; our column `rebuilds` is the share of the timed substeps (x envs) whose neighbour lists were rebuilt.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer import run_peer  # noqa: E402

#: the scene, written once for both simulators (`gs` is genesis_torch here, genesis in the peer)
SCENE = """
def make(gs, solver, size, n_envs):
    d = 0.02
    nx = round((size / 2) ** (1 / 3))  # a block nx x nx x 2 nx
    L = nx * d
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, substeps=10),
                     sph_options=gs.options.SPHOptions(particle_size=d, pressure_solver=solver,
                                                       lower_bound=(0.0, 0.0, 0.0), upper_bound=(2 * L, L, 2.5 * L)),
                     **EXTRA)
    e = scene.add_entity(gs.morphs.Box(lower=(0.0, 0.0, 0.0), upper=(L, L, 2 * L)),
                         material=gs.materials.SPH.Liquid(sampler="regular"))
    scene.build(n_envs=n_envs)
    return scene, e


def timed(scene, steps, repeat, advance=0.0, on_start=None):
    for _ in range(max(1, round(advance / 4e-3))):
        scene.step()
    if on_start is not None:
        on_start()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(steps):
            scene.step()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]  # the median of the repeats
"""

PEER = """
import json, sys, time
import genesis as gs
EXTRA = dict(show_viewer=False)
""" + SCENE + """
solver, size, n_envs, steps, repeat, precision, advance = json.loads(sys.argv[1])
gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
scene, e = make(gs, solver, size, n_envs)
median = timed(scene, steps, repeat, advance)
print(json.dumps({"n": int(e.n_particles), "rate": e.n_particles * max(n_envs, 1) * 10 * steps / median}))
"""


def ours(solver, size, n_envs, steps, repeat, precision, advance=0.0):
    """(particles, particle-substeps/s, share of the timed env-substeps whose Verlet lists were rebuilt)."""
    import genesis_torch as gs

    gs.destroy()
    gs.init(backend=gs.cpu, precision=precision)
    ns = {"time": time, "EXTRA": {}}
    exec(SCENE, ns)
    scene, e = ns["make"](gs, solver, size, n_envs)
    lists = scene.sph_solver._lists
    search, count = lists.search, [0, False]

    def counted(x, active):  # envs searched per call (a rebuild of some envs searches those only)
        if count[1]:
            count[0] += x.shape[0]
        return search(x, active)

    lists.search = counted
    median = ns["timed"](scene, steps, repeat, advance, on_start=lambda: count.__setitem__(1, True))
    n_sub, B = scene.sim_options.substeps * steps, max(n_envs, 1)
    return e.n_particles, e.n_particles * B * n_sub / median, count[0] / (n_sub * repeat * B)


def peer(python, solver, size, n_envs, steps, repeat, precision, threads, advance=0.0) -> str:
    got = run_peer(python, PEER, [solver, size, n_envs, steps, repeat, precision, advance], threads)
    return got if isinstance(got, str) else f"{got['rate']:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--solvers", nargs="+", default=["WCSPH", "DFSPH"], choices=["WCSPH", "DFSPH"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--precision", default="32", choices=["32", "64"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--advance", type=float, default=0.0, help="untimed seconds of simulation first")
    ap.add_argument("--peer", default=None, help="python of the genesis-world venv")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), float{a.precision}, {a.steps} steps x median of "
          f"{a.repeat}, 10 substeps per step, timed after {a.advance} s")
    print("| solver | particles | n_envs | genesis-torch particle-substeps/s | Genesis particle-substeps/s | ratio | "
          "peak RSS / particle | list rebuilds / substep |")
    print("|---|---|---|---|---|---|---|---|")
    for solver in a.solvers:
        for size in a.sizes:
            for n_envs in a.envs:
                n, rate, rebuilds = ours(solver, size, n_envs, a.steps, a.repeat, a.precision, a.advance)
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / (n * max(n_envs, 1))
                theirs = peer(a.peer, solver, size, n_envs, a.steps, a.repeat, a.precision, a.threads, a.advance)
                try:
                    ratio = f"{rate / float(theirs.replace(',', '')):.2f}"
                except ValueError:
                    ratio = "-"
                print(f"| {solver} | {n:,} | {n_envs} | {rate:,.0f} | {theirs} | {ratio} | {rss / 1024:,.1f} KiB | {rebuilds:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()

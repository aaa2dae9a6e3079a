"""FEM throughput: element-substeps per second of an elastic cube of ~10k and ~100k tetrahedra falling on the floor,
explicit and implicit, at n_envs 1 and 16, with Genesis' FEM on the same scene in the same run when its peer venv
exists.

Run: `python benchmarks/fem.py [--tets 10000 100000] [--envs 1 16] [--solvers explicit implicit] [--steps 3]
[--repeat 2] [--precision 32] [--threads 1] [--pcg 500] [--peer PYTHON]`.
Each case builds one scene: a 0.3 m cube of FEM.Elastic(E=1e6, nu=0.2, rho=1000, `--model`, default "linear": Genesis'
explicit solver has no "linear_corotated" stress, its implicit one no "stable_neohookean" Hessian) at z = 0.3 m,
FEMOptions with Genesis' defaults except `n_pcg_iterations` (`--pcg`, default Genesis' 500; note genesis-torch always
runs all of them, Genesis stops an env at its pcg_threshold), SimOptions(dt=1e-4) explicit or dt=1e-2 implicit. The
cube is meshed by each simulator its own way: genesis-torch's structured Kuhn mesh with cells of volume
6 * maxvolume, Genesis' tetgen with the same `maxvolume` = side^3 / tets and `nobisect=False` (with Genesis'
default True tetgen keeps the box's 12 boundary-only tets); each reports its own element count and rate. One warm-up
step, then `--steps` steps `--repeat` times, the median. The load average (`os.getloadavg`) is printed before and after
each case. `--peer`: the python of the Genesis venv
(`bash /work/shared/peers/genesis-venv.sh` prints it); the case then runs there in a subprocess on Genesis' CPU
backend (kernels compile on first use; the warm-up step is not timed). Without it the Genesis column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer import run_peer  # noqa: E402

#: the scene, written once for both simulators (`gs` is genesis_torch here, genesis in the peer)
SCENE = """
def make(gs, tets, n_envs, implicit, pcg, MODEL):
    side = 0.3
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2 if implicit else 1e-4),
                     fem_options=gs.options.FEMOptions(use_implicit_solver=implicit, n_pcg_iterations=pcg), **EXTRA)
    e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.3), size=(side, side, side), maxvolume=side ** 3 / tets,
                                       nobisect=False),
                         material=gs.materials.FEM.Elastic(E=1e6, nu=0.2, rho=1000.0, model=MODEL))
    scene.build(n_envs=n_envs)
    return scene, e


def timed(scene, steps, repeat):
    scene.step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(steps):
            scene.step()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]  # the median (the upper one of an even count)
"""

PEER = """
import json, sys, time
import genesis as gs
EXTRA = dict(show_viewer=False)
""" + SCENE + """
tets, n_envs, implicit, pcg, steps, repeat, precision, model = json.loads(sys.argv[1])
gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
scene, e = make(gs, tets, n_envs, implicit, pcg, model)
best = timed(scene, steps, repeat)
print(json.dumps({"n": int(e.n_elements), "rate": e.n_elements * max(n_envs, 1) * steps / best}))
"""


def ours(tets, n_envs, implicit, pcg, steps, repeat, precision, model):
    import genesis_torch as gs

    gs.destroy()
    gs.init(backend=gs.cpu, precision=precision, logging_level="error")
    ns = {"time": time, "EXTRA": {}}
    exec(SCENE, ns)
    scene, e = ns["make"](gs, tets, n_envs, implicit, pcg, model)
    best = ns["timed"](scene, steps, repeat)
    return e.n_elements, e.n_elements * max(n_envs, 1) * steps / best


def peer(python, tets, n_envs, implicit, pcg, steps, repeat, precision, threads, model):
    """(element count, rate) of Genesis, or (None, why not)."""
    r = run_peer(python, PEER, [tets, n_envs, implicit, pcg, steps, repeat, precision, model], threads)
    if isinstance(r, str):
        return None, r
    return r["n"], r["rate"]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "?"
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tets", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--solvers", nargs="+", default=["explicit", "implicit"], choices=["explicit", "implicit"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--pcg", type=int, default=500, help="FEMOptions(n_pcg_iterations) of the implicit cases")
    ap.add_argument("--precision", default="32", choices=["32", "64"])
    ap.add_argument("--model", default="linear", choices=["linear", "linear_corotated", "stable_neohookean"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--peer", default=None, help="python of the genesis-world venv")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    print(f"commit {_commit()}, torch {torch.__version__}, {a.threads} thread(s), float{a.precision}, "
          f"{a.steps} steps x median of {a.repeat}, model {a.model}, implicit n_pcg_iterations={a.pcg}")
    print("| solver | tets (ours / Genesis) | n_envs | genesis-torch element-substeps/s | Genesis element-substeps/s "
          "| ratio | load average before / after |")
    print("|---|---|---|---|---|---|---|")
    for solver in a.solvers:
        implicit = solver == "implicit"
        for tets in a.tets:
            for n_envs in a.envs:
                load0 = os.getloadavg()[0]
                n, rate = ours(tets, n_envs, implicit, a.pcg, a.steps, a.repeat, a.precision, a.model)
                n_peer, theirs = peer(a.peer, tets, n_envs, implicit, a.pcg, a.steps, a.repeat, a.precision,
                                      a.threads, a.model)
                if n_peer is None:
                    col, ratio = theirs, "-"
                else:
                    col, ratio = f"{theirs:,.0f}", f"{rate / theirs:.2f}"
                print(f"| {solver} | {n:,} / {n_peer if n_peer is not None else '-'} | {n_envs} | {rate:,.0f} | "
                      f"{col} | {ratio} | {load0:.1f} / {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

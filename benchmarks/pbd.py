"""PBD throughput: particle-substeps per second of a falling square cloth (n x n cells, (n+1)^2 particles) and a
position-based liquid block, at several n_envs, with Genesis' PBD on the same scene in the same run when its peer
venv exists.

Run: `python benchmarks/pbd.py [--cloth 64 256] [--liquid 50000] [--envs 1 16] [--steps 5] [--repeat 3]
[--precision 32] [--threads 1] [--peer PYTHON]`.
Each case builds one scene (Genesis' defaults: PBDOptions iterations 4 stretch / 1 bending / 1 density / 1
viscosity, PBD.Cloth() or PBD.Liquid(sampler="regular"), SimOptions(dt=4e-3); particle_size 1e-2 for the liquid,
the cloth's edge length 1/n for a cloth), does one warm-up step, then times `--steps` steps `--repeat` times and
reports the median. `--peer`: the python of the Genesis venv
(`bash /work/shared/peers/genesis-venv.sh` prints it); the same case then runs there in a subprocess on Genesis'
CPU backend (its kernels compile on first use; the warm-up step is not timed). Without it the Genesis column says so.
Genesis remeshes a cloth to edges of about particle_size (genesis-torch uses the mesh as given); with particle_size
equal to the grid's edge its remeshed cloth keeps about the same vertex count, which its column names (each rate is
over its own particle count).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

from genesis_torch.geometry.grid_mesh import square_grid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer import run_peer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def grid_obj(n: int, size: float = 1.0) -> str:
    """An .obj square of `size` m, n x n cells (2 n^2 triangles), written once to the temp folder."""
    import trimesh

    path = os.path.join(tempfile.gettempdir(), f"pbd_bench_grid{n}.obj")
    if not os.path.exists(path):
        verts, faces = square_grid(n, (-size / 2, -size / 2), (size / 2, size / 2))
        trimesh.Trimesh(verts, faces, process=False).export(path)
    return path


#: the scene, written once for both simulators (`gs` is genesis_torch here, genesis in the peer)
SCENE = """
def make(gs, kind, size, n_envs, obj):
    ps = 1.0 / size if kind == "cloth" else 1e-2  # a cloth's edge length: Genesis' remeshing keeps its vertices
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3),
                     pbd_options=gs.options.PBDOptions(lower_bound=(-1.0, -1.0, 0.0), upper_bound=(1.0, 1.0, 2.0),
                                                       particle_size=ps),
                     **EXTRA)
    if kind == "cloth":
        e = scene.add_entity(gs.morphs.Mesh(file=obj, pos=(0.0, 0.0, 0.5)), material=gs.materials.PBD.Cloth())
    else:
        side = round(size ** (1 / 3)) * 1e-2
        e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.02 + side / 2), size=(side, side, side)),
                             material=gs.materials.PBD.Liquid(sampler="regular"))
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
    return sorted(times)[len(times) // 2]  # the median
"""

PEER = """
import json, sys, time
import torch
torch.set_num_threads(1)
import genesis as gs
EXTRA = dict(show_viewer=False)
""" + SCENE + """
kind, size, n_envs, steps, repeat, obj, precision = json.loads(sys.argv[1])
gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
scene, e = make(gs, kind, size, n_envs, obj)
best = timed(scene, steps, repeat)
print(json.dumps({"n": int(e.n_particles), "rate": e.n_particles * max(n_envs, 1) * steps / best}))
"""


def ours(kind, size, n_envs, steps, repeat, obj, precision):
    import genesis_torch as gs

    gs.destroy()
    gs.init(backend=gs.cpu, precision=precision)
    ns = {"time": time, "EXTRA": {}}
    exec(SCENE, ns)
    scene, e = ns["make"](gs, kind, size, n_envs, obj)
    best = ns["timed"](scene, steps, repeat)
    return e.n_particles, e.n_particles * max(n_envs, 1) * steps / best


def peer(python, kind, size, n_envs, steps, repeat, obj, precision, threads) -> str:
    got = run_peer(python, PEER, [kind, size, n_envs, steps, repeat, obj, precision], threads)
    if isinstance(got, str):
        return got
    return f"{got['rate']:,.0f} ({got['n']:,} particles)"  # Genesis remeshes a cloth to edges of particle_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cloth", type=int, nargs="*", default=[64, 256], help="cloth cells per side")
    ap.add_argument("--liquid", type=int, nargs="*", default=[50000], help="liquid particles (a cube of them)")
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--precision", default="32", choices=["32", "64"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--peer", default=None, help="python of the genesis-world venv")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), float{a.precision}, {a.steps} steps x median of "
          f"{a.repeat}")
    print("| case | particles | n_envs | genesis-torch particle-substeps/s | Genesis particle-substeps/s | ratio |")
    print("|---|---|---|---|---|---|")
    cases = [("cloth", n, grid_obj(n)) for n in a.cloth] + [("liquid", n, "") for n in a.liquid]
    for kind, size, obj in cases:
        for n_envs in a.envs:
            n, rate = ours(kind, size, n_envs, a.steps, a.repeat, obj, a.precision)
            theirs = peer(a.peer, kind, size, n_envs, a.steps, a.repeat, obj, a.precision, a.threads)
            try:
                ratio = f"{rate / float(theirs.split(' ')[0].replace(',', '')):.2f}"
            except ValueError:
                ratio = "-"
            label = f"cloth {size}x{size}" if kind == "cloth" else f"liquid {size}"
            print(f"| {label} | {n:,} | {n_envs} | {rate:,.0f} | {theirs} | {ratio} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

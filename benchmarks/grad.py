"""Backward / forward time of differentiable rollouts per solver (issue 19), and Franka env-steps/s with grad.

Run: `flock /tmp/bench.lock python benchmarks/grad.py [--steps 20] [--repeat 3] [--peer PYTHON]` (1 thread, float32).

Each case builds a small scene with `SimOptions(requires_grad=True)`, then per repeat: reset, set the initial
velocity from a leaf tensor that requires grad, `--steps` `scene.step()`s (the forward, recording the graph), a
weighted sum of the final positions, and `loss.backward()` (the backward). Reported: medians over `--repeat` runs
after one warm-up of ms per step forward, ms per step backward, their ratio, and the forward without grad
(`torch.no_grad`) for the cost of recording. Cases: rigid Franka (bundled MJCF, joint torques, 1 / 64 / 1024 envs:
env-steps/s of forward + backward), MPM (elastic block of 512 particles, grid 16^3, dt 2 ms), SPH (WCSPH blob of 125
particles), PBD (cloth of 8 x 8 cells, two pinned corners), FEM (explicit elastic block of 750 tets).
`--peer`: Genesis' python (the peer venv); Genesis supports gradients for MPM only (its differentiable MPM), so only
the MPM case runs there (the same scene, Genesis' CPU backend, `requires_grad=True`); its failure is reported as such.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from peer import run_peer  # noqa: E402

import genesis_torch as gs  # noqa: E402

#: the MPM scene, written once for both simulators (`gs` is genesis_torch here, genesis in the peer)
MPM_SCENE = """
def make_mpm(gs):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, substeps=1, requires_grad=True), show_viewer=False,
                     mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1),
                                                       grid_density=16, particle_size=1 / 32))
    e = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=(0.25, 0.25, 0.25)),
                         material=gs.materials.MPM.Elastic(E=5e3, nu=0.3, rho=400.0))
    scene.build()
    return scene, e
"""

PEER = MPM_SCENE + """
import json, statistics, sys, time
import torch
import genesis as gs
steps, repeat = json.loads(sys.argv[1])
torch.set_num_threads(1)
gs.init(backend=gs.cpu, precision="32", logging_level="warning")
scene, e = make_mpm(gs)
fwd, bwd = [], []
for r in range(repeat + 1):
    scene.reset()
    v0 = torch.tensor([0.3, -0.2, 0.5], dtype=gs.tc_float, device=gs.device, requires_grad=True)
    e.set_velocity(v0)
    t0 = time.perf_counter()
    for _ in range(steps):
        scene.step()
    loss = e.get_state().pos.sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    if r:
        fwd.append(t1 - t0); bwd.append(t2 - t1)
print(json.dumps({"fwd": statistics.median(fwd), "bwd": statistics.median(bwd), "n": e.n_particles,
                  "grad": float(v0.grad.abs().sum()) if v0.grad is not None else None}))
"""
exec(MPM_SCENE)


def franka(B):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, requires_grad=True), show_viewer=False)
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=B)
    tau = torch.ones(B, 7) * 0.5
    return scene, (lambda v: robot.set_dofs_velocity(v.expand(B, 9))), (lambda: robot.control_dofs_force(
        tau, dofs_idx_local=range(7))), (lambda: robot.get_links_pos()[:, -1].sum()), 9


def mpm():
    scene, e = make_mpm(gs)
    return scene, e.set_velocity, None, (lambda: e.get_particles_pos().sum()), 3


def sph():
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-3, requires_grad=True), show_viewer=False,
                     sph_options=gs.options.SPHOptions(particle_size=0.02, lower_bound=(0, 0, 0),
                                                       upper_bound=(0.4, 0.4, 0.4)))
    e = scene.add_entity(gs.morphs.Box(pos=(0.2, 0.2, 0.1), size=(0.1, 0.1, 0.1)),
                         material=gs.materials.SPH.Liquid(stiffness=2000.0, mu=0.01, gamma=0.02))
    scene.build()
    return scene, e.set_velocity, None, (lambda: e.get_particles_pos().sum()), 3


def pbd():
    from examples.cloth_shape import grid_obj

    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, requires_grad=True), show_viewer=False,
                     pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0.0), upper_bound=(1, 1, 2)))
    e = scene.add_entity(gs.morphs.Mesh(file=grid_obj(8, 0.5), pos=(0, 0, 1.0)),
                         material=gs.materials.PBD.Cloth(stretch_compliance=1e-6, bending_compliance=1e-3))
    scene.build()
    e.fix_particles([0, 8], zero_velocity=False)
    return scene, e.set_velocity, None, (lambda: e.get_particles_pos().sum()), 3


def fem():
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-4, requires_grad=True), show_viewer=False)
    e = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.1, 0.1, 0.1), maxvolume=0.1 ** 3 / 750),
                         material=gs.materials.FEM.Elastic(E=1e5, nu=0.3, rho=1000.0))
    scene.build()
    return scene, e.set_velocity, None, (lambda: e.get_pos().sum()), 3


def timed(make, steps, repeat) -> dict:
    gs.destroy()
    gs.init(backend=gs.cpu, precision="32", logging_level="warning")
    scene, set_v, control, loss_of, nv = make()
    init = scene.get_state()
    fwd, bwd, plain = [], [], []
    for r in range(repeat + 1):
        scene.reset(state=init)
        v0 = torch.full((nv,), 0.1).requires_grad_(True)
        set_v(v0)
        t0 = time.perf_counter()
        for _ in range(steps):
            if control:
                control()
            scene.step()
        loss = loss_of()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        scene.reset(state=init)
        with torch.no_grad():
            set_v(v0.detach())
            t3 = time.perf_counter()
            for _ in range(steps):
                if control:
                    control()
                scene.step()
            t4 = time.perf_counter()
        assert v0.grad is not None and torch.isfinite(v0.grad).all()
        if r:
            fwd.append(t1 - t0), bwd.append(t2 - t1), plain.append(t4 - t3)
    med = {k: statistics.median(v) / steps for k, v in (("fwd", fwd), ("bwd", bwd), ("nograd", plain))}
    return {**med, "B": max(scene.n_envs, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--envs", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--cases", nargs="+", default=["rigid", "mpm", "sph", "pbd", "fem"])
    p.add_argument("--peer", default=None, help="Genesis' python (peer venv)")
    a = p.parse_args()
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    print(f"commit {commit}, load {os.getloadavg()}, 1 thread, float32, {a.steps} steps, median of {a.repeat}")
    print("| case | envs | fwd ms/step (grad) | bwd ms/step | bwd / fwd | fwd ms/step (no grad) | env-steps/s fwd+bwd |")
    print("|---|---|---|---|---|---|---|")
    cases = []
    for c in a.cases:
        if c == "rigid":
            cases += [(f"rigid Franka", (lambda B=B: franka(B))) for B in a.envs]
        else:
            cases.append((c.upper(), globals()[c]))
    for name, make in cases:
        r = timed(make, a.steps, a.repeat)
        print(f"| {name} | {r['B']} | {r['fwd'] * 1e3:.2f} | {r['bwd'] * 1e3:.2f} | {r['bwd'] / r['fwd']:.2f} | "
              f"{r['nograd'] * 1e3:.2f} | {r['B'] / (r['fwd'] + r['bwd']):.0f} |", flush=True)
        if name == "MPM" and a.peer:
            g = run_peer(a.peer, PEER, [a.steps, a.repeat], 1, QD_NUM_THREADS="1")
            if isinstance(g, dict):
                print(f"| MPM, Genesis 1.4.5 CPU ({g['n']} particles) | 1 | {g['fwd'] * 1e3 / a.steps:.2f} | "
                      f"{g['bwd'] * 1e3 / a.steps:.2f} | {g['bwd'] / g['fwd']:.2f} | | |", flush=True)
            else:
                print(f"| MPM, Genesis 1.4.5 CPU | 1 | {g} | | | | |", flush=True)
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Peak memory of a Franka rollout's backward, plain vs checkpointed (`gs.rollout(checkpoint_every=k)`), issue 19.

Run: `flock /tmp/bench.lock python benchmarks/grad_memory.py [--steps 1000] [--envs 64] [--ks 10 32 100]`.

Each configuration runs in its own subprocess (so one run's allocator state cannot hide another's): build the Franka
scene (`franka.xml`, float32, dt 0.01, 1 thread), one warm-up rollout of 2 steps with backward, then reset the
kernel's resident-set high-water mark (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0) and read `VmRSS`, run
`gs.rollout` of `--steps` torque-controlled steps (torques requiring grad, an end-effector loss every step) and its
backward, and read `VmHWM`. The peak is `VmHWM - VmRSS` at the start: every byte torch's CPU allocator (malloc)
touched for the graph, activations and gradients (tracemalloc does not see torch's allocations).

The formula the peaks are compared with: plain `T * a`, checkpointed `ceil(T / k) * s + k * a`, where `a` is the
graph memory of one step (the slope of the plain peaks at `--plain` horizons, where the plain rollout fits in memory)
and `s` the bytes of one saved segment input (the solver states + one step's controls, summed from the tensors).
Bitwise: the plain rollout and `checkpoint_every=--ks[1]` at the longest `--plain` horizon must give the same
torque gradient (sha256 of its bytes printed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time


def child(steps: int, envs: int, k: int | None) -> dict:
    import torch
    import torch.utils._pytree as pytree

    import genesis_torch as gs

    torch.set_num_threads(1)
    gs.init(backend=gs.cpu, precision="32", logging_level="warning")
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, requires_grad=True), show_viewer=False)
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=envs)
    goal = torch.tensor([0.4, 0.2, 0.5])
    init = scene.get_state()

    def go(T: int):
        scene.reset(state=init)
        tau = torch.zeros(T, envs, 7).requires_grad_(True)
        t0 = time.perf_counter()
        loss = gs.rollout(scene, tau, lambda t, u: robot.control_dofs_force(u, dofs_idx_local=range(7)),
                          lambda t: (robot.get_links_pos()[:, -1] - goal).square().sum(), checkpoint_every=k)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        return tau.grad, t1 - t0, t2 - t1

    go(2)
    state_bytes = sum(x.nbytes for x in pytree.tree_leaves(scene.get_state().solvers)) + envs * 7 * 4

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return int(next(ln for ln in f if ln.startswith(key)).split()[1]) * 1024

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    rss0 = status("VmRSS:")
    grad, fwd, bwd = go(steps)
    peak = status("VmHWM:") - rss0
    return {"steps": steps, "envs": envs, "k": k, "peak": peak, "state_bytes": state_bytes, "fwd_s": fwd,
            "bwd_s": bwd, "grad_norm": float(grad.norm()),
            "grad_sha": hashlib.sha256(grad.detach().numpy().tobytes()).hexdigest()[:12]}


_DONE: dict = {}


def spawn(steps: int, envs: int, k: int | None) -> dict:
    if (steps, envs, k) in _DONE:
        return _DONE[steps, envs, k]
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps([steps, envs, k])], capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    _DONE[steps, envs, k] = json.loads(out.stdout.strip().splitlines()[-1])
    return _DONE[steps, envs, k]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--ks", type=int, nargs="*", default=[10, 32, 100])
    p.add_argument("--plain", type=int, nargs=2, default=[125, 250], help="two horizons of the plain rollout")
    p.add_argument("--child")
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(*json.loads(a.child))))
        return
    T, B = a.steps, a.envs
    plains = [spawn(t, B, None) for t in a.plain]
    per_step = (plains[1]["peak"] - plains[0]["peak"]) / (a.plain[1] - a.plain[0])
    s = plains[0]["state_bytes"]
    mb = 2.0 ** -20
    print(f"Franka {B} envs, float32, 1 thread: state + controls s = {s * mb:.3f} MiB, graph per step a = "
          f"{per_step * mb:.2f} MiB")
    print("| config | steps | peak MiB | formula MiB | peak / formula | fwd s | bwd s | |grad| | grad sha256 |")
    print("|---|---|---|---|---|---|---|---|---|")

    def row(name, r, f):
        print(f"| {name} | {r['steps']} | {r['peak'] * mb:.0f} | {f * mb:.0f} | {r['peak'] / f:.2f} | "
              f"{r['fwd_s']:.1f} | {r['bwd_s']:.1f} | {r['grad_norm']:.6g} | {r['grad_sha']} |", flush=True)

    for r in plains:
        row("plain", r, r["steps"] * per_step)
    if a.ks:
        kb = a.ks[min(1, len(a.ks) - 1)]
        r = spawn(a.plain[1], B, kb)
        row(f"k={kb}", r, math.ceil(a.plain[1] / kb) * s + kb * per_step)
        print(f"bitwise at {a.plain[1]} steps (plain vs k={kb}): {r['grad_sha'] == plains[1]['grad_sha']}")
    for k in a.ks:
        r = spawn(T, B, k)
        row(f"k={k}", r, math.ceil(T / k) * s + k * per_step)
    print(f"plain at {T} steps by the formula: {T * per_step * mb:.0f} MiB")


if __name__ == "__main__":
    main()

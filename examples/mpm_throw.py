"""Throw an MPM elastic block at a target by gradient descent on its initial velocity (issue 19, docs/gradients.md).

An elastic block (MPM, 8 x 8 x 8 = 512 particles at the default --n 8; E 5 kPa, nu 0.3, 400 kg/m^3) starts at rest
at (0.3, 0.5, 0.4) in a 1 m domain (grid 16^3, dt 2 ms). The decision variable is its initial velocity (3,) m/s,
starting from zero (it just falls). The loss is the squared distance (m^2) of the block's centroid to the target
(0.65, 0.55, 0.4) after `--steps` steps (0.2 s at 100): the flight under gravity, the elastic wobble of the block and
the grid transfer are all differentiated (`gs.rollout`). Gradient descent updates the velocity with the step
`--lr / (2 tau^2)`, tau = steps x dt the flight time: the inverse curvature of the loss of a ballistic flight
(d centroid / d v0 = tau I), so `--lr` is the fraction of the remaining miss removed per iteration.

Run: `python examples/mpm_throw.py [--steps 100] [--iters 20] [--lr 0.5]`; prints the loss curve, the velocity found
and the final miss distance.
"""

from __future__ import annotations

import argparse
import time

import torch

import genesis_torch as gs

TARGET = (0.65, 0.55, 0.4)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="flight length (2 ms steps)")
    p.add_argument("--iters", type=int, default=20, help="optimisation iterations")
    p.add_argument("--lr", type=float, default=0.5, help="fraction of the miss corrected per iteration (0, 1]")
    p.add_argument("--n", type=int, default=8, help="particles per block side")
    a = p.parse_args(argv)
    if a.steps < 1 or a.iters < 1 or a.n < 2 or not 0 < a.lr <= 1:
        p.error("--steps and --iters must be >= 1, --n >= 2 and --lr in (0, 1]")
    torch.set_num_threads(1)
    gs.init(backend=gs.cpu, precision="64", logging_level="warning")
    ps = 1 / 32
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, requires_grad=True), show_viewer=False,
                     mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1), grid_density=16,
                                                       particle_size=ps))
    block = scene.add_entity(gs.morphs.Box(pos=(0.3, 0.5, 0.4), size=(a.n * ps,) * 3),
                             material=gs.materials.MPM.Elastic(E=5e3, nu=0.3, rho=400.0))
    scene.build()
    init = scene.get_state()
    target = torch.tensor(TARGET, dtype=torch.float64)
    v0 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    tau = a.steps * 2e-3
    opt = torch.optim.SGD([v0], lr=a.lr / (2 * tau ** 2))
    last = a.steps - 1

    def loss_fn(t):
        if t < last:
            return torch.zeros((), dtype=torch.float64)
        return (block.get_particles_pos().mean(0) - target).square().sum()

    curve = []
    t0 = time.perf_counter()
    for it in range(a.iters):
        scene.reset(state=init)
        opt.zero_grad()
        block.set_velocity(v0)
        loss = gs.rollout(scene, steps=a.steps, loss_fn=loss_fn)
        loss.backward()
        opt.step()
        curve.append(loss.item())
        print(f"iter {it:3d}  loss {curve[-1]:.6e}  v0 {[round(x, 4) for x in v0.tolist()]}", flush=True)
    with torch.no_grad():
        scene.reset(state=init)
        block.set_velocity(v0)
        final = gs.rollout(scene, steps=a.steps, loss_fn=loss_fn).item()
    print(f"loss {curve[0]:.4e} -> {final:.4e} ({curve[0] / final:.0f}x) in {a.iters} iterations, "
          f"{time.perf_counter() - t0:.0f} s; v0 = {[round(x, 3) for x in v0.tolist()]} m/s, miss "
          f"{final ** 0.5 * 1000:.1f} mm")
    return {"curve": curve, "final": final, "v0": v0.detach()}


if __name__ == "__main__":
    main()

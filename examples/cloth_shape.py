"""Shape a PBD cloth by optimising the trajectories of its two pinned corners (issue 19, docs/gradients.md).

A square cloth (`--n` x `--n` cells, 0.5 m, stretch and bending constraints, XPBD) starts flat 1 m above the floor
with two adjacent corners fixed (`fix_particles`). Each step, the pinned corners are placed by `set_particles_pos` at
their rest positions plus a displacement (2, 3) interpolated linearly between `--knots` knots; the free particles
follow through the constraint solve. The target is the shape (every particle's position) that a reference
trajectory (the two corners brought 0.3 m together while lifted 0.15 m and moved 0.1 m sideways) produces at the
last step; the optimisation starts from the corners at rest and recovers a trajectory from the loss alone: the mean
squared particle distance (m^2) to the target shape at the last step. Gradients through the XPBD projections
(`gs.rollout`), Adam on the knots.

Run: `python examples/cloth_shape.py [--steps 100] [--iters 60] [--lr 0.02] [--n 6]`; prints the loss curve.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import genesis_torch as gs
from genesis_torch.geometry.grid_mesh import square_grid


def grid_obj(n: int, size: float) -> str:
    """Path of an .obj square of `size` m in the xy plane centred at 0 ((n+1)^2 vertices, 2 n^2 triangles)."""
    path = os.path.join(tempfile.gettempdir(), f"gs_example_cloth_{n}_{size}.obj")
    verts, faces = square_grid(n, (-size / 2, -size / 2), (size / 2, size / 2))
    with open(path, "w") as f:
        f.writelines(f"v {x:.6f} {y:.6f} 0\n" for x, y, _ in verts)
        f.writelines(f"f {p + 1} {q + 1} {r + 1}\n" for p, q, r in faces)
    return path


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="rollout length (4 ms steps)")
    p.add_argument("--iters", type=int, default=60, help="optimisation iterations")
    p.add_argument("--lr", type=float, default=0.02, help="Adam step (m), decayed by 0.97 per iteration")
    p.add_argument("--n", type=int, default=6, help="cloth cells per side")
    p.add_argument("--knots", type=int, default=4, help="displacement knots per corner")
    a = p.parse_args(argv)
    if a.steps < 1 or a.iters < 1 or a.n < 1 or a.knots < 2:
        p.error("--steps, --iters and --n must be >= 1 and --knots >= 2")
    torch.set_num_threads(1)
    gs.init(backend=gs.cpu, precision="64", logging_level="warning")
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, requires_grad=True), show_viewer=False,
                     pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0.0), upper_bound=(1, 1, 2)))
    cloth = scene.add_entity(gs.morphs.Mesh(file=grid_obj(a.n, 0.5), pos=(0, 0, 1.0)),
                             material=gs.materials.PBD.Cloth(stretch_compliance=1e-6, bending_compliance=1e-3))
    scene.build()
    rest = cloth.get_particles_pos().detach()
    pins = [int(cloth.find_closest_particle((0.25, y, 1.0))) for y in (-0.25, 0.25)]
    cloth.fix_particles(pins)
    init = scene.get_state()
    T, K = a.steps, a.knots
    s = torch.linspace(0, K - 1, T, dtype=torch.float64)
    interp = torch.clamp(1 - (s[:, None] - torch.arange(K, dtype=torch.float64)).abs(), min=0)  # (T, K)

    def rollout(knots, loss_fn=None):
        scene.reset(state=init)
        disp = torch.einsum("tk,kpc->tpc", interp, knots)  # (T, 2, 3) corner displacements
        return gs.rollout(scene, disp, lambda t, d: cloth.set_particles_pos(rest[pins] + d, particles_idx_local=pins),
                          loss_fn)

    ramp = torch.linspace(0, 1, K, dtype=torch.float64)[:, None, None]
    ref = ramp * torch.tensor([[0.1, 0.15, 0.15], [0.1, -0.15, 0.15]], dtype=torch.float64)
    with torch.no_grad():
        rollout(ref)
        target = cloth.get_particles_pos().detach()

    def loss_fn(t):
        if t < T - 1:
            return torch.zeros((), dtype=torch.float64)
        return (cloth.get_particles_pos() - target).square().sum(-1).mean()

    knots = torch.zeros(K, 2, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([knots], lr=a.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.97)
    curve = []
    t0 = time.perf_counter()
    for it in range(a.iters):
        opt.zero_grad()
        loss = rollout(knots, loss_fn)
        loss.backward()
        opt.step()
        sched.step()
        curve.append(loss.item())
        print(f"iter {it:3d}  loss {curve[-1]:.6e}", flush=True)
    with torch.no_grad():
        final = rollout(knots, loss_fn).item()
    print(f"loss {curve[0]:.4e} -> {final:.4e} ({curve[0] / final:.0f}x) in {a.iters} iterations, "
          f"{time.perf_counter() - t0:.0f} s; rms particle distance to the target shape {final ** 0.5 * 1000:.1f} mm "
          f"(initially {curve[0] ** 0.5 * 1000:.0f} mm)")
    return {"curve": curve, "final": final}


if __name__ == "__main__":
    main()

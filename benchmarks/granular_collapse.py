"""Quasi-2-D granular column collapse with `MPM.Sand` against the experiments' fits (issue 20, part 2).

A column L0 wide and H0 = a L0 tall rests against the slip wall x = 0 of a channel; the floor is a rigid plane with
Coulomb friction 1 (rough: the grains roll on grains), the side walls y = 0, depth are slip walls (MPMOptions
boundary "slip"). At t = 0 the column is released (the gate is the absent right wall) and spreads; the run stops
when the deposit has come to rest. Measured: runout (L_inf - L0) / L0, L_inf the front of the continuous deposit
(x of the last bin along x, from the wall, that holds at least half a particle layer), and final height H_inf / L0
(the highest particle), both from particle extents (centre + particle_size / 2), and the area under the deposit's
surface over the column's L0 H0 (1 when the grains keep their packing; less: the deposit compacted); x95 the 95 %
quantile of the particles' x as (x95 - L0) / L0, a spreading measure with no thickness threshold (the runout's
threshold, half a particle layer, is dx / 4 thick and thins with the grid: docs/mpm.md, "Granular collapse").

Fits (quasi-2-D channels):
    [L05] Lube, Huppert, Sparks & Freundt 2005, "Collapses of two-dimensional granular columns", Phys. Rev. E 72,
          041301: (L_inf - L0)/L0 = 1.2 a for a < 1.8 and 1.9 a^(2/3) for a > 2.8 (a transition between: at a = 2
          the two branches give 2.4 and 3.0; `fit_runout` switches at 2.3); H_inf/L0 = a for a < 1.15 (the top of
          the column is left undisturbed), a^(2/5) beyond. (The paper itself was not reachable from here; the
          coefficients and ranges are as quoted by Lagree, Staron & Popinet 2011, J. Fluid Mech. 686, 378, Eqs.
          3.1-3.2, in two independent secondary sources, and agree with [BK05]'s exponents.)
    [BK05] Balmforth & Kerswell 2005, "Granular collapse in two dimensions", J. Fluid Mech. 538, 399-428 (abstract):
          wide channels (l_inf - L)/L ~ a^(0.9 +- 0.1) and H/h_inf ~ a^0.6 (so h_inf/L ~ a^0.4, [L05]'s exponent);
          narrow slots (l_inf - L)/L ~ a^(0.65 +- 0.05), H/h_inf ~ a^0.5; "the numerical constant of proportionality
          in these scaling relations shows clear material dependence" (four materials).

Usage: python benchmarks/granular_collapse.py [--aspects 0.5 1 2 4] [--cells 8 16] [--flip 0] [--phi 30]
[--genesis-cone] [--E 3e5] [--nu 0.3] [--friction 1] [--wall-friction MU] [--ppc 2] [--cfl 0.3] [--psi 0 --ec 0]
[--side-friction MU] [--depth-cells 2] [--verbose] (--psi / --ec: dense sand, `MPM.Sand(dilatancy_angle=, critical_volume_strain=)`; docs/mpm.md)
Each run is one env, float32, CPU; a run prints one row (the resolution is the number of cells across the
column's smaller side).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import genesis_torch as gs
from genesis_torch import _runtime
from genesis_torch.errors import InvalidInputError

G = 9.81


def fit_runout(a: float) -> float:
    """[L05] (L_inf - L0) / L0: 1.2 a below the transition (1.8 < a < 2.8), 1.9 a^(2/3) above; switched at 2.3."""
    return 1.2 * a if a < 2.3 else 1.9 * a ** (2.0 / 3.0)


def fit_height(a: float) -> float:
    """[L05] H_inf / L0."""
    return a if a < 1.15 else a ** 0.4


def collapse(a: float, cells: int = 8, *, side: float = 0.2, phi: float = 30.0, plane_strain: bool = True,
             E: float = 3e5, nu: float = 0.3,
             rho: float = 1500.0, floor_friction: float = 1.0, flip_ratio: float = 0.0, depth_cells: int = 2,
             cfl: float = 0.3, t_max: float | None = None, precision: str = "32", verbose: bool = False,
             wall_friction: float | None = None, ppc: int = 2, psi: float = 0.0, e_c: float = 0.0,
             side_friction: float | None = None) -> dict:
    """Run one collapse; the smaller side of the column is `side` m wide and `cells` cells across; `phi` the
    Mohr-Coulomb angle (degrees), matched in plane strain (`MPM.Sand.plane_strain`) or, `plane_strain=False`, given
    to `MPM.Sand(friction_angle=phi)` as Genesis does (Klár et al.'s triaxial-compression cone); `wall_friction`
    (None: the slip wall) makes the back wall x = 0 a fixed rigid box with that Coulomb coefficient; `ppc` particles
    per cell along each axis (an int >= 1); `psi` > 0 the peak dilatancy angle (degrees) and `e_c` the critical-state
    plastic volume strain of a dense sand (`MPM.Sand(dilatancy_angle=, critical_volume_strain=)`; `phi` is then the
    critical-state angle); `depth_cells` the channel's depth (y) in cells (an int >= 1); `side_friction` (None: the
    slip walls of `boundary="slip"`) makes the side walls y = 0 and y = depth fixed rigid boxes with that Coulomb
    coefficient > 0 (`Rigid` needs a positive one; the domain then extends 3 more cells beyond each, so only the
    boxes act there). Returns a dict with
    runout, height (both / L0), fits, the end time (s), substeps, particles and wall time (s)."""
    if isinstance(ppc, bool) or not isinstance(ppc, int) or ppc < 1:
        raise InvalidInputError(f"collapse(ppc={ppc!r}): expected an int >= 1 (particles per cell along each axis)")
    if isinstance(depth_cells, bool) or not isinstance(depth_cells, int) or depth_cells < 1:
        raise InvalidInputError(f"collapse(depth_cells={depth_cells!r}): expected an int >= 1 (the channel's depth "
                                "in cells)")
    if side_friction is not None and (isinstance(side_friction, bool) or not isinstance(side_friction, (int, float))
                                      or not side_friction > 0):
        raise InvalidInputError(f"collapse(side_friction={side_friction!r}): expected None (slip walls) or a "
                                "Coulomb coefficient > 0")
    L0 = side if a >= 1 else side / a
    H0 = a * L0
    dx = side / cells
    ps = dx / ppc  # `ppc` particles per cell along each axis
    depth = depth_cells * dx
    length = L0 * (1.0 + 1.4 * fit_runout(a)) + 2 * dx
    Sand = gs.materials.MPM.Sand
    kw = dict(E=E, nu=nu, rho=rho, dilatancy_angle=psi, critical_volume_strain=e_c)
    mat = Sand.plane_strain(phi, **kw) if plane_strain else Sand(friction_angle=phi, **kw)
    dt = cfl * dx / mat.wave_speed
    ey = 3 * dx if side_friction is not None else 0.0  # room beyond the rigid side walls (the domain's walls there)
    k = 10  # MPM substeps per scene step (the rigid floor steps once per scene step)
    if not _runtime.is_initialized():
        gs.init(backend=gs.cpu, precision=precision, logging_level="warning")
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=k * dt, gravity=(0.0, 0.0, -G)),
                     mpm_options=gs.options.MPMOptions(dt=dt, lower_bound=(-3 * dx, -3 * dx - ey, -4 * dx),
                                                       upper_bound=(length + 3 * dx, depth + 3 * dx + ey,
                                                                    1.2 * H0 + 4 * dx),
                                                       grid_density=1.0 / dx, particle_size=ps, boundary="slip",
                                                       flip_ratio=flip_ratio),
                     show_viewer=False)
    scene.add_entity(gs.morphs.Plane(), material=gs.materials.Rigid(friction=floor_friction))
    if wall_friction is not None:  # the back wall x = 0 as a fixed rigid box with Coulomb friction (else: slip wall)
        scene.add_entity(gs.morphs.Box(lower=(-3 * dx, -3 * dx - ey, 0.0),
                                       upper=(0.0, depth + 3 * dx + ey, 1.2 * H0 + 3 * dx),
                                       fixed=True), material=gs.materials.Rigid(friction=wall_friction))
    if side_friction is not None:  # the side walls y = 0, depth as fixed rigid boxes 3 cells thick (Coulomb)
        for y0, y1 in ((-3 * dx, 0.0), (depth, depth + 3 * dx)):
            scene.add_entity(gs.morphs.Box(lower=(-3 * dx, y0, 0.0), upper=(length + 3 * dx, y1, 1.2 * H0 + 3 * dx),
                                           fixed=True), material=gs.materials.Rigid(friction=side_friction))
    sand = scene.add_entity(gs.morphs.Box(lower=(0.0, 0.0, 0.0), upper=(L0, depth, H0)), material=mat)
    scene.build()
    x = sand.get_particles_pos()
    x0_extent = (x[:, 0].max().item() + ps / 2, x[:, 2].max().item() + ps / 2)
    tau = math.sqrt(H0 / G)
    t_max = t_max if t_max is not None else 2.0 + 6.0 * tau
    per_layer = depth / ps  # particles of one layer in a bin of width ps along x
    t, steps, t0, front_prev, rest_since = 0.0, 0, time.perf_counter(), None, None
    check = max(1, int(round(0.05 / (k * dt))))
    while t < t_max:
        for _ in range(check):
            scene.step()
        steps += check * k
        t += check * k * dt
        x = sand.get_particles_pos()
        vmax = sand.get_particles_vel().norm(dim=-1).max().item()
        front = _front(x[:, 0], ps, per_layer)
        if verbose:
            zs = x[:, 2]
            prof = [round(zs[(x[:, 0] >= i * L0 / 4) & (x[:, 0] < (i + 1) * L0 / 4)].max().item() / L0, 3)
                    if ((x[:, 0] >= i * L0 / 4) & (x[:, 0] < (i + 1) * L0 / 4)).any() else 0 for i in range(12)]
            print(f"  t={t:.3f} front={front:.4f} top={zs.max().item() + ps / 2:.4f} bottom={zs.min().item():.4f} "
                  f"vmax={vmax:.3f} profile(z/L0 per L0/4)={prof}")
        # at rest: every particle slower than 2 % of sqrt(g L0) and the front still for 0.2 s (within dx / 4)
        if vmax < 0.02 * math.sqrt(G * L0) and front_prev is not None and abs(front - front_prev) < dx / 4 \
                and t > 3 * tau:
            rest_since = rest_since if rest_since is not None else t
            if t - rest_since >= 0.2:
                break
        else:
            rest_since, front_prev = None, front
    wall = time.perf_counter() - t0
    x = sand.get_particles_pos()
    L_inf = _front(x[:, 0], ps, per_layer)
    H_inf = x[:, 2].max().item() + ps / 2
    x95 = x[:, 0].sort().values[int(0.95 * (x.shape[0] - 1))].item()  # 5 % of the grains lie beyond
    return dict(a=a, cells=cells, L0=x0_extent[0], H0=x0_extent[1], runout=(L_inf - x0_extent[0]) / x0_extent[0],
                x95=(x95 - x0_extent[0]) / x0_extent[0],
                area=_area(x, ps) / (x0_extent[0] * x0_extent[1]),
                height=H_inf / x0_extent[0], fit_runout=fit_runout(a), fit_height=fit_height(a), t_end=t,
                tau=tau, rest=rest_since is not None, steps=steps, n=x.shape[0], wall=wall)


def _area(x: torch.Tensor, ps: float) -> float:
    """Area (m^2) under the deposit's surface: the highest particle (+ ps / 2) of each x bin of width ps."""
    b = (x[:, 0] / ps).floor().clamp_min(0).long()
    top = torch.zeros(int(b.max()) + 1, dtype=x.dtype).scatter_reduce(0, b, x[:, 2] + ps / 2, "amax",
                                                                       include_self=True)
    return float(top.clamp_min(0).sum()) * ps


def _front(px: torch.Tensor, ps: float, per_layer: float) -> float:
    """Front of the continuous deposit: right edge of the last bin (width ps, from x = 0) of the run of bins holding
    at least half a particle layer each."""
    bins = torch.bincount((px / ps).floor().clamp_min(0).long())
    full = (bins >= 0.5 * per_layer).tolist() + [False]
    return float(full.index(False)) * ps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aspects", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--cells", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--phi", type=float, default=30.0)
    ap.add_argument("--genesis-cone", action="store_true", help="MPM.Sand(friction_angle=phi) (Genesis' cone) "
                    "instead of MPM.Sand.plane_strain(phi)")
    ap.add_argument("--flip", type=float, default=0.0)
    ap.add_argument("--E", type=float, default=3e5)
    ap.add_argument("--nu", type=float, default=0.3)
    ap.add_argument("--friction", type=float, default=1.0)
    ap.add_argument("--wall-friction", type=float, default=None, help="back wall as a rigid box of this friction")
    ap.add_argument("--side-friction", type=float, default=None, help="side walls y = 0, depth as rigid boxes of "
                    "this friction (default: slip walls)")
    ap.add_argument("--depth-cells", type=int, default=2, help="channel depth (y) in cells")
    ap.add_argument("--ppc", type=int, default=2, help="particles per cell along each axis")
    ap.add_argument("--cfl", type=float, default=0.3, help="dt = cfl dx / c")
    ap.add_argument("--psi", type=float, default=0.0, help="peak dilatancy angle (degrees; 0: none)")
    ap.add_argument("--ec", type=float, default=0.0, help="critical-state plastic volume strain (with --psi)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"| a | cells | particles | runout ours | x95 | fit [L05] | H_inf/L0 ours | fit [L05] | area / L0 H0 | "
          f"t_end/tau | at rest | substeps | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cells in args.cells:
        for a in args.aspects:
            r = collapse(a, cells, phi=args.phi, plane_strain=not args.genesis_cone, flip_ratio=args.flip, E=args.E,
                         nu=args.nu, floor_friction=args.friction, wall_friction=args.wall_friction, ppc=args.ppc,
                         cfl=args.cfl, verbose=args.verbose, psi=args.psi, e_c=args.ec,
                         side_friction=args.side_friction, depth_cells=args.depth_cells)
            print(f"| {a:g} | {cells} | {r['n']} | {r['runout']:.3f} | {r['x95']:.3f} | {r['fit_runout']:.3f} | "
                  f"{r['height']:.3f} | "
                  f"{r['fit_height']:.3f} | {r['area']:.3f} | {r['t_end'] / r['tau']:.1f} | {r['rest']} | "
                  f"{r['steps']} | {r['wall']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""An independent MLS-MPM reference written in Taichi (run on CPU in float64): a 3-D version of Taichi's `mpm3d`
example (grid walls of 3 cells with the "separate" rule, gravity on one axis) with the weakly compressible liquid of
genesis-torch (F <- (I + dt C) F, then F = J^(1/3) I; Kirchhoff stress lam J (J - 1) I) and a 3-D particle volume.

Written for the tests from the published algorithm (Hu et al. 2018; Taichi's mpm88/mpm3d examples), not from
genesis-torch's code. `run(x0, steps, ...)` returns the particle positions, velocities and F after `steps` substeps.
"""

from __future__ import annotations

import numpy as np


def run(x0: np.ndarray, steps: int, *, n_grid: int, dt: float, p_vol: float, rho: float, lam: float,
        gravity: float, axis: int) -> dict[str, np.ndarray]:
    import taichi as ti

    ti.init(arch=ti.cpu, default_fp=ti.f64, cpu_max_num_threads=1, random_seed=0, log_level=ti.ERROR)
    n = len(x0)
    dx, inv_dx = 1.0 / n_grid, float(n_grid)
    bound = 3
    p_mass = p_vol * rho
    x = ti.Vector.field(3, ti.f64, n)
    v = ti.Vector.field(3, ti.f64, n)
    C = ti.Matrix.field(3, 3, ti.f64, n)
    F = ti.Matrix.field(3, 3, ti.f64, n)
    grid_v = ti.Vector.field(3, ti.f64, (n_grid + 1,) * 3)
    grid_m = ti.field(ti.f64, (n_grid + 1,) * 3)
    g = ti.Vector([gravity if d == axis else 0.0 for d in range(3)])

    @ti.kernel
    def substep():
        for I in ti.grouped(grid_m):
            grid_v[I] = ti.zero(grid_v[I])
            grid_m[I] = 0.0
        for p in x:
            Xp = x[p] * inv_dx
            base = ti.cast(Xp - 0.5, ti.i32)
            fx = Xp - base
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2]
            J = F[p].determinant()
            stress = -dt * p_vol * 4 * inv_dx * inv_dx * lam * J * (J - 1)
            affine = ti.Matrix.identity(ti.f64, 3) * stress + p_mass * C[p]
            for off in ti.static(ti.grouped(ti.ndrange(3, 3, 3))):
                dpos = (off - fx) * dx
                weight = w[off[0]][0] * w[off[1]][1] * w[off[2]][2]
                grid_v[base + off] += weight * (p_mass * v[p] + affine @ dpos)
                grid_m[base + off] += weight * p_mass
        for I in ti.grouped(grid_m):
            if grid_m[I] > 0:
                grid_v[I] /= grid_m[I]
            grid_v[I] += dt * g
            cond = (I < bound) & (grid_v[I] < 0) | (I > n_grid - bound) & (grid_v[I] > 0)
            grid_v[I] = ti.select(cond, 0, grid_v[I])
        for p in x:
            Xp = x[p] * inv_dx
            base = ti.cast(Xp - 0.5, ti.i32)
            fx = Xp - base
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2]
            new_v = ti.zero(v[p])
            new_C = ti.zero(C[p])
            for off in ti.static(ti.grouped(ti.ndrange(3, 3, 3))):
                dpos = (off - fx) * dx
                weight = w[off[0]][0] * w[off[1]][1] * w[off[2]][2]
                gv = grid_v[base + off]
                new_v += weight * gv
                new_C += 4 * weight * gv.outer_product(dpos) * inv_dx * inv_dx
            v[p] = new_v
            x[p] += dt * new_v
            C[p] = new_C
            Fn = (ti.Matrix.identity(ti.f64, 3) + dt * new_C) @ F[p]
            J = Fn.determinant()
            F[p] = ti.Matrix.identity(ti.f64, 3) * (ti.abs(J) ** (1.0 / 3.0)) * (1.0 if J >= 0 else -1.0)

    x.from_numpy(x0.astype(np.float64))
    v.from_numpy(np.zeros_like(x0, dtype=np.float64))
    C.from_numpy(np.zeros((n, 3, 3)))
    F.from_numpy(np.tile(np.eye(3), (n, 1, 1)))
    for _ in range(steps):
        substep()
    out = {"pos": x.to_numpy(), "vel": v.to_numpy(), "F": F.to_numpy()}
    ti.reset()
    return out

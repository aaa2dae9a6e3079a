"""Patch test (VALIDATION.md, FEM): a block of linear tetrahedra under a homogeneous uniaxial-stress deformation
F = Q diag(a, t, t), with t the analytic lateral stretch of each model, is in equilibrium at every vertex off the two
loaded faces, and the force on the loaded face equals the analytic first Piola stress times the rest area, to 1e-9
relative (float64). The analytic relations (written out here, independent of the solver):

* linear, corotated: t = 1 - nu (a - 1), P11 = E (a - 1) (corotated under any rotation Q; linear with Q = I);
* stable neo-Hookean (Smith et al. 2018 energy with Genesis' mu, lam): with I_C = a^2 + 2 t^2, J = a t^2,
  alpha = 1 + 3 mu / (4 lam), t solves mu (1 - 1/(I_C + 1)) + lam (J - alpha) a = 0 and
  P11 = mu (1 - 1/(I_C + 1)) a + lam (J - alpha) t^2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import genesis_torch as gs

from ..conftest import cpu_runtime
from .conftest import box_scene
from .test_constitutive import random_rotation

E, NU = 2.0e4, 0.3
MU, LAM = E / (2 * (1 + NU)), E * NU / ((1 + NU) * (1 - 2 * NU))
SIZE = (0.4, 0.2, 0.3)


def analytic(kind, a):
    """(lateral stretch t, P11 Pa) of uniaxial stress at axial stretch a."""
    if kind != "stable_neohookean":
        return 1 - NU * (a - 1), E * (a - 1)
    alpha = 1 + 0.75 * MU / LAM

    def p22(t):
        return MU * (1 - 1 / (a * a + 2 * t * t + 1)) + LAM * (a * t * t - alpha) * a

    t = brentq(p22, 0.3, 2.0, xtol=1e-15, rtol=1e-15)
    ic, J = a * a + 2 * t * t, a * t * t
    return t, MU * (1 - 1 / (ic + 1)) * a + LAM * (J - alpha) * t * t


@pytest.mark.parametrize("kind,a,rotated", [("linear", 1.01, False), ("linear_corotated", 1.3, True),
                                            ("linear_corotated", 0.8, True), ("stable_neohookean", 1.5, True),
                                            ("stable_neohookean", 0.7, False)])
def test_uniaxial_stress_patch(kind, a, rotated):
    with cpu_runtime("64"):
        scene, ent = box_scene(size=SIZE, pos=(0.0, 0.0, 1.0), cells=(4, 3, 3), gravity=(0, 0, 0),
                               material=gs.materials.FEM.Elastic(E=E, nu=NU, rho=1000.0, model=kind))
        X = ent.init_positions
        t, P11 = analytic(kind, a)
        Q = random_rotation(1, seed=7)[0] if rotated else torch.eye(3, dtype=torch.float64)
        F = Q @ torch.diag(torch.tensor([a, t, t], dtype=torch.float64))
        c = X.mean(0)
        x = (X - c) @ F.T + c + torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64)
        S = scene.get_state()["FEMSolver"]
        f = scene.fem_solver.elastic_forces(x[None], S.active)[0]
        scale = abs(P11) * SIZE[1] * SIZE[2]  # the load on a face
        lo, hi = X[:, 0] < X[:, 0].min() + 1e-9, X[:, 0] > X[:, 0].max() - 1e-9
        off = ~(lo | hi)
        assert off.sum() > 10
        assert float(f[off].norm(dim=-1).max()) <= 1e-9 * scale, "an unloaded vertex is not in equilibrium"
        want = -P11 * SIZE[1] * SIZE[2] * Q[:, 0]  # elastic force on the +x face: minus the traction P N A
        torch.testing.assert_close(f[hi].sum(0), want, rtol=0, atol=1e-9 * scale)
        torch.testing.assert_close(f[lo].sum(0), -want, rtol=0, atol=1e-9 * scale)


def test_lateral_stretch_is_the_models_own():
    """The check has teeth: the linear model's lateral stretch leaves the stable neo-Hookean block out of balance."""
    with cpu_runtime("64"):
        scene, ent = box_scene(size=SIZE, pos=(0.0, 0.0, 1.0), cells=(4, 3, 3), gravity=(0, 0, 0),
                               material=gs.materials.FEM.Elastic(E=E, nu=NU, rho=1000.0, model="stable_neohookean"))
        X = ent.init_positions
        a = 1.5
        t = analytic("linear", a)[0]
        x = X * torch.tensor([a, t, t], dtype=torch.float64)
        f = scene.fem_solver.elastic_forces(x[None], scene.get_state()["FEMSolver"].active)[0]
        off = (X[:, 0] > X[:, 0].min() + 1e-9) & (X[:, 0] < X[:, 0].max() - 1e-9)
        assert float(f[off].norm(dim=-1).max()) > 1e-3 * E * SIZE[1] * SIZE[2] * (a - 1)
        assert np.isfinite(t)

"""Quasi-2-D granular column collapse (MPM sand on a rough floor between slip walls) against the experiments' fits
(slow; the scene, the measurements and the fits are in benchmarks/granular_collapse.py, docs/mpm.md "Granular
collapse").

Fits: Lube, Huppert, Sparks & Freundt 2005 (Phys. Rev. E 72, 041301): (L_inf - L0) / L0 = 1.2 a for a < 2.3,
H_inf / L0 = a for a < 1.15 and a^(2/5) beyond.

Tolerance, 20 % of the fit: the experiments scatter about their fits by material: Balmforth & Kerswell 2005 (J. Fluid
Mech. 538, 399) give the runout exponent as 0.9 +- 0.1 (wide channels) with prefactors that "show clear material
dependence", and a^(+-0.1) alone is +-7 % at a = 2 and +-15 % at a = 4 about a fit pinned at a = 1; 20 % is that
band plus the resolution change of our runout between 8 and 16 cells at a = 1 (1.06 -> 1.25, docs/mpm.md). The
exact scatter of Lube's points about 1.2 a (their figure) was not available when this was written.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from ..conftest import cpu_runtime

_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "granular_collapse.py"
_spec = importlib.util.spec_from_file_location("granular_collapse", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

TOL = 0.20
_RUNS: dict = {}


def run(a: float, plane_strain: bool = True) -> dict:
    """One collapse at 8 cells across the column (float32, 1 env), cached for the module."""
    key = (a, plane_strain)
    if key not in _RUNS:
        with cpu_runtime("32"):
            _RUNS[key] = bench.collapse(a, 8, plane_strain=plane_strain)
    return _RUNS[key]


@pytest.mark.slow
@pytest.mark.parametrize("a", [1.0, 2.0])
def test_runout_matches_the_experiments(a):
    """`MPM.Sand.plane_strain(30)`: the deposit comes to rest and its runout is within 20 % of 1.2 a (measured at
    8 cells: 1.06 at a = 1, 2.38 at a = 2)."""
    r = run(a)
    assert r["rest"], f"not at rest after {r['t_end']:.2f} s"
    assert abs(r["runout"] - r["fit_runout"]) <= TOL * r["fit_runout"], r


@pytest.mark.slow
def test_genesis_cone_runs_short():
    """The cause: `MPM.Sand(friction_angle=30)` (Klár et al.'s triaxial-compression cone, Genesis' formula) resists
    plane-strain flow like 43.9 degrees, and the a = 1 runout falls outside the experiments' band (measured 0.81 vs
    1.2); with the plane-strain cone it is inside (test above)."""
    r = run(1.0, plane_strain=False)
    assert r["runout"] < (1 - TOL) * r["fit_runout"], r
    assert r["runout"] < run(1.0)["runout"] - 0.1


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open (issue 20): the deposit compacts (its area is ~0.8 L0 H0) and the "
                   "column's top sinks; H_inf / L0 is ~30 % below the fit at 8 cells (docs/mpm.md)")
@pytest.mark.parametrize("a", [1.0, 2.0])
def test_final_height_matches_the_experiments(a):
    r = run(a)
    assert abs(r["height"] - r["fit_height"]) <= TOL * r["fit_height"], r

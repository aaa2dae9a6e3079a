"""Quasi-2-D granular column collapse (MPM sand on a rough floor between slip walls) against the experiments' fits
(slow; the scene, the measurements and the fits are in benchmarks/granular_collapse.py, docs/mpm.md "Granular
collapse").

Fits: Lube, Huppert, Sparks & Freundt 2005 (Phys. Rev. E 72, 041301): (L_inf - L0) / L0 = 1.2 a for a < 1.8,
H_inf / L0 = a for a < 1.15 (the top of the column stays undisturbed) and a^(2/5) beyond.

Runout tolerance, 20 % of the fit: the experiments scatter about their fits by material: Balmforth & Kerswell 2005
(J. Fluid Mech. 538, 399, abstract) give the wide-channel runout exponent as 0.9 +- 0.1 with constants of
proportionality that "show clear material dependence", and a^(+-0.1) alone is +-7 % at a = 2 and +-15 % at a = 4
about a fit pinned at a = 1; 20 % is that band plus the change of our runout with resolution at a = 1 (1.00, 1.13,
1.28 at 8, 12, 16 cells, docs/mpm.md). The scatter of Lube's points about 1.2 a (their figure) was not available.

Height: below a = 1.15 the experiments' final height is not a fit with scatter but an observation, the top left in
place (H_inf = H0); the tolerance is then the resolution of our measure (the highest particle's extent), half a
particle layer. At a = 1 ours is 12 % low (strict xfail): the suspects measured one at a time and the cause found
(plastic flow without dilatancy, whose failure zone from the toe reaches the wall at a ~ 1) are in docs/mpm.md. Beyond it no quantified scatter of the prefactor of a^(2/5) was found (BK05: material dependent), so
the a = 2 height (1.12 at 8 cells, 15 % below the fit) is reported in docs/mpm.md, not tested.
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
    8 cells: 1.00 at a = 1, 2.50 at a = 2)."""
    r = run(a)
    assert r["rest"], f"not at rest after {r['t_end']:.2f} s"
    assert abs(r["runout"] - r["fit_runout"]) <= TOL * r["fit_runout"], r


@pytest.mark.slow
def test_genesis_cone_runs_short():
    """The cause: `MPM.Sand(friction_angle=30)` (Klár et al.'s triaxial-compression cone, Genesis' formula) resists
    plane-strain flow like 43.9 degrees, and the a = 1 runout falls outside the experiments' band (measured 0.69 vs
    1.2 at 8 cells); with the plane-strain cone it is inside (test above)."""
    r = run(1.0, plane_strain=False)
    assert r["runout"] < (1 - TOL) * r["fit_runout"], r
    assert r["runout"] < run(1.0)["runout"] - 0.1


@pytest.mark.slow
def test_top_stays_below_the_transition():
    """a = 0.5 < 1.15: the column's top stays in place, H_inf = H0 to half a particle layer (measured at 8 cells:
    H_inf / L0 = 0.497 for a = 0.5; 0.496 at 12 cells)."""
    r = run(0.5)
    assert r["rest"], f"not at rest after {r['t_end']:.2f} s"
    half_layer = 0.2 / 8 / 2 / 2  # particle size dx / 2, half of it, m
    assert abs(r["height"] - r["fit_height"]) * r["L0"] <= half_layer, r


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open (issue 20): at a = 1 (< 1.15, where the experiments' top stays) our "
                   "top sinks 12 % (H_inf / L0 = 0.88 at 8 cells, 0.87 at 12, 0.86 at 16): the failure zone of the "
                   "zero-dilatancy Drucker-Prager flow reaches the wall; back-wall friction, nu (K0), the volume "
                   "correction, FLIP, dt, particles per cell and E each move it by <= 0.03 (docs/mpm.md, 'The a = 1 "
                   "top')")
def test_top_stays_at_aspect_ratio_one():
    r = run(1.0)
    half_layer = 0.2 / 8 / 2 / 2
    assert abs(r["height"] - r["fit_height"]) * r["L0"] <= half_layer, r

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

Height: below a = 1.15 Lube's final height is not a fit with scatter but an observation, the top left in place
(H_inf = H0); the resolution of our measure (the highest particle's extent) is half a particle layer. The published
figures at a = 1 found (docs/mpm.md, "Final height at a = 1: the experiments' spread"): Lube et al. 2005
(quasi-2-D channel, as quoted by Lagree, Staron & Popinet 2011): H_inf / L0 = 1.00 (top stays for a < 1.15);
"Failure mechanism of true 2D granular flows" (2015, arXiv 1512.05180, aluminium rods): top stays for a <= 0.65
and h0 / h_inf = 1.42 a^(2/3) beyond, 0.70 at a = 1; Balmforth & Kerswell 2005 (J. Fluid Mech. 538, 399, abstract):
h_inf ~ a^0.4 L with material-dependent constants, no value at a = 1 given there; Lajeunesse, Monnier & Homsy 2005
not reachable. Their spread at a = 1 is 0.70..1.00 (+- half a particle layer): `test_top_within_the_experiments`.
The friction-only (critical-state) sand `Sand.plane_strain(30)` lies inside that spread (0.88 at 8 cells)
but not on Lube's undisturbed top (strict xfail: its zero-dilatancy flow reaches the wall's top corner); dense sand
(`DENSE`: dilatancy softening to a critical state, Bolton 1986) keeps the top to half a layer at 8 cells (0.982),
partly by bulking (deposit area 1.105 L0 H0; docs/mpm.md).

Height at a = 2 and 4 (docs/mpm.md, "Final heights at a = 2 and 4: plane strain and side-wall friction"): no
quantified scatter of the prefactor of Lube's a^(2/5) was found, so the test is again the spread of the figures
found: the true-2-D (plane-strain) rods, h_inf / L0 = a^(1/3) / 1.42 (0.89 at a = 2, 1.12 at a = 4), below; the
quasi-2-D channels above: Lajeunesse, Monnier & Homsy 2005 (Phys. Fluids 17, 103302, glass beads, rectangular
channel; as quoted by K. Kumar's 2015 Cambridge PhD thesis, ch. 2): a^(1/3) beyond a = 0.7 (1.26, 1.59), Lube et al.
a^(2/5) (1.32, 1.74), the upper end. That channels stand above plane strain is measured here: side walls with
Coulomb friction 0.3 (`collapse(side_friction=0.3)`) lift H_inf / L0 from 1.12 / 1.18 to 1.53 / 2.04 at a = 2 / 4
in a channel 0.25 L0 deep and to 1.27 / 1.64 in one L0 deep (`Sand.plane_strain(30)`, 8 cells), so a slip-walled
(plane-strain) deposit belongs between the rods and the channels: `test_tall_column_height_within_the_experiments`.
The band is wide (the experiments' channel widths were not found, so no side-wall run is pinned as the reference).
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
#: spread of the published final heights H_inf / L0 at a = 1 (module docstring): true-2-D rods 0.70, Lube et al. 1.00
SPREAD_A1 = (1 / 1.42, 1.00)


def spread_tall(a: float) -> tuple[float, float]:
    """Published H_inf / L0 above the transition (module docstring): true-2-D rods a^(1/3) / 1.42 (arXiv 1512.05180)
    below, Lube et al.'s quasi-2-D channel a^(2/5) above."""
    return a ** (1.0 / 3.0) / 1.42, a ** 0.4
#: dense sand: psi_0 = 20 deg is Bolton 1986's phi_max - phi_crit = 5 I_R (plane strain) = 0.8 psi_max with
#: I_R = I_D (10 - ln p') - 1 = 3.3 at I_D = 0.44 and p' ~ rho g H0 / 2 = 1.5 kPa; e_c = 0.1 the log volume gain
#: from that density to a critical state near e_max: I_D (e_max - e_min) / (1 + e) = 0.44 x 0.39 / 1.75 for a clean
#: quartz sand with e_max - e_min ~ 0.37..0.41 (docs/mpm.md)
DENSE = dict(psi=20.0, e_c=0.1)
_RUNS: dict = {}


def run(a: float, plane_strain: bool = True, dense: bool = False) -> dict:
    """One collapse at 8 cells across the column (float32, 1 env), cached for the module."""
    key = (a, plane_strain, dense)
    if key not in _RUNS:
        with cpu_runtime("32"):
            _RUNS[key] = bench.collapse(a, 8, plane_strain=plane_strain, **(DENSE if dense else {}))
    return _RUNS[key]


def _half_layer_l0(r) -> float:
    return 0.2 / 8 / 2 / 2 / r["L0"]  # particle size dx / 2, half of it, over L0


@pytest.mark.slow
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("a", [1.0, 2.0])
def test_runout_matches_the_experiments(a, dense):
    """`MPM.Sand.plane_strain(30)` (and the dense sand): the deposit comes to rest and its runout is within 20 % of
    1.2 a (measured at 8 cells: 1.00 at a = 1, 2.50 at a = 2; dense 1.00 and 2.625)."""
    r = run(a, dense=dense)
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
@pytest.mark.parametrize("dense", [False, True])
def test_top_stays_below_the_transition(dense):
    """a = 0.5 < 0.65 (below every transition found): the column's top stays in place, H_inf = H0 to half a particle
    layer (measured at 8 cells: H_inf / L0 = 0.497, dense 0.498; 0.496 at 12 cells)."""
    r = run(0.5, dense=dense)
    assert r["rest"], f"not at rest after {r['t_end']:.2f} s"
    assert abs(r["height"] - r["fit_height"]) <= _half_layer_l0(r), r


@pytest.mark.slow
@pytest.mark.parametrize("dense", [False, True])
def test_top_within_the_experiments(dense):
    """a = 1: H_inf / L0 within the published spread 0.70..1.00 (module docstring), +- half a particle layer
    (measured at 8 cells: 0.880, dense 0.982)."""
    r = run(1.0, dense=dense)
    lo, hi = SPREAD_A1
    assert lo - _half_layer_l0(r) <= r["height"] <= hi + _half_layer_l0(r), r


@pytest.mark.slow
def test_dense_sand_keeps_the_top_at_aspect_ratio_one():
    """Lube's observation at a = 1 < 1.15 (the top stays, H_inf = H0 to half a particle layer) with the dense sand
    (measured at 8 cells: 0.982; 0.976 at 12 cells, where half a layer is 0.021 L0). Partly by bulking (area 1.105)
    and sensitive to the estimated parameters: psi_0 = 12.5 deg with the same e_c gives 0.962 (docs/mpm.md)."""
    r = run(1.0, dense=True)
    assert abs(r["height"] - 1.0) <= _half_layer_l0(r), r


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open (issue 20): at a = 1 (< 1.15, where Lube's top stays) the critical-state "
                   "sand Sand.plane_strain(30) sinks 12 % (H_inf / L0 = 0.88 at 8 cells, 0.87 at 12, 0.86 at 16): its "
                   "zero-dilatancy flow's failure zone reaches the wall; back-wall friction, nu (K0), the volume "
                   "correction, FLIP, dt, particles per cell and E each move it by <= 0.03 (docs/mpm.md, 'The a = 1 "
                   "top'); inside the experiments' spread (test above), and dense sand keeps the top")
def test_top_stays_at_aspect_ratio_one():
    r = run(1.0)
    assert abs(r["height"] - r["fit_height"]) <= _half_layer_l0(r), r


@pytest.mark.slow
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("a", [2.0, 4.0])
def test_tall_column_height_within_the_experiments(a, dense):
    """a = 2, 4: H_inf / L0 within the published spread, true-2-D rods a^(1/3) / 1.42 .. Lube's quasi-2-D a^(2/5)
    (0.89..1.32 at a = 2, 1.12..1.74 at a = 4; module docstring), +- half a particle layer (measured at 8 cells:
    1.119 / 1.178, dense 1.118 / 1.306)."""
    r = run(a, dense=dense)
    assert r["rest"], f"not at rest after {r['t_end']:.2f} s"
    lo, hi = spread_tall(a)
    assert lo - _half_layer_l0(r) <= r["height"] <= hi + _half_layer_l0(r), r

"""The static FEM model (built once at `scene.build()`): topology, rest shape, masses, per-env material parameters,
and the gather tables that sum element forces at vertices in a fixed order (deterministic on every device).

nv vertices, ne linear tetrahedra, every entity a contiguous range of both. Element e has vertices `elems[e]` and rest
edge matrix D_m = [X0 - X3, X1 - X3, X2 - X3] (positive determinant); F = D_s D_m^-1 with D_s the same edges now
(Sifakis & Barbic 2012, §4.1); its rest volume V = det(D_m) / 6; the vertex masses are the lumped rho V / 4.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ...materials.FEM import Muscle

__all__ = ["FEMGroup", "FEMModel", "FEMParams", "build_fem_model", "lame"]


@dataclasses.dataclass
class FEMGroup:
    """Elements `start:end` of one constitutive model ("linear", "linear_corotated" or "stable_neohookean")."""

    kind: str
    start: int
    end: int


@dataclasses.dataclass
class FEMParams:
    """Per-env material parameters of the elements: `E (P, ne)` Pa, `nu (P, ne)` and the unit muscle fibre directions
    `muscle_dir (P, ne, 3)` (`FEMEntity.set_muscle`; default +z, as Genesis), P = 1 (shared) or B (per env)."""

    E: torch.Tensor
    nu: torch.Tensor
    muscle_dir: torch.Tensor


def lame(E: torch.Tensor, nu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, lam) Pa from Young's modulus and Poisson's ratio: mu = E / (2(1 + nu)),
    lam = E nu / ((1 + nu)(1 - 2 nu))."""
    return E / (2.0 * (1.0 + nu)), E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))


@dataclasses.dataclass
class FEMModel:
    """Static data of the FEM solver (tensors of the scene's dtype / long, on its device)."""

    n_vertices: int
    n_elements: int
    elems: torch.Tensor  #: (ne, 4) long
    Dm_inv: torch.Tensor  #: (ne, 3, 3) 1/m, inverse rest edge matrix (component-major, `soa`)
    vol: torch.Tensor  #: (ne,) m^3 rest volume
    rho: torch.Tensor  #: (ne,) kg/m^3 density
    mass: torch.Tensor  #: (nv,) kg lumped vertex mass
    friction: torch.Tensor  #: (nv,) Coulomb coefficient of the vertex's material against rigid geoms
    init_pos: torch.Tensor  #: (nv, 3) m rest positions
    gather: torch.Tensor  #: (K nv,) long: slots `j ne + e` of `4 ne + 1` element-vertex contributions (pad: 4 ne)
    groups: list  #: [FEMGroup], contiguous element ranges per constitutive model
    gravity: torch.Tensor  #: (3,) m/s^2
    dt: float  #: s, the FEM substep
    damping: float  #: 1/s, explicit velocity damping v <- v exp(-dt damping) (Genesis' FEMOptions.damping)
    floor_height: float  #: m, the floor plane z = floor_height (restitution 0, no friction, as Genesis)
    implicit: bool
    has_muscle: bool  #: some entity has a `FEM.Muscle` material (its elements add the active stress)
    n_newton: int
    n_pcg: int
    n_linesearch: int
    newton_dx_threshold: float
    pcg_threshold: float
    linesearch_c: float
    linesearch_tau: float
    damping_alpha: float  #: implicit Rayleigh damping, mass-proportional (1/s)
    damping_beta: float  #: implicit Rayleigh damping, stiffness-proportional (s)
    colliders: object = None  #: `colliders.FEMColliders` or None
    elems_t: torch.Tensor = None  #: (4, ne) long, `elems` transposed (the component-major gather)
    vdmt: torch.Tensor = None  #: (ne, 3, 3) m^2, V D_m^-T (component-major): element forces are -P vdmt

    def __post_init__(self):
        self.elems_t = self.elems.t().contiguous()
        self.vdmt = soa(self.vol[:, None, None] * self.Dm_inv.transpose(-1, -2))
        self.Dm_inv = soa(self.Dm_inv)


def soa(m: torch.Tensor) -> torch.Tensor:
    """`m (..., 3, 3)` with the same values stored component-major (the strides of a `(3, 3, ...)` array): each entry
    is one contiguous plane over the leading dims, so elementwise 3x3 arithmetic runs along long contiguous rows
    (~5x faster than on `(..., 3, 3)` rows at 10^5 elements; elementwise results do not depend on the layout)."""
    return m.permute(-2, -1, *range(m.dim() - 2)).contiguous().permute(*range(2, m.dim()), 0, 1)


def gather_table(elems: np.ndarray, nv: int) -> np.ndarray:
    """(K nv,) int64, row k of a (K, nv) table: for each vertex (column) the flat slots `j ne + e` (vertex j of
    element e; the contributions stored vertex-major, `(4, ne)`) where it appears, in increasing (e, j) order, padded
    with the zero slot `4 ne` (K = the largest vertex valence). The gathered `(.., K, nv)` rows are added in order
    k = 0, 1, ... (`FEMSolver.gather_sum`), whatever the batch."""
    ne = len(elems)
    slots = np.arange(4 * ne)
    verts = elems.reshape(-1)
    order = np.argsort(verts, kind="stable")
    counts = np.bincount(verts, minlength=nv)
    K = max(int(counts.max()), 1)
    table = np.full((nv, K), 4 * ne, np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    table[verts[order], rank] = (slots[order] % 4) * ne + slots[order] // 4
    return np.ascontiguousarray(table.T).reshape(-1)


def build_fem_model(entities, options, dt: float, gravity, colliders, device, dtype) -> tuple[FEMModel, FEMParams]:
    """The model of `entities` (each with `rest_verts (n, 3)` float64 and `rest_elems (m, 4)` int64, positively
    oriented), grouped by constitutive model in entity order, and the build-time parameters (P = 1)."""
    verts, elems, rho, E, nu, fric, groups = [], [], [], [], [], [], []
    v0 = e0 = 0
    for ent in entities:
        mat, nv_i, ne_i = ent.material, len(ent.rest_verts), len(ent.rest_elems)
        verts.append(ent.rest_verts)
        elems.append(ent.rest_elems + v0)
        rho.append(np.full(ne_i, mat.rho))
        E.append(np.full(ne_i, mat.E))
        nu.append(np.full(ne_i, mat.nu))
        fric.append(np.full(nv_i, mat.friction_mu))
        if groups and groups[-1].kind == mat.model:
            groups[-1].end = e0 + ne_i
        else:
            groups.append(FEMGroup(mat.model, e0, e0 + ne_i))
        v0, e0 = v0 + nv_i, e0 + ne_i
    X, el = np.concatenate(verts), np.concatenate(elems)
    Dm = np.stack([X[el[:, j]] - X[el[:, 3]] for j in range(3)], -1)  # (ne, 3, 3), columns X_j - X_3
    det = np.linalg.det(Dm)
    if (det <= 0).any():  # entities orient their tets for det[x1-x0, x2-x0, x3-x0] > 0, which is det(Dm) < 0
        flip = det < 0
        el[flip, 0], el[flip, 1] = el[flip, 1].copy(), el[flip, 0].copy()
        Dm = np.stack([X[el[:, j]] - X[el[:, 3]] for j in range(3)], -1)
        det = np.linalg.det(Dm)
    vol = det / 6.0
    rho = np.concatenate(rho)
    mass = np.zeros(len(X))
    np.add.at(mass, el.reshape(-1), np.repeat(rho * vol / 4.0, 4))
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    o = options
    model = FEMModel(
        n_vertices=len(X), n_elements=len(el), elems=torch.as_tensor(el, dtype=torch.long, device=device),
        Dm_inv=t(np.linalg.inv(Dm)), vol=t(vol), rho=t(rho), mass=t(mass), friction=t(np.concatenate(fric)),
        init_pos=t(X),
        gather=torch.as_tensor(gather_table(el, len(X)), dtype=torch.long, device=device), groups=groups,
        gravity=t(gravity), dt=dt, damping=float(o.damping), floor_height=float(o.floor_height),
        implicit=bool(o.use_implicit_solver), has_muscle=any(isinstance(e.material, Muscle) for e in entities),
        n_newton=o.n_newton_iterations, n_pcg=o.n_pcg_iterations,
        n_linesearch=o.n_linesearch_iterations, newton_dx_threshold=o.newton_dx_threshold,
        pcg_threshold=o.pcg_threshold, linesearch_c=o.linesearch_c, linesearch_tau=o.linesearch_tau,
        damping_alpha=o.damping_alpha, damping_beta=o.damping_beta, colliders=colliders)
    fibre = np.zeros((len(el), 3))
    fibre[:, 2] = 1.0
    params = FEMParams(E=t(np.concatenate(E))[None], nu=t(np.concatenate(nu))[None], muscle_dir=t(fibre)[None])
    return model, params

"""The static PBD model: particles, constraints grouped by colour, iterations, domain, colliders (built once).

Entities hand the builder their `Parts` (NumPy, float64, metres): particles with masses and friction, and the
constraints among them in entity-local indices. `build_pbd_model` concatenates them (each entity a contiguous slice
of particles, in the order added), colours every constraint kind (`colouring.py`) and stores tensors of the scene's
dtype. Constraint parameters are per constraint: `alpha_t = compliance / dt^2` (XPBD's time-step compliance) and the
relaxation factor.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .colouring import colour_constraints

__all__ = ["Parts", "Colour", "PBDModel", "build_pbd_model", "CLOTH", "ELASTIC", "LIQUID", "PARTICLE"]

CLOTH, ELASTIC, LIQUID, PARTICLE = 0, 1, 2, 3  # particle kinds (Genesis' PBDSolver.MATERIAL numbering)
_ARITY = {"stretch": 2, "bending": 4, "volume": 4}
#: colours projected one after another (Gauss-Seidel) per kind and sweep; the constraints of any further colours are
#: projected together as one Jacobi batch with averaging (a vertex shared by many constraints, as the centre of a
#: tetrahedralised ball, would otherwise give one tiny colour per constraint)
MAX_COLOURS = 16


@dataclasses.dataclass
class Parts:
    """One entity's particles and constraints (entity-local indices). Constraint arrays of a kind: `<kind>_idx (k, a)`
    int, `<kind>_rest (k,)`, `<kind>_compliance (k,)`, `<kind>_relax (k,)` (or empty)."""

    pos: np.ndarray  #: (n, 3) m
    mass: np.ndarray  #: (n,) kg
    kind: int  #: CLOTH, ELASTIC, LIQUID or PARTICLE
    mu_s: float = 0.0
    mu_k: float = 0.0
    air: float = 0.0  #: cloth air resistance (N s^2/m^2): drag -air |v| v
    constraints: dict = dataclasses.field(default_factory=dict)  #: kind -> (idx, rest, compliance, relax)
    liquid: tuple | None = None  #: (rho0 kg/m^3, density_relaxation, viscosity_relaxation) for LIQUID


@dataclasses.dataclass
class Colour:
    """The constraints of one colour (no particle shared): `idx (k, a)` long, `flat (k a,)` its rows, `flat_t (a k,)`
    its columns (the solver's order, constraints.project), `rest (k,)`,
    `alpha_t (k,)` = compliance / dt^2, `relax (k,)`. The last group of a kind may instead be a Jacobi batch whose
    constraints do share particles: `average (k a,)` then holds 1 / (the number of its constraints on that particle),
    the factor each correction is scaled by (Macklin et al. 2014, §4.2, constraint averaging), in `flat_t` order."""

    idx: torch.Tensor
    flat: torch.Tensor
    flat_t: torch.Tensor
    rest: torch.Tensor
    alpha_t: torch.Tensor
    relax: torch.Tensor
    average: torch.Tensor | None = None


@dataclasses.dataclass
class PBDModel:
    """Everything static of a PBD system: n particles, constraint colours per kind, iterations, domain, colliders."""

    n: int
    dt: float  #: s, the PBD substep the compliances are scaled to
    init_pos: torch.Tensor  #: (n, 3) m
    mass: torch.Tensor  #: (n,) kg
    inv_mass: torch.Tensor  #: (n,) 1/kg
    kind: torch.Tensor  #: (n,) long
    mu_s: torch.Tensor  #: (n,)
    mu_k: torch.Tensor  #: (n,)
    air: torch.Tensor  #: (n,) cloth drag coefficient (0 elsewhere)
    colours: dict  #: kind -> list[Colour]
    iterations: dict  #: kind -> int
    gravity: torch.Tensor  #: (3,) m/s^2
    lo: torch.Tensor  #: (3,) m, domain
    hi: torch.Tensor  #: (3,) m
    radius: float  #: m, particle_size / 2: contact radius against geoms
    particle_size: float  #: m
    colliders: object = None  #: colliders.Colliders or None
    liquid: object = None  #: liquid.LiquidModel or None (position-based fluids)
    collisions: object = None  #: collisions.CollisionModel or None (particle-particle contacts)
    has_air: bool = False

    @property
    def n_constraints(self) -> dict:
        return {k: sum(c.idx.shape[0] for c in v) for k, v in self.colours.items()}


def build_pbd_model(parts: list[Parts], options, dt: float, gravity, colliders, device, dtype,
                    liquid_builder=None, collision_builder=None) -> PBDModel:
    """The model of `parts` (in order) for PBD substeps of `dt` s; `options` a `PBDOptions`. `liquid_builder(model,
    parts, offsets, options, device, dtype)` adds the liquid model when some parts are liquid,
    `collision_builder(model, options, device, dtype)` the particle-particle collisions."""
    offsets = np.cumsum([0] + [len(p.pos) for p in parts])
    n = int(offsets[-1])
    per = lambda f: np.concatenate([np.broadcast_to(np.asarray(f(p), np.float64), (len(p.pos),)) for p in parts])  # noqa
    t = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=dtype, device=device)  # noqa: E731
    mass = per(lambda p: p.mass)
    iters = {"stretch": options.max_stretch_solver_iterations, "bending": options.max_bending_solver_iterations,
             "volume": options.max_volume_solver_iterations}
    colours = {}
    for kind, arity in _ARITY.items():
        rows = [(p.constraints[kind], off) for p, off in zip(parts, offsets) if kind in p.constraints
                and len(p.constraints[kind][0])]
        if not rows:
            colours[kind] = []
            continue
        idx = np.concatenate([np.asarray(c[0], np.int64).reshape(-1, arity) + off for c, off in rows])
        rest, comp, relax = (np.concatenate([np.asarray(c[j], np.float64) for c, _ in rows]) for j in (1, 2, 3))
        groups, sets = [], colour_constraints(idx, n)
        if len(sets) > MAX_COLOURS:
            sets = sets[:MAX_COLOURS - 1] + [np.sort(np.concatenate(sets[MAX_COLOURS - 1:]))]
        for j, sel in enumerate(sets):
            it = torch.as_tensor(idx[sel], dtype=torch.long, device=device)
            average = None
            if j == MAX_COLOURS - 1:
                count = np.bincount(idx[sel].ravel(), minlength=n)
                average = t(1.0 / count[idx[sel].T.ravel()])
            groups.append(Colour(idx=it, flat=it.reshape(-1), flat_t=it.T.reshape(-1), rest=t(rest[sel]), alpha_t=t(comp[sel] / dt ** 2),
                                 relax=t(relax[sel]), average=average))
        colours[kind] = groups
    air = per(lambda p: p.air if p.kind == CLOTH else 0.0)
    model = PBDModel(
        n=n, dt=dt, init_pos=t(np.concatenate([p.pos for p in parts])), mass=t(mass), inv_mass=t(1.0 / mass),
        kind=torch.as_tensor(per(lambda p: p.kind).astype(np.int64), device=device), mu_s=t(per(lambda p: p.mu_s)),
        mu_k=t(per(lambda p: p.mu_k)), air=t(air), colours=colours, iterations=iters,
        gravity=t(gravity), lo=t(options.lower_bound), hi=t(options.upper_bound), radius=0.5 * options.particle_size,
        particle_size=options.particle_size, colliders=colliders, has_air=bool((air > 0).any()))
    if liquid_builder is not None and any(p.kind == LIQUID for p in parts):
        model.liquid = liquid_builder(model, parts, offsets, options, device, dtype)
    if collision_builder is not None:
        model.collisions = collision_builder(model, options, device, dtype)
    return model

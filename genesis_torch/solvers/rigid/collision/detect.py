"""Collision detection for a batch of envs: candidate geom pairs fixed at build, narrow phase per type pair, and
the contacts of each env packed into slots.

Broad phase (once, at build; MuJoCo's `mj_collision` filters, engine_collision_driver.c): every geom pair whose
bodies are not welded together or parent and child (`body_weldid`, unless `filterparent` is disabled), whose body
pair is not in `<exclude>`, and whose `contype`/`conaffinity` bits match; plus the explicit `<pair>`s, which replace
the dynamic pairs of their body pair. Contact parameters are mixed as MuJoCo's `mj_contactParam` does (priority,
then solmix; condim and friction max). Margins and gaps of the two geoms add up (MuJoCo 4: contacts are detected
within margin + gap and enter the solver within margin, measured against MuJoCo 4.0.0). The narrow phase runs
every candidate pair in every env (no per-env branching) and the contacts below `margin` are packed, in pair order,
into at most `max_contacts` slots per env (as many as the batch's fullest env needs); envs with more contacts are
reported (`overflow`), never silently truncated. The capacity follows Genesis' `max_collision_pairs` (pairs, each
with the slots of its narrow-phase function: the sum over that many pairs with the most slots), capped by
`max_contacts` when given.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import mujoco
import numpy as np
import torch

from ....errors import UnsupportedFeatureError
from ..constraints import MJ_MINVAL
from ..kinematics import attached_positions, attached_rotations, batch_first
from ..linalg import SPARSE_MIN_DOFS
from . import box, convex, hfield, primitives
from .types import GeomBatch

MJ_MINMU = 1e-5  # MuJoCo's lower bound on friction coefficients (mjMINMU)
MESH, PLANE = int(mujoco.mjtGeom.mjGEOM_MESH), int(mujoco.mjtGeom.mjGEOM_PLANE)
# the narrow-phase function of each supported pair of MuJoCo geom types (lower type first)
FUNCTIONS: dict[tuple[int, int], Callable] = {**convex.FUNCTIONS, **primitives.FUNCTIONS, **box.FUNCTIONS,
                                              **hfield.FUNCTIONS}


@dataclasses.dataclass
class PairGroup:
    """Candidate pairs of one type combination (geom 1 has the lower MuJoCo type)."""

    fn: Callable  # fn(GeomBatch, GeomBatch, margin (P,)) -> Contacts
    geom1: torch.Tensor  # (P,) geom ids
    geom2: torch.Tensor  # (P,)
    margin: torch.Tensor  # (P,) m, detection margin (margin + gap)
    hull1: tuple | None  # mesh hull vertices (P, V, 3) and mask; a height field's grid and sizes (hfield_data); None
    hull2: tuple | None
    polygons2: convex.MeshPolygons | None = None  # hull polygons of geom 2 (plane-mesh's extra contacts)
    box_filter: bool = False  # pairs far apart by their oriented bounding boxes are skipped (`_boxes_apart`)


@dataclasses.dataclass
class ContactModel:
    """Static collision data: geoms, candidate pairs in groups, per-pair contact parameters (pairs are numbered
    group by group)."""

    geom_body: torch.Tensor  # (ng,)
    geom_pos: torch.Tensor  # (ng, 3) m, body frame
    geom_quat: torch.Tensor  # (ng, 4)
    geom_size: torch.Tensor  # (ng, 3) m
    geom_rbound: torch.Tensor  # (ng,) m, bounding-sphere radius (0 for planes)
    geom_plane: torch.Tensor  # (ng,) bool
    groups: list
    pair_body: torch.Tensor  # (np, 2)
    pair_condim: torch.Tensor  # (np,) 1 or 3
    pair_friction: torch.Tensor  # (np, 2) tangential friction coefficients (MuJoCo's friction[0:2])
    pair_fric_geom: torch.Tensor  # (np, 2) the geoms whose friction (ratio) mixes into the pair's: both sides the same
    pair_fric_base: torch.Tensor  # (np, 2)   geom for a priority winner; their sliding frictions (`params.derive`)
    pair_explicit: torch.Tensor  # (np,) bool, an explicit <pair> (its own friction; geom ratios do not apply)
    pair_solref: torch.Tensor  # (np, 2)
    pair_solreffriction: torch.Tensor  # (np, 2), (0, 0) = use solref
    pair_solimp: torch.Tensor  # (np, 5)
    pair_includemargin: torch.Tensor  # (np,) margin: contacts closer than this enter the solver
    frictional: bool  # some pair has condim 3
    elliptic: bool  # elliptic friction cones (else pyramidal)
    impratio: float
    max_contacts: int  # contact slots per env (fixed): min(max_pair_slots, RigidOptions.max_contacts)
    max_pair_slots: int  # the slots of the max_collision_pairs candidate pairs with the most (before max_contacts)
    pair_env_active: torch.Tensor | None = None  # (B, np) bool, pairs whose geoms an env has (heterogeneous
    #   entities: solvers/rigid/heterogeneous.py); None: every env has every geom
    geom_aabb: torch.Tensor | None = None  # (ng, 6) m, MuJoCo's geom_aabb: box centre and half-sizes, geom frame
    pair_cols: torch.Tensor | None = None  # (np, K) int64, the dofs a pair's contact rows can touch (`pair_columns`,
    #   nv padding); None below `linalg.SPARSE_MIN_DOFS` dofs (dense rows)

    @property
    def npair(self) -> int:
        return self.pair_body.shape[0]


def _mix(m: mujoco.MjModel, g1: int, g2: int):
    """MuJoCo's `mj_contactParam` for a dynamic geom pair: (condim, friction[3], solref, solimp, gap)."""
    p1, p2 = m.geom_priority[g1], m.geom_priority[g2]
    gap = m.geom_gap[g1] + m.geom_gap[g2]
    if p1 != p2:
        g = g1 if p1 > p2 else g2
        return m.geom_condim[g], m.geom_friction[g], m.geom_solref[g], m.geom_solimp[g], gap
    s1, s2 = m.geom_solmix[g1], m.geom_solmix[g2]
    if s1 >= MJ_MINVAL and s2 >= MJ_MINVAL:
        mix = s1 / (s1 + s2)
    elif s1 < MJ_MINVAL and s2 < MJ_MINVAL:
        mix = 0.5
    else:
        mix = 0.0 if s1 < MJ_MINVAL else 1.0
    r1, r2 = m.geom_solref[g1], m.geom_solref[g2]
    solref = mix * r1 + (1 - mix) * r2 if (r1[0] > 0 and r2[0] > 0) else np.minimum(r1, r2)
    solimp = mix * m.geom_solimp[g1] + (1 - mix) * m.geom_solimp[g2]
    return (max(m.geom_condim[g1], m.geom_condim[g2]), np.maximum(m.geom_friction[g1], m.geom_friction[g2]),
            solref, solimp, gap)


def candidate_pairs(m: mujoco.MjModel) -> list[dict]:
    """The geom pairs that can collide, with their contact parameters (see the module docstring)."""
    weld, parent = m.body_weldid, m.body_parentid
    filterparent = not (m.opt.disableflags & int(mujoco.mjtDisableBit.mjDSBL_FILTERPARENT))
    excluded = {(int(s) >> 16, int(s) & 0xFFFF) for s in m.exclude_signature}
    body_key = lambda g1, g2: tuple(sorted((int(m.geom_bodyid[g1]), int(m.geom_bodyid[g2]))))  # noqa: E731
    out = []
    explicit_bodies = set()
    for p in range(m.npair):
        g1, g2 = int(m.pair_geom1[p]), int(m.pair_geom2[p])
        explicit_bodies.add(body_key(g1, g2))
        out.append(dict(g1=g1, g2=g2, condim=int(m.pair_dim[p]), friction=m.pair_friction[p][[0, 1]],
                        explicit=True, fric_geom=(g1, g2), fric_base=m.pair_friction[p][[0, 0]],
                        solref=m.pair_solref[p], solreffriction=m.pair_solreffriction[p], solimp=m.pair_solimp[p],
                        margin=float(m.pair_margin[p]), gap=float(m.pair_gap[p])))
    for g1 in range(m.ngeom):
        for g2 in range(g1 + 1, m.ngeom):
            b1, b2 = int(m.geom_bodyid[g1]), int(m.geom_bodyid[g2])
            w1, w2 = int(weld[b1]), int(weld[b2])
            if w1 == w2 or body_key(g1, g2) in excluded or body_key(g1, g2) in explicit_bodies:
                continue
            if filterparent and w1 != 0 and w2 != 0 and (w1 == weld[parent[w2]] or w2 == weld[parent[w1]]):
                continue
            if not (m.geom_contype[g1] & m.geom_conaffinity[g2]) and not (m.geom_contype[g2] & m.geom_conaffinity[g1]):
                continue
            condim, fri, solref, solimp, gap = _mix(m, g1, g2)
            p1, p2 = m.geom_priority[g1], m.geom_priority[g2]
            sides = (g1, g2) if p1 == p2 else ((g1, g1) if p1 > p2 else (g2, g2))
            out.append(dict(g1=g1, g2=g2, condim=int(condim), friction=np.array([fri[0], fri[0]]), solref=solref,
                            explicit=False, fric_geom=sides, fric_base=m.geom_friction[list(sides), 0],
                            solreffriction=np.zeros(2), solimp=solimp,
                            margin=float(m.geom_margin[g1] + m.geom_margin[g2]), gap=float(gap)))
    return out


def build_contact_model(m: mujoco.MjModel, max_collision_pairs: int, max_contacts: int | None, device,
                        dtype) -> ContactModel | None:
    """The `ContactModel` of `m`, or None when no pair can collide (the solver skips it when contacts are off).

    Contact slots per env: those of the `max_collision_pairs` candidate pairs with the most slots (all pairs when
    there are fewer), capped by `max_contacts` (None: no further cap) — Genesis' sizing of its contact buffer by
    pairs, each with its collider's maximum number of contacts."""
    pairs = candidate_pairs(m)
    if not pairs:
        return None
    f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=device).to(dtype)  # noqa: E731
    i = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)  # noqa: E731
    for p in pairs:  # geom 1 has the lower type (MuJoCo's order); the normal then points from geom 1 to geom 2
        if m.geom_type[p["g1"]] > m.geom_type[p["g2"]]:
            p["g1"], p["g2"] = p["g2"], p["g1"]
        kinds = (int(m.geom_type[p["g1"]]), int(m.geom_type[p["g2"]]))
        if kinds not in FUNCTIONS:
            names = " and ".join(mujoco.mjtGeom(k).name.removeprefix("mjGEOM_").lower() for k in kinds)
            raise UnsupportedFeatureError(
                f"collisions between {names} geoms are not supported (geoms {p['g1']} and {p['g2']}); set their "
                "contype/conaffinity so they do not collide, or use other geom types.")
        if p["condim"] not in (1, 3):
            raise UnsupportedFeatureError(
                f"condim {p['condim']} (geoms {p['g1']} and {p['g2']}) is not supported; use condim 1 or 3.")
    groups, ordered = [], []
    for kinds in sorted({(int(m.geom_type[p["g1"]]), int(m.geom_type[p["g2"]])) for p in pairs}):
        members = [p for p in pairs if (m.geom_type[p["g1"]], m.geom_type[p["g2"]]) == kinds]
        g1, g2 = [p["g1"] for p in members], [p["g2"] for p in members]
        hull = lambda ids, kind: convex.mesh_hull_vertices(m, ids, device, dtype) if kind == MESH else (  # noqa: E731
            hfield.hfield_data(m, ids, device, dtype) if kind == hfield.HFIELD else None)
        polygons = convex.mesh_polygons(m, g2, device, dtype) if kinds == (PLANE, MESH) else None
        fn = FUNCTIONS[kinds]
        if kinds in convex.CONVEX_PAIRS:  # GJK/EPA with the model's own ccd_iterations / ccd_tolerance
            fn = convex.convex_convex(*kinds, int(m.opt.ccd_iterations), float(m.opt.ccd_tolerance))
        if kinds[0] == hfield.HFIELD:  # cells examined per pair sized from the geoms' rbound (hfield.window)
            fn = hfield.hfield_convex(kinds[1], *hfield.window(m, g1, g2, [p["margin"] + p["gap"] for p in members]),
                                      int(m.opt.ccd_iterations), float(m.opt.ccd_tolerance))
        groups.append(PairGroup(fn, i(g1), i(g2), f([p["margin"] + p["gap"] for p in members]),
                                hull(g1, kinds[0]), hull(g2, kinds[1]), polygons,
                                box_filter=kinds[0] not in (PLANE, hfield.HFIELD)))
        ordered += members
    col = lambda key: np.stack([np.asarray(p[key], dtype=np.float64) for p in ordered])  # noqa: E731
    slots = sorted(_pair_slots(groups, m, device, dtype), reverse=True)
    pair_slots = int(sum(slots[:max_collision_pairs]))
    pair_body = np.array([[m.geom_bodyid[p["g1"]], m.geom_bodyid[p["g2"]]] for p in ordered], np.int64)
    return ContactModel(
        geom_body=i(m.geom_bodyid), geom_pos=f(m.geom_pos), geom_quat=f(m.geom_quat), geom_size=f(m.geom_size),
        geom_rbound=f(m.geom_rbound), geom_aabb=f(m.geom_aabb), geom_plane=i(m.geom_type == int(mujoco.mjtGeom.mjGEOM_PLANE)).bool(),
        groups=groups, pair_body=i(pair_body),
        pair_condim=i([p["condim"] for p in ordered]), pair_friction=f(np.maximum(col("friction"), MJ_MINMU)),
        pair_fric_geom=i([p["fric_geom"] for p in ordered]), pair_fric_base=f(col("fric_base")),
        pair_explicit=i([p["explicit"] for p in ordered]).bool(),
        pair_solref=f(col("solref")), pair_solreffriction=f(col("solreffriction")), pair_solimp=f(col("solimp")),
        pair_includemargin=f([p["margin"] for p in ordered]),
        frictional=any(p["condim"] == 3 for p in ordered), elliptic=m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC,
        impratio=float(m.opt.impratio), max_contacts=min(pair_slots, max_contacts or pair_slots),
        max_pair_slots=pair_slots, pair_cols=i(pair_columns(m, pair_body)) if m.nv >= SPARSE_MIN_DOFS else None)


def pair_columns(m: mujoco.MjModel, pair_body: np.ndarray) -> np.ndarray:
    """`(np, K)` int64: for each body pair, the dofs that move exactly one of the two bodies (the nonzero columns of
    their relative-velocity Jacobian, `jacobians.frame_jacobian_difference`; dofs of common ancestors cancel),
    ascending, padded with `m.nv`; K is the most any pair has (at least 1)."""
    chain = np.zeros((m.nbody, m.nv), bool)  # dof j moves body b: j's body is an ancestor-or-self of b
    for b in range(1, m.nbody):
        chain[b] = chain[m.body_parentid[b]]
        chain[b, m.body_dofadr[b]:m.body_dofadr[b] + m.body_dofnum[b]] = True
    moves = chain[pair_body[:, 0]] ^ chain[pair_body[:, 1]]  # (np, nv)
    K = max(1, int(moves.sum(1).max()) if moves.size else 1)
    out = np.full((len(pair_body), K), m.nv, np.int64)
    for p, row in enumerate(moves):
        cols = np.nonzero(row)[0]
        out[p, :len(cols)] = cols
    return out


def _pair_slots(groups: list, m: mujoco.MjModel, device, dtype) -> list[int]:
    """The contact slots of each candidate pair (its group function's K), from one call per group."""
    out = []
    for grp in groups:
        one = lambda ids, hull: GeomBatch(torch.zeros(1, 1, 3, dtype=dtype, device=device),  # noqa: E731
                                          torch.eye(3, dtype=dtype, device=device).expand(1, 1, 3, 3),
                                          torch.as_tensor(m.geom_size[ids[:1].cpu().numpy()], device=device).to(dtype),
                                          *((hull[0][:1], hull[1][:1]) if hull is not None else (None, None)))
        K = grp.fn(one(grp.geom1, grp.hull1), one(grp.geom2, grp.hull2), grp.margin[:1]).dist.shape[-1]
        out += [int(K)] * grp.geom1.shape[0]
    return out


@dataclasses.dataclass
class ContactSet:
    """The contacts of each env in C slots (MuJoCo's `mjContact` fields), unused slots invalid."""

    dist: torch.Tensor  # (B, C) m
    pos: torch.Tensor  # (B, C, 3) m
    frame: torch.Tensor  # (B, C, 3, 3) rows: normal (geom 1 → geom 2), tangent 1, tangent 2
    pair: torch.Tensor  # (B, C) candidate-pair index
    valid: torch.Tensor  # (B, C) bool
    overflow: torch.Tensor  # (B,) int64, contacts that did not fit (0 unless max_contacts is too small)


def empty_contact_set(B: int, dtype, device) -> ContactSet:
    """A ContactSet with no slot (C = 0): no candidate pair is near in any env. Trailing empty rows change no bit of
    the solve (docs/rigid.md, "Contacts"), so leaving the contact rows out entirely gives the same result."""
    z = lambda *s, dt=dtype: torch.zeros(B, 0, *s, dtype=dt, device=device)  # noqa: E731
    return ContactSet(dist=z(), pos=z(3), frame=z(3, 3), pair=torch.zeros(B, 0, dtype=torch.long, device=device),
                      valid=z(dt=torch.bool), overflow=torch.zeros(B, dtype=torch.long, device=device))


def contact_frame(normal: torch.Tensor, tangent: torch.Tensor | None) -> torch.Tensor:
    """MuJoCo's `mju_makeFrame`: rows (normal, t1, t2), t1 from `tangent` when given (|t|^2 >= 1/4), else the y
    axis (or z when the normal is near y), made orthogonal to the normal; t2 = normal x t1. (..., 3) → (..., 3, 3)."""
    n = normal / torch.sqrt((normal * normal).sum(-1, keepdim=True)).clamp(min=MJ_MINVAL)
    e = torch.zeros_like(n)
    near_y = (n[..., 1] < 0.5) & (n[..., 1] > -0.5)
    default = torch.stack((e[..., 0], torch.where(near_y, 1.0, 0.0), torch.where(near_y, 0.0, 1.0)), -1)
    t = default if tangent is None else torch.where(((tangent * tangent).sum(-1) < 0.25)[..., None], default, tangent)
    t = t - n * (n * t).sum(-1, keepdim=True)
    t = t / torch.sqrt((t * t).sum(-1, keepdim=True)).clamp(min=MJ_MINVAL)
    return torch.stack((n, t, torch.linalg.cross(n, t)), -2)


def geom_poses(cm: ContactModel, kin) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions (B, ng, 3) and rotation matrices (B, ng, 3, 3) of all geoms (MuJoCo's geom_xpos/xmat), both
    at once (traceable; `GeomPoses` makes each on demand); wide kinematics: computed batch-last and copied."""
    wide = kin.xmat_bl is not None
    pos = attached_positions(kin, cm.geom_body, cm.geom_pos, wide)
    mat = attached_rotations(kin, cm.geom_body, cm.geom_quat, wide)
    return (batch_first(pos), batch_first(mat)) if wide else (pos, mat)


class GeomPoses:
    """All geoms' world poses of one kinematics, each layout made when first read: `pos (B, ng, 3)`, `mat (B, ng, 3,
    3)` and, for wide kinematics (`kin.xmat_bl` set), `pos_bl (ng, 3, B)`, `mat_bl (ng, 3, 3, B)` (None otherwise).
    A wide batch whose pairs all fail the bounding-sphere test reads only `pos_bl` (Franka at 4096 envs: no
    rotation and no batch-first copy). The same bits as `geom_poses` in every layout."""

    def __init__(self, cm: ContactModel, kin):
        self._cm, self._kin = cm, kin
        self.wide = kin is not None and kin.xmat_bl is not None

    @classmethod
    def given(cls, pos: torch.Tensor, mat: torch.Tensor) -> "GeomPoses":
        """Poses already computed, batch-first `(B, ng, 3)` and `(B, ng, 3, 3)`."""
        poses = cls(None, None)
        poses.pos, poses.mat = pos, mat
        return poses

    @functools.cached_property
    def pos_bl(self):
        return attached_positions(self._kin, self._cm.geom_body, self._cm.geom_pos, True) if self.wide else None

    @functools.cached_property
    def mat_bl(self):
        return attached_rotations(self._kin, self._cm.geom_body, self._cm.geom_quat, True) if self.wide else None

    @functools.cached_property
    def pos(self):
        if self.wide:
            return batch_first(self.pos_bl)
        return attached_positions(self._kin, self._cm.geom_body, self._cm.geom_pos)

    @functools.cached_property
    def mat(self):
        if self.wide:
            return batch_first(self.mat_bl)
        return attached_rotations(self._kin, self._cm.geom_body, self._cm.geom_quat)

    def select(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Poses of geoms `ids (k,)`, batch-first `(B, k, 3)`, `(B, k, 3, 3)`; from wide kinematics only theirs are
        rotated and copied (the same bits)."""
        if not self.wide or "mat" in self.__dict__:
            return self.pos.index_select(1, ids), self.mat.index_select(1, ids)
        cm = self._cm
        mat = attached_rotations(self._kin, cm.geom_body.index_select(0, ids), cm.geom_quat.index_select(0, ids), True)
        return batch_first(self.pos_bl.index_select(0, ids)), batch_first(mat)


def _near(cm: ContactModel, grp: PairGroup, gpos, gmat) -> torch.Tensor:
    """(B, P) bool: the pair's bounding spheres (or a plane and a bounding sphere) are within the margin (MuJoCo's
    `mj_filterSphere`); pairs failing it in every env cannot make a contact and are skipped."""
    p1, p2 = gpos.index_select(1, grp.geom1), gpos.index_select(1, grp.geom2)
    r1, r2 = cm.geom_rbound[grp.geom1], cm.geom_rbound[grp.geom2]
    d = p2 - p1
    plane1 = cm.geom_plane[grp.geom1]
    height = (d * gmat[..., 2].index_select(1, grp.geom1)).sum(-1)  # geom 2's centre above plane 1 (planes have the lower type)
    spheres = (d * d).sum(-1) <= (r1 + r2 + grp.margin) ** 2
    near = torch.where(plane1, height <= grp.margin + r2, spheres)
    if cm.geom_aabb is None or not grp.box_filter:
        return near
    return near & ~_boxes_apart(cm, grp, gpos, gmat)


def _near_all(cm: ContactModel, poses: GeomPoses) -> list[bool]:
    """`_near` of every candidate pair of all groups (pairs numbered group after group), any env, in two passes:
    the bounding-sphere test on all pairs (one host read), then the bounding-box test (`_boxes_apart`) only on the
    pairs that passed it in some env and whose group uses it (a second host read, skipped when there is none). The
    box test is ~10x the sphere test's work per pair, and the spheres leave few pairs (franka_cube: 6 of 116), so
    this costs a fraction of testing boxes on all pairs (measured 40 ms -> <1 ms per step at 1024 envs). The result
    is the same set as `_near` per group: which pairs run changes no env's contacts. Wide batches run the first pass
    on the batch-last poses (`poses.pos_bl`; the same bits, vectorised over envs), plane normals only when some
    candidate pair has a plane."""
    if not cm.groups:
        return []
    allp = cm.__dict__.get("_all_pairs")
    if allp is None:
        g = cm.groups
        box = [x.box_filter for x in g for _ in range(x.geom1.shape[0])]
        allp = PairGroup(None, torch.cat([x.geom1 for x in g]), torch.cat([x.geom2 for x in g]),
                         torch.cat([x.margin for x in g]), None, None, None, False)
        plane = cm.geom_plane[allp.geom1]
        npl = int(plane.sum())  # plane pairs come first (groups in type order, the plane type is the lowest)
        split = None
        if bool(plane[:npl].all()):  # static thresholds of the two tests, as `_near` computes them
            r1, r2 = cm.geom_rbound[allp.geom1], cm.geom_rbound[allp.geom2]
            split = (npl, allp.margin[:npl] + r2[:npl], (r1[npl:] + r2[npl:] + allp.margin[npl:]) ** 2)
        cm.__dict__["_all_pairs"] = allp = (allp, box if cm.geom_aabb is not None else [False] * len(box), split)
    grp, box, split = allp
    if split is None:
        near = _near(cm, grp, poses.pos, poses.mat)  # (B, P) spheres (box_filter False)
    else:  # the plane test on the plane pairs only, the sphere test on the others
        npl, plane_lim, sphere_lim = split
        if not poses.wide:  # (B, P, 3) differences, the tests summed over the last dim
            axis, dim, pos = 1, -1, poses.pos
            normal = lambda: poses.mat[..., 2]  # noqa: E731
        else:  # batch-last (P, 3, B), summed over dim 1 (the same 3-term sums in order)
            axis, dim, pos = 0, 1, poses.pos_bl
            normal = lambda: poses.mat_bl[:, :, 2]  # noqa: E731
            plane_lim, sphere_lim = plane_lim[:, None], sphere_lim[:, None]
        d = pos.index_select(axis, grp.geom2) - pos.index_select(axis, grp.geom1)
        parts = []
        if npl:
            parts.append((d.narrow(axis, 0, npl) * normal().index_select(axis, grp.geom1[:npl])).sum(dim) <= plane_lim)
        if npl < d.shape[axis]:
            rest = d.narrow(axis, npl, d.shape[axis] - npl)
            parts.append((rest * rest).sum(dim) <= sphere_lim)
        near = torch.cat(parts, axis) if len(parts) > 1 else parts[0]
        if poses.wide:
            near = near.T  # (B, P), a view
    flags = near.any(0).tolist()
    test = [k for k, (on, b) in enumerate(zip(flags, box)) if on and b]
    if test:
        ids = torch.tensor(test, dtype=torch.long, device=near.device)
        g1, g2, n = grp.geom1[ids], grp.geom2[ids], len(test)
        pos, mat = poses.select(torch.cat((g1, g2)))  # the tested pairs' geoms only: pair k is (k, n + k)
        local = torch.arange(2 * n, device=near.device)
        sub = PairGroup(None, local[:n], local[n:], grp.margin[ids], None, None, None, True)
        apart = _boxes_apart(cm, sub, pos, mat, aabb=(cm.geom_aabb[g1], cm.geom_aabb[g2]))
        for k, on in zip(test, (near[:, ids] & ~apart).any(0).tolist()):
            flags[k] = on
    return flags


def _boxes_apart(cm: ContactModel, grp: PairGroup, gpos, gmat, aabb=None) -> torch.Tensor:
    """(B, P) bool: the geoms' bounding boxes (MuJoCo's `geom_aabb`, oriented with the geom), widened by the pair's
    margin, are separated along one of their 6 face normals (the face axes of the separating-axis test; the edge
    axes are left out, so a pair is kept whenever in doubt). Such a pair is more than its margin apart, so its narrow
    phase has no contact to give: skipping it changes nothing (as the sphere test). Separations within a rounding
    error (16 eps of the distances involved) count as touching. 3x3 products by `matmul` (a test with a slack: its
    rounding does not matter; an env's contacts never depend on it): 2-3x faster than broadcast products and
    reductions over inner dims, and ~10x fewer ops than component-wise sums at 1 env."""
    # (P, 6) each; `aabb` when `grp` numbers the geoms of `gpos`, `gmat` rather than the model's
    a1, a2 = (cm.geom_aabb[grp.geom1], cm.geom_aabb[grp.geom2]) if aabb is None else aabb
    R1, R2 = gmat.index_select(1, grp.geom1), gmat.index_select(1, grp.geom2)  # (B, P, 3, 3), columns: geom axes
    c1 = gpos.index_select(1, grp.geom1) + (R1 @ a1[:, :3, None]).squeeze(-1)
    c2 = gpos.index_select(1, grp.geom2) + (R2 @ a2[:, :3, None]).squeeze(-1)
    d = c2 - c1
    C = (R1.transpose(-1, -2) @ R2).abs()  # |R1^T R2| (B, P, 3, 3)
    e1, e2 = a1[:, 3:], a2[:, 3:]
    d1 = (d.unsqueeze(-2) @ R1).squeeze(-2).abs()  # |R1^T d|
    d2 = (d.unsqueeze(-2) @ R2).squeeze(-2).abs()
    reach1 = e1 + (C @ e2[..., None]).squeeze(-1)  # along geom 1's axes
    reach2 = e2 + (e1[:, None, :] @ C).squeeze(-2)  # along geom 2's axes
    eps = 16 * torch.finfo(d.dtype).eps
    m = grp.margin[:, None]
    return ((d1 - reach1 - m > eps * (d1 + reach1 + m)).any(-1)
            | (d2 - reach2 - m > eps * (d2 + reach2 + m)).any(-1))


def _subset(grp: PairGroup, keep: torch.Tensor) -> PairGroup:
    hull = lambda h: None if h is None else (h[0][keep], h[1][keep])  # noqa: E731
    polys = grp.polygons2
    if polys is not None:
        polys = convex.MeshPolygons(polys.normal[keep], polys.valid[keep], polys.quad[keep])
    return PairGroup(grp.fn, grp.geom1[keep], grp.geom2[keep], grp.margin[keep], hull(grp.hull1), hull(grp.hull2),
                     polys, grp.box_filter)


def detect(cm: ContactModel, kin) -> ContactSet:
    """Narrow phase on the candidate pairs near in some env (all envs run the same pairs), then the valid contacts
    of each env packed into slots in pair order. Skipping the pairs far in every env changes no env's result."""
    poses = GeomPoses(cm, kin)  # a wide batch: the first near test batch-last (vectorised over envs)
    parts, pair_of_slot, offset = [], [], 0
    near_any = _near_all(cm, poses)  # (P,) over all groups' pairs, one host sync per step
    for grp in cm.groups:
        P_all = grp.geom1.shape[0]
        kept = [k for k, on in enumerate(near_any[offset:offset + P_all]) if on]
        if len(kept) == P_all:
            ids = offset + torch.arange(P_all, device=cm.geom_body.device)
        elif kept:
            keep = torch.tensor(kept, dtype=torch.long, device=cm.geom_body.device)
            ids = offset + keep
            grp = _subset(grp, keep)
        offset += P_all
        if not kept:
            continue
        c = grp.fn(_geom_batch(cm, poses.pos, poses.mat, grp.geom1, grp.hull1),
                   _geom_batch(cm, poses.pos, poses.mat, grp.geom2, grp.hull2, grp.polygons2), grp.margin)
        K = c.dist.shape[2]
        parts.append(c)
        pair_of_slot.append(ids[:, None].expand(-1, K).reshape(-1))
    if not parts:  # no pair near in any env: no slot (the step then has no contact rows)
        x = kin.xpos_bl if poses.wide else kin.xpos  # (the batch from a field already made)
        return empty_contact_set(x.shape[-1] if poses.wide else x.shape[0], x.dtype, x.device)
    # Keep as many slots as the fullest env uses (one host sync): the buffers and the solve's rows follow the
    # contacts, not the capacity (no padding to it: the kept slots, at most the S detected ones, are the same with or
    # without). An env's rows then depend on the batch only through trailing empty slots, which every reduction over
    # rows ignores bitwise (`linalg.row_sum`).
    return _pack(cm, parts, pair_of_slot, cm.max_contacts, fit=True)


def _geom_batch(cm: ContactModel, gpos, gmat, ids, hull=None, polys=None) -> GeomBatch:
    """The narrow phase's view of geoms `ids (P,)`: their poses from `gpos (B, ng, 3)`, `gmat (B, ng, 3, 3)`, sizes
    and (for convex pairs) hull `(vertices, faces)` and polygons."""
    return GeomBatch(gpos.index_select(1, ids), gmat.index_select(1, ids), cm.geom_size[ids],
                     *(hull if hull is not None else (None, None)), polys)


def _pack(cm: ContactModel, parts: list, pair_of_slot: list, capacity: int, fit: bool,
          near_of_slot: list | None = None) -> ContactSet:
    """The narrow phases' contacts `parts` (one per group, slots `(B, P, K)`; `pair_of_slot`: each group's candidate
    pair index per slot) as one `ContactSet`: valid where the narrow phase says so, below the pair's
    `includemargin` (and where `near_of_slot` is True, when given), packed valid slots first in slot order (a stable
    sort of one env's own flags: position independent) into `capacity` slots per env, or with `fit` as many as the
    fullest env uses (at most `capacity`; one host read, none without `fit`); `overflow` the contacts beyond."""
    flat = lambda x: torch.cat([x(c).flatten(1, 2) for c in parts], 1)  # noqa: E731
    dist, pos, normal = flat(lambda c: c.dist), flat(lambda c: c.pos), flat(lambda c: c.normal)
    tangent = flat(lambda c: c.tangent if c.tangent is not None else torch.zeros_like(c.pos))
    pair = torch.cat(pair_of_slot)
    valid = flat(lambda c: c.valid) & (dist < cm.pair_includemargin[pair])
    if near_of_slot is not None:
        valid = valid & torch.cat(near_of_slot)
    if cm.pair_env_active is not None:  # another variant's geoms of a heterogeneous entity make no contact
        valid = valid & cm.pair_env_active[:, pair]
    B = dist.shape[0]
    count = valid.sum(-1)
    C = min(capacity, int(count.max())) if fit else capacity
    if fit and C == 0:  # no contact in any env: no slot
        return empty_contact_set(B, dist.dtype, dist.device)
    order = torch.sort((~valid).to(torch.int8), dim=-1, stable=True).indices[:, :C]
    take = lambda x: x.gather(1, order.view(B, C, *([1] * (x.dim() - 2))).expand(B, C, *x.shape[2:]))  # noqa: E731
    return ContactSet(dist=take(dist), pos=take(pos), frame=contact_frame(take(normal), take(tangent)),
                      pair=pair[order], valid=take(valid), overflow=(count - C).clamp(min=0))


# ------------------------------------------------------------------------------ traceable detection (static shapes)
#: narrow-phase functions with static shapes and no host read (elementwise over (B, P); `detect_static` traces them)
STATIC_FUNCTIONS = frozenset(primitives.FUNCTIONS.values()) | frozenset(box.FUNCTIONS.values())


@dataclasses.dataclass
class StaticPlan:
    """How `detect_static` runs a contact model: the groups with static narrow phases (`STATIC_FUNCTIONS`), each with
    the candidate-pair indices of its pairs (numbered group after group, as `detect`) and its slots per pair, the
    other groups (`other`: GJK/EPA, meshes, height fields: left to `detect`), and `slots`, the static groups' slots
    per env (sum of pairs x slots per pair)."""

    static: list  # [(PairGroup, ids (P,) int64, K)]
    other: list  # [PairGroup]
    slots: int


def static_plan(cm: ContactModel) -> StaticPlan:
    """The `StaticPlan` of `cm` (computed once, kept on `cm`)."""
    plan = cm.__dict__.get("_static_plan")
    if plan is None:
        static, other, offset, slots = [], [], 0, 0
        for grp in cm.groups:
            P = grp.geom1.shape[0]
            if grp.fn in STATIC_FUNCTIONS:
                ids = offset + torch.arange(P, device=grp.geom1.device)
                K = _group_slots(cm, grp)
                static.append((grp, ids, K))
                slots += P * K
            else:
                other.append(grp)
            offset += P
        plan = cm.__dict__["_static_plan"] = StaticPlan(static, other, slots)
    return plan


def _group_slots(cm: ContactModel, grp: PairGroup) -> int:
    """The contact slots per pair of `grp`'s narrow phase (its K), from one call on the group's first pair at the
    origin."""
    dtype, device = cm.geom_size.dtype, cm.geom_size.device
    one = lambda ids: GeomBatch(torch.zeros(1, 1, 3, dtype=dtype, device=device),  # noqa: E731
                                torch.eye(3, dtype=dtype, device=device).expand(1, 1, 3, 3), cm.geom_size[ids[:1]])
    return int(grp.fn(one(grp.geom1), one(grp.geom2), grp.margin[:1]).dist.shape[-1])


def detect_static(cm: ContactModel, kin, gpos=None, gmat=None) -> ContactSet:
    """`detect` restricted to the groups of `static_plan(cm).static`, traceable (`torch.compile(fullgraph=True)`: no
    host read, static shapes): the narrow phase of every such candidate pair in every env, valid where `detect`'s
    would be (below the pair's `includemargin`, and the pair near in some env by `_near`, which is where `detect`
    runs it), packed valid-first in pair order into C = min(`cm.max_contacts`, plan's slots) slots per env.

    The valid slots are `detect`'s, in its order, with its values (elementwise narrow phases: the same bits on any
    subset of pairs); the slots past an env's contacts are invalid, as `detect`'s trailing ones (it keeps as many as
    the fullest env uses): rows of invalid slots change no bit of the solve (docs/rigid.md, "Contacts"). `overflow`
    as `detect`'s. Without the other groups' contacts: the caller checks those are not near (`any_pair_near`)."""
    plan = static_plan(cm)
    if gpos is None:
        gpos, gmat = geom_poses(cm, kin)
    B = gpos.shape[0]
    if not plan.static:
        return empty_contact_set(B, gpos.dtype, gpos.device)
    parts, pair_of_slot, near_of_slot = [], [], []
    for grp, ids, K in plan.static:
        c = grp.fn(_geom_batch(cm, gpos, gmat, grp.geom1), _geom_batch(cm, gpos, gmat, grp.geom2, None, grp.polygons2),
                   grp.margin)
        parts.append(c)
        pair_of_slot.append(ids[:, None].expand(-1, K).reshape(-1))
        near = _near(cm, grp, gpos, gmat).any(0)  # (P,) near in some env: the pairs `detect` runs
        near_of_slot.append(near[:, None].expand(-1, K).reshape(-1))
    return _pack(cm, parts, pair_of_slot, min(cm.max_contacts, plan.slots), fit=False, near_of_slot=near_of_slot)

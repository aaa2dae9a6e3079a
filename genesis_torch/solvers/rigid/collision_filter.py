"""Genesis' self-collision switches (`RigidOptions.enable_self_collision`, `enable_adjacent_collision`) as edits of one
entity's `MjSpec` before the scene compiles it, so MuJoCo's own contact filter (and this solver's copy of it,
`collision/detect.py`) gives Genesis' pairs. The exact mapping is in docs/rigid.md, "Self-collision".

Terms, on the entity's compiled model `m` (body 0 is the world):
- same tree: two bodies >= 1 with the same `body_rootid` (Genesis' `root_idx` is MuJoCo's `body_rootid`).
- Genesis-adjacent (a, b): walking up from b, a is the parent of b or of an ancestor reached only through bodies
  without joints (Genesis' walk through fixed joints), world excluded.
- MuJoCo-filtered: same weld group (`body_weldid`), or parent and child weld groups neither of which is the world's
  (MuJoCo's `filterparent`).
"""

from __future__ import annotations

import mujoco
import numpy as np

from ...errors import InvalidInputError
from .collision.detect import _mix

__all__ = ["filter_self_collision", "adjacent_pairs", "self_pairs", "mujoco_filtered", "keeps_parent_pairs"]


def adjacent_pairs(m: mujoco.MjModel) -> set[tuple[int, int]]:
    """Genesis-adjacent body pairs (ancestor, descendant) of `m`."""
    out = set()
    for b in range(1, m.nbody):
        c = b
        while m.body_parentid[c] != 0:
            out.add((int(m.body_parentid[c]), b))
            if m.body_jntnum[c] > 0:
                break
            c = int(m.body_parentid[c])
    return out


def self_pairs(m: mujoco.MjModel) -> list[tuple[int, int]]:
    """Body pairs (b1 < b2) of the same tree."""
    return [(b1, b2) for b1 in range(1, m.nbody) for b2 in range(b1 + 1, m.nbody)
            if m.body_rootid[b1] == m.body_rootid[b2]]


def keeps_parent_pairs(m: mujoco.MjModel) -> bool:
    """Whether the model's `<flag filterparent="disable"/>` makes MuJoCo keep parent-child contacts."""
    return bool(m.opt.disableflags & int(mujoco.mjtDisableBit.mjDSBL_FILTERPARENT))


def mujoco_filtered(m: mujoco.MjModel, b1: int, b2: int) -> bool:
    """Whether MuJoCo's weld / parent filter (as the model's `filterparent` flag sets it) already drops every geom
    pair of bodies b1, b2."""
    w1, w2 = int(m.body_weldid[b1]), int(m.body_weldid[b2])
    if w1 == w2 or keeps_parent_pairs(m):
        return w1 == w2
    weld_parent = lambda w: int(m.body_weldid[m.body_parentid[w]])  # noqa: E731
    return w1 != 0 and w2 != 0 and (w1 == weld_parent(w2) or w2 == weld_parent(w1))


def _geoms_collide(m: mujoco.MjModel, g1: int, g2: int) -> bool:
    return bool((m.geom_contype[g1] & m.geom_conaffinity[g2]) or (m.geom_contype[g2] & m.geom_conaffinity[g1]))


def _named(elements, kind: str, i: int) -> str:
    """The name of spec element `i` (compiled order), given "gt_<kind><i>" when it has none."""
    element = elements[i]
    if not element.name:
        element.name = f"gt_{kind}{i}"
    return element.name


def _check_order(spec: mujoco.MjSpec, m: mujoco.MjModel) -> None:
    """The spec's bodies and geoms are in compiled order (names agree wherever given)."""
    for elements, obj, n in ((spec.bodies, mujoco.mjtObj.mjOBJ_BODY, m.nbody),
                             (spec.geoms, mujoco.mjtObj.mjOBJ_GEOM, m.ngeom)):
        names = [e.name for e in elements]
        if len(names) != n or any(nm and nm != mujoco.mj_id2name(m, obj, i) for i, nm in enumerate(names)):
            raise InvalidInputError("self-collision filtering: the entity's spec does not list its bodies/geoms in "
                                    "compiled order; leave RigidOptions(enable_self_collision=True, "
                                    "enable_adjacent_collision=False) or report the model.")


def _add_pairs(spec: mujoco.MjSpec, m: mujoco.MjModel, b1: int, b2: int) -> None:
    """Explicit <pair>s for the geom pairs of bodies b1, b2 whose contype/conaffinity match, with the contact
    parameters MuJoCo gives the dynamic pair (`mj_contactParam`; margins and gaps add up as in MuJoCo 4)."""
    for g1 in np.flatnonzero(m.geom_bodyid == b1):
        for g2 in np.flatnonzero(m.geom_bodyid == b2):
            if not _geoms_collide(m, g1, g2):
                continue
            condim, friction, solref, solimp, gap = _mix(m, g1, g2)
            spec.add_pair(geomname1=_named(spec.geoms, "geom", g1), geomname2=_named(spec.geoms, "geom", g2),
                          condim=int(condim), friction=[friction[0], friction[0], friction[1], friction[2],
                                                        friction[2]],
                          solref=list(solref), solimp=list(solimp), gap=float(gap),
                          margin=float(m.geom_margin[g1] + m.geom_margin[g2]))


def filter_self_collision(spec: mujoco.MjSpec, m: mujoco.MjModel, options) -> None:
    """Edit `spec` (compiled as `m`) so its contacts follow `options.enable_self_collision` and
    `options.enable_adjacent_collision` (module docstring; docs/rigid.md). Adds `<exclude>`s (Genesis' pairs that MuJoCo
    keeps) or explicit `<pair>`s (Genesis' adjacent pairs that MuJoCo's parent filter drops, when adjacent collision is
    enabled); names the bodies/geoms involved that have no name ("gt_body<i>", "gt_geom<i>"). Same weld group pairs are
    never made to collide (their relative pose is fixed)."""
    # a file with filterparent disabled asks for parent-child contacts: it decides unless the option is given
    adjacent_on = options.enable_adjacent_collision if options.is_set("enable_adjacent_collision") else \
        options.enable_adjacent_collision or keeps_parent_pairs(m)
    if options.enable_self_collision:
        adjacent = adjacent_pairs(m)
        if adjacent_on:
            excluded, paired = [], [p for p in adjacent if mujoco_filtered(m, *p)
                                    and m.body_weldid[p[0]] != m.body_weldid[p[1]]]
        else:
            excluded, paired = [p for p in adjacent if not mujoco_filtered(m, *p)], []
    else:
        excluded, paired = [p for p in self_pairs(m) if not mujoco_filtered(m, *p)], []
    if not excluded and not paired:
        return
    _check_order(spec, m)
    for b1, b2 in sorted(excluded):
        spec.add_exclude(bodyname1=_named(spec.bodies, "body", b1), bodyname2=_named(spec.bodies, "body", b2))
    for b1, b2 in sorted(paired):
        _add_pairs(spec, m, b1, b2)

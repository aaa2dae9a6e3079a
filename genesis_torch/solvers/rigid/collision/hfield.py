"""Height field (geom 1) against a convex geom (sphere, capsule, ellipsoid, cylinder, box, mesh): MuJoCo's
`mjc_ConvexHField` (engine_collision_convex.c, read, not copied), batched over envs, pairs and cells.

MuJoCo's algorithm: geom 2 is expressed in the height field's frame; it is rejected when its bounding sphere
(`geom_rbound`, widened by the margin) misses the field's box [-s0, s0] x [-s1, s1] x [-s3, s2] (`hfield_size`
s0..s3) or when its axis-aligned box (support points along +-x, +-y, +-z) misses it by more than the margin. The
grid cells under that axis-aligned box widened by the margin in x and y (MuJoCo 4.0.1; MuJoCo 3's source does not
widen it), columns cmin..cmax-1 and rows rmin..rmax-1 with cmin = floor((xmin - margin + s0) / (2 s0) (ncol - 1)),
cmax = ceil((xmax + margin + s0) / (2 s0) (ncol - 1)) (rows likewise, clamped to the grid), are split into two triangular prisms each: for cell (c, r) the triangles
{(c, r+1), (c, r), (c+1, r+1)} then {(c, r), (c+1, r+1), (c+1, r)} (grid point (c, r) at x = c dx - s0,
y = r dy - s1, z = elevation), each extruded down to z = -s3. Prisms whose three top vertices, raised by the margin, all
lie below geom 2's lowest point are skipped; every other prism is collided with geom 2 by the convex-convex penetration
(here `convex._ccd_core`, MuJoCo 4's GJK/EPA with the margin handled as a sphere radius: one contact, the
distance of the two surfaces, the midpoint of the witness points, the normal from the prism to geom 2). The
contacts are kept in prism order (rows, then columns, then the two triangles), at most mjMAXCONPAIR = 50 per
pair. (MuJoCo 3's source then calls `mjc_fixNormal`; MuJoCo 4.0.1's normals are the penetration normals
unchanged: with them capsule and ellipsoid normals agree to 1e-12, with the fixed ones they did not.)

Batching: the cells examined per pair are a window of NR x NC cells fixed at build (`window`): the axis-aligned box
of geom 2 spans at most 2 rbound, so at most ceil(2 rbound / dx) + 1 columns and ceil(2 rbound / dy) + 1 rows of
cells (clamped to the grid), rbound widened by the margin, maximised over the group's pairs. Each (env, pair) places the window at its own
(cmin, rmin); cells past (cmax, rmax) and prisms failing the tests are masked. K = min(50, 2 NR NC) slots per
pair. The prisms that pass are gathered (one host sync) and run through GJK/EPA as a flat batch of polytopes
(6 vertices about the prism centre, MuJoCo's prism `center`) in the height field's frame, as MuJoCo's (its
rounding, which decides EPA's discrete stops); no Python loop runs over cells.

MuJoCo 4.0.1 checks (tests/rigid/test_terrain_contacts.py): 4.0.1 reports the surfaces' true distance with a
margin (not the distance to a prism raised by the margin, as MuJoCo 3's source suggests), which is what
`_ccd_core`'s margin handling gives; without a margin a prism and a box or mesh are discrete (polytope) shapes
whose EPA stops at a repeated support pair, the prism's vertex index being -1 (`convex.PRISM`): MuJoCo's prism
support records none.

The pair's height field arrives as geom 1's `GeomBatch.verts` = elevations (P, R, C) m (rows padded to the
largest field of the group) and `GeomBatch.vert_valid` = (P, 6) [s0, s1, s2, s3, nrow, ncol] (`hfield_data`).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from ....math.small import mtv as _mtv, mv as _mv
from . import convex
from .types import Contacts, GeomBatch

HFIELD = int(mujoco.mjtGeom.mjGEOM_HFIELD)
SPHERE, CAPSULE, ELLIPSOID = convex.SPHERE, convex.CAPSULE, convex.ELLIPSOID
CYLINDER, BOX, MESH = convex.CYLINDER, convex.BOX, convex.MESH
MAX_CONTACTS = 50  # mjMAXCONPAIR (mujoco/mjmodel.h): most contacts of one height-field pair
KINDS = (SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX, MESH)
MINVAL = 1e-15  # mjMINVAL


def hfield_data(m: mujoco.MjModel, geom_ids, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Elevations `(P, R, C)` m (MuJoCo's float32 `hfield_data` times size[2], zero-padded to the largest field)
    and sizes `(P, 6)` = (s0, s1, s2, s3, nrow, ncol) of the height fields of the hfield geoms `geom_ids`."""
    ids = [int(g) for g in np.asarray(geom_ids).reshape(-1)]
    hid = [int(m.geom_dataid[g]) for g in ids]
    R = max(int(m.hfield_nrow[h]) for h in hid)
    C = max(int(m.hfield_ncol[h]) for h in hid)
    grid = np.zeros((len(ids), R, C))
    info = np.zeros((len(ids), 6))
    for k, h in enumerate(hid):
        nr, nc, adr = int(m.hfield_nrow[h]), int(m.hfield_ncol[h]), int(m.hfield_adr[h])
        data = np.asarray(m.hfield_data[adr:adr + nr * nc], dtype=np.float64).reshape(nr, nc)
        grid[k, :nr, :nc] = data * m.hfield_size[h, 2]
        info[k] = (*m.hfield_size[h], nr, nc)
    t = lambda a: torch.as_tensor(a, device=device).to(dtype)  # noqa: E731
    return t(grid), t(info)


def window(m: mujoco.MjModel, geom1, geom2, margin) -> tuple[int, int]:
    """(NR, NC): the most rows and columns of cells geom 2's axis-aligned box, widened by the pair's margin, can
    cover, over the pairs (geom1[k] a height field, geom2[k] convex, margin[k] m): min(nrow - 1,
    ceil(2 (rbound + margin) / dy) + 1) rows and likewise columns, dy = 2 s1 / (nrow - 1), dx = 2 s0 / (ncol - 1)
    (module docstring)."""
    NR = NC = 1
    for g1, g2, mg in zip(np.asarray(geom1).reshape(-1), np.asarray(geom2).reshape(-1), np.asarray(margin).reshape(-1)):
        h = int(m.geom_dataid[int(g1)])
        nr, nc = int(m.hfield_nrow[h]), int(m.hfield_ncol[h])
        dx, dy = 2 * m.hfield_size[h, 0] / (nc - 1), 2 * m.hfield_size[h, 1] / (nr - 1)
        span = 2 * (float(m.geom_rbound[int(g2)]) + float(mg)) * (1 + 1e-9) + 1e-12  # guard: never a cell short
        NC = max(NC, min(nc - 1, math.ceil(span / dx) + 1))
        NR = max(NR, min(nr - 1, math.ceil(span / dy) + 1))
    return NR, NC


def _aabb(kind: int, g2: GeomBatch, rel_pos, rel_mat):
    """Geom 2's support extents in the height field frame: (lo (B, P, 3), hi (B, P, 3)) m."""
    local = GeomBatch(rel_pos, rel_mat, g2.size, g2.verts, g2.vert_valid)
    eye = torch.eye(3, dtype=rel_pos.dtype, device=rel_pos.device)
    hi = torch.stack([convex.support(kind, local, eye[k].expand_as(rel_pos))[..., k] for k in range(3)], -1)
    lo = torch.stack([convex.support(kind, local, -eye[k].expand_as(rel_pos))[..., k] for k in range(3)], -1)
    return lo, hi


def _cell_range(info, lo, hi):
    """(rmin, rmax, cmin, cmax) `(B, P)` int64 as MuJoCo computes them (module docstring)."""
    s0, s1 = info[:, 0], info[:, 1]
    nr, nc = info[:, 4], info[:, 5]
    cmin = torch.floor((lo[..., 0] + s0) / (2 * s0) * (nc - 1)).long()
    cmax = torch.ceil((hi[..., 0] + s0) / (2 * s0) * (nc - 1)).long()
    rmin = torch.floor((lo[..., 1] + s1) / (2 * s1) * (nr - 1)).long()
    rmax = torch.ceil((hi[..., 1] + s1) / (2 * s1) * (nr - 1)).long()
    ncl, nrl = nc.long().expand_as(cmin), nr.long().expand_as(rmin)
    return rmin.clamp(min=0), torch.minimum(rmax, nrl - 1), cmin.clamp(min=0), torch.minimum(cmax, ncl - 1)


# the three grid points (dc, dr) of each triangle of a cell, in MuJoCo's order (addVert's sliding window)
_TRIANGLES = (((0, 1), (0, 0), (1, 1)), ((0, 0), (1, 1), (1, 0)))


def hfield_convex(kind2: int, NR: int, NC: int, iterations: int = convex.CCD_ITERATIONS,
                  tolerance: float = convex.CCD_TOLERANCE):
    """Narrow-phase function `fn(g1, g2, margin) -> Contacts` for a height field (geom 1, its grid in
    `g1.verts` / `g1.vert_valid`, see `hfield_data`) against geom type `kind2`, over a window of NR x NC cells per
    pair (`window`). K = min(50, 2 NR NC) slots per pair: MuJoCo's contacts in its order (module docstring).
    `margin` (P,) or scalar, m; `iterations` / `tolerance` the model's ccd_iterations / ccd_tolerance."""
    if kind2 not in KINDS:
        raise ValueError(f"no height field collider for geom type {kind2}")
    M = 2 * NR * NC
    K = min(MAX_CONTACTS, M)

    def fn(g1: GeomBatch, g2: GeomBatch, margin) -> Contacts:
        B, P = g1.pos.shape[:2]
        dtype, dev = g1.pos.dtype, g1.pos.device
        margin = torch.as_tensor(margin, dtype=dtype, device=dev).expand(P)
        grid, info = g1.verts, g1.vert_valid
        s = info[:, :4]
        rel_pos = _mtv(g1.mat, g2.pos - g1.pos)  # geom 2 in the height field frame
        rel_mat = torch.stack([_mtv(g1.mat, g2.mat[..., :, j]) for j in range(3)], -1)  # mat1^T mat2, MuJoCo's order
        with torch.no_grad():
            rb = convex._rbound(kind2, g2)  # (P,)
            reach = (rb + margin)[None, :]
            near = ((s[:, 0] >= rel_pos[..., 0] - reach) & (-s[:, 0] <= rel_pos[..., 0] + reach)
                    & (s[:, 1] >= rel_pos[..., 1] - reach) & (-s[:, 1] <= rel_pos[..., 1] + reach)
                    & (s[:, 2] >= rel_pos[..., 2] - reach) & (-s[:, 3] <= rel_pos[..., 2] + reach))
            lo, hi = _aabb(kind2, g2, rel_pos.detach(), rel_mat.detach())
            mg = margin[None, :]
            near = near & ~((lo[..., 0] - mg > s[:, 0]) | (hi[..., 0] + mg < -s[:, 0]) | (lo[..., 1] - mg > s[:, 1])
                            | (hi[..., 1] + mg < -s[:, 1]) | (lo[..., 2] - mg > s[:, 2]) | (hi[..., 2] + mg < -s[:, 3]))
            wide = torch.stack((mg.expand_as(lo[..., 0]), mg.expand_as(lo[..., 0]), torch.zeros_like(lo[..., 0])), -1)
            rmin, rmax, cmin, cmax = _cell_range(info, lo - wide, hi + wide)  # MuJoCo 4.0.1: box widened by the margin
            ar = torch.arange(NR, device=dev)
            ac = torch.arange(NC, device=dev)
            r = (rmin[..., None, None] + ar[:, None]).expand(B, P, NR, NC)
            c = (cmin[..., None, None] + ac[None, :]).expand(B, P, NR, NC)
            cell_ok = near[..., None, None] & (r < rmax[..., None, None]) & (c < cmax[..., None, None])
            nrow, ncol = info[:, 4].long(), info[:, 5].long()
            C = grid.shape[2]
            # grid point (c + dc, r + dr) of every triangle vertex: (B, P, NR, NC, 2, 3)
            dc = torch.tensor([[v[0] for v in t] for t in _TRIANGLES], device=dev)
            dr = torch.tensor([[v[1] for v in t] for t in _TRIANGLES], device=dev)
            vc = c[..., None, None] + dc
            vr = r[..., None, None] + dr
            vc = torch.minimum(vc, (ncol - 1)[None, :, None, None, None, None])
            vr = torch.minimum(vr, (nrow - 1)[None, :, None, None, None, None])
            flat = (vr * C + vc).reshape(B, P, -1)
            z = torch.gather(grid.reshape(1, P, -1).expand(B, P, -1), 2, flat).reshape(vr.shape)
            dx = (2 * s[:, 0] / (ncol - 1).to(dtype))[None, :, None, None, None, None]
            dy = (2 * s[:, 1] / (nrow - 1).to(dtype))[None, :, None, None, None, None]
            x = dx * vc.to(dtype) - s[:, 0][None, :, None, None, None, None]
            y = dy * vr.to(dtype) - s[:, 1][None, :, None, None, None, None]
            top = torch.stack((x, y, z), -1)  # (B, P, NR, NC, 2, 3, 3)
            bottom = torch.stack((x, y, (-s[:, 3])[None, :, None, None, None, None].expand_as(x)), -1)
            verts = torch.cat((top, bottom), -2).reshape(B, P, M, 6, 3)
            tall = ((z + mg[..., None, None, None, None]) >= lo[..., 2][..., None, None, None, None]).any(-1)
            tall = tall.reshape(B, P, M)  # MuJoCo's height test (top vertices raised by the margin)
            active = cell_ok[..., None].expand(B, P, NR, NC, 2).reshape(B, P, M) & tall
            idx = active.reshape(-1).nonzero().squeeze(-1)
        N = idx.numel()
        b, p, k = idx // (P * M), (idx // M) % P, idx % M
        if N:
            pv = verts[b, p, k]  # (N, 6, 3) height field frame
            centre = (pv[:, 3] + pv[:, 4] + pv[:, 5] + pv[:, 0] + pv[:, 1] + pv[:, 2]) / 6  # MuJoCo: bottom, then top
            g1m = g1.mat[b, p]
            # the search runs in the height field's frame, as MuJoCo's (prisms at their grid coordinates, geom 2 at
            # its relative pose); contact points and normals are turned back to the world frame after
            eye = torch.eye(3, dtype=dtype, device=dev).expand(1, N, 3, 3)
            prism = GeomBatch(centre[None], eye, torch.zeros(N, 3, dtype=dtype, device=dev), pv - centre[:, None, :],
                              torch.ones(N, 6, dtype=torch.bool, device=dev))
            other = GeomBatch(rel_pos[b, p][None], rel_mat[b, p][None], g2.size[p],
                              None if g2.verts is None else g2.verts[p],
                              None if g2.vert_valid is None else g2.vert_valid[p])
            dist, pos, normal, valid, _ = convex._ccd_core(convex.PRISM, kind2, prism, other, margin[p], iterations,
                                                           tolerance)
            dist, valid = dist[0], valid[0]
            pos, normal = g1.pos[b, p] + _mv(g1m, pos[0]), _mv(g1m, normal[0])
        full = lambda x, fill: x.new_full((B, P, M) + x.shape[1:], fill).index_put((b, p, k), x)  # noqa: E731
        if N:
            D = full(dist, 0.0)
            X = full(pos, 0.0)
            Nn = full(normal, 0.0)
            V = torch.zeros(B, P, M, dtype=torch.bool, device=dev).index_put((b, p, k), valid)
        else:
            D = torch.zeros(B, P, M, dtype=dtype, device=dev)
            X = torch.zeros(B, P, M, 3, dtype=dtype, device=dev)
            Nn = torch.zeros(B, P, M, 3, dtype=dtype, device=dev)
            V = torch.zeros(B, P, M, dtype=torch.bool, device=dev)
        if K < M:  # the first 50 contacts in prism order (mjMAXCONPAIR)
            order = torch.sort((~V).to(torch.int8), dim=-1, stable=True).indices[..., :K]
            take = lambda x: x.gather(2, order.view(B, P, K, *([1] * (x.dim() - 3))).expand(  # noqa: E731
                B, P, K, *x.shape[3:]))
            D, X, Nn, V = take(D), take(X), take(Nn), take(V)
        return convex._contacts(D, X, Nn, V, margin, g2.pos)

    fn.__name__ = f"hfield_{mujoco.mjtGeom(kind2).name[7:].lower()}"
    fn.K = K
    return fn


# one-cell windows, so `detect.FUNCTIONS` lists the supported pairs; `detect.build_contact_model` replaces each by
# `hfield_convex` with the window of its group's pairs (`window`)
FUNCTIONS = {(HFIELD, k): hfield_convex(k, 1, 1) for k in KINDS}

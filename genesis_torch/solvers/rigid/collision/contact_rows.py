"""Constraint rows of contacts, as MuJoCo builds them (`mj_instantiateContact`, `mj_diagApprox`, `mj_makeImpedance`
in engine_core_constraint.c).

With J_n, J_t1, J_t2 the relative velocity Jacobian of the contact point along the contact frame and mu_1, mu_2
the friction coefficients, a condim-3 contact gives

    pyramidal cone: 4 inequality rows J_n +- mu_k J_tk, each with R = 2 mu^2 R_0 (MuJoCo's match of the elliptic
                    cone's impedance), mu = mu_1 sqrt(1 / impratio), R_0 from A = tran (1 + mu_1^2);
    elliptic cone:  3 cone rows (J_n, J_t1, J_t2) with R_0 from A = tran, R_1 = R_0 / impratio, R_2 = R_1 mu_1^2/mu_2^2,
                    no position term on the tangent rows (their damping from solreffriction when set);

and a condim-1 contact one inequality row J_n. `tran` is the bodies' summed `body_invweight0` (translation).
"""

from __future__ import annotations

import torch

from ..constraints import ConstraintRows, clamp_solimp, impedance, regulariser, spring_damper
from ..jacobians import frame_jacobian_columns, frame_jacobian_difference
from ..linalg import matvec
from .detect import ContactModel, ContactSet


def pair_friction_of(cm: ContactModel, pair: torch.Tensor, pair_friction=None) -> torch.Tensor:
    """Tangential friction `(B, C, 2)` of the contacts of candidate pairs `pair (B, C)`: the contact model's, or
    `pair_friction (1|B, np, 2)` (per-env friction ratios, `params.derive`)."""
    if pair_friction is None:
        return cm.pair_friction[pair]
    if pair_friction.shape[0] == 1:
        return pair_friction[0][pair]
    return pair_friction.gather(1, pair[..., None].expand(*pair.shape, 2))


def contact_rows(cm: ContactModel, model, kin, contacts: ContactSet, qvel, dt: float,
                 pair_friction=None, body_invweight=None) -> ConstraintRows:
    """Rows of the contact slots `(B, C)`: C rows (all frictionless), 4C (pyramidal) or 3C (elliptic, as cones).
    `pair_friction`: per-env friction of the candidate pairs (see `pair_friction_of`); `body_invweight (1|B, nb, 2)`:
    per-env `body_invweight0` (the model's when None)."""
    c, pair = contacts, contacts.pair
    body = cm.pair_body[pair]  # (B, C, 2)
    B, C = c.dist.shape
    # on large models (cm.pair_cols) the Jacobians are formed at the K dofs of the two bodies' chains, the rows
    # scattered to nv columns at the end (`dense`); else over all nv dofs
    cols = None if cm.pair_cols is None else cm.pair_cols[pair]  # (B, C, K)
    if cols is None:
        Jf = frame_jacobian_difference(model, kin, body[..., 0], body[..., 1], c.pos, c.frame)  # (B, C, 3, nv)
        vel = qvel[:, None]
        dense = lambda x: x  # noqa: E731
        compact = lambda x: None  # noqa: E731
    else:
        Jf = frame_jacobian_columns(model, kin, body[..., 0], body[..., 1], c.pos, c.frame, cols)  # (B, C, 3, K)
        vel = torch.cat((qvel, qvel.new_zeros(B, 1)), 1).gather(1, cols.flatten(1)).view(cols.shape)
        nv = model.nv

        def dense(x):  # (B, C, r, K) -> (B, C, r, nv): a slot's columns are distinct; padding goes to column nv
            idx = cols[:, :, None, :].expand(*x.shape)
            return x.new_zeros(*x.shape[:-1], nv + 1).scatter(-1, idx, x)[..., :nv]
        compact = lambda x: x  # noqa: E731  (B, C, per, K): the rows at their columns (ConstraintRows.Jc)
    Jf = torch.where(c.valid[..., None, None], Jf, 0.0)  # rows n, t1, t2
    vf = matvec(Jf, vel)  # (B, C, 3) velocities along the frame
    solimp = cm.pair_solimp[pair]
    margin = cm.pair_includemargin[pair]
    imp = impedance(solimp, c.dist, margin)
    dmax = clamp_solimp(solimp)[..., 1]
    k, b = spring_damper(cm.pair_solref[pair], dmax, dt)
    pos_term = torch.where(c.valid, k * imp * (c.dist - margin), 0.0)
    if body_invweight is None or body_invweight.shape[0] == 1:
        iw = model.body_invweight0 if body_invweight is None else body_invweight[0]
        tran = iw[body[..., 0], 0] + iw[body[..., 1], 0]
    else:
        iw = body_invweight[..., 0]  # (B, nb)
        tran = iw.gather(1, body[..., 0]) + iw.gather(1, body[..., 1])
    frictional = (cm.pair_condim[pair] == 3) & c.valid
    fr = pair_friction_of(cm, pair, pair_friction)  # (B, C, 2)
    if not cm.frictional:
        aref = torch.where(c.valid, -b * vf[..., 0] - pos_term, 0.0)
        return ConstraintRows(dense(Jf[..., :1, :])[..., 0, :], aref, 1.0 / regulariser(imp, tran), c.valid,
                              cols=cols, Jc=compact(Jf[..., :1, :]), per=1)
    if not cm.elliptic:
        R0 = regulariser(imp, torch.where(frictional, tran + fr[..., 0] * fr[..., 0] * tran, tran))
        mu = fr[..., 0] * torch.sqrt(R0 / cm.impratio / R0)
        R = torch.where(frictional, 2 * mu * mu * R0, R0)
        signs = torch.tensor([1.0, -1.0], dtype=Jf.dtype, device=Jf.device)
        ft = fr[..., :, None] * signs  # (B, C, 2 tangents, 2 signs)
        edges = Jf[..., :1, None, :] + ft[..., None] * Jf[..., 1:, None, :]  # (B, C, 2, 2, nv)
        edges = torch.where(frictional[..., None, None, None], edges, Jf[..., :1, None, :].expand_as(edges))
        J = edges.reshape(B, C, 4, -1)
        vel = vf[..., :1] + (ft * vf[..., 1:, None]).reshape(B, C, 4) * frictional[..., None]
        aref = -b[..., None] * vel - pos_term[..., None]
        valid = torch.stack((c.valid, frictional, frictional, frictional), -1)
        aref = torch.where(valid, aref, 0.0)
        J = torch.where(valid[..., None], J, 0.0)
        D = (1.0 / R)[..., None].expand(B, C, 4)
        return ConstraintRows(dense(J).reshape(B, 4 * C, -1), aref.reshape(B, -1), D.reshape(B, -1),
                              valid.reshape(B, -1), cols=cols, Jc=compact(J), per=4)
    R0 = regulariser(imp, tran)
    R1 = R0 / cm.impratio
    R2 = R1 * fr[..., 0] * fr[..., 0] / (fr[..., 1] * fr[..., 1])
    mu = torch.where(frictional, fr[..., 0] * torch.sqrt(R1 / R0), 1.0)  # 1: placeholder of frictionless slots
    solreffriction = cm.pair_solreffriction[pair]
    use_f = (solreffriction[..., 0] != 0) | (solreffriction[..., 1] != 0)
    _, b_f = spring_damper(torch.where(use_f[..., None], solreffriction, cm.pair_solref[pair]), dmax, dt)
    aref = torch.stack((-b * vf[..., 0] - pos_term, -b_f * vf[..., 1], -b_f * vf[..., 2]), -1)
    valid = torch.stack((c.valid, frictional, frictional), -1)
    aref = torch.where(valid, aref, 0.0)
    J = torch.where(valid[..., None], Jf, 0.0)
    D = 1.0 / torch.stack((R0, R1, R2), -1)
    return ConstraintRows(dense(J).reshape(B, 3 * C, -1), aref.reshape(B, -1), D.reshape(B, -1), valid.reshape(B, -1),
                          nc=C, mu=mu, friction=fr, cols=cols, Jc=compact(J), per=3)

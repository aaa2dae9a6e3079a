"""Constitutive models of the MPM solver: Kirchhoff stress and plastic return mappings, batched over particles.

Every function takes deformation gradients `F: (..., 3, 3)` (dimensionless) and Lamé parameters `mu, lam: (...)`
in Pa, and returns the Kirchhoff stress `tau = P F^T: (..., 3, 3)` in Pa, which is what the MLS-MPM momentum
update needs (Hu et al. 2018, "A Moving Least Squares Material Point Method", §4: the stress term
`-dt V0 M^-1 P F^T (x_i - x_p)`). Return mappings take the trial gradient `(I + dt C) F` and return the projected
elastic gradient and the updated plastic volume ratio `Jp` (..., dimensionless).

References:
    [S12] Stomakhin, Howes, Schroeder, Teran 2012, "Energetically consistent invertible elasticity", §3 (fixed
          corotated energy psi = mu ||F - R||^2 + lam/2 (J - 1)^2, so tau = 2 mu (F - R) F^T + lam (J - 1) J I).
    [S13] Stomakhin, Schroeder, Chai, Teran, Selle 2013, "A material point method for snow simulation", §4-5
          (singular values of F_E clamped to [1 - theta_c, 1 + theta_s]; hardening exp(xi (1 - J_P)) of mu, lam).
    [K16] Klár, Gast, Pradhana, Fu, Schroeder, Jiang, Teran 2016, "Drucker-Prager elastoplasticity for sand
          animation", §6 (St. Venant-Kirchhoff on the Hencky strain eps = ln Sigma: tau = U (2 mu eps + lam tr(eps)
          I) U^T) and §7.3 (projection onto the Drucker-Prager cone, alpha = sqrt(2/3) 2 sin(phi) / (3 - sin(phi))).
    [BW08] Bonet & Wood 2008, "Nonlinear Continuum Mechanics for Finite Element Analysis", §6.4.3 (compressible
          neo-Hookean: tau = mu (F F^T - I) + lam ln(J) I).
    [SH98] Simo & Hughes 1998, "Computational Inelasticity", §3.3 (radial return for J2 / von Mises plasticity;
          applied here to the Hencky strain deviator).
    [T17] Tampubolon, Gast, Klár, Fu, Teran, Jiang, Museth 2017, "Multi-species simulation of porous sand and
          water mixtures", ACM TOG 36(4) 105, §4.3.2 (volume correction: the log plastic volume gain is added back
          to the Hencky strain before the Drucker-Prager projection).
    [H86] Higham 1986, "Computing the polar decomposition - with applications", §3 (scaled Newton iteration).
"""

from __future__ import annotations

import math

import torch

from ...math.small import det, mm
from .svd3 import svd3_jacobi

__all__ = ["polar_rotation", "svd3", "corotated_tau", "neohookean_tau", "hencky_tau", "liquid_tau",
           "clamp_singular_values", "von_mises_project", "drucker_prager_project", "sand_alpha"]

#: Newton iterations of `polar_rotation`: measured to reach the SVD reference's round-off floor (float64) for cond(F)
#: up to 1e7, reflections included (|det X|^(-1/3) scaling needed 7)
POLAR_ITERATIONS = 6
SIGMA_MIN = 1e-4  #: singular values are clamped to at least this before logarithms (Hencky strain)


def _eye(like: torch.Tensor) -> torch.Tensor:
    return torch.eye(3, dtype=like.dtype, device=like.device)


def polar_rotation(F: torch.Tensor, iterations: int = POLAR_ITERATIONS) -> torch.Tensor:
    """The orthogonal factor R of the polar decomposition F = R S, by Higham's scaled Newton iteration [H86]:
    X <- (g X + X^-T / g) / 2 with the Frobenius-norm scaling g = (||X^-1||_F / ||X||_F)^(1/2) (square roots only:
    they vectorize, where |det X|^(-1/3) needs a scalar pow). (..., 3, 3) -> (..., 3, 3).

    Runs on the nine components as separate contiguous tensors (X^-T = cof(X) / det X written out), which is far
    faster than (..., 3, 3) slicing for many small matrices. Differentiable by unrolling (well defined at repeated
    singular values, unlike an SVD backward). For det F < 0 the factor is a reflection (det R = -1), not the rotation
    of a rotation-variant SVD (docs/mpm.md, sharp bits).
    """
    a, b, c, d, e, f, g_, h, i = F.reshape(*F.shape[:-2], 9).movedim(-1, 0).contiguous().unbind(0)
    for _ in range(iterations):
        # cofactor matrix of [[a, b, c], [d, e, f], [g, h, i]]
        ca, cb, cc = e * i - f * h, f * g_ - d * i, d * h - e * g_
        cd, ce, cf = c * h - b * i, a * i - c * g_, b * g_ - a * h
        cg, ch, ci = b * f - c * e, c * d - a * f, a * e - b * d
        det = a * ca + b * cb + c * cc
        # ||X^-1||_F = ||cof X||_F / |det X|
        ncof = ca * ca + cb * cb + cc * cc + cd * cd + ce * ce + cf * cf + cg * cg + ch * ch + ci * ci
        nx = a * a + b * b + c * c + d * d + e * e + f * f + g_ * g_ + h * h + i * i
        s = torch.sqrt(torch.sqrt(ncof / nx.clamp_min(1e-30)) / det.abs().clamp_min(1e-30))
        t = 0.5 / (s * det)
        s = 0.5 * s
        a, b, c = s * a + t * ca, s * b + t * cb, s * c + t * cc
        d, e, f = s * d + t * cd, s * e + t * ce, s * f + t * cf
        g_, h, i = s * g_ + t * cg, s * h + t * ch, s * i + t * ci
    return torch.stack((a, b, c, d, e, f, g_, h, i), -1).reshape(F.shape)


class _SVD3(torch.autograd.Function):
    """Rotation-variant SVD of 3x3 matrices (det U = det V = +1, the sign on the last singular value) computed with
    elementwise ops (svd3.py: Jacobi eigenvectors of F^T F, then a Givens QR of F V; LAPACK's per-matrix `gesdd`
    measured 15.6 vs 4.8 ms for 4,800 matrices and 395 vs 48 ms for 76,800, float32, 1 thread), with the standard
    backward (Townsend 2016, "Differentiating the singular value decomposition", square case), whose
    1 / (s_j^2 - s_i^2) factors are dropped where two singular values (nearly) coincide."""

    @staticmethod
    def forward(ctx, F):
        U, S, V = svd3_jacobi(F)
        ctx.save_for_backward(U, S, V)
        return U, S, V

    @staticmethod
    def backward(ctx, gU, gS, gV):
        U, S, V = ctx.saved_tensors
        s2 = S * S
        d = s2[..., None, :] - s2[..., :, None]  # d_ij = s_j^2 - s_i^2
        scale = s2.amax(-1, keepdim=True)[..., None].clamp_min(1e-30)
        near = d.abs() <= 1e-12 * scale
        Finv = torch.where(near, torch.zeros_like(d), 1.0 / torch.where(near, torch.ones_like(d), d))
        inner = torch.diag_embed(gS if gS is not None else torch.zeros_like(S))
        if gU is not None:
            J = U.transpose(-1, -2) @ gU
            inner = inner + (Finv * (J - J.transpose(-1, -2))) * S[..., None, :]
        if gV is not None:
            K = V.transpose(-1, -2) @ gV
            inner = inner + S[..., :, None] * (Finv * (K - K.transpose(-1, -2)))
        return U @ inner @ V.transpose(-1, -2)


def svd3(F: torch.Tensor):
    """(U, sigma, V) with F = U diag(sigma) V^T, U and V rotations.
    (..., 3, 3) -> (..., 3, 3), (..., 3), (..., 3, 3)."""
    return _SVD3.apply(F)


def _compose(U, s, V):
    return mm(U * s[..., None, :], V.transpose(-1, -2))


def corotated_tau(F, mu, lam):
    """Fixed corotated [S12]: tau = 2 mu (F - R) F^T + lam (J - 1) J I, R the polar rotation of F."""
    R = polar_rotation(F)
    J = det(F)
    return 2 * mu[..., None, None] * mm(F - R, F.transpose(-1, -2)) + (lam * (J - 1) * J)[..., None, None] * _eye(F)


def neohookean_tau(F, mu, lam):
    """Compressible neo-Hookean [BW08]: tau = mu (F F^T - I) + lam ln(J) I."""
    J = det(F)
    I = _eye(F)
    return mu[..., None, None] * (mm(F, F.transpose(-1, -2)) - I) + (lam * torch.log(J))[..., None, None] * I


def hencky_tau(F, mu, lam):
    """St. Venant-Kirchhoff on the Hencky strain [K16 §6]: tau = U (2 mu eps + lam tr(eps) I) U^T, eps = ln sigma."""
    U, s, _ = svd3(F)
    eps = torch.log(s.clamp_min(SIGMA_MIN))
    diag = 2 * mu[..., None] * eps + (lam * eps.sum(-1))[..., None]
    return _compose(U, diag, U)


def liquid_tau(F, lam):
    """Weakly compressible liquid: tau = lam J (J - 1) I, J = det F (pressure only)."""
    J = det(F)
    return (lam * J * (J - 1))[..., None, None] * _eye(F)


def clamp_singular_values(F, Jp, lower: float, upper: float):
    """[S13 §5]: clamp the singular values of the trial F_E to [1 - lower, 1 + upper]; the excess goes to
    Jp <- Jp det(F_trial) / det(F_E). Returns (F_E, Jp)."""
    U, s, V = svd3(F)
    sc = s.clamp(1.0 - lower, 1.0 + upper)
    return _compose(U, sc, V), Jp * s.prod(-1) / sc.prod(-1)


def von_mises_project(F, Jp, mu, yield_stress: float):
    """Radial return [SH98] on the Hencky strain: if ||dev eps|| > tau_y / (2 mu), shrink dev eps to that radius.
    Returns (F_E, Jp) with Jp <- Jp det(F_trial) / det(F_E) (1 when the flow is isochoric)."""
    U, s, V = svd3(F)
    eps = torch.log(s.clamp_min(SIGMA_MIN))
    dev = eps - eps.mean(-1, keepdim=True)
    norm = dev.norm(dim=-1, keepdim=True)
    excess = (norm - yield_stress / (2 * mu[..., None])).clamp_min(0.0)
    eps_new = eps - excess * dev / norm.clamp_min(1e-30)
    s_new = torch.exp(eps_new)
    return _compose(U, s_new, V), Jp * s.prod(-1) / s_new.prod(-1)


def sand_alpha(friction_angle_deg: float) -> float:
    """Drucker-Prager cone coefficient of [K16 §7.3]: alpha = sqrt(2/3) 2 sin(phi) / (3 - sin(phi))."""
    sphi = math.sin(math.radians(friction_angle_deg))
    return math.sqrt(2.0 / 3.0) * 2.0 * sphi / (3.0 - sphi)


def drucker_prager_project(F, Jp, mu, lam, alpha: float, volume_correction: bool = True,
                           dilatancy: tuple[float, float, float] | None = None):
    """Projection onto the Drucker-Prager cone [K16 §7.3, Algorithm 2], on eps = ln sigma:
    tr(eps) > 0 (expansion): eps <- 0 (the tip); else dgamma = ||dev eps|| + (3 lam + 2 mu) / (2 mu) tr(eps) alpha;
    dgamma <= 0: inside the cone, unchanged; else eps <- eps - dgamma dev eps / ||dev eps||.
    Returns (F_E, Jp) with Jp <- Jp det(F_trial) / det(F_E), the plastic volume ratio det F_P.

    `volume_correction` [T17 §4.3.2]: the projection sees eps + ln(Jp) / 3, the strain as if the plastic volume
    gained at the tip (Jp > 1: grains that separated) were still elastic, so a dilated region first has to be
    compressed back to its old volume before it carries pressure (and friction) again; without it every tip
    projection forgets the gap and the next compression stiffens at once, which makes the flow too cohesive. The
    Jp update above then gives Jp = exp(tr) at the tip and Jp = 1 on or in the cone (the volume is returned to F_E).
    Genesis 1.4.5 keeps the same log-volume (its `Jp`) but adds it to the trace only, not to the returned strain
    (docs/mpm.md, "Granular collapse").

    `dilatancy` = (phi_cs, psi_0, e_c) (`Sand.dilatancy`; None: the above, bitwise): dense sand, see
    `_dilatant_project`; `alpha` is then unused."""
    if dilatancy is not None:
        return _dilatant_project(F, Jp, mu, lam, *dilatancy, volume_correction=volume_correction)
    U, s, V = svd3(F)
    eps = torch.log(s.clamp_min(SIGMA_MIN))
    if volume_correction:
        eps = eps + torch.log(Jp.clamp_min(1e-30))[..., None] / 3.0
    tr, dev, norm = _trace_deviator(eps)
    dgamma = norm + ((3 * lam + 2 * mu) / (2 * mu))[..., None] * tr * alpha
    cone = eps - dgamma.clamp_min(0.0) * dev / norm.clamp_min(1e-30)
    return _tip_or_cone(U, s, V, Jp, tr, cone)


def _trace_deviator(eps):
    """(tr eps `(..., 1)`, dev eps `(..., 3)`, ||dev eps|| `(..., 1)`) of log strains `eps (..., 3)`."""
    tr = eps.sum(-1, keepdim=True)
    dev = eps - tr / 3.0
    return tr, dev, dev.norm(dim=-1, keepdim=True)


def _tip_or_cone(U, s, V, Jp, tr, cone):
    """(F_E, Jp) of a Drucker-Prager return: the tip eps = 0 where tr eps > 0, else the returned log strains `cone
    (..., 3)`; Jp <- Jp det(F_trial) / det(F_E) (`s` the trial singular values, `U`, `V` its rotations)."""
    eps_new = torch.where(tr > 0, torch.zeros_like(cone), cone)
    s_new = torch.exp(eps_new)
    return _compose(U, s_new, V), Jp * s.prod(-1) / s_new.prod(-1)


def _dilatant_project(F, Jp, mu, lam, phi_cs: float, psi0: float, e_c: float, volume_correction: bool = True):
    """Drucker-Prager return with dilatancy softening to a critical state [B86], on eps = ln sigma.

    State: e = ln Jp >= 0, the plastic log volume gain; its first e_v = min(e, e_c) is dilatancy (permanent: the
    grains stay as loose as their critical state), the rest e - e_v the open gap of the volume correction [T17]
    (the projection sees eps + (e - e_v) / 3). Per particle: psi = psi_0 (1 - e_v / e_c) (0 at the critical state),
    phi = phi_cs + 0.8 psi [B86, plane strain], the cone alpha = sqrt(2) sin(phi) / 3 (the plane-strain match of
    `Sand.plane_strain_angle`: alpha = sqrt(2/3) 2 sin(phi_k) / (3 - sin(phi_k)) = sqrt(2) A / 3, A = sin(phi)) and the
    plastic strain increment dgamma (n + beta I), n = dev eps / ||dev eps||, beta = sin(psi) / sqrt(2) (in plane
    strain its in-plane part has (d eps_1 + d eps_3) / (d eps_1 - d eps_3) = sin(psi), the Mohr-Coulomb dilatancy
    angle [V90]). Consistency ||dev eps|| - dgamma + c alpha (tr eps - 3 beta dgamma) = 0, c = (3 lam + 2 mu) / (2 mu):
    dgamma = (||dev eps|| + c alpha tr eps) / (1 + 3 c alpha beta) (Klár et al.'s at beta = 0). tr eps > 0: the tip
    (eps <- 0), as without dilatancy. Jp <- Jp det(F_trial) / det(F_E) as `drucker_prager_project`, so on the cone
    ln Jp becomes e_v + 3 beta dgamma (the gap returned to F_E, the dilation kept). Angles in degrees.

    [B86] Bolton 1986, "The strength and dilatancy of sands", Géotechnique 36(1), 65-78: phi_max - phi_crit =
          0.8 psi_max in plane strain; phi_crit the constant-volume (critical-state) angle.
    [V90] Vermeer 1990, "The orientation of shear bands in biaxial tests", Géotechnique 40(2), 223-236."""
    U, s, V = svd3(F)
    eps = torch.log(s.clamp_min(SIGMA_MIN))
    e = torch.log(Jp.clamp_min(1e-30))
    e_v = e.clamp(0.0, e_c)
    if volume_correction:
        eps = eps + (e - e_v)[..., None] / 3.0
    psi = math.radians(psi0) * (1.0 - e_v / e_c)
    alpha = (math.sqrt(2.0) / 3.0) * torch.sin(math.radians(phi_cs) + 0.8 * psi)
    beta = torch.sin(psi) / math.sqrt(2.0)
    tr, dev, norm = _trace_deviator(eps)
    c = ((3 * lam + 2 * mu) / (2 * mu))[..., None]
    a, b = alpha[..., None], beta[..., None]
    dgamma = ((norm + c * tr * a) / (1.0 + 3.0 * c * a * b)).clamp_min(0.0)
    cone = eps - dgamma * (dev / norm.clamp_min(1e-30) + b)
    return _tip_or_cone(U, s, V, Jp, tr, cone)

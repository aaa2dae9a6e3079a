"""Data passed between the broad phase, the narrow-phase functions and the contact constraints.

A narrow-phase function handles one pair of geom types for P geom pairs in B envs at once and returns a fixed
number K of contact slots per pair (MuJoCo's maximum for that type pair); `valid` marks the slots that hold a
contact (distance below the pair's margin). Conventions follow MuJoCo's `mjContact`: the normal points from geom 1
to geom 2, `dist < 0` means penetration, `pos` is the midpoint between the two surfaces.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class GeomBatch:
    """One side of P geom pairs: world poses (per env) and MuJoCo's geom parameters (shared by envs).

    `size` is MuJoCo's `geom_size` (sphere: radius; capsule/cylinder: radius, half-length; ellipsoid and box:
    half-sizes; plane: half-sizes, unused as planes are infinite). Meshes carry their convex hull's vertices,
    padded to the largest hull (`vert_valid` marks the real ones) and given in the geom frame.
    """

    pos: torch.Tensor  # (B, P, 3) m, world
    mat: torch.Tensor  # (B, P, 3, 3) rotation, columns = geom axes in world
    size: torch.Tensor  # (P, 3) m
    verts: torch.Tensor | None = None  # (P, V, 3) m, geom frame (meshes only)
    vert_valid: torch.Tensor | None = None  # (P, V) bool
    polygons: object | None = None  # convex.MeshPolygons of the hulls (plane-mesh's extra contacts), or None


@dataclasses.dataclass
class Contacts:
    """K contact slots for each of P geom pairs in B envs."""

    dist: torch.Tensor  # (B, P, K) signed distance, m (< 0 penetrating)
    pos: torch.Tensor  # (B, P, K, 3) m, world, midpoint between the surfaces
    normal: torch.Tensor  # (B, P, K, 3) unit, world, from geom 1 to geom 2
    valid: torch.Tensor  # (B, P, K) bool, slot holds a contact (dist < margin)
    # (B, P, K, 3) or None: first tangent where MuJoCo's collider sets one (frame[3:6], e.g. along a capsule's
    # axis for plane-capsule); None or a zero vector lets the contact frame pick it (MuJoCo's mju_makeFrame)
    tangent: torch.Tensor | None = None


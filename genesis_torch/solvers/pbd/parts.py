"""Particles and constraints of PBD entities from their morphs (NumPy float64, metres), at `add_entity`.

* Cloth: the triangle mesh of a `Mesh` morph (trimesh, duplicate vertices merged), one particle per vertex, mass
  rho * area shared equally (Genesis), a distance constraint per unique edge and a dihedral bending constraint per
  interior edge (trimesh's face adjacency, Genesis' choice), rest values from the mesh as placed.
* Elastic: the solid tetrahedralised by `geometry.volume.tetrahedralize` (tetgen with the morph's Genesis options
  `minratio`, `mindihedral`, `maxvolume`, ...; the optional extra), mass rho * volume shared equally (Genesis), a
  distance constraint per tet edge and a volume constraint per tet (Genesis' PBD3DEntity has no bending).
* Liquid / Particle: `geometry.sample_particles` at `particle_size`, mass rho * particle_size^3 each.
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInputError, UnsupportedFeatureError
from ...geometry import sample_particles, surface_mesh
from ...materials import PBD
from ...morphs import Box, Cylinder, Mesh, Sphere
from .constraints import bending as _bending
from .model import CLOTH, ELASTIC, LIQUID, PARTICLE, Parts

__all__ = ["cloth_parts", "elastic_parts", "particle_parts", "dihedral_rest"]

_SOLIDS = (Box, Sphere, Cylinder, Mesh)


def dihedral_rest(pos: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Signed rest dihedral angles `(k,)` rad of bending quads `(k, 4)` (wings, hinge) at positions `(n, 3)`."""
    import torch

    x = torch.as_tensor(pos[quads][None], dtype=torch.float64)
    c, _ = _bending(x, torch.zeros(len(quads), dtype=torch.float64))
    return c[0].numpy()


def _bending_quads(tm) -> np.ndarray:
    """`(k, 4)` (wing of face a, wing of face b, hinge v, hinge w) for every pair of faces sharing an edge, ordered
    so that face a = (hinge v, hinge w, wing a) winds like the mesh."""
    import trimesh

    adj, edges = trimesh.graph.face_adjacency(mesh=tm, return_edges=True)
    if len(adj) == 0:
        return np.zeros((0, 4), np.int64)
    faces = np.asarray(tm.faces)
    fa, fb = faces[adj[:, 0]], faces[adj[:, 1]]
    wa = fa.sum(1) - edges.sum(1)
    wb = fb.sum(1) - edges.sum(1)
    return np.stack((wa, wb, edges[:, 0], edges[:, 1]), 1).astype(np.int64)


def _mesh(morph, owner):
    import trimesh

    tm = surface_mesh(morph)
    tm = trimesh.Trimesh(np.asarray(tm.vertices), np.asarray(tm.faces), process=True)  # merges duplicate vertices
    if len(tm.faces) == 0 or tm.area < 1e-12:
        raise InvalidInputError(f"{owner}: the mesh {getattr(morph, 'file', morph)!r} has no surface area.")
    return tm


def cloth_parts(morph, material: PBD.Cloth) -> tuple[Parts, np.ndarray]:
    """(Parts, faces (nf, 3)) of a cloth: a `Mesh` morph's triangles."""
    if not isinstance(morph, Mesh):
        raise InvalidInputError(f"add_entity: PBD.Cloth needs a gs.morphs.Mesh (a triangle surface, e.g. an .obj "
                                f"grid), got {type(morph).__name__}.")
    tm = _mesh(morph, "PBD.Cloth")
    pos = np.asarray(tm.vertices, np.float64)
    n = len(pos)
    edges = np.asarray(tm.edges_unique, np.int64)
    quads = _bending_quads(tm)
    m = material
    cons = {"stretch": (edges, np.linalg.norm(pos[edges[:, 0]] - pos[edges[:, 1]], axis=1),
                        np.full(len(edges), m.stretch_compliance), np.full(len(edges), m.stretch_relaxation)),
            "bending": (quads, dihedral_rest(pos, quads), np.full(len(quads), m.bending_compliance),
                        np.full(len(quads), m.bending_relaxation))}
    return Parts(pos=pos, mass=np.full(n, m.rho * tm.area / n), kind=CLOTH, mu_s=m.static_friction,
                 mu_k=m.kinetic_friction, air=m.air_resistance, constraints=cons), np.asarray(tm.faces, np.int64)


def elastic_parts(morph, material: PBD.Elastic) -> tuple[Parts, np.ndarray]:
    """(Parts, surface faces) of an elastic solid: the morph's volume in tetrahedra."""
    from ...geometry.volume import TET_DEFAULTS, tet_backend, tetrahedralize

    if not isinstance(morph, _SOLIDS):
        raise InvalidInputError(f"add_entity: PBD.Elastic needs a Box, Sphere, Cylinder or Mesh morph, got "
                                f"{type(morph).__name__}.")
    if tet_backend() is None:
        raise UnsupportedFeatureError("add_entity: PBD.Elastic bodies are tetrahedralised by the optional package "
                                      "'tetgen' (or 'pytetwild'), which is not installed; pip install "
                                      "'genesis-torch[pbd]' (or pip install tetgen).")
    cfg = {k: getattr(morph, k, v) for k, v in TET_DEFAULTS.items()}
    verts, tets = tetrahedralize(morph, max_volume=cfg["maxvolume"] if cfg["maxvolume"] > 0 else None,
                                 minratio=cfg["minratio"], mindihedral=cfg["mindihedral"], quality=cfg["quality"],
                                 nobisect=cfg["nobisect"], order=cfg["order"], verbose=cfg["verbose"])
    pos = np.asarray(verts, np.float64)
    tets = np.asarray(tets, np.int64)
    a, b, c, d = (pos[tets[:, i]] for i in range(4))
    vol = np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a)) / 6.0
    keep = np.abs(vol) > 1e-18
    tets, vol = tets[keep], vol[keep]
    pairs = tets[:, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]].reshape(-1, 2)
    edges = np.unique(np.sort(pairs, 1), axis=0)
    faces = _surface_faces(tets, pos)
    m, n = material, len(pos)
    cons = {"stretch": (edges, np.linalg.norm(pos[edges[:, 0]] - pos[edges[:, 1]], axis=1),
                        np.full(len(edges), m.stretch_compliance), np.full(len(edges), m.stretch_relaxation)),
            "volume": (tets, vol, np.full(len(tets), m.volume_compliance), np.full(len(tets), m.volume_relaxation))}
    return Parts(pos=pos, mass=np.full(n, m.rho * np.abs(vol).sum() / n), kind=ELASTIC, mu_s=m.static_friction,
                 mu_k=m.kinetic_friction, constraints=cons), faces


def _surface_faces(tets: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Boundary triangles `(nf, 3)` of a tet mesh (faces used by one tet), wound outwards."""
    f = tets[:, [[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]]].reshape(-1, 3)
    key = np.sort(f, 1)
    _, inv, count = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    faces = f[count[inv.reshape(-1)] == 1]
    opp = np.repeat(tets, 4, 0)[count[inv.reshape(-1)] == 1]  # (the tet each face came from)
    centre = pos[opp].mean(1)
    a, b, c = pos[faces[:, 0]], pos[faces[:, 1]], pos[faces[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), a - centre) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return faces


def particle_parts(morph, material, particle_size: float, seed: int) -> Parts:
    """Parts of a liquid or free-particle entity sampled from a solid morph."""
    if not isinstance(morph, _SOLIDS):
        raise InvalidInputError(f"add_entity: PBD.{type(material).__name__} needs a Box, Sphere, Cylinder or Mesh "
                                f"morph, got {type(morph).__name__}.")
    pos = sample_particles(morph, particle_size, sampler=material.sampler, seed=seed)
    mass = np.full(len(pos), material.rho * particle_size ** 3)
    if isinstance(material, PBD.Liquid):
        return Parts(pos=pos, mass=mass, kind=LIQUID,
                     liquid=(material.rho, material.density_relaxation, material.viscosity_relaxation))
    return Parts(pos=pos, mass=mass, kind=PARTICLE)

"""Geometry of morphs for every solver (DESIGN.md §8): what a solver needs from a morph, in one place.

* `mesh_io`: mesh files read with trimesh (OBJ, STL, PLY, OFF, GLB, glTF), the one loader (rigid meshes included).
* `surface`: closed triangle surfaces of Box, Sphere, Cylinder and Mesh; inside tests and signed distances (trimesh).
* `particles`: particles at a spacing, on a regular lattice or uniformly random (MPM; SPH/PBD later).
* `volume`: tetrahedra (interface only; `tetgen` / `pytetwild` optional extras).

NumPy float64 in metres throughout; solvers convert to tensors of their dtype.
"""

from .mesh_io import MESH_FORMATS, load_merged, load_parts
from .particles import SAMPLERS, sample_particles
from .surface import contains, local_surface, signed_distance, surface_mesh
from .volume import tetrahedralize

__all__ = ["MESH_FORMATS", "load_merged", "load_parts", "SAMPLERS", "sample_particles", "contains", "local_surface",
           "signed_distance", "surface_mesh", "tetrahedralize"]

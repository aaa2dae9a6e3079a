"""The FEM solver: linear tetrahedra with Genesis' elastic models, explicit and implicit (docs/fem.md)."""

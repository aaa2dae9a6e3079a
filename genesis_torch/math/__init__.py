"""Math shared by several solvers (no solver imports another's modules): `small` (3-vector and 3x3 products,
determinants, ordered sums with a fixed summation order) and `quat` (wxyz unit quaternions)."""

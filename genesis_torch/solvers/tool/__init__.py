"""The tool solver of `gs.materials.Tool` entities (scene_solver.py)."""

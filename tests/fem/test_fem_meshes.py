"""Volume meshes of Sphere, Cylinder and Mesh morphs through tetgen (the optional extra; skipped without it) with
Genesis' tetrahedralisation options on the morph (maxvolume, minratio, ...): positively oriented tetrahedra filling
the surface's volume, and a meshed cylinder that falls and rests on the floor (implicit solver)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError

from ..conftest import cpu_runtime

pytest.importorskip("tetgen")
FEM = gs.materials.FEM


def volumes(ent):
    x = ent.rest_verts[ent.rest_elems]
    return np.linalg.det(np.stack([x[:, j] - x[:, 0] for j in (1, 2, 3)], -1)) / 6


def test_sphere_cylinder_mesh_fill_their_surfaces(tmp_path):
    trimesh.creation.torus(0.1, 0.04).export(tmp_path / "torus.stl")  # an STL: vertices stored per face
    scene = gs.Scene(fem_options=gs.options.FEMOptions())
    morphs = [gs.morphs.Sphere(pos=(0, 0, 0.3), radius=0.1),
              gs.morphs.Cylinder(pos=(0.4, 0, 0.3), radius=0.05, height=0.2, maxvolume=2e-6, nobisect=False),
              gs.morphs.Mesh(file=str(tmp_path / "torus.stl"), pos=(-0.4, 0, 0.3))]
    ents = [scene.add_entity(m, material=FEM.Elastic(E=1e5)) for m in morphs]
    for ent, morph in zip(ents, morphs):
        surf = gs.geometry.surface_mesh(morph)
        surf.merge_vertices()
        v = volumes(ent)
        assert (v > 0).all() and v.sum() == pytest.approx(surf.volume, rel=1e-9)  # tetgen keeps the surface
        np.testing.assert_allclose(ent.rest_verts.mean(0), np.asarray(morph.pos), atol=0.02)
    v = volumes(ents[1])  # maxvolume honoured (tetgen may split the surface: no "Y"); its final smoothing moves a few
    assert np.quantile(v, 0.99) <= 2e-6 and v.max() <= 1.5 * 2e-6  # vertices after the volume bound
    coarse = scene.add_entity(gs.morphs.Cylinder(pos=(0.4, 0.4, 0.3), radius=0.05, height=0.2),
                              material=FEM.Elastic(E=1e5))
    assert coarse.n_elements < ents[1].n_elements


def test_tet_options_are_validated_and_fingerprinted():
    with pytest.raises(InvalidInputError, match="minratio"):
        gs.morphs.Sphere(minratio=-1.0)
    with pytest.raises(InvalidInputError, match="nobisect"):
        gs.morphs.Box(nobisect=1)
    assert gs.morphs.Box(maxvolume=1e-3).maxvolume == 1e-3 and gs.morphs.Sphere().minratio == 1.1
    fps = []
    for mv in (-1.0, 1e-4):
        scene = gs.Scene(fem_options=gs.options.FEMOptions())
        scene.add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.1), pos=(0, 0, 0.5), maxvolume=mv), material=FEM.Elastic())
        scene.build()
        fps.append(scene.fingerprint)
    assert fps[0] != fps[1]


def test_meshed_cylinder_rests_on_the_floor():
    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2),
                         fem_options=gs.options.FEMOptions(use_implicit_solver=True, n_pcg_iterations=20))
        ball = scene.add_entity(gs.morphs.Cylinder(pos=(0, 0, 0.17), radius=0.05, height=0.1),
                                material=FEM.Elastic(E=1e5, nu=0.3, rho=500.0, model="linear_corotated"))
        scene.build()
        for _ in range(45):
            scene.step()
        z = ball.get_pos()[:, 2]
        impact_step = (2 * 9.81 * 0.07) ** 0.5 * 1e-2  # the floor acts on velocities: at most one step's motion deep
        assert -1.5 * impact_step < float(z.min()) < 2e-3 and float(ball.get_vel().abs().max()) < 0.05

"""FEM options, material and entity API: Genesis' names and defaults, validation with messages that name the fix
(a failed call changes nothing), setters per env, vertex-constraint calls, structured Box meshes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError
from genesis_torch.geometry.volume import box_tets

from ..conftest import cpu_runtime
from .conftest import box_scene

FEM = gs.materials.FEM


def test_genesis_defaults():
    o = gs.options.FEMOptions()
    assert (o.dt, o.gravity, o.damping, o.floor_height, o.use_implicit_solver) == (None, None, 0.0, 0.0, False)
    assert (o.n_newton_iterations, o.n_pcg_iterations, o.n_linesearch_iterations) == (1, 500, 0)
    assert (o.newton_dx_threshold, o.pcg_threshold, o.linesearch_c, o.linesearch_tau) == (1e-6, 1e-6, 1e-4, 0.5)
    assert (o.damping_alpha, o.damping_beta, o.enable_vertex_constraints) == (0.5, 5e-4, False)
    m = FEM.Elastic()
    assert (m.E, m.nu, m.rho, m.model, m.friction_mu, m.hydroelastic_modulus) == (1e6, 0.2, 1000.0, "linear", 0.1,
                                                                                   1e7)
    assert m.mu == pytest.approx(1e6 / 2.4) and m.lam == pytest.approx(1e6 * 0.2 / (1.2 * 0.6))
    assert FEM.Elastic(model="stable_neohooken").model == "stable_neohookean"  # Genesis' deprecated spelling


@pytest.mark.parametrize("call,match", [
    (lambda: gs.options.FEMOptions(n_pcg_iterations=0), "n_pcg_iterations"),
    (lambda: gs.options.FEMOptions(use_implicit_solver=1), "use_implicit_solver"),
    (lambda: gs.options.FEMOptions(linesearch_tau=1.5), r"\(0, 1\)"),
    (lambda: gs.options.FEMOptions(damping=-1.0), "damping"),
    (lambda: gs.options.FEMOptions(pcg_treshold=1e-3), "unknown option"),
    (lambda: FEM.Elastic(nu=0.5), "Poisson"),
    (lambda: FEM.Elastic(E=-1.0), "E="),
    (lambda: FEM.Elastic(model="neo"), "use one of"),
    (lambda: FEM.Elastic(nu=0.0, model="stable_neohookean"), "lam > 0"),
    (lambda: gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2), fem_options=gs.options.FEMOptions(dt=3e-3)),
     "whole number"),
    (lambda: box_tets(gs.morphs.Box(), (2, 0, 1)), "three ints"),
    (lambda: gs.Scene(fem_options=gs.options.FEMOptions()).add_entity(gs.morphs.Plane(), material=FEM.Elastic()),
     "Box, Sphere, Cylinder or Mesh"),
])
def test_validation(call, match):
    with pytest.raises((InvalidInputError, UnsupportedFeatureError), match=match):
        call()


def test_implicit_refuses_stable_neohookean():
    scene = gs.Scene(fem_options=gs.options.FEMOptions(use_implicit_solver=True))
    with pytest.raises(UnsupportedFeatureError, match="linear_corotated"):
        scene.add_entity(gs.morphs.Box(), material=FEM.Elastic(model="stable_neohookean"))


def test_structured_box_mesh():
    box = gs.morphs.Box(pos=(1.0, 2.0, 3.0), size=(0.4, 0.2, 0.3), euler=(0, 0, 30))
    verts, tets = box_tets(box, (4, 2, 3))
    assert verts.shape == (5 * 3 * 4, 3) and tets.shape == (6 * 24, 4)
    x = verts[tets]
    vol = np.linalg.det(np.stack((x[:, 1] - x[:, 0], x[:, 2] - x[:, 0], x[:, 3] - x[:, 0]), -1)) / 6
    assert (vol > 0).all() and vol.sum() == pytest.approx(0.4 * 0.2 * 0.3, rel=1e-12)
    np.testing.assert_allclose(verts.mean(0), [1.0, 2.0, 3.0], atol=1e-12)
    faces = np.sort(np.concatenate([tets[:, [0, 1, 2]], tets[:, [0, 1, 3]], tets[:, [0, 2, 3]], tets[:, [1, 2, 3]]]), 1)
    _, counts = np.unique(faces, axis=0, return_counts=True)
    assert counts.max() == 2  # conforming: every interior face shared by exactly two tetrahedra
    boundary = 2 * (4 * 2 + 4 * 3 + 2 * 3) * 2  # two triangles per boundary cell face
    assert (counts == 1).sum() == boundary
    v2, t2 = box_tets(box, max_volume=0.4 * 0.2 * 0.3 / 200)
    assert (np.abs(np.linalg.det(np.stack([v2[t2][:, j] - v2[t2][:, 0] for j in (1, 2, 3)], -1))) / 6).max() \
        <= 0.4 * 0.2 * 0.3 / 200 * (1 + 1e-9)


def test_setters_per_env_and_getters():
    with cpu_runtime("64"):
        scene, ent = box_scene(n_envs=3, cells=(2, 1, 1))
        S0 = scene.get_state()["FEMSolver"]
        ent.set_velocity([0.0, 0.0, 1.0], envs_idx=[1])
        st = ent.get_state()
        assert torch.equal(st.vel[1], torch.tensor([[0.0, 0.0, 1.0]] * ent.n_vertices, dtype=torch.float64))
        assert torch.equal(st.vel[[0, 2]], S0.vel[[0, 2]])
        ent.set_position([0.5, 0.0, 0.4], envs_idx=[2])  # the rest shape with its vertex mean there
        np.testing.assert_allclose(ent.get_pos()[2].mean(0).numpy(), [0.5, 0.0, 0.4], atol=1e-12)
        assert torch.equal(ent.get_pos()[0], S0.pos[0])
        with pytest.raises(InvalidInputError, match="expected"):
            ent.set_position(torch.zeros(5, 3))
        with pytest.raises(InvalidInputError, match="finite"):
            ent.set_velocity([float("nan"), 0, 0])
        before = scene.get_state()["FEMSolver"]
        with pytest.raises(InvalidInputError, match="nu must be"):
            ent.set_material_params(E=3e4, nu=0.7)
        assert torch.equal(scene.fem_solver.params.E, scene.fem_solver.params.E) and \
            float(scene.fem_solver.params.E.max()) == 2e4  # the failed call changed nothing
        assert scene.get_state()["FEMSolver"].pos is before.pos
        ent.deactivate(envs_idx=[0])
        assert not ent.get_state().active[0].any() and ent.get_state().active[1:].all()
        assert ent.get_el2v().shape == (ent.n_elements, 4) and ent.init_positions.shape == (ent.n_vertices, 3)


def test_vertex_constraint_calls_validate():
    with cpu_runtime("64"):
        scene, ent = box_scene(n_envs=2, cells=(2, 1, 1))
        with pytest.raises(InvalidInputError, match=r"\[0, 12\)"):
            ent.set_vertex_constraints([12])
        with pytest.raises(InvalidInputError, match="not constrained"):
            ent.update_constraint_targets([0], [[0.0, 0.0, 0.0]])
        with pytest.raises(InvalidInputError, match="stiffness"):
            ent.set_vertex_constraints([0], is_soft_constraint=True, stiffness=-1.0)
        with pytest.raises(InvalidInputError, match="RigidLink of this scene"):
            ent.set_vertex_constraints([0], link=object())
        ent.set_vertex_constraints([0, 3], envs_idx=[1])
        S = scene.get_state()["FEMSolver"]
        assert S.vc_mode[1, [0, 3]].tolist() == [1, 1] and int(S.vc_mode[0].abs().sum()) == 0
        ent.remove_vertex_constraints()
        assert int(scene.get_state()["FEMSolver"].vc_mode.abs().sum()) == 0
        implicit, ent2 = box_scene(cells=(2, 1, 1), use_implicit_solver=True)
        with pytest.raises(InvalidInputError, match="enable_vertex_constraints=True"):
            ent2.set_vertex_constraints([0])

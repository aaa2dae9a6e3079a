"""MPM.Muscle: a free neo-Hookean bar with fibres along x and activation a contracts to the analytic uniaxial
equilibrium (muscle.bar_equilibrium: ~ 1 - a axially, 1 + nu a laterally, the FEM test's solution to first order);
zero activation is the plain elastic material bitwise; groups act independently; save / load / continue is bitwise
with activations set; the gradient w.r.t. the activations matches central differences (float64)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.mpm.muscle import bar_equilibrium
from genesis_torch.state import SimState

from ..conftest import cpu_runtime

E, NU, RHO = 1e4, 0.3, 1000.0


def bar_scene(n_envs=0, material=None, requires_grad=False, size=(0.4, 0.1, 0.1)):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, gravity=(0.0, 0.0, 0.0), requires_grad=requires_grad),
                     mpm_options=gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 1), grid_density=32,
                                                       particle_size=1 / 64))
    material = material or gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO)
    bar = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.5), size=size), material=material)
    scene.build(n_envs=n_envs)
    return scene, bar


def lame():
    return E / (2 * (1 + NU)), E * NU / ((1 + NU) * (1 - 2 * NU))


def test_bar_holds_the_analytic_equilibrium_and_contracts_to_it():
    with cpu_runtime("64"):
        a = 0.1
        s, t = bar_equilibrium(*lame(), E, a)
        assert s == pytest.approx(1 - a, abs=0.02) and t == pytest.approx(1 + NU * a, abs=0.005)  # linear limit
        scene, bar = bar_scene()
        bar.set_muscle(muscle_direction=(1.0, 0.0, 0.0))
        bar.set_actuation(a)
        X = bar.get_particles_pos().clone()
        L0 = float(X[:, 0].max() - X[:, 0].min())
        # 1. the analytic state (every particle at F = diag(s, t, t), positions scaled about the centre) is at rest:
        # its total stress is zero, so it does not move, while the undeformed bar accelerates at once
        st = scene.get_state()
        mpm = st.solvers["MPMSolver"]
        D = torch.diag(torch.tensor([s, t, t], dtype=torch.float64))
        c = X.mean(0)
        eq = mpm.replace(pos=(c + (X - c) @ D)[None], F=D.expand_as(mpm.F).clone())
        scene.reset(SimState(t=0, solvers={**st.solvers, "MPMSolver": eq}, fingerprint=st.fingerprint))
        for _ in range(20):
            scene.step()
        v_eq = float(bar.get_particles_vel().abs().max())
        scene.reset(st)
        for _ in range(20):
            scene.step()
        v_rest = float(bar.get_particles_vel().abs().max())
        assert v_rest > 0.05 and v_eq < 1e-9 * v_rest, (v_eq, v_rest)
        # 2. from rest, the bar oscillates about the analytic length (little damping): the time average of its
        # length and mean axial stretch over ~5 periods (free-free period 2 L / sqrt(E / rho) = 0.25 s)
        scene.reset()  # the build state: passive
        bar.set_actuation(a)
        lengths, Fxx = [], []
        for _ in range(600):
            scene.step()
            p = bar.get_particles_pos()
            lengths.append(float(p[:, 0].max() - p[:, 0].min()) / L0)
            Fxx.append(float(scene.get_state().solvers["MPMSolver"].F[0, :, 0, 0].mean()))
        assert min(lengths) < s - 0.03  # it overshoots: a real contraction, not a creep
        assert np.mean(lengths[100:]) == pytest.approx(s, abs=0.01)  # measured 0.918 vs 0.9147
        assert np.mean(Fxx[100:]) == pytest.approx(s, abs=0.01)


def test_zero_actuation_is_the_elastic_material_bitwise():
    with cpu_runtime("64"):
        runs = []
        for material in (gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO),
                         gs.materials.MPM.Elastic(E=E, nu=NU, rho=RHO, model="neohooken")):
            scene, bar = bar_scene(material=material, size=(0.2, 0.1, 0.1))
            bar.set_velocity((0.3, -0.2, 0.1))
            if isinstance(material, gs.materials.MPM.Muscle):
                bar.set_muscle(muscle_direction=(1.0, 0.0, 0.0))
                bar.set_actuation(0.0)
            for _ in range(15):
                scene.step()
            runs.append(scene.get_state().solvers["MPMSolver"])
        for name in ("pos", "vel", "C", "F", "Jp"):
            assert torch.equal(getattr(runs[0], name), getattr(runs[1], name)), name
        assert torch.count_nonzero(runs[0].C) > 0


def test_groups_act_independently_and_envs_take_their_own_actuation():
    with cpu_runtime("64"):
        scene, bar = bar_scene(n_envs=3, material=gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO, n_groups=2))
        X = bar.get_particles_pos()[0].clone()
        left = X[:, 0] < 0.5
        bar.set_muscle(muscle_group=(~left).long(), muscle_direction=np.tile([1.0, 0.0, 0.0], (bar.n_particles, 1)))
        bar.set_actuation(torch.tensor([[0.2, 0.0], [0.0, 0.2], [0.0, 0.0]], dtype=torch.float64))
        actu = scene.get_state().solvers["MPMSolver"].actu
        assert torch.all(actu[0, left] == 0.2) and torch.all(actu[0, ~left] == 0.0) and torch.all(actu[2] == 0)
        for _ in range(40):
            scene.step()
        p = bar.get_particles_pos()
        span = lambda q: float(q[:, 0].max() - q[:, 0].min())  # noqa: E731
        L = span(X[left])
        assert span(p[0][left]) < 0.97 * L and span(p[0][~left]) > 0.99 * span(X[~left])  # the left half pulls in
        assert span(p[1][~left]) < 0.97 * L and span(p[1][left]) > 0.99 * L
        assert torch.equal(p[2], X)  # passive env: at rest, untouched


def test_save_load_continue_is_bitwise_with_actuation(tmp_path):
    with cpu_runtime("64"):
        scene, bar = bar_scene(n_envs=2, material=gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO, n_groups=2))
        X = bar.get_particles_pos()[0]
        bar.set_muscle(muscle_group=(X[:, 0] > 0.5).long(), muscle_direction=(0.6, 0.8, 0.0))
        bar.set_actuation(torch.tensor([[0.15, 0.05], [0.0, 0.1]], dtype=torch.float64))
        for _ in range(5):
            scene.step()
        scene.save_checkpoint(tmp_path / "c.npz")
        for _ in range(8):
            scene.step()
        want = scene.get_state().solvers["MPMSolver"]
        other, ob = bar_scene(n_envs=2, material=gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO, n_groups=2))
        other.load_checkpoint(tmp_path / "c.npz")
        assert torch.equal(ob.muscle_direction[0, 0], torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64))
        for _ in range(8):
            other.step()
        got = other.get_state().solvers["MPMSolver"]
        for f in dataclasses.fields(want):
            assert torch.equal(getattr(got, f.name), getattr(want, f.name)), f.name


def _loss(actu, weights):
    scene, bar = bar_scene(requires_grad=True, size=(0.2, 0.1, 0.1),
                           material=gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO, n_groups=2))
    X = bar.get_particles_pos()
    bar.set_muscle(muscle_group=(X[:, 0] > 0.5).long(), muscle_direction=(1.0, 0.0, 0.0))
    bar.set_actuation(actu)
    for _ in range(10):
        scene.step()
    return (bar.get_particles_pos() * weights).sum()


def test_gradient_wrt_actuation_matches_central_differences():
    with cpu_runtime("64"):
        g = torch.Generator().manual_seed(0)
        _, probe = bar_scene(size=(0.2, 0.1, 0.1))
        weights = torch.randn(probe.n_particles, 3, generator=g, dtype=torch.float64)
        actu = torch.tensor([0.1, 0.05], dtype=torch.float64, requires_grad=True)
        loss = _loss(actu, weights)
        loss.backward()
        assert torch.all(actu.grad != 0)
        eps = 1e-6
        with torch.no_grad():
            for i in range(2):
                d = torch.zeros(2, dtype=torch.float64)
                d[i] = eps
                fd = (_loss(actu + d, weights) - _loss(actu - d, weights)) / (2 * eps)
                assert abs(actu.grad[i] - fd) <= 1e-4 * abs(fd), (i, actu.grad[i].item(), fd.item())


def test_api_validates_and_a_failed_call_changes_nothing():
    with cpu_runtime("64"):
        M = gs.materials.MPM.Muscle
        m = M()
        assert (m.E, m.nu, m.rho, m.model, m.n_groups, m.stiffness) == (1e6, 0.2, 1000.0, "neohooken", 1, 1e6)
        with pytest.raises(gs.errors.InvalidInputError, match="n_groups"):
            M(n_groups=0)
        with pytest.raises(gs.errors.InvalidInputError, match="model"):
            M(model="stable_neohookean")
        scene, bar = bar_scene(n_envs=2, size=(0.2, 0.1, 0.1))
        before = scene.get_state().solvers["MPMSolver"].actu.clone()
        dirs = bar.muscle_direction.clone()
        assert torch.all(dirs[..., 2] == 1.0)  # Genesis' default +z
        with pytest.raises(gs.errors.InvalidInputError, match="muscle_group"):
            bar.set_muscle(muscle_group=np.ones(bar.n_particles, int))  # n_groups = 1
        with pytest.raises(gs.errors.InvalidInputError, match="unit"):
            bar.set_muscle(muscle_direction=np.ones((bar.n_particles, 3)))
        with pytest.raises(gs.errors.InvalidInputError, match="per-particle"):
            bar.set_actuation(torch.zeros(bar.n_particles))
        with pytest.raises(gs.errors.InvalidInputError, match="finite"):
            bar.set_actuation(float("nan"))
        with pytest.raises(gs.errors.InvalidInputError, match="muscle_group and/or"):
            bar.set_muscle()
        assert torch.equal(scene.get_state().solvers["MPMSolver"].actu, before)
        assert torch.equal(bar.muscle_direction, dirs)
        bar.set_actuation(torch.tensor([0.3], dtype=torch.float64), envs_idx=[1])
        actu = scene.get_state().solvers["MPMSolver"].actu
        assert torch.all(actu[0] == 0) and torch.all(actu[1] == 0.3)
        other, el = bar_scene(material=gs.materials.MPM.Elastic(), size=(0.2, 0.1, 0.1))
        with pytest.raises(gs.errors.InvalidInputError, match="MPM.Muscle"):
            el.set_actuation(0.1)
        assert "actu" not in type(other.get_state().solvers["MPMSolver"]).field_names()  # plain scenes: unchanged


def test_entity_get_state_is_the_slice_of_the_scene_state():
    """Genesis' `MPMEntity.get_state()` (the worm tutorial reads `worm.get_state().pos[0]`)."""
    with cpu_runtime("64"):
        scene, bar = bar_scene(n_envs=2, size=(0.2, 0.1, 0.1))
        bar.set_actuation(torch.tensor([[0.2], [0.0]], dtype=torch.float64))
        for _ in range(3):
            scene.step()
        es, st = bar.get_state(), scene.get_state().solvers["MPMSolver"]
        sl = slice(bar.particle_start, bar.particle_end)
        for name in ("pos", "vel", "C", "F", "Jp", "active"):
            assert torch.equal(getattr(es, name), getattr(st, name)[:, sl]), name
        assert es.pos.shape == (2, bar.n_particles, 3) and bar.get_state(envs_idx=[1]).F.shape[0] == 1
        es.pos[0] += 1.0  # a copy: the scene is untouched
        assert torch.equal(scene.get_state().solvers["MPMSolver"].pos, st.pos)
        _, single = bar_scene(size=(0.2, 0.1, 0.1))
        assert single.get_state().pos.shape == (single.n_particles, 3)  # n_envs=0: no env dim


@pytest.mark.parametrize("model", ["neohooken", "corotation"])
def test_env_chunked_substep_equals_the_whole_substep_with_muscles(model):
    """The CPU substep's env chunks (MPMSolver.chunk_particles): a corotated muscle's stress runs chunk by chunk (its
    active term is + and * only), a neo-Hookean one on all envs; both give the unchunked bits."""
    with cpu_runtime("64"):
        states = []
        for chunk in (None, 450):
            scene, bar = bar_scene(n_envs=4, size=(0.2, 0.1, 0.1),
                                   material=gs.materials.MPM.Muscle(E=E, nu=NU, rho=RHO, model=model, n_groups=2))
            if chunk is not None:
                scene.mpm_solver.chunk_particles = chunk  # one env per chunk
                assert len(scene.mpm_solver._env_chunks(4, bar.n_particles, torch.device("cpu"))) == 4
            X = bar.get_particles_pos()[0]
            bar.set_muscle(muscle_group=(X[:, 0] > 0.5).long(), muscle_direction=(0.0, 0.6, 0.8))
            bar.set_actuation(torch.tensor([[0.2, 0.0], [0.0, 0.2], [0.1, 0.1], [0.0, 0.0]], dtype=torch.float64))
            for _ in range(6):
                scene.step()
            states.append(scene.get_state().solvers["MPMSolver"])
        for f in dataclasses.fields(states[0]):
            assert torch.equal(getattr(states[0], f.name), getattr(states[1], f.name)), f.name
        assert not torch.equal(states[0].pos[0], states[0].pos[3])  # the actuated env moved

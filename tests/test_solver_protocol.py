"""The solver protocol is complete: a toy solver registered through it gets every scene service without a line in
scene.py (get_state, full and partial reset, save -> load -> continue bitwise, the fingerprint check, its own substep
count, the rigid geoms as couplings), and scene.py names no solver."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.errors import IncompatibleCheckpointError, InvalidInputError, UnsupportedFeatureError
from genesis_torch.solvers import registry
from genesis_torch.solvers.base import BodyMotion, SceneSolver, SolverBase
from genesis_torch.state import SolverState

from .conftest import cpu_runtime

PACKAGE = pathlib.Path(gs.__file__).resolve().parent


# ------------------------------------------------------------------------------------------ the toy solver (~40 lines)
@dataclasses.dataclass(frozen=True)
class ToyOptions:
    gravity: tuple = (0.0, 0.0, -9.81)  #: m/s^2
    substeps: int = 2  #: toy substeps per scene substep

    def fingerprint(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ToyMaterial:
    damping: float = 0.0  #: 1/s, a per-env model parameter


@dataclasses.dataclass(frozen=True)
class ToyState(SolverState):
    prefix = "ToySolver"
    pos: torch.Tensor  #: (B, n, 3) m
    vel: torch.Tensor  #: (B, n, 3) m/s


@dataclasses.dataclass
class ToyEntity:
    idx: int
    morph: object
    damping: float

    def fingerprint(self) -> dict:
        return self.morph.fingerprint()


class ToySolver(SceneSolver, SolverBase):
    """Free particles (one per entity, at the morph's position) under gravity with linear damping."""

    key, kind, options_class, state_class = "ToySolver", "toy", ToyOptions, ToyState
    materials, material_hint = (ToyMaterial,), "ToyMaterial"

    def n_substeps(self, sim):
        return self.options.substeps

    def add_entity(self, morph, material, surface, idx):
        self.entities.append(ToyEntity(idx, morph, material.damping))
        return self.entities[-1]

    def _build(self, n_envs, device, dtype, sim, couplings):
        self.solver, self.bodies_seen = self, []
        self.g = torch.tensor(self.options.gravity, dtype=dtype, device=device)
        self.x0 = torch.tensor([e.morph.pos for e in self.entities], dtype=dtype, device=device)
        self.damping = torch.tensor([[e.damping for e in self.entities]], dtype=dtype, device=device)  # (1 or B, n)
        self.collider_model = couplings.collider_model

    def initial_state(self, n_envs):
        x = self.x0.expand(max(n_envs, 1), -1, -1)
        return ToyState(pos=x.clone(), vel=torch.zeros_like(x))

    def substep(self, state, couplings, dt):  # semi-implicit Euler
        self.bodies_seen.append(couplings.bodies)
        vel = state.vel + dt * (self.g - self.damping[..., None] * state.vel)
        return ToyState(pos=state.pos + dt * vel, vel=vel)

    def params_arrays(self):
        return {"ToySolver.params.damping": self.damping.expand(self.scene.batch_size, -1).cpu().numpy().copy()}

    def load_params(self, arrays):
        return torch.from_numpy(np.array(arrays["ToySolver.params.damping"])).to(self.scene.device)

    def install_params(self, params):
        self.damping = params


# ------------------------------------------------------------------------------------------------------------- tests
@pytest.fixture
def toy():
    registry.register(ToySolver)
    try:
        yield ToySolver
    finally:
        registry.unregister(ToySolver)


def toy_scene(n_envs=3, **options):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, substeps=2), toy_options=ToyOptions(**options))
    a = scene.add_entity(gs.morphs.Sphere(pos=(0.0, 0.0, 1.0)), material=ToyMaterial())
    b = scene.add_entity(gs.morphs.Box(pos=(1.0, 2.0, 3.0)), material=ToyMaterial(damping=0.5))
    scene.build(n_envs=n_envs)
    return scene, (a, b)


def bits(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().numpy().tobytes()


def test_toy_solver_gets_state_reset_checkpoint_and_fingerprint(toy, tmp_path):
    with cpu_runtime("64"):
        scene, (a, b) = toy_scene()
        assert scene.toy_solver.key == "ToySolver" and scene.toy_entities == [a, b]
        assert scene.rigid_solver is None and scene.toy_options == ToyOptions()
        assert scene.toy_solver.substeps == 2 and scene.toy_solver.dt == pytest.approx(0.01 / 2 / 2)
        S0 = scene.get_state()
        for _ in range(5):
            scene.step()
        # 5 steps x 2 scene substeps x 2 toy substeps of 2.5 ms, free fall: v = g t exactly up to rounding
        torch.testing.assert_close(scene._toy_state.vel[:, 0, 2], torch.full((3,), -9.81 * 0.05, dtype=torch.float64))
        assert scene.toy_solver.get_error_envs_mask().tolist() == [False] * 3
        S5 = scene.get_state()
        scene.step()
        scene.reset(state=S5, envs_idx=[1])  # partial reset: env 1 back to S5, the others untouched
        now = scene.get_state()["ToySolver"]
        assert bits(now.pos[1]) == bits(S5["ToySolver"].pos[1]) and bits(now.pos[0]) != bits(S5["ToySolver"].pos[0])
        scene.reset(envs_idx=[2])
        assert bits(scene.get_state()["ToySolver"].pos[2]) == bits(S0["ToySolver"].pos[2]) and scene.t == 6
        path = tmp_path / "toy.safetensors"
        scene.save_checkpoint(path)
        other, _ = toy_scene()
        other.load_checkpoint(path)
        assert other.t == 6
        for _ in range(3):
            scene.step()
            other.step()
        assert all(bits(getattr(scene._toy_state, f)) == bits(getattr(other._toy_state, f)) for f in ("pos", "vel"))
        scene.reset()
        assert scene.t == 0 and bits(scene._toy_state.pos) == bits(S0["ToySolver"].pos)
        heavier, _ = toy_scene(gravity=(0.0, 0.0, -20.0))
        with pytest.raises(IncompatibleCheckpointError, match="fingerprint"):
            heavier.load_checkpoint(path)


def test_toy_solver_reads_the_rigid_geoms_through_couplings(toy):
    with cpu_runtime("64"):
        plain = gs.Scene()
        plain.add_entity(gs.morphs.Plane())
        plain.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.1, 0.1, 0.1)))
        plain.build()
        scene = gs.Scene(toy_options=ToyOptions(substeps=3))
        scene.add_entity(gs.morphs.Plane())
        box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.1, 0.1, 0.1)))
        scene.add_entity(gs.morphs.Sphere(pos=(0, 0, 1)), material=ToyMaterial())
        scene.build()
        assert scene.toy_solver.collider_model is scene.rigid_solver.mj_model
        before = box.get_pos().clone()
        scene.step()
        seen = scene.toy_solver.bodies_seen
        assert len(seen) == 3 and all(isinstance(m, BodyMotion) and m is seen[0] for m in seen)  # once per substep
        assert bits(seen[0].pos_before[:, box.links[0].idx]) == bits(before[None])
        assert bits(seen[0].pos_after[:, box.links[0].idx]) == bits(box.get_pos()[None])
        # an inactive toy solver leaves the fingerprint of a rigid scene unchanged
        other = gs.Scene()
        other.add_entity(gs.morphs.Plane())
        other.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.1, 0.1, 0.1)))
        other.build()
        assert other.fingerprint == plain.fingerprint and scene.fingerprint != plain.fingerprint


def test_scene_keywords_of_missing_solvers():
    for keyword in registry.PLANNED:  # (empty once every planned solver exists)
        with pytest.raises(UnsupportedFeatureError, match="not part of genesis-torch yet"):
            gs.Scene(**{keyword: object()})
    with pytest.raises(InvalidInputError, match="unknown argument.*toy_options"):
        gs.Scene(toy_options=ToyOptions())
    with pytest.raises(UnsupportedFeatureError, match="ToyMaterial is not supported; use gs.materials.Rigid or"):
        gs.Scene().add_entity(gs.morphs.Sphere(), material=ToyMaterial())


def test_registry_rejects_duplicates_and_non_solvers(toy):
    with pytest.raises(InvalidInputError, match="already registered"):
        registry.register(ToySolver)
    with pytest.raises(InvalidInputError, match="SceneSolver subclass"):
        registry.register(ToyOptions)


def test_scene_names_no_solver_and_solvers_import_no_other_solver():
    """scene.py: no solver's name outside the explicit `<kind>_options` keywords, no import of `solvers/<name>/`;
    no `solvers/<a>/` module imports `solvers/<b>/`."""
    text = (PACKAGE / "scene.py").read_text()
    keywords = {f"{cls.kind}_options" for cls in registry.SOLVERS}
    names = {n for cls in registry.SOLVERS for n in (cls.kind, cls.key.removesuffix("Solver"))}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = re.sub("|".join(keywords), "", line)
        assert not any(re.search(re.escape(n), stripped, re.IGNORECASE) for n in names), f"scene.py:{number}: {line}"
        assert not re.search(r"from \.solvers\.\w+\.|import \.solvers\.\w+\.", line), f"scene.py:{number}: {line}"
    folders = [p for p in (PACKAGE / "solvers").iterdir() if p.is_dir() and not p.name.startswith("_")]
    for folder in folders:
        others = [f.name for f in folders if f != folder]
        for path in folder.rglob("*.py"):
            for line in path.read_text().splitlines():
                if re.match(r"\s*(from|import)\s", line):
                    bad = [o for o in others if re.search(rf"(\.\.+{o}\b|solvers\.{o}\b)", line)]
                    assert not bad, f"{path.relative_to(PACKAGE)} imports solvers/{bad[0]}/: {line.strip()}"

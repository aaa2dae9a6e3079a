"""Shared test set-up: one torch thread (CI shares 2 cores), a CPU runtime, and a scene factory."""

from __future__ import annotations

import contextlib
import os

import pytest
import torch

import genesis_torch as gs

from .rigid.mjcf_random import random_mjcf

torch.set_num_threads(1)
# the suite runs the rigid step eagerly (compiling each test's scenes would take minutes); tests of the compiled step
# ask for it (gs.init(compile=True) or RigidOptions(compile=True)): docs/rigid.md, "torch.compile"
os.environ.setdefault("GENESIS_TORCH_COMPILE", "0")

SCENE_KINDS = ("franka", "box", "random", "pile")

# free bodies resting on each other and on the floor (a plane entity is added first): contacts are active
PILE_XML = """<mujoco><worldbody>
  <body pos="0 0 0.1"><freejoint/><geom type="box" size="0.1 0.1 0.1"/></body>
  <body pos="0.01 0.02 0.28" euler="0 0 20"><freejoint/><geom type="box" size="0.08 0.1 0.08" friction="0.6"/></body>
  <body pos="0.25 0 0.06"><freejoint/><geom type="sphere" size="0.06"/></body>
  <body pos="-0.2 0.1 0.05" euler="0 90 0"><freejoint/><geom type="capsule" size="0.05 0.1"/></body>
</worldbody></mujoco>"""


@contextlib.contextmanager
def cpu_runtime(precision: str = "32"):
    """`gs.init(backend=gs.cpu, precision=precision)` for the block, `gs.destroy()` afterwards."""
    gs.init(backend=gs.cpu, precision=precision)
    try:
        yield
    finally:
        gs.destroy()


@pytest.fixture
def gs_cpu():
    """A float32 CPU runtime for one test."""
    with cpu_runtime("32"):
        yield


@pytest.fixture(scope="session")
def make_scene(tmp_path_factory):
    """`make_scene(kind, n_envs, seed=0, dt=..., substeps=...) -> (scene, entity)`, built on the current runtime.

    kind: "franka" (bundled MJCF), "box" (free Box primitive), "random" (`random_mjcf(seed)` from a file) or
    "pile" (free boxes, a sphere and a capsule resting on a plane: contacts).
    Stateless, so hypothesis tests may share it between examples.
    """
    folder = tmp_path_factory.mktemp("mjcf")

    def make(kind: str, n_envs: int, seed: int = 0, dt: float = 0.005, substeps: int = 1, **rigid):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=dt, substeps=substeps),
                         rigid_options=gs.options.RigidOptions(**rigid))
        if kind == "franka":
            morph = gs.morphs.MJCF(file="franka.xml")
        elif kind == "box":
            morph = gs.morphs.Box(pos=(0.1, -0.2, 1.0), size=(0.2, 0.3, 0.4), euler=(10, 20, 30))
        elif kind == "pile":
            path = folder / "pile.xml"
            path.write_text(PILE_XML)
            scene.add_entity(gs.morphs.Plane())
            morph = gs.morphs.MJCF(file=str(path))
        elif kind == "random":
            path = folder / f"random_{seed}.xml"
            if not path.exists():
                path.write_text(random_mjcf(seed))
            morph = gs.morphs.MJCF(file=str(path))
        else:
            raise ValueError(kind)
        entity = scene.add_entity(morph)
        scene.build(n_envs=n_envs)
        return scene, entity

    return make

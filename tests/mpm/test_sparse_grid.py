"""The sparse grid (solvers/mpm/grid.py): only the blocks the particles touch are stored, and the results are the
dense grid's bitwise (same per-node summation order); the automatic rule picks dense when the blocks fill the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.solvers.mpm import grid as G
from genesis_torch.solvers.mpm.solver import MPMSolver, component_major
from genesis_torch.solvers.mpm.transfer import stencil

from ..conftest import cpu_runtime
from .conftest import small_scene


def _run(mode, kind, precision, steps=30):
    with cpu_runtime(precision):
        scene, ents = small_scene(3, coupled=(kind != "mpm"), **({"flip_ratio": 0.7} if kind == "flip" else {}))
        scene.mpm_solver.grid_mode = mode
        rng = np.random.default_rng(1)
        for e in ents:
            if isinstance(e, gs.RigidEntity):
                continue
            e.set_velocity(torch.as_tensor(rng.normal(0, 0.5, (3, e.n_particles, 3)), dtype=scene.dtype),
                           envs_idx=[0, 1, 2])
            e.set_active(torch.as_tensor(rng.random((3, e.n_particles)) > 0.1), envs_idx=[0, 1, 2])
        for _ in range(steps):
            scene.step()
        return scene.get_state().to_arrays()


@pytest.mark.parametrize("kind,precision", [("mpm", "64"), ("coupled", "32"), ("flip", "64")])
@pytest.mark.parametrize("mode", ["sparse", "box", "auto"])
def test_sparse_grid_equals_dense_bitwise(kind, precision, mode):
    dense, sparse = _run("dense", kind, precision), _run(mode, kind, precision)
    assert sorted(dense) == sorted(sparse)
    moved = np.abs(dense["MPMSolver.pos"] - _run("dense", kind, precision, steps=0)["MPMSolver.pos"]).max()
    assert moved > 1e-3, "precondition: the particles moved"
    for key in dense:
        assert dense[key].tobytes() == sparse[key].tobytes(), f"{key}: {mode} grid differs from dense"


def test_sparse_layout_rows_are_the_stencil_nodes_and_the_grid_shrinks():
    with cpu_runtime("64"):
        scene, ents = small_scene(2)
        solver = scene.mpm_solver
        m = solver.model
        st0 = scene.get_state().solvers["MPMSolver"]
        pos = component_major(st0.pos)
        pos[1] += torch.tensor([0.1, -0.05, 0.2], dtype=pos.dtype)  # env 1 elsewhere: its own blocks
        active = st0.active.clone()
        active[0, :50] = False
        st = stencil(m, pos)
        dense = G.dense_layout(m, st.base, 2)
        flags = G.block_map(m, st.base, active.reshape(-1), 2)
        sparse = G.sparse_layout(m, st.base, flags, 2)
        assert sparse.n_nodes < 0.5 * m.n_nodes and sparse.n_nodes % G.BLOCK ** 3 == 0
        # every active particle's stencil row holds the position of its dense node
        keep = active.reshape(-1)
        want = m.node_pos[dense.node[:, keep] - torch.arange(2).repeat_interleave(m.n)[keep] * m.n_nodes]
        got = sparse.node_pos.reshape(-1, 3)[sparse.node[:, keep].long()]
        assert torch.equal(got, want)
        # rows of different envs never mix, and distinct dense nodes get distinct rows
        env_of_row = sparse.node.long() // sparse.n_nodes
        assert torch.equal(env_of_row, torch.arange(2).repeat_interleave(m.n).expand(27, -1))
        pairs = torch.unique(torch.stack((dense.node[:, keep].reshape(-1), sparse.node[:, keep].reshape(-1))), dim=1)
        assert pairs.shape[1] == torch.unique(dense.node[:, keep]).numel() == torch.unique(sparse.node[:, keep]).numel()


def test_auto_rule_picks_box_blocks_or_dense():
    with cpu_runtime("64"):
        scene, _ = small_scene(1)
        m = scene.mpm_solver.model
        pos = component_major(scene.get_state().solvers["MPMSolver"].pos)
        active = torch.ones(1, m.n, dtype=torch.bool)
        base = stencil(m, pos).base
        box = G.choose_layout(m, base, active, 1)  # two small bodies side by side: their box
        assert box.sparse and box.n_nodes < 0.1 * m.n_nodes and box.n_nodes % G.BLOCK ** 3 != 0
        gen = torch.Generator().manual_seed(0)
        corners = torch.where(torch.arange(m.n)[:, None] % 2 == 0, m.pos_lo + 0.01, m.pos_hi - 0.01)
        two = corners + 0.01 * torch.rand(m.n, 3, dtype=pos.dtype, generator=gen)  # two far corners: the blocks
        blocks = G.choose_layout(m, stencil(m, component_major(two[None])).base, active, 1)
        assert blocks.sparse and blocks.n_nodes % G.BLOCK ** 3 == 0 and blocks.n_nodes <= 16 * G.BLOCK ** 3
        # particles everywhere: the box of the whole interior (the walls' outer nodes are never reached)
        spread = m.pos_lo + (m.pos_hi - m.pos_lo) * torch.rand(m.n, 3, dtype=pos.dtype, generator=gen)
        base = stencil(m, component_major(spread[None])).base
        assert G.choose_layout(m, base, active, 1).n_nodes == G.box_layout(m, base, active[0], 1).n_nodes
        assert not G.choose_layout(m, base, active, 1, mode="dense").sparse
        assert G.choose_layout(m, base, active, 1, mode="sparse").n_nodes % G.BLOCK ** 3 == 0
        # a grid whose every node some stencil reaches: dense (the box would be the same nodes, gathered)
        full = torch.stack(torch.meshgrid(*[torch.arange(r - 2) for r in m.res], indexing="ij")).reshape(3, -1)
        on = torch.ones(1, full.shape[1], dtype=torch.bool)
        assert not G.choose_layout(m, full.to(torch.int32), on, 1).sparse


def test_unknown_grid_mode_is_refused():
    with cpu_runtime("64"):
        scene, _ = small_scene(1)
        m = scene.mpm_solver.model
        base = stencil(m, component_major(scene.get_state().solvers["MPMSolver"].pos)).base
        with pytest.raises(gs.errors.InvalidInputError, match="grid_mode 'blocks'"):
            G.choose_layout(m, base, torch.ones(1, m.n, dtype=torch.bool), 1, mode="blocks")


def test_box_layout_cache_reuses_tables_only_for_the_same_box():
    with cpu_runtime("64"):
        scene, _ = small_scene(2)
        m = scene.mpm_solver.model
        pos = component_major(scene.get_state().solvers["MPMSolver"].pos)
        active = torch.ones(2 * m.n, dtype=torch.bool)
        cache = {}
        first = G.box_layout(m, stencil(m, pos).base, active, 2, cache=cache)
        again = G.box_layout(m, stencil(m, pos).base, active, 2, cache=cache)
        assert again.node_pos is first.node_pos  # same box: the tables are reused
        moved = pos.clone()
        moved[1] += torch.tensor([0.05, 0.0, 0.1], dtype=pos.dtype)  # env 1's box moves
        got = G.box_layout(m, stencil(m, moved).base, active, 2, cache=cache)
        fresh = G.box_layout(m, stencil(m, moved).base, active, 2)
        assert got.node_pos is not first.node_pos
        for name in ("node", "node_pos", "wall_min", "wall_max", "wall_keep"):
            assert torch.equal(getattr(got, name), getattr(fresh, name)), name

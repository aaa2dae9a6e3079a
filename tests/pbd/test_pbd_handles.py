"""Handle API of Genesis 1.4.5's PBD entities beyond positions: `set_particles_active` / `get_particles_active`
(an inactive particle does not move, collide, nor enter constraints or liquid densities) and
`fix_particles_to_link` (a particle follows a rigid link's pose, one-way), `release_particle` unbinding it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genesis_torch as gs

from ..conftest import cpu_runtime
from ..test_state_contract import bits
from .conftest import PBD, grid_obj


def _cloth_and_liquid(n_envs):
    """A 6 x 6 cloth falling onto a block of position-based liquid on the floor."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3),
                     pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0), upper_bound=(1, 1, 2),
                                                       particle_size=0.05))
    cloth = scene.add_entity(gs.morphs.Mesh(file=grid_obj(6), pos=(0, 0, 0.45), scale=0.6),
                             material=PBD.Cloth(stretch_compliance=1e-6))
    liquid = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.15), size=(0.3, 0.3, 0.3)),
                              material=PBD.Liquid(sampler="regular"))
    scene.build(n_envs=n_envs)
    return scene, cloth, liquid


def test_inactive_particles_do_not_move_collide_nor_constrain():
    """Env 0 and env 1 differ only in where their inactive particles are (env 0's are put inside the liquid, where
    they would collide with it and add to its density, and far from their cloth neighbours): if an inactive particle
    entered any constraint, contact or density sum, the active particles of the two envs would differ."""
    with cpu_runtime("64"):
        scene, cloth, liquid = _cloth_and_liquid(2)
        ic, il = 17, int(liquid.find_closest_particle((0.0, 0.0, 0.15))[0])
        cloth.set_particles_active(False, [ic])
        liquid.set_particles_active(torch.tensor([[False], [False]]), [il])
        assert cloth.get_particles_active()[:, ic].tolist() == [False, False]
        assert int(cloth.get_particles_active().sum()) == 2 * (cloth.n_particles - 1)
        inside = liquid.get_particles_pos()[0, il + 3]
        cloth.set_particles_pos(inside + 0.01, [ic], envs_idx=[0])
        liquid.set_particles_pos(liquid.get_particles_pos()[0, il + 1] + 0.012, [il], envs_idx=[0])
        cloth.set_particles_vel((0.0, 0.0, 3.0), [ic])
        frozen = [e.get_particles_pos()[:, i].clone() for e, i in ((cloth, ic), (liquid, il))]
        vel0 = cloth.get_particles_vel()[:, ic].clone()
        for _ in range(12):
            scene.step()
        for (e, i), before in zip(((cloth, ic), (liquid, il)), frozen):
            assert torch.equal(e.get_particles_pos()[:, i], before)  # neither moved
            x = e.get_particles_pos()
            keep = torch.arange(e.n_particles) != i
            assert bits(x[0, keep]) == bits(x[1, keep])  # the others never saw where it is
            assert not torch.equal(x[0, keep], torch.as_tensor(e.parts.pos, dtype=x.dtype)[keep])  # they moved
        assert torch.equal(cloth.get_particles_vel()[:, ic], vel0)  # velocity kept, no gravity
        cloth.set_particles_active(True, [ic], envs_idx=[1])  # back in: it falls and meets its neighbours again
        z = cloth.get_particles_pos()[1, ic, 2].item()
        scene.step()
        assert cloth.get_particles_pos()[1, ic, 2].item() != z
        assert torch.equal(cloth.get_particles_pos()[0, ic], frozen[0][0])


def _box_and_cloth(n_envs, fix=True):
    """A free rigid box thrown spinning under gravity and a small cloth; four cloth particles fixed to the box."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3),
                     pbd_options=gs.options.PBDOptions(lower_bound=(-3, -3, -3), upper_bound=(3, 3, 4),
                                                       particle_size=0.02))
    box = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 1.0), size=(0.2, 0.2, 0.2)))
    cloth = scene.add_entity(gs.morphs.Mesh(file=grid_obj(4), pos=(0, 0, 1.1), scale=0.4), material=PBD.Cloth())
    scene.build(n_envs=n_envs)
    box.set_dofs_velocity(torch.tensor([[0.5, -0.3, 2.0, 3.0, -2.0, 4.0]] * max(n_envs, 1), dtype=scene.dtype))
    pins = [0, 4, 20, 24]  # the cloth's corners
    if fix:
        cloth.fix_particles_to_link(box.base_link.idx, pins)
    return scene, box, cloth, pins


def test_particles_fixed_to_a_moving_link_follow_its_pose_one_way():
    with cpu_runtime("64"):
        scene, box, cloth, pins = _box_and_cloth(2)
        ref, rbox, _, _ = _box_and_cloth(2, fix=False)
        link = box.base_link.idx
        assert cloth.get_particles_link()[:, pins].eq(link).all()
        assert not bool(cloth.get_particles_free()[:, pins].any())
        p0, R0 = box.get_links_pos()[:, 0], gs.math.quat.quat_to_mat(box.get_links_quat()[:, 0])
        local = (cloth.get_particles_pos()[:, pins] - p0[:, None]) @ R0
        for _ in range(30):
            scene.step()
            ref.step()
        p, R = box.get_links_pos()[:, 0], gs.math.quat.quat_to_mat(box.get_links_quat()[:, 0])
        want = p[:, None] + local @ R.transpose(-1, -2)
        assert float((p - p0).norm(dim=-1).min()) > 0.05 and float((R - R0).abs().max()) > 0.1  # it did move
        torch.testing.assert_close(cloth.get_particles_pos()[:, pins], want, rtol=0, atol=1e-12)
        assert bits(box.get_qpos()) == bits(rbox.get_qpos())  # one-way: the box never felt the cloth
        others = torch.ones(cloth.n_particles, dtype=torch.bool)
        others[pins] = False
        assert float((cloth.get_particles_pos()[:, others] - want.mean(1, keepdim=True)).norm(dim=-1).max()) < 0.5
        cloth.release_particle(pins[:2], envs_idx=[0])  # unbinds: free again, no link
        assert cloth.get_particles_link()[0, pins[:2]].eq(-1).all() and cloth.get_particles_free()[0, pins[:2]].all()
        assert cloth.get_particles_link()[1, pins].eq(link).all()
        scene.step()
        p, R = box.get_links_pos()[:, 0], gs.math.quat.quat_to_mat(box.get_links_quat()[:, 0])
        want = p[:, None] + local @ R.transpose(-1, -2)
        torch.testing.assert_close(cloth.get_particles_pos()[1, pins], want[1], rtol=0, atol=1e-12)
        assert float((cloth.get_particles_pos()[0, pins[:2]] - want[0, :2]).norm(dim=-1).max()) > 1e-6


def test_active_and_link_calls_validate_and_change_nothing_on_error():
    with cpu_runtime("32"):
        scene, box, cloth, pins = _box_and_cloth(2, fix=False)
        before = scene.get_state()
        calls = {"link_idx": lambda: cloth.fix_particles_to_link(5, pins),
                 "link_idx must": lambda: cloth.fix_particles_to_link(0.0, pins),
                 "particle indices": lambda: cloth.fix_particles_to_link(box.base_link.idx, [25]),
                 "bools": lambda: cloth.set_particles_active([1.0, 0.0], [0, 1]),
                 "shape": lambda: cloth.set_particles_active([True, False, True], [0, 1]),
                 r"\[0, 25\)": lambda: cloth.set_particles_active(False, [-1])}
        for match, call in calls.items():
            with pytest.raises(gs.errors.InvalidInputError, match=match):
                call()
        for f, b in before["PBDSolver"].tensors().items():
            assert bits(getattr(scene.get_state()["PBDSolver"], f)) == bits(b), f
        alone = gs.Scene(pbd_options=gs.options.PBDOptions(lower_bound=(-1, -1, 0), upper_bound=(1, 1, 2)))
        c = alone.add_entity(gs.morphs.Mesh(file=grid_obj(4), pos=(0, 0, 1.0)), material=PBD.Cloth())
        alone.build()
        with pytest.raises(gs.errors.InvalidInputError, match="no rigid links"):
            c.fix_particles_to_link(0, [0])
        assert c.get_particles_active().shape == (25,) and bool(c.get_particles_active().all())
        with pytest.raises(gs.errors.SceneStateError):
            gs.Scene().add_entity(gs.morphs.Mesh(file=grid_obj(4)), material=PBD.Cloth()).set_particles_active(False)
        assert np.all(c.get_particles_link().numpy() == -1)


def test_genesis_style_cloth_attached_to_rigid_script():
    """tests/genesis_scripts/pbd_cloth_attached_to_rigid.py (a Genesis script but for the import): the attached
    row follows the pushed and then teleported box exactly, until `release_particle` lets it fall."""
    import pathlib
    import runpy

    from genesis_torch.math.quat import quat_to_mat

    gs.destroy()
    try:
        script = pathlib.Path(__file__).parents[1] / "genesis_scripts" / "pbd_cloth_attached_to_rigid.py"
        g = runpy.run_path(str(script), run_name="__main__")
    finally:
        gs.destroy()
    local = (g["start_pos"] - g["start_box"]) @ quat_to_mat(g["start_quat"])
    assert float((g["pushed_box"] - g["start_box"]).norm()) > 0.05  # the box was pushed
    torch.testing.assert_close(g["pushed_pos"], g["pushed_box"] + local @ quat_to_mat(g["pushed_quat"]).T, rtol=0,
                               atol=2e-6)
    for j, (p, q, x) in enumerate(g["teleported"]):
        want = p + local @ quat_to_mat(q).T
        if j < 2:
            torch.testing.assert_close(x, want, rtol=0, atol=2e-6)
        else:  # released at the third teleport: falls away from the box
            assert float((x - want).norm(dim=-1).min()) > 1e-2
    cloth = g["cloth"]
    assert bool((cloth.get_particles_link() == -1).all()) and bool(cloth.get_particles_free().all())
    assert bool(torch.isfinite(cloth.get_particles_pos()).all())


def test_genesis_style_pbd_liquid_script():
    """tests/genesis_scripts/pbd_liquid.py: the 0.2 x 0.2 x 0.4 m block (16,000 particles at 1 cm) falls 5 steps
    under gravity, stays in the unit box, its centre of mass in free fall."""
    import pathlib
    import runpy

    gs.destroy()
    try:
        g = runpy.run_path(str(pathlib.Path(__file__).parents[1] / "genesis_scripts" / "pbd_liquid.py"),
                           run_name="__main__")
    finally:
        gs.destroy()
    start, final = g["start"], g["final"]
    assert start.shape == (16000, 3) and bool(torch.isfinite(final).all())
    assert bool(((final >= 0) & (final <= 1)).all())
    fall = 9.81 * 2e-3 ** 2 * (1 + 2 + 3 + 4 + 5)  # symplectic Euler free fall over 5 steps, m (before the floor)
    dz = (final - start)[:, 2]
    assert abs(float(dz.mean()) + fall) < 0.05 * fall  # the density solve moves particles, not the centre of mass
    assert float((final - start)[:, :2].abs().max()) < 0.01  # nothing spurts sideways

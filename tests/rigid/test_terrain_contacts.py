"""Height-field contacts (collision/hfield.py) against MuJoCo 4.0.1 on the same compiled model (float64).

Contact lists: a `gs.morphs.Terrain` spec (random uniform and stairs terrains) with one free body of each convex type,
at random poses around the surface in 8 envs; `detect` on the solver's contact model against `mj_forward`'s
contacts in each env, pair by pair in MuJoCo's order (prism order). Always: the same number of contacts per env.
Tolerances, from the measured worst cases:

- sphere and capsule, and every type with a margin (0.02 m): dist 1e-9 m, pos 1e-5 m, normal 1e-3 (measured
  <= 3e-10 / 7e-7 / 3e-5, the larger values from the GJK distance pass of ellipsoids and cylinders, which stops
  within ccd_tolerance 1e-6; spheres, capsules, boxes and meshes <= 1e-11);
- cylinder and ellipsoid without margin (EPA on a smooth shape stops within ccd_tolerance, so both searches may
  stop at different faces): dist 1e-4 m (measured <= 6e-7; many contacts agree to 1e-15), pos and normal not
  compared (face-on contacts make them ill-conditioned: up to 1.5e-3 m / 5.6e-2);
- box and mesh without margin: MuJoCo's EPA on a prism and a polytope stops at a repeated support pair, the
  prism's vertex index being always -1; this is reproduced (`convex.PRISM`) and ~90% of the contacts then agree to
  1e-9 m, the others are two different early stops of the same search (both shallower than the true depth):
  asserted >= 80% within 1e-9 m and every contact within 0.1 m.

Rollout: spheres and capsules dropped on a random uniform terrain, 150 steps of 5 ms in 2 envs, qpos within 1e-8
of MuJoCo (measured 2.5e-14).
"""

from __future__ import annotations

import zlib

import mujoco
import numpy as np
import pytest
import torch

import genesis_torch as gs
from genesis_torch.geometry.terrain import surface_height
from genesis_torch.options import RigidOptions, integrator
from genesis_torch.solvers.rigid.collision.detect import detect
from genesis_torch.solvers.rigid.solver import RigidSolver

pytestmark = pytest.mark.usefixtures("single_thread")

KINDS = {"sphere": [0.2, 0, 0], "capsule": [0.1, 0.2, 0], "ellipsoid": [0.2, 0.15, 0.1], "cylinder": [0.15, 0.1, 0],
         "box": [0.15, 0.1, 0.2], "mesh": None}
TERRAINS = {
    "random": gs.morphs.Terrain(n_subterrains=(1, 1), subterrain_size=(4.0, 4.0), subterrain_types="random_uniform_terrain"),
    "stairs": gs.morphs.Terrain(n_subterrains=(1, 1), subterrain_size=(4.0, 4.0), subterrain_types="stairs_terrain",
                                subterrain_parameters={"stairs_terrain": {"step_height": 0.05, "step_width": 0.5}}),
}


def _model(terrain, kinds, margin=0.0, seed=0):
    """Terrain spec plus one free body per entry of `kinds`, all geoms with `margin`."""
    spec = terrain.to_spec()
    spec.geoms[0].margin = margin
    rng = np.random.default_rng(seed)
    for n, kind in enumerate(kinds):
        body = spec.worldbody.add_body(name=f"b{n}", pos=[1 + n, 1, 1])
        body.add_freejoint()
        if kind == "mesh":
            spec.add_mesh(name=f"m{n}", uservert=(rng.normal(size=(12, 3)) * 0.12).ravel().tolist())
            body.add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"m{n}", margin=margin)
        else:
            body.add_geom(type=getattr(mujoco.mjtGeom, "mjGEOM_" + kind.upper()), size=KINDS[kind], margin=margin)
    return spec.compile()


def _poses(m, terrain, n_envs, rng, depth=0.05):
    """qpos (n_envs, 7): the body at a random x-y over the terrain, its centre 0.3 rbound + U(-depth, 0.05) above the
    surface, a random orientation."""
    out = np.zeros((n_envs, m.nq))
    for e in range(n_envs):
        xy = rng.uniform(0.5, 3.5, 2)
        z = surface_height(terrain.height_field_m, terrain.horizontal_scale, xy[:1], xy[1:])[0]
        q = rng.normal(size=4)
        out[e, :3] = (*xy, z + 0.3 * m.geom_rbound[1] + rng.uniform(-depth, 0.05))
        out[e, 3:7] = q / np.linalg.norm(q)
    return out


def _solver(m):
    return RigidSolver(m, RigidOptions(integrator=integrator.Euler, iterations=100, tolerance=1e-8),
                       m.opt.timestep, m.opt.gravity, "cpu", torch.float64)


def _contacts(m, solver, qpos):
    """Per env: ours and MuJoCo's contact lists [(dist, pos (3,), normal (3,))] in pair order."""
    cs = detect(solver.contact_model, solver.kinematics(torch.tensor(qpos)))
    d = mujoco.MjData(m)
    out = []
    for e in range(len(qpos)):
        d.qpos[:] = qpos[e]
        mujoco.mj_forward(m, d)
        ref = [(c.dist, c.pos.copy(), c.frame[:3].copy()) for c in d.contact[:d.ncon]]
        v = cs.valid[e].numpy()
        ours = [(float(cs.dist[e, k]), cs.pos[e, k].numpy(), cs.frame[e, k, 0].numpy()) for k in np.nonzero(v)[0]]
        out.append((ours, ref))
    return out


@pytest.mark.parametrize("terrain", sorted(TERRAINS))
@pytest.mark.parametrize("margin", [0.0, 0.02])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hfield_contacts_match_mujoco(kind, margin, terrain):
    ter = TERRAINS[terrain]
    m = _model(ter, [kind], margin)
    solver = _solver(m)
    qpos = _poses(m, ter, 8, np.random.default_rng(zlib.crc32(f"{kind} {terrain}".encode())))
    pairs = _contacts(m, solver, qpos)
    assert sum(len(r) > 0 for _, r in pairs) >= 4  # the poses do touch the terrain
    exact, total = 0, 0
    for e, (ours, ref) in enumerate(pairs):
        assert len(ours) == len(ref), f"env {e}: {len(ours)} contacts, MuJoCo {len(ref)}"
        for (a, pa, na), (r, pr, nr) in zip(ours, ref):
            total += 1
            if margin > 0 or kind in ("sphere", "capsule"):
                assert abs(a - r) <= 1e-9 and np.abs(pa - pr).max() <= 1e-5 and np.abs(na - nr).max() <= 1e-3, \
                    (e, a, r, pa, pr, na, nr)
            elif kind in ("cylinder", "ellipsoid"):
                assert abs(a - r) <= 1e-4, (e, a, r)
            else:
                exact += abs(a - r) <= 1e-9
                assert abs(a - r) <= 0.1, (e, a, r)
    if margin == 0 and kind in ("box", "mesh"):
        assert exact >= 0.8 * total, f"{exact} of {total} contacts within 1e-9 m of MuJoCo's"


def test_cap_of_50_contacts_per_pair():
    """A box larger than many cells (mjMAXCONPAIR = 50): the first 50 prisms' contacts, in MuJoCo's order."""
    ter = gs.morphs.Terrain(n_subterrains=(1, 1), subterrain_size=(4.0, 4.0), horizontal_scale=0.1,
                            subterrain_types="random_uniform_terrain")
    spec = ter.to_spec()
    body = spec.worldbody.add_body(pos=[2, 2, 1])
    body.add_freejoint()
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.6, 0, 0])
    m = spec.compile()
    solver = _solver(m)
    qpos = np.array([[2.0, 2.0, surface_height(ter.height_field_m, 0.1, [2.0], [2.0])[0] + 0.5, 1, 0, 0, 0]])
    assert solver.contact_model.max_contacts == 50
    (ours, ref), = _contacts(m, solver, qpos)
    assert len(ref) == 50 and len(ours) == 50
    assert max(abs(a - r) for (a, _, _), (r, _, _) in zip(ours, ref)) <= 1e-9


def _rollout(m, qpos0, steps):
    solver = _solver(m)
    t = torch.tensor(qpos0)
    base = solver.initial_state(len(qpos0))
    state = solver.make_state(qpos=t, dofs_vel=torch.zeros(len(qpos0), m.nv, dtype=torch.float64), ctrl=base.ctrl,
                              act=base.act, qacc_warmstart=base.qacc_warmstart, dofs_ctrl_mode=base.dofs_ctrl_mode,
                              dofs_ctrl_target=base.dofs_ctrl_target)
    ref = []
    for e in range(len(qpos0)):
        d = mujoco.MjData(m)
        d.qpos[:] = qpos0[e]
        traj = []
        for _ in range(steps):
            mujoco.mj_step(m, d)
            traj.append(d.qpos.copy())
        ref.append(traj)
    ours = []
    for _ in range(steps):
        state = solver.step(state)
        ours.append(state.qpos.numpy().copy())
    return np.array(ours), np.array(ref).transpose(1, 0, 2)


def test_rollout_on_terrain_matches_mujoco():
    """Spheres and a capsule dropped on a random uniform terrain move as MuJoCo's (150 steps of 5 ms)."""
    ter = TERRAINS["random"]
    m = _model(ter, ["sphere", "capsule", "sphere"])
    m.opt.timestep, m.opt.tolerance = 0.005, 1e-8
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    rng = np.random.default_rng(3)
    qpos0 = np.zeros((2, m.nq))
    for e in range(2):
        for b in range(3):
            xy = rng.uniform(0.8, 3.2, 2)
            z = surface_height(ter.height_field_m, 0.25, xy[:1], xy[1:])[0]
            qpos0[e, 7 * b:7 * b + 3] = (*xy, z + 0.35)
            q = rng.normal(size=4)
            qpos0[e, 7 * b + 3:7 * b + 7] = q / np.linalg.norm(q)
    ours, ref = _rollout(m, qpos0, 150)
    err = np.abs(ours - ref).max()
    assert err <= 1e-8, f"qpos differs from MuJoCo by {err:.3g}"
    for b in range(3):  # every body still on the terrain (none fell through)
        x, y, z = (ours[-1][:, 7 * b + k] for k in range(3))
        assert np.all(z > surface_height(ter.height_field_m, 0.25, x, y)), (b, z)


def test_scene_body_falls_and_rests_on_terrain():
    """Genesis' pattern: scene.add_entity(gs.morphs.Terrain(...)) then bodies dropped on it; they rest on the surface
    the entity's get_terrain_height reports (sphere: radius above it; box: half its height), in every env. (On a
    flat height field a sphere also touches the neighbouring prisms' sides, as in MuJoCo, and may roll slowly.)"""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False)
    ter = scene.add_entity(gs.morphs.Terrain(
        pos=(-4.0, -4.0, 0.0), n_subterrains=(2, 2), subterrain_size=(4.0, 4.0),
        subterrain_types=[["flat_terrain", "random_uniform_terrain"], ["stairs_terrain", "pyramid_stairs_terrain"]]))
    ball = scene.add_entity(gs.morphs.Sphere(pos=(-3.0, -3.0, 0.4), radius=0.1))
    box = scene.add_entity(gs.morphs.Box(pos=(1.0, -1.0, 0.4), size=(0.2, 0.2, 0.2)))
    scene.build(n_envs=2)
    for _ in range(120):
        scene.step()
    for body, half in ((ball, 0.1), (box, 0.1)):
        p = body.get_pos()
        h = ter.get_terrain_height(p[:, None, :2])[:, 0]
        assert torch.all(torch.isfinite(h))
        assert torch.allclose(p[:, 2] - h, torch.full_like(h, half), atol=2e-3), (p, h)
        assert float(body.get_dofs_velocity()[:, :3].abs().max()) < 0.02  # settled: at most slow rolling (m/s)


def test_go2_drop_on_terrain_matches_mujoco():
    """The bundled Go2 dropped passively on a pyramid-stairs Terrain (Genesis' locomotion pattern, float64, 2 envs):
    30 steps of 2 substeps (landing on feet, calves and base: up to 12 height-field contacts, spheres, cylinders and
    boxes) equal MuJoCo 4.0.1 on the scene's model to 1e-9 (measured 1.4e-13)."""
    from tests.conftest import cpu_runtime

    with cpu_runtime("64"):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.02, substeps=2),
                         rigid_options=gs.options.RigidOptions(constraint_solver=gs.constraint_solver.Newton),
                         show_viewer=False)
        scene.add_entity(gs.morphs.Terrain(pos=(-2.0, -2.0, 0.0), n_subterrains=(1, 1), subterrain_size=(4.0, 4.0),
                                           subterrain_types="pyramid_stairs_terrain"))
        robot = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0, 0, 0.5)))
        scene.build(n_envs=2)
        m = scene.rigid_solver.mj_model
        datas = [mujoco.MjData(m) for _ in range(2)]
        for d, qpos in zip(datas, robot.get_qpos().numpy()):
            d.qpos[:] = qpos
        ncon = 0
        for _ in range(30):
            scene.step()
            for d in datas:
                mujoco.mj_step(m, d, 2)
                ncon = max(ncon, d.ncon)
        assert ncon >= 6
        for b, d in enumerate(datas):
            np.testing.assert_allclose(robot.get_qpos()[b].numpy(), d.qpos, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["sphere", "capsule", "box"])
def test_hfield_contact_distance_gradient_matches_finite_differences(kind):
    """d(sum of contact distances)/d(geom 2 position) by autograd through the height-field narrow phase equals
    central differences (h = 1e-6 m, float64) to 1e-6 relative (measured 1e-8): the envelope-theorem derivative of
    `convex._ccd_core` holds on the prisms."""
    from genesis_torch.solvers.rigid.collision import hfield
    from genesis_torch.solvers.rigid.collision.types import GeomBatch

    ter = TERRAINS["random"]
    m = _model(ter, [kind])
    d = mujoco.MjData(m)
    q = np.array([1.3, 2.1, surface_height(ter.height_field_m, 0.25, [1.3], [2.1])[0] + 0.12, 0.9, 0.1, 0.3, 0.2])
    d.qpos[:] = q / np.r_[np.ones(3), np.full(4, np.linalg.norm(q[3:]))]
    mujoco.mj_forward(m, d)
    fn = hfield.hfield_convex(int(m.geom_type[1]), *hfield.window(m, [0], [1], [0.0]))
    grid, info = hfield.hfield_data(m, [0], "cpu", torch.float64)
    t = lambda a: torch.tensor(np.array(a))[None, None]  # noqa: E731
    g1 = GeomBatch(t(d.geom_xpos[0]), t(d.geom_xmat[0].reshape(3, 3)), torch.tensor(m.geom_size[[0]]), grid, info)

    def total(p2):
        c = fn(g1, GeomBatch(p2[None, None], t(d.geom_xmat[1].reshape(3, 3)), torch.tensor(m.geom_size[[1]])),
               torch.zeros(1, dtype=torch.float64))
        return (c.dist * c.valid).sum(), int(c.valid.sum())

    p = torch.tensor(d.geom_xpos[1].copy(), requires_grad=True)
    value, n = total(p)
    assert n >= 3
    value.backward()
    fd = []
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = 1e-6
        fd.append(float(total(p.detach() + e)[0] - total(p.detach() - e)[0]) / 2e-6)
    np.testing.assert_allclose(p.grad.numpy(), fd, rtol=1e-6, atol=1e-8)

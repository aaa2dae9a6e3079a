"""A Genesis-style PBD coupling script (written for this project, after the pattern of Genesis' cloth-attached-to-a-
rigid-box example; only the import differs from a Genesis script): a cloth lies on a box on the ground plane, its
first row of particles fixed to the box's link; the box is pushed, then teleported to a few poses, the cloth
released half-way."""

import math
import os
import tempfile

import numpy as np
import trimesh

import genesis_torch as gs


def grid_obj(n, size=1.0):
    """An .obj square cloth of n x n cells (Genesis ships meshes/cloth.obj; any grid does)."""
    u = np.linspace(-size / 2, size / 2, n + 1)
    X, Y = np.meshgrid(u, u, indexing="ij")
    verts = np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], 1)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (i * (n + 1) + j).ravel()
    faces = np.concatenate([np.stack([a, a + n + 1, a + 1], 1), np.stack([a + 1, a + n + 1, a + n + 2], 1)])
    path = os.path.join(tempfile.mkdtemp(), "cloth.obj")
    trimesh.Trimesh(verts, faces, process=False).export(path)
    return path


def euler_to_quat(deg):
    """wxyz quaternion of extrinsic x-y-z Euler angles in degrees."""
    r, p, y = np.radians(deg) / 2
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy])


gs.init(seed=0, precision="32", logging_level="warning", backend=gs.cpu)

dt = 2e-2
particle_size = 1e-2
horizon, num_teleports = 4, 3  # (Genesis' example: 100 and 5)

scene = gs.Scene(
    sim_options=gs.options.SimOptions(dt=dt, substeps=10),
    pbd_options=gs.options.PBDOptions(particle_size=particle_size),
    viewer_options=gs.options.ViewerOptions(camera_pos=(3.5, 0.0, 2.5), camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
    show_viewer=False,
)
rigid_material = gs.materials.Rigid(needs_coup=True, coup_friction=0.0)
scene.add_entity(gs.morphs.Plane(), rigid_material)
box = scene.add_entity(gs.morphs.Box(pos=[0.25, 0.25, 0.25], size=[0.25, 0.25, 0.25]), rigid_material)
cloth = scene.add_entity(
    gs.morphs.Mesh(pos=(0.25, 0.25, 0.25 + 0.125 + particle_size), scale=0.5, file=grid_obj(12)),
    gs.materials.PBD.Cloth(),
    gs.surfaces.Default(color=(0.2, 0.4, 0.8, 1.0)),
)
scene.build(n_envs=0)

particles_idx = [0, 1, 2, 3, 4, 5, 6, 7]
box_link_idx = box.link_start
cloth.fix_particles_to_link(box_link_idx, particles_idx_local=particles_idx)
box.set_dofs_velocity([-0.0, 1.0, 0.0], dofs_idx_local=[0, 1, 2])

start_pos = cloth.get_particles_pos()[particles_idx].clone()
start_box, start_quat = box.get_pos().clone(), box.get_quat().clone()
for i in range(horizon):
    scene.step()
pushed_pos, pushed_box, pushed_quat = (cloth.get_particles_pos()[particles_idx].clone(), box.get_pos().clone(),
                                       box.get_quat().clone())

teleported = []  # (box pos, box quat, attached particle positions) after each teleport's steps
for j in range(num_teleports):
    if j == 2:
        cloth.release_particle(particles_idx)
    box.set_pos((0.2 * math.sin(j), 0.2 * math.cos(j), 0.5))
    box.set_quat(euler_to_quat((-30 * j, -40 * j, 70 * j)))
    for _ in range(horizon):
        scene.step()
    teleported.append((box.get_pos().clone(), box.get_quat().clone(), cloth.get_particles_pos()[particles_idx].clone()))

"""`gs.renderers` (Genesis 1.4.5's renderer options): `Scene(renderer=Rasterizer())` renders the images a scene
without the argument renders (the visualization tutorial's pattern); RayTracer / BatchRenderer are validated with
Genesis' fields and defaults and refused by the Scene, naming why and what to use."""

from __future__ import annotations

import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError


def _tutorial_images(**renderer):
    """Genesis' examples/tutorials/visualization.py up to its first render (small image), then one step and a
    render from a moved camera."""
    scene = gs.Scene(
        vis_options=gs.options.VisOptions(show_world_frame=True, world_frame_size=1.0, show_link_frame=False,
                                          show_cameras=False, plane_reflection=True, ambient_light=(0.1, 0.1, 0.1)),
        viewer_options=gs.options.ViewerOptions(res=(64, 64), camera_pos=(3.5, 0.0, 2.5),
                                                camera_lookat=(0.0, 0.0, 0.5), camera_fov=40),
        show_viewer=False, **renderer)
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.MJCF(file="xml/franka_emika_panda/panda.xml"))
    cam = scene.add_camera(res=(80, 60), pos=(3.5, 0.0, 2.5), lookat=(0, 0, 0.5), fov=30, GUI=False)
    scene.build()
    try:
        first = cam.render(rgb=True, depth=True, segmentation=True, normal=True)
    except UnsupportedFeatureError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")
    cam.set_pose(pos=(3.0 * np.sin(0.5), 3.0 * np.cos(0.5), 2.5), lookat=(0, 0, 0.5))
    scene.step()
    return scene, first, cam.render(rgb=True, depth=True, segmentation=True, normal=True)


def test_rasterizer_renders_what_the_default_renders(gs_cpu):
    scene, first, moved = _tutorial_images(renderer=gs.renderers.Rasterizer())
    assert isinstance(scene.renderer_options, gs.renderers.Rasterizer)
    _, first_default, moved_default = _tutorial_images()
    for got, want in zip(first + moved, first_default + moved_default):
        assert got is not None and got.dtype == want.dtype and np.array_equal(got, want)
    rgb, depth, seg, normal = first
    assert rgb.shape == (60, 80, 3) and depth.shape == (60, 80) and seg.shape == (60, 80) and normal.shape == (60, 80, 3)
    assert len(np.unique(seg)) > 3, "the plane and several Franka links are in view"
    assert not np.array_equal(first[0], moved[0]), "the moved camera sees another image"


def test_default_scene_keeps_a_rasterizer(gs_cpu):
    assert gs.Scene().renderer_options == gs.renderers.Rasterizer()


def test_ray_tracer_and_batch_renderer_have_genesis_defaults_and_are_refused(gs_cpu):
    rt = gs.renderers.RayTracer()
    assert (rt.device_index, rt.logging_level, rt.state_limit, rt.tracing_depth, rt.rr_depth, rt.rr_threshold,
            rt.env_surface, rt.env_radius, rt.env_pos, rt.normal_diff_clamp) == \
        (None, "warning", 2 ** 25, 32, 0, 0.95, None, 1000.0, (0.0, 0.0, 0.0), 180.0)
    assert rt.lights == (gs.renderers.SphereLight(pos=(0, 0, 10), color=(1, 1, 1), intensity=10.0, radius=4.0),)
    assert gs.renderers.SphereLight() == gs.renderers.SphereLight(pos=(0, 0, 10), color=(1, 1, 1), intensity=1.0,
                                                                  radius=4.0)
    assert gs.renderers.BatchRenderer().use_rasterizer is False
    lit = gs.renderers.RayTracer(lights=[{"pos": (1, 2, 3), "intensity": 2.0}], env_euler=(0, 0, 90))
    assert lit.lights[0].pos == (1.0, 2.0, 3.0) and lit.lights[0].intensity == 2.0
    with pytest.raises(UnsupportedFeatureError, match="no path tracer.*Rasterizer"):
        gs.Scene(renderer=gs.renderers.RayTracer(tracing_depth=8))
    with pytest.raises(UnsupportedFeatureError, match="no batched renderer.*Rasterizer"):
        gs.Scene(renderer=gs.renderers.BatchRenderer(use_rasterizer=True))


@pytest.mark.parametrize("make,match", [
    (lambda: gs.renderers.RayTracer(tracing_depth=0), "tracing_depth"),
    (lambda: gs.renderers.RayTracer(logging_level="loud"), "logging_level"),
    (lambda: gs.renderers.RayTracer(env_euler=(0, 0, 1), env_quat=(1, 0, 0, 0)), "cannot both"),
    (lambda: gs.renderers.RayTracer(env_quat=(1, 1, 0, 0)), "unit quaternion"),
    (lambda: gs.renderers.RayTracer(normal_diff_clamp=200.0), "normal_diff_clamp"),
    (lambda: gs.renderers.RayTracer(lights=[3]), "SphereLight"),
    (lambda: gs.renderers.RayTracer(spp=4), "unknown option"),
    (lambda: gs.renderers.BatchRenderer(use_rasterizer=1), "use_rasterizer"),
    (lambda: gs.renderers.SphereLight(radius=-1.0), "radius"),
    (lambda: gs.renderers.Rasterizer(shadow=True), "unknown option"),
    (lambda: gs.Scene(renderer="rasterizer"), "gs.renderers.Rasterizer"),
    (lambda: gs.Scene(renderer=gs.options.VisOptions()), "gs.renderers.Rasterizer"),
])
def test_invalid_renderer_options_raise_naming_the_fix(gs_cpu, make, match):
    with pytest.raises(InvalidInputError, match=match):
        make()


def test_renderer_options_are_frozen(gs_cpu):
    with pytest.raises(InvalidInputError, match="frozen"):
        gs.renderers.RayTracer().tracing_depth = 3

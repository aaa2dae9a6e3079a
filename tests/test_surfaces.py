"""gs.surfaces: Genesis' classes and defaults, validation, storage on entities, and the colour reaching the image."""

from __future__ import annotations

import numpy as np
import pytest

import genesis_torch as gs

GENESIS_DEFAULTS = {  # (class, field): Genesis 1.4.5's default (genesis/options/surfaces.py)
    ("Default", "ior"): 1.0, ("Default", "specular_trans"): 0.0, ("Default", "roughness"): None,
    ("Plastic", "ior"): 1.0, ("Rough", "roughness"): 1.0, ("Rough", "ior"): 1.5, ("Smooth", "roughness"): 0.1,
    ("Smooth", "ior"): 1.5, ("Reflective", "roughness"): 0.01, ("Reflective", "ior"): 2.0,
    ("Collision", "color"): (0.5, 0.5, 0.5), ("Glass", "roughness"): 0.0, ("Glass", "ior"): 1.5,
    ("Glass", "subsurface"): False, ("Water", "color"): (0.61, 0.98, 0.93), ("Water", "roughness"): 0.2,
    ("Water", "ior"): 1.2, ("Metal", "metal_type"): "iron", ("Metal", "roughness"): 0.1, ("Iron", "metal_type"): "iron",
    ("Aluminium", "metal_type"): "aluminium", ("Copper", "metal_type"): "copper", ("Gold", "metal_type"): "gold",
    ("Emission", "color"): None, ("Default", "vis_mode"): None, ("Default", "smooth"): True,
    ("Default", "cutoff"): 180.0, ("Default", "recon_backend"): "splashsurf", ("Default", "default_roughness"): 1.0,
}


def test_classes_and_genesis_defaults():
    for (cls, field), value in GENESIS_DEFAULTS.items():
        assert getattr(getattr(gs.surfaces, cls)(), field) == value, (cls, field)
    assert issubclass(gs.surfaces.Default, gs.surfaces.BSDF) and issubclass(gs.surfaces.Water, gs.surfaces.Glass)
    assert issubclass(gs.surfaces.Gold, gs.surfaces.Metal) and issubclass(gs.surfaces.Rough, gs.surfaces.Plastic)
    assert gs.surfaces.Rough().default_roughness == 1.0 and gs.surfaces.Smooth().default_roughness == 0.1
    assert gs.surfaces.Smooth(default_roughness=0.7).default_roughness == 0.7  # an explicit value wins
    s = gs.surfaces.Default(color=(0.2, 0.4, 0.6), vis_mode="particle", opacity=0.5)
    assert s.color == (0.2, 0.4, 0.6) and s.vis_mode == "particle" and s.rgba == (0.2, 0.4, 0.6, 0.5)
    assert gs.surfaces.Default(color=np.array([1.0, 0.0, 0.0, 0.3])).rgba == (1.0, 0.0, 0.0, 0.3)
    assert gs.surfaces.Default().rgba is None  # keep the asset's colours
    assert gs.surfaces.Plastic(color=(0, 0, 0), emissive=(0, 2, 0)).rgba == (0, 1, 0, 1)  # black base: emission
    assert gs.surfaces.Emission(color=(4.0, 4.0, 2.0)).rgba == (1, 1, 1, 1)  # an emitted colour may exceed 1


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(colour=(1, 0, 0)), gs.errors.InvalidInputError, "valid options are"),
    (dict(color=(255, 0, 0)), gs.errors.InvalidInputError, "divide by 255"),
    (dict(color=(1, 0)), gs.errors.InvalidInputError, "(r, g, b)"),
    (dict(color="red"), gs.errors.InvalidInputError, "(r, g, b)"),
    (dict(color=(float("nan"), 0, 0)), gs.errors.InvalidInputError, "(r, g, b)"),
    (dict(vis_mode="mesh"), gs.errors.InvalidInputError, "'recon'"),
    (dict(opacity=1.5), gs.errors.InvalidInputError, "<= 1"),
    (dict(roughness=-0.1), gs.errors.InvalidInputError, ">= 0"),
    (dict(smooth=1), gs.errors.InvalidInputError, "True or False"),
    (dict(recon_backend="vdb"), gs.errors.InvalidInputError, "openvdb"),
    (dict(diffuse_texture=object()), gs.errors.UnsupportedFeatureError, "color="),
    (dict(foam_options=object()), gs.errors.UnsupportedFeatureError, "foam"),
])
def test_bad_arguments_raise_naming_the_fix(kwargs, error, words):
    with pytest.raises(error, match=None) as info:
        gs.surfaces.Default(**kwargs)
    assert words in str(info.value)


def test_metal_type_and_frozen():
    with pytest.raises(gs.errors.InvalidInputError, match="brass"):
        gs.surfaces.Metal(metal_type="steel")
    s = gs.surfaces.Gold()
    with pytest.raises(gs.errors.InvalidInputError, match="frozen"):
        s.color = (1, 1, 0)


def test_add_entity_stores_the_surface_rigid_and_mpm(gs_cpu):
    scene = gs.Scene()
    red = gs.surfaces.Default(color=(0.9, 0.1, 0.1))
    plane = scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.1), size=(0.2, 0.2, 0.2)), surface=red)
    sand = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.5, 0.3), size=(0.04, 0.04, 0.04)),
                            material=gs.materials.MPM.Elastic(), surface=gs.surfaces.Rough(vis_mode="particle"))
    assert box.surface is red and isinstance(plane.surface, gs.surfaces.Default) and plane.surface.rgba is None
    assert sand.surface.vis_mode == "particle"
    n = len(scene.entities)
    with pytest.raises(gs.errors.InvalidInputError, match="gs.surfaces"):
        scene.add_entity(gs.morphs.Sphere(radius=0.1), surface=(1, 0, 0))
    assert len(scene.entities) == n  # the failed call added nothing
    scene.build()
    m = scene.rigid_solver.mj_model
    np.testing.assert_allclose(m.geom_rgba[m.body_geomadr[box.base_link.idx + 1]], (0.9, 0.1, 0.1, 1.0), atol=1e-6)


def test_surface_colour_does_not_change_the_physics_fingerprint(gs_cpu):
    def fingerprint(surface):
        scene = gs.Scene()
        scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.2, 0.2, 0.2)), surface=surface)
        scene.build()
        return scene._fingerprint

    assert fingerprint(None) == fingerprint(gs.surfaces.Metal(color=(0.1, 0.9, 0.1)))


def _render_top(surface):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.1), size=(0.3, 0.3, 0.2)), surface=surface)
    cam = scene.add_camera(res=(64, 48), pos=(0, 0, 2.0), lookat=(0, 0, 0), fov=30)
    scene.build()
    try:
        return cam.render()[0]
    except gs.errors.UnsupportedFeatureError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")


def test_the_surface_colour_reaches_the_rendered_image(gs_cpu):
    """A red, a green and a blue box seen from above. MuJoCo shades a pixel as (ambient + diffuse) * colour plus a
    white specular term, so the box's pixels have the coloured channel well above the other two, and those two equal
    (as in the colour); with no colour the asset's grey (all channels equal) stays."""
    for channel, color in enumerate(((0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9))):
        px = _render_top(gs.surfaces.Default(color=color))[20:28, 28:36].reshape(-1, 3).astype(float)
        others = np.delete(px, channel, axis=1)
        assert (px[:, channel] - others.max(axis=1) > 80).all(), (color, px[:4])
        assert (np.ptp(others, axis=1) <= 2).all(), (color, px[:4])
    grey = _render_top(None)[24, 32].astype(float)
    assert np.ptp(grey) <= 2 and grey.mean() > 40

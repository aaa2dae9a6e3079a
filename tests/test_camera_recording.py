"""Genesis 1.4.5's camera API beyond render(): recording as the scene steps (start / pause / stop), the rasteriser's
near / far clip planes, `scene.visualizer.update()` and `scene.viewer`; and a render does not depend on the one
before it (MuJoCo lays an infinite plane out around the scene's camera)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import genesis_torch as gs
from genesis_torch.errors import InvalidInputError, UnsupportedFeatureError

RES = (48, 36)


def _scene(**cam):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.2, 0.2, 0.2)))
    camera = scene.add_camera(res=RES, pos=(1.5, -1.0, 1.0), lookat=(0, 0, 0.3), fov=40, **cam)
    scene.build()
    return scene, box, camera


def _render(cam, **flags):
    try:
        return cam.render(**flags)
    except UnsupportedFeatureError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")


def test_recording_takes_a_frame_every_steps_per_frame_steps(gs_cpu, caplog):
    """fps 50 at dt 0.01: a frame every 2 steps, of the state that step produced; render() adds none; a paused
    span adds none; fps 60 is not reachable (1 / (60 dt) = 1.67 steps) and records at 50 with a warning."""
    scene, box, cam = _scene()
    _render(cam)
    cam.start_recording(fps=50)
    frames_of_state = []
    for k in range(6):
        scene.step()
        cam.render()  # not recorded
        if k % 2 == 1:
            frames_of_state.append(cam.render()[0])
    cam.pause_recording()
    for _ in range(4):
        scene.step()
    cam.start_recording()  # resume: the next frame is 2 steps on
    for _ in range(3):
        scene.step()
    frames = cam.stop_recording()
    assert frames.shape == (4, RES[1], RES[0], 3) and frames.dtype == np.uint8
    for got, want in zip(frames, frames_of_state):
        assert np.array_equal(got, want), "a frame is the render of the state of the step it follows"
    assert not np.array_equal(frames[0], frames[2]), "the box fell between frames"
    with caplog.at_level(logging.WARNING, logger="genesis_torch"):
        cam.start_recording()  # Genesis' default fps 60
    assert any("fps=60 is not reachable" in r.message and "fps=50" in r.message for r in caplog.records)
    scene.reset()  # the clock goes back to 0: the first step after it sets the next frame one interval ahead
    for _ in range(3):  # (Genesis' rule): steps 1, 2, 3 -> one frame, at step 3
        scene.step()
    assert cam.stop_recording().shape[0] == 1


@pytest.mark.parametrize("call,match", [
    (lambda cam: cam.stop_recording(), "not started"),
    (lambda cam: cam.pause_recording(), "not started"),
    (lambda cam: cam.start_recording(fps=0), "fps"),
    (lambda cam: cam.start_recording(fps=True), "fps"),
    (lambda cam: cam.start_recording(save_to_filename=3), "save_to_filename"),
])
def test_recording_errors_name_the_fix(gs_cpu, call, match):
    _, _, cam = _scene()
    with pytest.raises(InvalidInputError, match=match):
        call(cam)


def test_recording_states_are_checked(gs_cpu, tmp_path):
    scene, _, cam = _scene()
    cam.start_recording(fps=100)
    with pytest.raises(InvalidInputError, match="already started"):
        cam.start_recording()
    cam.pause_recording()
    with pytest.raises(InvalidInputError, match="cannot change"):
        cam.start_recording(fps=20)
    cam.start_recording()
    try:
        import imageio  # noqa: F401
    except ImportError:
        scene.step()
        with pytest.raises(UnsupportedFeatureError, match="imageio"):
            cam.stop_recording(save_to_filename=str(tmp_path / "v.mp4"))
        assert cam.stop_recording().shape[0] == 1, "the failed write kept the recording"


def test_near_and_far_clip_the_rasteriser(gs_cpu):
    """Depth is the distance along the view axis: the box top seen from 2 m above is at 1.4 m (box top z 0.6). A
    far plane nearer than the floor leaves only the box drawn (depth = far elsewhere); a near plane past the box
    hides it. Genesis' defaults: near 0.1, far 20."""
    def depth(**clip):
        scene = gs.Scene()
        scene.add_entity(gs.morphs.Plane())
        scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.2, 0.2, 0.2), fixed=True))
        cam = scene.add_camera(res=RES, pos=(0, 0, 2.0), lookat=(0, 0, 0), fov=30, **clip)
        scene.build()
        return cam, _render(cam, rgb=False, depth=True)[1]

    cam, full = depth()
    assert (cam.near, cam.far) == (0.1, 20.0)
    cy, cx = RES[1] // 2, RES[0] // 2
    assert full[cy, cx] == pytest.approx(1.4, abs=2e-3) and full[1, 1] == pytest.approx(2.0, abs=2e-3)
    _, short = depth(far=1.8)
    assert short[cy, cx] == pytest.approx(1.4, abs=2e-3) and short[1, 1] == pytest.approx(1.8, abs=1e-4)
    _, skip_box = depth(near=1.5)
    assert skip_box[cy, cx] == pytest.approx(2.0, abs=2e-3)
    for bad in (dict(near=0.0), dict(far=-1.0), dict(near=2.0, far=1.0), dict(near=float("nan")), dict(debug=1)):
        with pytest.raises(InvalidInputError):
            gs.Scene().add_camera(**bad)
    assert gs.Scene().add_camera(debug=True).debug is True


def test_a_render_does_not_depend_on_the_render_before(gs_cpu):
    """MuJoCo's mjv_updateScene lays an infinite plane out around the camera of the previous update: the camera is
    updated first, so the same state and pose give bitwise the same images whatever was rendered before."""
    scene, _, cam = _scene()
    first = _render(cam, rgb=True, depth=True, normal=True)
    cam.set_pose(pos=(-2.0, 2.0, 3.0), lookat=(0, 0, 0))
    _render(cam, depth=True)
    cam.set_pose(pos=(1.5, -1.0, 1.0), lookat=(0, 0, 0.3))
    again = cam.render(rgb=True, depth=True, normal=True)
    for a, b in zip(first, again):
        if a is not None:
            assert np.array_equal(a, b)


def test_visualizer_and_viewer(gs_cpu):
    scene, _, cam = _scene()
    assert scene.viewer is None and scene.visualizer.viewer is None
    assert scene.visualizer.cameras == [cam]
    scene.visualizer.update()
    scene.visualizer.update(force=False, auto=True)
    with pytest.raises(InvalidInputError, match="force"):
        scene.visualizer.update(force="yes")

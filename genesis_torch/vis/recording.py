"""Genesis 1.4.5's camera recording (`Camera.start_recording` / `pause_recording` / `stop_recording`).

A recording renders the camera as the scene is stepped: after a `scene.step()` that is due, one rgb frame of the
state that step produced. Frames are a whole number of steps apart, `steps_per_frame = max(1, round(1 / (fps dt)))`
(Genesis' pacing with its default realtime factor 1), so the achieved framerate is `1 / (steps_per_frame dt)`; a
warning names it when it differs from the one asked for. `render()` calls do not add frames. The frames are kept in
memory; `stop_recording()` returns them `(n, H, W, 3)` uint8 and writes them as a video (with `imageio`) when a file
name was given. Genesis writes a video under a default name when none is given; genesis-torch writes none then.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from ..errors import InvalidInputError, UnsupportedFeatureError

logger = logging.getLogger("genesis_torch")

DEFAULT_FPS = 60  #: Genesis' RECORDING_DEFAULT_FPS

__all__ = ["Recording", "DEFAULT_FPS"]


def _check_fps(what: str, fps) -> float | None:
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise InvalidInputError(f"{what}(fps={fps!r}): expected a positive framerate (frames per second).")
    return float(fps)


def _check_filename(what: str, name):
    if name is not None and not isinstance(name, (str, os.PathLike)):
        raise InvalidInputError(f"{what}(save_to_filename={name!r}): expected a file name such as 'out/video.mp4'.")
    return name


class Recording:
    """Camera mixin: the recording state and its three calls. The camera provides `_scene`, `res` and `render`."""

    _rec_frames: list | None = None  # the frames of the current recording (None: not started or stopped)
    _rec_active = False  # False while paused
    _rec_filename = None
    _rec_fps = float(DEFAULT_FPS)
    _rec_steps_per_frame = 1
    _rec_t_next = 0  # the scene step count at which the next frame is due

    def _steps_per_frame(self, fps: float) -> int:
        return max(1, round(1.0 / (fps * self._scene.dt)))

    def start_recording(self, save_to_filename=None, fps=None) -> None:
        """Start (or, after `pause_recording`, resume) recording: one frame per `steps_per_frame` scene steps at
        `fps` (default 60) frames per second of simulated time. `save_to_filename` (e.g. 'out/video.mp4') is where
        `stop_recording()` writes the video. Resuming takes neither argument (both are fixed for one video)."""
        what = "Camera.start_recording"
        if self._rec_frames is not None and self._rec_active:
            raise InvalidInputError(f"{what}(): recording already started; stop_recording() or pause_recording() "
                                    "first.")
        fps = _check_fps(what, fps)
        save_to_filename = _check_filename(what, save_to_filename)
        t = self._scene._t
        if self._rec_frames is not None:  # resuming a paused recording
            if save_to_filename is not None or fps is not None:
                raise InvalidInputError(f"{what}(): resuming a paused recording cannot change save_to_filename nor "
                                        "fps (they are fixed for the whole video).")
            self._rec_active, self._rec_t_next = True, t + self._rec_steps_per_frame
            return
        fps = float(DEFAULT_FPS) if fps is None else fps
        spf = self._steps_per_frame(fps)
        achieved = 1.0 / (spf * self._scene.dt)
        if abs(1.0 / (fps * self._scene.dt) - spf) > 1e-9:
            logger.warning("%s: fps=%g is not reachable with dt=%g; recording at fps=%g instead.", what, fps,
                           self._scene.dt, achieved)
        self._rec_frames, self._rec_active, self._rec_filename = [], True, save_to_filename
        self._rec_fps, self._rec_steps_per_frame, self._rec_t_next = achieved, spf, t + spf

    def pause_recording(self) -> None:
        """Stop adding frames until `start_recording()` resumes; the frames so far are kept (no gap in the video)."""
        if self._rec_frames is None or not self._rec_active:
            raise InvalidInputError("Camera.pause_recording(): recording not started; call start_recording() first.")
        self._rec_active = False

    def _update_recording(self) -> None:
        """After a scene step: render and keep a frame when a recording is active and due (Genesis'
        `update_recording`). A clock rewound by a reset moves the next frame back to one interval ahead."""
        if self._rec_frames is None or not self._rec_active:
            return
        t, spf = self._scene._t, self._rec_steps_per_frame
        if t + spf < self._rec_t_next:
            self._rec_t_next = t + spf
        if t < self._rec_t_next:
            return
        self._rec_t_next = t + spf
        self._rec_frames.append(self.render(rgb=True)[0])

    def stop_recording(self, save_to_filename=None, fps=None) -> np.ndarray:
        """Stop recording and return the frames `(n, H, W, 3)` uint8. The video is written with `imageio` to the
        file named here or at `start_recording` (`fps` here, or the achieved framerate); without a name none is
        written. Raises `UnsupportedFeatureError` naming the package when it is missing (the recording is kept)."""
        what = "Camera.stop_recording"
        if self._rec_frames is None:
            raise InvalidInputError(f"{what}(): recording not started; call start_recording() first.")
        fps = _check_fps(what, fps)
        filename = _check_filename(what, save_to_filename) or self._rec_filename
        h, w = self.res[1], self.res[0]
        frames = np.stack(self._rec_frames) if self._rec_frames else np.zeros((0, h, w, 3), np.uint8)
        if filename is not None:
            try:
                import imageio
            except ImportError:
                raise UnsupportedFeatureError(
                    f"{what}(): writing the video {str(filename)!r} needs the 'imageio[ffmpeg]' package; pip install "
                    "it (the recording is kept; call stop_recording() again).") from None
            folder = os.path.dirname(os.fspath(filename))
            if folder:
                os.makedirs(folder, exist_ok=True)
            imageio.mimwrite(filename, list(frames), fps=self._rec_fps if fps is None else fps)
        self._rec_frames, self._rec_active, self._rec_filename = None, False, None
        return frames

"""Genesis' `scene.add_camera(...)` cameras, rendered offscreen with MuJoCo's OpenGL renderer (EGL, no display).

Rendering draws the scene's compiled MuJoCo model in the configuration of one env (`env_idx`, default 0); it is
visualisation only (the simulation never reads it). A camera is a pinhole at `pos` looking at `lookat` with vertical
field of view `fov` (degrees), z up. `render()` returns Genesis' tuple `(rgb, depth, segmentation, normal)`:
`rgb (H, W, 3)` uint8, `depth (H, W)` float32 m along the view axis, `segmentation (H, W)` int32 link index
(-1 = background or the world's geoms), `normal (H, W, 3)` uint8; entries not asked for are None.

Normal maps follow Genesis' rasterizer: world-frame unit normals encoded as `round((n + 1) / 2 * 255)` per channel
(`genesis_torch.vis.decode_normal_map` decodes them), background 0. They are computed from the depth buffer: each
pixel is unprojected with the camera's intrinsics, and the normal is the cross product of the horizontal and vertical
differences to its neighbours (central on a smooth surface, one-sided on the side with the smaller depth jump at a
silhouette, so two surfaces are not mixed), turned to face the camera. Pixels without a neighbour on the same surface along a row or a column (e.g.
one-pixel-wide slivers) get 0, as background does.
"""

from __future__ import annotations

import logging
import math
import weakref

import mujoco
import numpy as np

from ..errors import InvalidInputError, UnsupportedFeatureError
from .normals import normal_map
from .recording import Recording
from .visualizer import Visualizer

logger = logging.getLogger("genesis_torch")

_SLICES, _STACKS = 96, 64  #: facets of rendered round primitives (around the axis, along it)


def _vec3(what, value):
    arr = np.asarray(value, dtype=np.float64).reshape(-1) if value is not None else None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{what}={value!r}: expected three finite numbers (m).")
    return arr


def _release_gl(gl, *contexts) -> None:
    """Free MuJoCo's GL resources in their own EGL context, then the context. `MjrContext.free` (also run when one is
    garbage collected) deletes its textures and buffers *in the current context*: left to the garbage collector, a dead
    camera's context would delete another live camera's objects of the same ids. `as_current` restores the context
    that was current, so this is safe at any moment, even between two GL calls of another render."""
    try:
        with gl.as_current():
            for con in contexts:
                con.free()
        gl.free()
    except Exception:  # interpreter shutdown: EGL may already be gone  # noqa: BLE001
        pass


class Camera(Recording):
    """A pinhole camera of a scene (Genesis' `Camera`); see the module docstring. `near` / `far` (m) are the clip
    planes of the rasteriser (Genesis' defaults 0.1 and 20): nearer or farther surfaces are not drawn, and depth is
    `far` where nothing is drawn. Recording: `vis/recording.py`."""

    def __init__(self, scene, model="pinhole", res=(320, 320), pos=(0.5, 2.5, 3.5), lookat=(0.5, 0.5, 0.5),
                 up=(0.0, 0.0, 1.0), fov=30, aperture=2.0, focus_dist=None, GUI=False, spp=256, denoise=None,
                 near=0.1, far=20.0, env_idx=None, debug=False):
        if model != "pinhole":
            raise UnsupportedFeatureError(f"add_camera(model={model!r}): only 'pinhole' cameras are rendered.")
        try:
            w, h = (int(v) for v in res)
        except (TypeError, ValueError):
            raise InvalidInputError(f"add_camera(res={res!r}): expected (width, height) in pixels.") from None
        if not (0 < w <= 4096 and 0 < h <= 4096):
            raise InvalidInputError(f"add_camera(res={res!r}): width and height must be in 1..4096.")
        if isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 0 < fov < 180:
            raise InvalidInputError(f"add_camera(fov={fov!r}): expected a vertical field of view in (0, 180) degrees.")
        if not isinstance(GUI, bool):
            raise InvalidInputError(f"add_camera(GUI={GUI!r}): expected True or False.")
        if env_idx is not None and (isinstance(env_idx, bool) or not isinstance(env_idx, int) or env_idx < 0):
            raise InvalidInputError(f"add_camera(env_idx={env_idx!r}): expected an env index >= 0 or None.")
        for name, v in (("near", near), ("far", far)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise InvalidInputError(f"add_camera({name}={v!r}): expected a positive distance in metres.")
        if near >= far:
            raise InvalidInputError(f"add_camera(near={near!r}, far={far!r}): near must be smaller than far.")
        if not isinstance(debug, bool):
            raise InvalidInputError(f"add_camera(debug={debug!r}): expected True or False.")
        if GUI:
            logger.warning("add_camera(GUI=True): genesis-torch opens no windows; render() returns the images.")
        self._scene, self.res, self.fov, self.env_idx = scene, (w, h), float(fov), env_idx or 0
        self.near, self.far, self.debug = float(near), float(far), debug
        self._pos, self._lookat = _vec3("add_camera(pos)", pos), _vec3("add_camera(lookat)", lookat)
        self._check_up(up)
        self._check_pose(self._pos, self._lookat)
        self._gl = None

    # ------------------------------------------------------------------ pose
    @staticmethod
    def _check_up(up):
        u = _vec3("up", up)
        if np.linalg.norm(np.cross(u, [0, 0, 1])) > 1e-9 or u[2] <= 0:
            raise UnsupportedFeatureError(f"camera up={tuple(u)}: only z-up cameras are rendered; use (0, 0, 1).")

    @staticmethod
    def _check_pose(pos, lookat):
        if np.linalg.norm(lookat - pos) < 1e-9:
            raise InvalidInputError("camera pos and lookat must differ.")

    @property
    def pos(self) -> np.ndarray:
        return self._pos.copy()

    @property
    def lookat(self) -> np.ndarray:
        return self._lookat.copy()

    def set_pose(self, pos=None, lookat=None, up=None, transform=None) -> None:
        """Move the camera (pos, lookat in m, world frame); `transform` (a 4x4 pose) is not supported."""
        if transform is not None:
            raise UnsupportedFeatureError("Camera.set_pose(transform=...): give pos and lookat instead.")
        new_pos = self._pos if pos is None else _vec3("set_pose(pos)", pos)
        new_lookat = self._lookat if lookat is None else _vec3("set_pose(lookat)", lookat)
        if up is not None:
            self._check_up(up)
        self._check_pose(new_pos, new_lookat)
        self._pos, self._lookat = new_pos, new_lookat

    # ---------------------------------------------------------------- render
    def _context(self, m):
        if self._gl is None:
            try:
                from mujoco import egl
                gl = egl.GLContext(*self.res)
                gl.make_current()
                con = self._make_mjr_context(m, m.vis.quality.offsamples)
                exact = self._make_mjr_context(m, 0)
            except Exception as exc:  # no EGL / GPU driver: say so, with the fix
                raise UnsupportedFeatureError(
                    f"Camera.render(): offscreen OpenGL (EGL) is not available here ({exc}); install an EGL driver "
                    "(e.g. libegl1 and Mesa) to render images.") from None
            self._gl = (gl, con, exact, mujoco.MjvScene(m, 10000), mujoco.MjvOption(), mujoco.MjData(m))
            weakref.finalize(self, _release_gl, gl, con, exact)
        return self._gl

    def _make_mjr_context(self, m, samples: int):
        """MuJoCo's GL resources for `m`: an offscreen buffer of at least this camera's resolution (MuJoCo's default
        is 640x480) with `samples` multisamples, and spheres, capsules and cylinders tessellated in `_SLICES` x
        `_STACKS` facets (MuJoCo's default 28 x 16 leaves ~6 degree facets, visible in depth and normal maps). The
        model is left as it was.

        Two are made: the multisampled one (MuJoCo's default 4 samples) draws the antialiased rgb image; one without
        multisampling draws depth, normals and segmentation, so each pixel's depth and id are sampled at the pixel's
        centre (a multisampled depth buffer is read back from one sample, off centre, and ids are blended at edges)."""
        g, q = m.vis.global_, m.vis.quality
        saved = g.offwidth, g.offheight, q.numslices, q.numstacks, q.offsamples
        g.offwidth, g.offheight = max(g.offwidth, self.res[0]), max(g.offheight, self.res[1])
        q.numslices, q.numstacks, q.offsamples = max(q.numslices, _SLICES), max(q.numstacks, _STACKS), samples
        try:
            return mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_150)
        finally:
            g.offwidth, g.offheight, q.numslices, q.numstacks, q.offsamples = saved

    def render(self, rgb=True, depth=False, segmentation=False, colorize_seg=False, normal=False, antialiasing=False,
               force_render=False):
        """Render env `env_idx` now: `(rgb, depth, segmentation, normal)` (module docstring), None where not asked for.

        `colorize_seg` returns the segmentation as `(H, W, 3)` uint8 colours. `force_render` is honoured trivially
        (every call renders afresh); `antialiasing` (Genesis: batch renderer only) is accepted and ignored."""
        for name, flag in (("rgb", rgb), ("depth", depth), ("segmentation", segmentation),
                           ("colorize_seg", colorize_seg), ("normal", normal), ("antialiasing", antialiasing),
                           ("force_render", force_render)):
            if not isinstance(flag, (bool, np.bool_)):
                raise InvalidInputError(f"Camera.render({name}={flag!r}): expected True or False.")
        scene = self._scene
        if not scene.is_built or scene.rigid_solver is None:
            raise InvalidInputError("Camera.render() needs a built scene with rigid entities; call scene.build().")
        if self.env_idx >= scene.batch_size:
            raise InvalidInputError(f"camera env_idx={self.env_idx} but the scene has {scene.batch_size} envs.")
        m = scene.rigid_solver.mj_model
        gl, con, exact, scn, opt, d = self._context(m)
        gl.make_current()
        self._pose_env(m, d)
        self._update_scene(m, d, opt, scn)
        w, h = self.res
        rect = mujoco.MjrRect(0, 0, w, h)
        out_rgb = np.flipud(self._draw(scn, con, rect, segment=False)[0]).copy() if rgb else None
        metric = None
        if depth or normal:  # OpenGL depth buffer -> distance along the view axis (MuJoCo's Renderer does the same)
            zbuf = self._draw(scn, exact, rect, segment=False)[1]
            near, far = self.near, self.far
            metric = np.flipud(near / (1 - zbuf.astype(np.float64) * (1 - near / far)))
        out_depth = metric.astype(np.float32) if depth else None
        out_normal = None
        if normal:
            glcam = mujoco.mjv_averageCamera(scn.camera[0], scn.camera[1])
            out_normal = normal_map(metric, np.flipud(zbuf >= 1.0), glcam, (w, h))
        out_seg = self._segmentation(m, scn, exact, rect) if segmentation else None
        if colorize_seg and out_seg is not None:
            out_seg = ((out_seg[..., None] + 1) * np.array([53, 97, 193]) % 256).astype(np.uint8)
        return out_rgb, out_depth, out_seg, out_normal

    def _pose_env(self, m, d) -> None:
        """Put the model in env `env_idx`'s configuration (qpos and, where moved, fixed-base frames)."""
        scene, solver = self._scene, self._scene.rigid_solver
        d.qpos[:] = scene._rigid_state.qpos[self.env_idx].detach().cpu().double().numpy()
        row = lambda t: t[min(self.env_idx, t.shape[0] - 1)].detach().cpu().double().numpy()  # noqa: E731
        saved = m.body_pos.copy(), m.body_quat.copy()
        if solver.frames_moved:  # the env's fixed bases moved by set_pos / set_quat
            m.body_pos[:], m.body_quat[:] = row(solver.params.body_pos), row(solver.params.body_quat)
        try:
            mujoco.mj_kinematics(m, d)
            mujoco.mj_camlight(m, d)
        finally:
            m.body_pos[:], m.body_quat[:] = saved

    def _update_scene(self, m, d, opt, scn) -> None:
        """Fill the visual scene `scn` as seen from this camera (pose and vertical field of view)."""
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        view = self._lookat - self._pos
        cam.lookat[:], cam.distance = self._lookat, float(np.linalg.norm(view))
        cam.azimuth = math.degrees(math.atan2(view[1], view[0]))
        cam.elevation = math.degrees(math.asin(view[2] / cam.distance))
        fovy, groups, clip = m.vis.global_.fovy, m.geom_group.copy(), (m.vis.map.znear, m.vis.map.zfar)
        m.vis.global_.fovy = self.fov
        m.vis.map.znear, m.vis.map.zfar = self.near / m.stat.extent, self.far / m.stat.extent  # MuJoCo: x extent
        active = getattr(self._scene.rigid_solver, "geoms_env_active", None)  # heterogeneous entities' variants
        hidden = None if active is None else ~active[self.env_idx].cpu().numpy()
        if hidden is not None:  # the other variants' geoms: moved to group 5, not drawn (MuJoCo's geomgroup)
            m.geom_group[hidden], hidden_group, opt.geomgroup[5] = 5, opt.geomgroup[5], 0
        try:
            # mjv_updateScene adds the geoms before it updates the camera, and MuJoCo lays an infinite plane out
            # around the scene's camera: updating the camera first makes the plane this frame's, not the last one's
            # (otherwise a render depends on the previous render: depth ~1e-5 m on ~10% of the pixels, measured)
            mujoco.mjv_updateCamera(m, d, cam, scn)
            mujoco.mjv_updateScene(m, d, opt, None, cam, mujoco.mjtCatBit.mjCAT_ALL, scn)
        finally:
            m.vis.global_.fovy, m.geom_group[:] = fovy, groups
            m.vis.map.znear, m.vis.map.zfar = clip
            if hidden is not None:
                opt.geomgroup[5] = hidden_group

    def _draw(self, scn, con, rect, segment):
        """Render `scn` into `con`'s offscreen buffer; `(image (H, W, 3) uint8, zbuf (H, W) float32)`, bottom row
        first (OpenGL's order)."""
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
        scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = segment
        scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = segment
        try:
            mujoco.mjr_render(rect, scn, con)
        finally:
            scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = False
            scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = False
        image = np.zeros((rect.height, rect.width, 3), np.uint8)
        zbuf = np.zeros((rect.height, rect.width), np.float32)
        mujoco.mjr_readPixels(image, zbuf, rect, con)
        return image, zbuf

    def _segmentation(self, m, scn, con, rect):
        """Link index per pixel (-1: background or geoms of the world body), decoded from MuJoCo's id colours."""
        image, _ = self._draw(scn, con, rect, segment=True)
        px = image.astype(np.int64)
        ids = px[..., 0] + 256 * px[..., 1] + 65536 * px[..., 2] - 1  # index into the visual scene's geoms
        link = np.full(scn.ngeom + 1, -1, np.int64)
        for i in range(scn.ngeom):
            g = scn.geoms[i]
            if g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                link[i] = m.geom_bodyid[g.objid] - 1
        return np.flipud(link[np.where((ids >= 0) & (ids < scn.ngeom), ids, scn.ngeom)]).astype(np.int32).copy()


class Cameras:
    """Scene mixin: Genesis' `add_camera`, `scene.visualizer` and `scene.viewer` (None: there is no viewer)."""

    def add_camera(self, model="pinhole", res=(320, 320), pos=(0.5, 2.5, 3.5), lookat=(0.5, 0.5, 0.5),
                   up=(0.0, 0.0, 1.0), fov=30, aperture=2.0, focus_dist=None, GUI=False, spp=256, denoise=None,
                   near=0.1, far=20.0, env_idx=None, debug=False) -> Camera:
        """A camera rendering env `env_idx` (default 0) offscreen, with Genesis 1.4.5's arguments and defaults;
        `aperture`, `focus_dist`, `spp` and `denoise` (ray-tracer settings) are accepted and ignored, and `debug`
        (Genesis: always drawn by the rasteriser) is kept as `camera.debug` (every camera is rasterised here).
        Before or after `build()`."""
        cam = Camera(self, model, res, pos, lookat, up, fov, aperture, focus_dist, GUI, spp, denoise, near, far,
                     env_idx, debug)
        self.__dict__.setdefault("cameras", []).append(cam)
        return cam

    @property
    def visualizer(self) -> Visualizer:
        """Genesis' `scene.visualizer` (`vis/visualizer.py`)."""
        vis = self.__dict__.get("_visualizer")
        if vis is None:
            vis = self.__dict__["_visualizer"] = Visualizer(self)
        return vis

    @property
    def viewer(self):
        """None, as Genesis' `scene.viewer` without a viewer (genesis-torch has none)."""
        return None

    def _update_recordings(self) -> None:
        """Called by `scene.step()`: each recording camera keeps a frame when one is due."""
        for cam in self.__dict__.get("cameras", ()):
            cam._update_recording()

"""Images of a scene: Genesis' cameras (`scene.add_camera`), rendered offscreen by MuJoCo's OpenGL renderer."""

from .camera import Camera

__all__ = ["Camera"]

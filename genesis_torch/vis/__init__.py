"""Images of a scene: Genesis' cameras (`scene.add_camera`), rendered offscreen by MuJoCo's OpenGL renderer."""

from .camera import Camera
from .normals import decode_normal_map

__all__ = ["Camera", "decode_normal_map"]

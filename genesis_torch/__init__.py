"""genesis-torch: a batched, differentiable physics simulator written natively in PyTorch.

    import genesis_torch as gs
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=1024)
    scene.step()
"""

from . import errors, morphs, options, renderers, surfaces, tools
from ._logger import logger
from ._runtime import cpu, cuda, destroy, get_runtime, gpu, init
from ._tensor import Tensor, tensor
from .entities.rigid_entity import RigidEntity, RigidJoint, RigidLink
from .constants import friction_cone
from .options import constraint_solver, integrator
from .scene import Scene
from .rollout import functional_step, rollout
from .state import SimState
from . import materials
from . import _runtime, utils
from .utils.geom import *  # noqa: F401,F403  Genesis exposes its geometry helpers at top level too (gs.xyz_to_quat)

__version__ = "0.1.0"


def __getattr__(name):
    """`gs.device`: the torch device of the current runtime (Genesis' name; initialises defaults on first use).
    `gs.tc_float`, `gs.np_float`, `gs.tc_int`, ...: the runtime's dtypes, after `gs.init` or auto-init (as Genesis).
    `gs.use_zerocopy`: whether the runtime is initialised (Genesis: None before `gs.init`, then True where torch shares
    the simulation's memory; here the state is torch tensors, so True after `gs.init`)."""
    if name == "device":
        return get_runtime().device
    if name == "use_zerocopy":  # Genesis' flag: torch tensors are the simulation's own storage (no kernel fields)
        return _runtime.is_initialized()
    if name in _runtime.DTYPE_ALIASES:
        return _runtime.dtype_alias(name)
    raise AttributeError(f"module 'genesis_torch' has no attribute {name!r}")

__all__ = [
    "init", "destroy", "get_runtime", "cpu", "gpu", "cuda",
    "Scene", "SimState", "RigidEntity", "RigidLink", "RigidJoint", "device", "friction_cone",
    "morphs", "materials", "options", "errors", "integrator", "constraint_solver",
    "renderers", "surfaces", "tools", "utils", "logger", "tensor", "Tensor", "rollout", "functional_step",
    "__version__",
]

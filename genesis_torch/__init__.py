"""genesis-torch: a batched, differentiable physics simulator written natively in PyTorch.

    import genesis_torch as gs
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=1024)
    scene.step()
"""

import os as _os

# MKL (torch's CPU LAPACK) chooses code paths by the operands' memory alignment and by the CPU: on an AMD EPYC,
# torch.cholesky_solve / solve_triangular of one matrix rounded differently alone and inside a batch (12-52 of 70
# positions, float32 / float64), which breaks an env's independence of its batch position (DESIGN.md). MKL's
# conditional numerical reproducibility mode on its AVX2 branch (the same results on every CPU with AVX2), read by
# MKL at its first call, removes that: set unless the user chose one (docs/decisions.md, "MKL reproducibility mode").
import torch as _torch  # noqa: E402  (the capability query calls no MKL function)

_os.environ.setdefault("MKL_CBWR", "AVX2" if _torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
                       else "COMPATIBLE")

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

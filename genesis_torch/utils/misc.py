"""Genesis' `genesis.utils.misc` helpers that example scripts import: tensors to CPU / NumPy.

Genesis' other helpers of that module (Quadrants-field conversions such as `qd_to_numpy`, `get_assets_dir`) have no
equivalent here: there are no kernel fields (the state is torch tensors), and the bundled assets do not follow
Genesis' `genesis/assets` layout (`genesis_torch.morphs.resolve_asset` maps Genesis' asset paths).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["tensor_to_cpu", "tensor_to_array"]


def tensor_to_cpu(x):
    """`x` detached and on the CPU when it is a torch tensor; anything else unchanged (Genesis' `tensor_to_cpu`)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return x


def tensor_to_array(x, dtype=None) -> np.ndarray:
    """`x` (a tensor of any device, or array-like) as a NumPy array, of `dtype` when given (Genesis'
    `tensor_to_array`)."""
    return np.asarray(tensor_to_cpu(x), dtype=dtype)

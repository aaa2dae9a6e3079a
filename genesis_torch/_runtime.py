"""Process-wide runtime settings: device, float dtype, seed. Set once by `gs.init`, or lazily by the first Scene."""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import random
import sys

import numpy as np
import torch

from .errors import InvalidInputError

logger = logging.getLogger("genesis_torch")

cpu = "cpu"
gpu = "gpu"
cuda = "cuda"
_BACKENDS = (cpu, gpu, cuda)
_PRECISIONS = {"32": torch.float32, "64": torch.float64}


@dataclasses.dataclass(frozen=True)
class Runtime:
    """The settings every Scene of this process uses."""

    device: torch.device
    dtype: torch.dtype
    seed: int | None
    precision: str
    deterministic: bool = False
    compile: bool = False  #: whether solvers left to choose (`RigidOptions(compile=None)`) compile their step


_runtime: Runtime | None = None

_MALLOC_KEEP_BYTES = 1 << 30  #: glibc's mmap and trim thresholds while tuned (1 GiB)


def tune_cpu_allocator() -> bool:
    """Let glibc's malloc keep freed memory for reuse: large blocks (up to 1 GiB) come from the heap instead of fresh
    `mmap` pages, and the heap is not trimmed back. With glibc's defaults every large tensor temporary (a few MB,
    e.g. a grid channel or an `(81, P)` transfer term) is mapped, page-faulted in 4 kB at a time and unmapped each
    time; measured here: one MPM substep (15,625 particles, eager, one thread) 30-36 ms -> 18-19 ms, a 5 MB
    `index_select` 4.1 -> 0.75 ms. Process-wide and kept for the process (the resident size stays at its peak).
    Returns whether it applied (False off Linux/glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
        return bool(libc.mallopt(M_MMAP_THRESHOLD, _MALLOC_KEEP_BYTES)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, _MALLOC_KEEP_BYTES))
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator alone
        return False


def init(backend: str | None = None, precision: str = "32", seed: int | None = None, *, logging_level=None,
         deterministic: bool = False, debug: bool = False, eps: float = 1e-12, theme: str = "dark",
         logger_verbose_time: bool = False, performance_mode: bool = False, tune_allocator: bool = True,
         compile: bool | None = None) -> Runtime:
    """Initialise genesis-torch.

    Args:
        backend: `gs.cpu`, `gs.gpu` or `gs.cuda` (`gpu` and `cuda` are the same); None picks CUDA when available.
            Asking for a GPU on a machine without one falls back to CPU with a warning.
        precision: "32" (float32, the default) or "64" (float64, used for validation and gradient checks).
        seed: seeds Python, NumPy and torch RNGs when given.
        logging_level: `logging` level (name such as "info", or number) of the "genesis_torch" logger, which
            `gs.logger` writes to; None gives Genesis' default, INFO (DEBUG when `debug=True`).
        deterministic: use reductions with a fixed summation order on every device (the MPM scatter sorts by grid
            node instead of using CUDA atomics; slower). CPU results are deterministic either way.
        debug, eps, theme, logger_verbose_time, performance_mode: Genesis' switches of its kernel backend and logger,
            validated and ignored (docs/genesis_compat.md), except that `debug` sets the default logging level.
        compile: whether the rigid step of scenes that leave it to the runtime (`RigidOptions(compile=None)`, the
            default) runs as one `torch.compile`d graph (docs/rigid.md, "torch.compile"). None: False unless the
            environment variable GENESIS_TORCH_COMPILE is "1" (docs/decisions.md: a cold compile takes 45-105 s on
            a 2-core CPU and contact-rich steps gain nothing from it). Not a Genesis option.
        tune_allocator: on the CPU backend under Linux/glibc, let malloc keep freed memory for reuse
            (`tune_cpu_allocator`: up to ~2x faster steps with large tensors; process-wide, the resident size stays at
            its peak). False leaves the allocator as it is (a setting made by an earlier call stays).

    Calling `init` again replaces the settings for Scenes created afterwards; existing Scenes keep theirs.
    """
    global _runtime
    if backend is not None and backend not in _BACKENDS:
        raise InvalidInputError(f"gs.init(backend={backend!r}) is not a backend; use gs.cpu, gs.gpu or gs.cuda.")
    if str(precision) not in _PRECISIONS:
        raise InvalidInputError(f'gs.init(precision={precision!r}) is not supported; use "32" or "64".')
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise InvalidInputError(f"gs.init(seed={seed!r}) must be a non-negative int or None.")
    for name, value in (("debug", debug), ("logger_verbose_time", logger_verbose_time),
                        ("performance_mode", performance_mode), ("tune_allocator", tune_allocator)):
        if not isinstance(value, bool):
            raise InvalidInputError(f"gs.init({name}={value!r}): expected True or False.")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0 or not np.isfinite(eps):
        raise InvalidInputError(f"gs.init(eps={eps!r}): expected a positive finite number.")
    if not isinstance(theme, str):
        raise InvalidInputError(f"gs.init(theme={theme!r}): expected a string such as 'dark'.")
    if isinstance(logging_level, str):  # Genesis scripts pass "info", "warning", ...
        if logging.getLevelName(logging_level.upper()) not in (10, 20, 30, 40, 50):
            raise InvalidInputError(f"gs.init(logging_level={logging_level!r}): use 'debug', 'info', 'warning', "
                                    "'error' or 'critical' (or a logging level number).")
        logging_level = logging_level.upper()
    elif logging_level is not None and (isinstance(logging_level, bool) or not isinstance(logging_level, int)):
        raise InvalidInputError(f"gs.init(logging_level={logging_level!r}): expected a level name or number.")
    if not isinstance(deterministic, bool):
        raise InvalidInputError(f"gs.init(deterministic={deterministic!r}): expected True or False.")
    if compile is None:
        import os

        compile = os.environ.get("GENESIS_TORCH_COMPILE", "0").strip().lower() in ("1", "true", "yes", "on")
    elif not isinstance(compile, bool):
        raise InvalidInputError(f"gs.init(compile={compile!r}): expected True, False or None.")
    logger.setLevel(logging_level if logging_level is not None else logging.DEBUG if debug else logging.INFO)
    if backend in (gpu, cuda) or backend is None:
        if torch.cuda.is_available():
            device = torch.device("cuda")
        else:
            if backend is not None:
                logger.warning("gs.init(backend=%s): no CUDA device is available; running on the CPU.", backend)
            device = torch.device("cpu")
    else:
        device = torch.device("cpu")
    if tune_allocator and device.type == "cpu":
        tune_cpu_allocator()
    if seed is not None:
        random.seed(int(seed))
        np.random.seed(int(seed))
        torch.manual_seed(int(seed))
    _runtime = Runtime(device=device, dtype=_PRECISIONS[str(precision)], seed=seed, precision=str(precision),
                       deterministic=deterministic, compile=compile)
    return _runtime


def get_runtime() -> Runtime:
    """The current runtime, initialising defaults (CUDA if available, else CPU; float32) on first use."""
    if _runtime is None:
        return init()
    return _runtime


def is_initialized() -> bool:
    return _runtime is not None


#: Genesis' top-level dtype aliases (genesis/__init__.py): floats follow `precision`, ints are 32-bit, bools are bool
#: (Genesis uses int32 bools only on Apple Metal, which genesis-torch does not target).
DTYPE_ALIASES = ("tc_float", "tc_int", "tc_bool", "np_float", "np_int", "np_bool")


def dtype_alias(name: str):
    """`gs.tc_float`, `gs.np_int`, ... of the current runtime. As in Genesis, they exist only once the runtime is
    initialised (`gs.init`, or the first Scene's auto-init); before that, AttributeError says so."""
    if _runtime is None:
        raise AttributeError(f"module 'genesis_torch' has no attribute {name!r} before gs.init(): the dtype aliases "
                             "are set by gs.init(precision=...) (or by creating the first Scene).")
    floats = {torch.float32: (torch.float32, np.float32), torch.float64: (torch.float64, np.float64)}
    tc_float, np_float = floats[_runtime.dtype]
    return {"tc_float": tc_float, "np_float": np_float, "tc_int": torch.int32, "np_int": np.int32,
            "tc_bool": torch.bool, "np_bool": np.bool_}[name]


def destroy() -> None:
    """Forget the settings, so the next `gs.init` or Scene starts afresh."""
    global _runtime
    _runtime = None

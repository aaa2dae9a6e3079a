"""`gs.tools`: Genesis' `Timer`, and the progress bar genesis-torch shows around long work.

`Timer` keeps Genesis' signature (`Timer(skip=False, level=0, qd_sync=False)`, `reset()`, `stamp(msg="",
_ratio=1.0)`, `accu_log`). One difference: Genesis 1.4.5's public `stamp` returns at once (its timing line is only
printed by the private `_stamp`); here `stamp` measures and prints the line, which is what the class is for.
`skip=True` silences it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import torch

from .errors import InvalidInputError

__all__ = ["Timer", "progress", "progress_enabled"]


class Timer:
    """Wall-clock timer printing one line per `stamp(msg)`: the time since the previous stamp ("step"), since the
    last `reset()` ("accu"), and their running means per message, all in milliseconds.

    Args:
        skip: measure and print nothing.
        level: nesting depth of this timer under others; 0 prints a rule across the terminal on `reset()`, deeper
            levels indent their lines with tree marks.
        qd_sync: Genesis synchronises its device before each reading; here the CUDA device is synchronised when the
            runtime uses it (otherwise a no-op), so GPU work is timed, not just launched.
    """

    def __init__(self, skip=False, level=0, qd_sync=False):
        for name, value in (("skip", skip), ("qd_sync", qd_sync)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"gs.tools.Timer({name}={value!r}): expected True or False.")
        if isinstance(level, bool) or not isinstance(level, int) or level < 0:
            raise InvalidInputError(f"gs.tools.Timer(level={level!r}): expected an int >= 0.")
        self.skip, self.level, self.qd_sync = skip, level, qd_sync
        self.accu_log: dict[str, list] = {}  #: msg -> [count, total step ms, total accu ms]
        self.msg_width = 0
        self.reset()

    def _sync(self) -> None:
        if self.qd_sync and torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def reset(self) -> None:
        """Restart the accumulated time (the per-message means are kept)."""
        self.just_reset = True
        if self.level == 0 and not self.skip:
            print("─" * shutil.get_terminal_size((80, 24)).columns)
        self._sync()
        self.prev_time = self.init_time = time.perf_counter()

    def stamp(self, msg="", _ratio=1.0) -> None:
        """Print the time since the previous stamp and since `reset()` (ms, scaled by `_ratio`) under `msg`."""
        if self.skip:
            return
        if not isinstance(msg, str):
            raise InvalidInputError(f"Timer.stamp(msg={msg!r}): expected a string.")
        self._sync()
        now = time.perf_counter()
        step_ms, accu_ms = 1e3 * (now - self.prev_time) * _ratio, 1e3 * (now - self.init_time) * _ratio
        count, step_sum, accu_sum = self.accu_log.get(msg, (0, 0.0, 0.0))
        self.accu_log[msg] = [count + 1, step_sum + step_ms, accu_sum + accu_ms]
        self.msg_width = max(self.msg_width, len(msg))
        n, s, a = self.accu_log[msg]
        print(f"{self._prefix()}[{msg.ljust(self.msg_width)}] step: {step_ms:5.3f}ms | accu: {accu_ms:5.3f}ms | "
              f"step_avg: {s / n:5.3f}ms | accu_avg: {a / n:5.3f}ms")
        self.just_reset = False
        self.prev_time = time.perf_counter()

    def _prefix(self) -> str:
        if self.level == 0:
            return ""
        return " │  " * (self.level - 1) + (" ╭──" if self.just_reset else " ├──")


def progress_enabled() -> bool:
    """Progress bars show only on an interactive terminal (stderr is a TTY) and never under CI (`CI=true`)."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def progress(iterable=None, *, total=None, desc=None, unit="it", leave=False):
    """A `tqdm` progress bar over `iterable` (or a manual one of `total` steps), shown on stderr only when
    `progress_enabled()`; otherwise it iterates silently."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not progress_enabled(),
                dynamic_ncols=True)

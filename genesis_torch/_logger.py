"""`gs.logger`: Genesis' logger interface on Python's `logging` ("genesis_torch" logger).

Every module of the package logs to `logging.getLogger("genesis_torch")`; `gs.logger` is a thin front for scripts
written for Genesis (`gs.logger.info(...)`, `warning`, `debug`, `error`, `critical`, `log`, `raw`, `timer`). Its level
is set by `gs.init(logging_level=...)` (Genesis' default: INFO, DEBUG with `debug=True`).

Output: records print to stdout as `[Genesis] [HH:MM:SS] [LEVEL] message` unless the application has configured
logging itself (a handler on the root logger, e.g. `logging.basicConfig` or pytest's capture): then they only
propagate to those handlers, so nothing prints twice. Genesis' highlighting markup (`~<value>~`, `~~<name>~~`,
`~value<...>~`, ...) is removed from messages.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading

__all__ = ["Logger", "logger", "strip_markup"]

_NAME = "genesis_torch"

# Genesis' markup: `~kind<text>~` with kind one of value/name/uid/title, or 1-4 tildes around `<text>` (same count
# on both sides). Non-greedy so a text may itself end in '>'.
_MARKUP = re.compile(r"~(?:value|name|uid|title)<(?P<long>.*?)>~|(?P<t>~{1,4})<(?P<short>.*?)>(?P=t)(?!~)", re.DOTALL)


def strip_markup(message) -> str:
    """`message` as a string with Genesis' highlighting markup removed (the enclosed text kept)."""
    return _MARKUP.sub(lambda m: m["long"] if m["long"] is not None else m["short"], str(message))


class _MarkupFilter(logging.Filter):
    """Removes Genesis' markup from a record's message (formatted with its args first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "~" in record.msg:
            record.msg, record.args = strip_markup(record.getMessage()), None
        return True


def _application_prints(log: logging.Logger) -> bool:
    """Whether a record of `log` reaches a handler of the root logger (the application configured logging)."""
    while log.propagate and log.parent is not None:
        log = log.parent
    return log is logging.getLogger() and bool(log.handlers)


class _StdoutHandler(logging.StreamHandler):
    """Prints to the current `sys.stdout` (so redirections made after import apply), unless the application's own
    root handlers already print the record."""

    def __init__(self):
        super().__init__(sys.stdout)
        self.setFormatter(logging.Formatter("[Genesis] [%(asctime)s] [%(levelname)s] %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if _application_prints(logging.getLogger(_NAME)):
            return
        self.setStream(sys.stdout)
        super().emit(record)


class Logger:
    """Genesis' logger methods over the "genesis_torch" `logging.Logger` (see the module docstring)."""

    def __init__(self, name: str = _NAME):
        self._logger = logging.getLogger(name)
        self._handler = next((h for h in self._logger.handlers if isinstance(h, _StdoutHandler)), None)
        if self._handler is None:  # once per process, also when this module is reloaded
            self._handler = _StdoutHandler()
            self._logger.addHandler(self._handler)
        if not any(isinstance(f, _MarkupFilter) for f in self._logger.filters):
            self._logger.addFilter(_MarkupFilter())
        self._lock = threading.Lock()
        self._last_output = ""

    # ---------------------------------------------------------------- records
    def log(self, level, msg, *args, **kwargs) -> None:
        """Log `msg` (%-formatted with `args`, as `logging`) at `level` (a `logging` level number)."""
        with self._lock:
            self._last_output = strip_markup(msg % args if args else msg)
            self._logger.log(level, msg, *args, **kwargs)

    def debug(self, message) -> None:
        self.log(logging.DEBUG, message)

    def info(self, message) -> None:
        self.log(logging.INFO, message)

    def warning(self, message) -> None:
        self.log(logging.WARNING, message)

    def error(self, message) -> None:
        self.log(logging.ERROR, message)

    def critical(self, message) -> None:
        self.log(logging.CRITICAL, message)

    def raw(self, message) -> None:
        """Write `message` (markup removed) to stdout as is: no level, no time, no newline added."""
        with self._lock:
            sys.stdout.write(strip_markup(message))
            sys.stdout.flush()

    def timer(self, msg, refresh_rate=10, end_msg=""):
        """Log `msg` at INFO and return a context manager for the timed block (as in Genesis, it prints nothing
        more). `refresh_rate` and `end_msg` are accepted for Genesis' signature."""
        self.info(msg)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def lock_timer(self):
        """Hold the logger's lock for the block (Genesis' name)."""
        with self._lock:
            yield

    # ------------------------------------------------------------ filtering
    def addFilter(self, filter) -> None:  # noqa: A002 (Genesis' and logging's name)
        self._logger.addFilter(filter)

    def removeFilter(self, filter) -> None:  # noqa: A002
        self._logger.removeFilter(filter)

    def removeHandler(self, handler) -> None:
        self._logger.removeHandler(handler)

    @property
    def handler(self) -> logging.Handler:
        """The stdout handler (see the module docstring)."""
        return self._handler

    @property
    def level(self) -> int:
        """The logger's level (a `logging` level number; 0 = not set, inherited from the root logger)."""
        return self._logger.level

    def setLevel(self, level) -> None:
        self._logger.setLevel(level)

    @property
    def last_output(self) -> str:
        """The message of the last record logged through this object (markup removed, not formatted)."""
        return self._last_output


logger = Logger()

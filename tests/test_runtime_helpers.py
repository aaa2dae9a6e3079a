"""Genesis' runtime helpers: gs.logger, gs.tensor, gs.tools.Timer, gs.options.ProfilingOptions, progress bars."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import torch

import genesis_torch as gs
from genesis_torch import _logger, tools


# ------------------------------------------------------------------ gs.logger
def test_logger_methods_reach_the_package_logger_without_markup(gs_cpu, caplog):
    with caplog.at_level(logging.DEBUG, logger="genesis_torch"):
        gs.logger.debug("d ~<1>~")
        gs.logger.info("built ~<3>~ envs of ~~<franka>~~ (~value<x>~, ~~~~<Title>~~~~)")
        gs.logger.warning("w")
        gs.logger.error("e")
        gs.logger.critical("c")
        gs.logger.log(logging.INFO, "n=%d", 5)
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "genesis_torch"]
    assert got == [(10, "d 1"), (20, "built 3 envs of franka (x, Title)"), (30, "w"), (40, "e"), (50, "c"),
                   (20, "n=5")]
    assert gs.logger.last_output == "n=5"
    with gs.logger.timer("compiling"):  # Genesis' timer: logs its message, then a plain block
        pass
    assert caplog.records[-1].getMessage() == "compiling"
    assert _logger.strip_markup("~/path <a> ~~<b>~~") == "~/path <a> b"


def test_logging_level_comes_from_gs_init():
    try:
        gs.init(backend=gs.cpu)
        assert gs.logger.level == logging.INFO  # Genesis' default
        gs.init(backend=gs.cpu, debug=True)
        assert gs.logger.level == logging.DEBUG
        gs.init(backend=gs.cpu, logging_level="warning", debug=True)
        assert gs.logger.level == logging.WARNING
        with pytest.raises(gs.errors.InvalidInputError, match="logging_level"):
            gs.init(backend=gs.cpu, logging_level="chatty")
    finally:
        gs.destroy()


def test_logger_prints_to_stdout_only_when_the_application_did_not_configure_logging(gs_cpu, monkeypatch):
    """Outside pytest (no root handler) records print once to stdout; with root handlers they only propagate."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    gs.logger.info("to ~<stdout>~")
    gs.logger.debug("below the level")
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    gs.logger.warning("handled by the application")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[Genesis] [") and lines[0].endswith("[INFO] to stdout")
    monkeypatch.setattr(root, "handlers", [])
    gs.logger.raw("raw ~<text>~")
    assert out.getvalue().endswith("raw text")


# ------------------------------------------------------------------ gs.tensor
def test_tensor_is_a_leaf_on_the_runtime_device_and_dtype():
    for precision, dtype in (("32", torch.float32), ("64", torch.float64)):
        gs.init(backend=gs.cpu, precision=precision)
        try:
            t = gs.tensor([[1.0, 2.0]], requires_grad=True)
            assert isinstance(t, torch.Tensor) and isinstance(t, gs.Tensor)
            assert t.dtype == dtype and t.device.type == "cpu" and t.shape == (1, 2) and t.is_leaf
            assert gs.tensor([1, 2], dtype=float).dtype == dtype
            assert gs.tensor(torch.ones(2, dtype=torch.float64)).dtype == dtype  # Genesis: any float -> its float
        finally:
            gs.destroy()


def test_tensor_dtypes_copies_and_validation(gs_cpu):
    assert gs.tensor([1, 2]).dtype == torch.int32 and gs.tensor([True]).dtype == torch.bool  # Genesis' int: int32
    assert gs.tensor(2.5, dtype=int).tolist() == 2
    src = torch.ones(3, requires_grad=True)
    t = gs.tensor(src * 2)
    assert t.is_leaf and not t.requires_grad and t.data_ptr() != src.data_ptr()  # a detached copy
    for bad in (lambda: gs.tensor(["a"]), lambda: gs.tensor([1.0], dtype=torch.complex64),
                lambda: gs.tensor([1.0], requires_grad="yes"), lambda: gs.tensor([1, 2], requires_grad=True),
                lambda: gs.tensor([1 + 2j])):
        with pytest.raises(gs.errors.InvalidInputError):
            bad()


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_tensor_zero_grad(gs_cpu):
    x = gs.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.zero_grad()  # no gradient yet: no-op
    assert x.grad is None
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    y = x * 3  # operations give plain tensors (no subclass overhead in the simulation)
    assert type(y) is torch.Tensor
    x.zero_grad()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    (x ** 3).sum().backward(create_graph=True)  # a gradient that is itself a graph is detached, then zeroed
    assert x.grad.grad_fn is not None
    x.zero_grad()
    assert x.grad.grad_fn is None and not x.grad.requires_grad and x.grad.abs().sum() == 0


# ----------------------------------------------------------- gs.tools.Timer
def test_timer_prints_stamps_and_accumulates(capsys):
    timer = gs.tools.Timer()
    timer.stamp("first")
    timer.stamp("second")
    timer.stamp("first")
    out = capsys.readouterr().out.splitlines()
    assert out[0].strip("─") == "" and len(out) == 4
    assert out[1].startswith("[first] step: ") and out[3].startswith("[first ] step: ")  # padded to the widest msg
    assert "accu_avg:" in out[3]
    assert timer.accu_log["first"][0] == 2 and timer.accu_log["second"][0] == 1
    nested = gs.tools.Timer(level=2)
    nested.stamp("a")
    nested.stamp("b")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [lines[0], lines[1]] and lines[0].startswith(" │   ╭──[a]") and lines[1].startswith(" │   ├──[b]")
    quiet = gs.tools.Timer(skip=True, qd_sync=True)
    quiet.stamp("x")
    assert capsys.readouterr().out == "" and quiet.accu_log == {}
    for bad in (dict(skip=1), dict(level=-1), dict(level=True), dict(qd_sync="no")):
        with pytest.raises(gs.errors.InvalidInputError):
            gs.tools.Timer(**bad)


# ---------------------------------------------------- ProfilingOptions, tqdm
def test_profiling_options_are_validated_and_kept_by_the_scene(gs_cpu):
    opts = gs.options.ProfilingOptions(show_FPS=False, FPS_tracker_alpha=0.9)
    assert (opts.show_FPS, opts.FPS_tracker_alpha) == (False, 0.9)
    assert gs.options.ProfilingOptions().show_FPS is True  # Genesis' default
    assert gs.Scene(profiling_options=opts).profiling_options is opts
    assert gs.Scene().profiling_options == gs.options.ProfilingOptions()
    assert gs.Scene(profiling_options=opts, show_FPS=True).profiling_options.show_FPS is True  # Genesis' override
    for bad in (lambda: gs.options.ProfilingOptions(show_FPS="on"), lambda: gs.options.ProfilingOptions(fps=1),
                lambda: gs.options.ProfilingOptions(FPS_tracker_alpha=1.5),
                lambda: gs.Scene(profiling_options=gs.options.VisOptions()), lambda: gs.Scene(show_FPS=1)):
        with pytest.raises(gs.errors.InvalidInputError):
            bad()
    with pytest.raises(gs.errors.InvalidInputError, match="frozen"):
        opts.show_FPS = True


def test_progress_bars_are_off_without_a_terminal_and_under_ci(monkeypatch, capsys):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("CI", raising=False)
    assert not tools.progress_enabled()  # pytest captures stderr: not a TTY
    assert list(tools.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert tools.progress_enabled()
    monkeypatch.setenv("CI", "true")
    assert not tools.progress_enabled()
    assert list(tools.progress(range(2))) == [0, 1] and tty.getvalue() == ""

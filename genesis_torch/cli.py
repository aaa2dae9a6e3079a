"""The `genesis-torch` command: demo, inspect, convert.

    genesis-torch demo [--n-envs N] [--steps T] [--device cpu|cuda] [--seed S] [--out PATH] [--compile]
    genesis-torch inspect FILE
    genesis-torch convert IN OUT
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from .errors import GenesisError
from .tools import progress

HOME = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04, 0.04)  # franka.xml's "home" keyframe


def _franka_scene(gs, n_envs: int, compiled: bool = False):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, substeps=5),
                     rigid_options=gs.options.RigidOptions(compile=compiled))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    return scene, robot


def _table(rows: list[tuple[str, str]]) -> str:
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{w}}  {v}" for k, v in rows)


def demo(n_envs: int, steps: int, device: str | None, seed: int, out: str | None, compiled: bool = False) -> int:
    """Franka with random PD targets: step, save, restore in a fresh scene, verify bit-exact continuation."""
    import genesis_torch as gs

    if n_envs < 1 or steps < 2:
        raise GenesisError(f"demo needs --n-envs >= 1 and --steps >= 2 (got {n_envs}, {steps}).")
    gs.init(backend=device, seed=seed)
    scene, robot = _franka_scene(gs, n_envs, compiled)
    print(f"genesis-torch demo: Franka x {n_envs} envs, {steps} steps of {scene.dt} s "
          f"({scene.sim_options.substeps} substeps) on {scene.device}, {scene.dtype}")
    gen = torch.Generator().manual_seed(seed)
    home = torch.tensor(HOME, dtype=scene.dtype)
    lo, hi = robot._solver.model.act_ctrlrange.cpu().unbind(-1)
    targets = [(home + 0.3 * (torch.rand(n_envs, 9, generator=gen, dtype=scene.dtype) - 0.5)).clamp(lo, hi)
               for _ in range(steps)]
    robot.set_dofs_position(home)

    half = steps // 2
    bar = progress(total=steps, desc="stepping", unit="step")  # a tqdm bar on a terminal, silent otherwise
    t0 = time.perf_counter()
    for i in range(half):
        robot.control_dofs_position(targets[i])
        scene.step()
        bar.update()
    elapsed = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        path = out or os.path.join(tmp, "demo.safetensors")
        t0 = time.perf_counter()
        scene.save_checkpoint(path)
        save_s = time.perf_counter() - t0
        size = os.path.getsize(path)
        scene2, robot2 = _franka_scene(gs, n_envs, compiled)
        t0 = time.perf_counter()
        scene2.load_checkpoint(path)
        load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(half, steps):
        robot.control_dofs_position(targets[i])
        scene.step()
        bar.update()
    elapsed += time.perf_counter() - t0
    bar.close()
    for i in range(half, steps):
        robot2.control_dofs_position(targets[i])
        scene2.step()

    a, b = scene.get_state().to_arrays(), scene2.get_state().to_arrays()
    exact = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a) and scene.t == scene2.t
    qerr = (robot.get_dofs_position() - targets[-1]).abs().max().item()
    print(_table([
        ("env-steps/s", f"{n_envs * steps / elapsed:,.0f}  ({steps} steps x {n_envs} envs in {elapsed:.2f} s)"),
        ("checkpoint", f"{size / 1024:,.1f} KiB  (save {save_s * 1e3:.1f} ms, load {load_s * 1e3:.1f} ms)"),
        ("restored run", "bit-exact continuation" if exact else "MISMATCH after restore"),
        ("tracking error", f"{qerr:.4f} rad (max |q - last target|)"),
        ("scene.t", str(scene.t)),
    ]))
    return 0 if exact else 1


def inspect(path: str) -> int:
    from .checkpoint import describe_checkpoint

    meta, rows = describe_checkpoint(path)
    print(f"{path}")
    for k in ("format", "format_version", "genesis_torch_version", "step_index", "timestamp", "n_envs", "dtype",
              "fingerprint"):
        if k in meta:
            print(f"  {k}: {meta[k]}")
    table = [("key", "shape", "dtype", "min", "max")] + [
        (k, str(tuple(s)), str(d), "" if lo is None else f"{lo:.6g}", "" if hi is None else f"{hi:.6g}")
        for k, s, d, lo, hi in rows]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return 0


def convert(src: str, dst: str) -> int:
    from .checkpoint import convert_checkpoint

    convert_checkpoint(src, dst)
    print(f"wrote {dst}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genesis-torch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="Franka scene: step many envs, checkpoint, restore, verify")
    p.add_argument("--n-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--device", choices=["cpu", "cuda", "gpu"], default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="keep the checkpoint at this path")
    p.add_argument("--compile", action="store_true", help="torch.compile the step (slow first start)")
    p = sub.add_parser("inspect", help="print a checkpoint's metadata and arrays")
    p.add_argument("file")
    p = sub.add_parser("convert", help="convert a checkpoint between .pkl and .safetensors")
    p.add_argument("src")
    p.add_argument("dst")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return demo(args.n_envs, args.steps, args.device, args.seed, args.out, args.compile)
        if args.command == "inspect":
            return inspect(args.file)
        return convert(args.src, args.dst)
    except GenesisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Run the peer's half of a benchmark (Genesis, in its own venv) in a subprocess and read its result line."""

from __future__ import annotations

import json
import os
import subprocess


def run_peer(python: str | None, script: str, args: list, threads: int, **env) -> dict | str:
    """The last `{...}` JSON line `script` printed when run as `python -c script json(args)` with
    OMP_NUM_THREADS = `threads` (plus `env`), or why there is none: "no peer (--peer)", "timeout", "failed: ...".
    """
    if not python:
        return "no peer (--peer)"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **env)
    try:
        out = subprocess.run([python, "-c", script, json.dumps(args)], capture_output=True, text=True, env=env,
                             timeout=3600)
    except subprocess.TimeoutExpired:
        return "timeout"
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:120]
    return json.loads(lines[-1])

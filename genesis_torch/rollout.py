"""Differentiable rollouts over long horizons: `gs.rollout` (optionally checkpointed) and `gs.functional_step`
(docs/gradients.md).

`functional_step(scene)` is the scene's step as a pure function of the solver states, `{key: SolverState} ->
{key: SolverState}` (a pytree: every `SolverState` is registered), so `torch.func.vjp` / `jvp` / `grad` see through it.

`rollout(scene, controls, apply_control, loss_fn, checkpoint_every=k)` runs T steps from the scene's current state,
applying `controls[t]` before step t (through the entity setters, in `apply_control`) and summing `loss_fn(t)` after
it. With `checkpoint_every=k` the T steps run as segments of k steps (rollout_checkpoint.py, a `torch.autograd.Function`):
the forward keeps only the state at each segment's start, and the backward recomputes one segment at a time, so the
graph's memory is O(T/k) states + O(k) steps of activations instead of O(T) steps (Griewank & Walther, "Evaluating
Derivatives", 2nd ed., 2008, ch. 12: checkpointing; Chen et al. 2016, "Training deep nets with sublinear memory
cost": k ~ sqrt(T) gives O(sqrt(T))). The recomputation runs the same ops on the same inputs, so the loss and the
gradients of the initial state and the controls are bitwise those of the un-checkpointed rollout; parameter gradients
(sums over every step) to rounding (tests/test_grad_rollout_api.py).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.utils._pytree as pytree

from .errors import InvalidInputError, SceneStateError
from .rollout_checkpoint import Segment, SegmentRunner, grad_params
from .solvers.base import scene_substep
from .state import SolverState

__all__ = ["functional_step", "rollout"]

States = dict[str, SolverState]


def _require_built(scene, what: str) -> None:
    from .scene import Scene

    if not isinstance(scene, Scene):
        raise InvalidInputError(f"{what}(scene, ...): expected a gs.Scene, got {type(scene).__name__}.")
    if not scene.is_built:
        raise SceneStateError(f"{what}() needs a built scene; call scene.build() first.")


def functional_step(scene) -> Callable[[States], States]:
    """The pure step of a built `scene`: `step(states) -> states`, where `states` is `{key: SolverState}` as
    `scene.get_state().solvers` ("RigidSolver", "MPMSolver", ...; B envs each) and the result the states after one
    `scene.step()` (`SimOptions.substeps` scene substeps, the solvers in registry order). The same ops as
    `scene.step()`, so the same numbers; the scene is not read for state and not changed (no `t`, no divergence
    check, no recording). Model parameters (gains, masses, materials) are read from the solvers when called.

    Grad mode is the caller's (unlike `scene.step()`, `SimOptions.requires_grad` is not consulted), so the step can
    be used under `torch.func` transforms: `torch.func.jvp(lambda q: step({**s, "RigidSolver":
    s["RigidSolver"].replace(qpos=q)})["RigidSolver"].qpos, (q,), (dq,))`. Controls are state fields: set them with
    `state.replace(ctrl=...)` (MJCF actuators) or through the entity setters before taking `scene.get_state()`.
    """
    _require_built(scene, "functional_step")
    solvers, couplings, sim = list(scene._active), scene._couplings, scene.sim_options
    keys = tuple(s.key for s in solvers)

    def step(states: States) -> States:
        if not isinstance(states, dict) or set(states) != set(keys):
            got = sorted(states) if isinstance(states, dict) else type(states).__name__
            raise InvalidInputError(f"functional_step: expected a dict of the solver states {list(keys)} (as "
                                    f"scene.get_state().solvers), got {got}.")
        for _ in range(sim.substeps):
            states = scene_substep(solvers, states, couplings, sim.substep_dt)
        return states

    return step


def _controls(controls, steps):
    """(T, control getter t -> controls[t] or None)."""
    if controls is None:
        if steps is None or isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise InvalidInputError(f"rollout(steps={steps!r}): without controls give steps, an int >= 1.")
        return steps, None
    seq = (controls,) if isinstance(controls, torch.Tensor) else controls
    if not isinstance(seq, (tuple, list)) or not seq or not all(isinstance(c, torch.Tensor) for c in seq):
        raise InvalidInputError("rollout(controls=...): expected a tensor (T, ...) or a tuple of tensors sharing "
                                f"their leading dim T, got {type(controls).__name__}.")
    lengths = {int(c.shape[0]) if c.dim() else 0 for c in seq}
    if len(lengths) != 1 or 0 in lengths:
        raise InvalidInputError(f"rollout(controls=...): the tensors' leading dims {sorted(lengths)} must be one T "
                                ">= 1 (one control per step).")
    T = lengths.pop()
    if steps is not None and steps != T:
        raise InvalidInputError(f"rollout(steps={steps!r}): controls hold {T} steps; give steps=None or {T}.")
    return T, (lambda a, b: controls[a:b]) if isinstance(controls, torch.Tensor) else \
        (lambda a, b: type(seq)(c[a:b] for c in seq))


def rollout(scene, controls=None, apply_control: Callable | None = None, loss_fn: Callable | None = None, *,
            steps: int | None = None, checkpoint_every: int | None = None) -> torch.Tensor:
    """Run `T` steps of `scene` from its current state and return the summed loss (a 0-dim tensor of the scene
    dtype; 0 without `loss_fn`). The scene ends at the final state with `scene.t` advanced by `T`.

    Args:
        controls: a tensor `(T, ...)`, or a tuple of tensors sharing the leading dim `T` (e.g. torques that require
            grad), or None with `steps=T`.
        apply_control: `apply_control(t, u)` before step `t` with `u = controls[t]` (a tuple slice for a tuple):
            call entity setters, e.g. `robot.control_dofs_force(u)`. It sees the scene at the state before step t.
        loss_fn: `loss_fn(t) -> 0-dim tensor` after step `t` (the scene at the state after it): read entity
            getters, e.g. `(robot.get_links_pos()[:, -1] - goal).square().sum()`. The losses are summed in order.
        steps: T when `controls` is None (must match `controls` otherwise).
        checkpoint_every: None (keep the whole graph) or k >= 1: segments of k steps, each recomputed in the backward
            pass: peak memory ~ ceil(T / k) states + k steps of activations. The loss and the gradients w.r.t. the
            initial state and the controls are bitwise those without checkpointing; those w.r.t. model parameters
            (set with tensors that require grad, swapped in for the recomputation) equal to rounding. The callbacks
            run again during the backward (they must be pure functions of the scene state, `t` and `u`); a tensor
            requiring grad that they capture (not in `controls`) raises `InvalidInputError` at the backward (its
            gradient would be lost); model parameters must not be set again between the rollout and `backward()`.

    Grad mode as `scene.step()`: the graph is recorded when `SimOptions.requires_grad` and grad mode are on. Cameras
    record no frames during a rollout; the divergence check (`SimOptions.on_divergence`) runs once at its end.
    """
    _require_built(scene, "rollout")
    T, segment_controls = _controls(controls, steps)
    for name, fn in (("apply_control", apply_control), ("loss_fn", loss_fn)):
        if fn is not None and not callable(fn):
            raise InvalidInputError(f"rollout({name}={fn!r}): expected a callable or None.")
    if apply_control is None and segment_controls is not None:
        raise InvalidInputError("rollout(controls=...) needs apply_control(t, u) to apply them (entity setters).")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise InvalidInputError(f"rollout(checkpoint_every={checkpoint_every!r}): expected None or an int >= 1 "
                                "(steps per recomputed segment).")
    step = functional_step(scene)
    grad = scene.sim_options.requires_grad and torch.is_grad_enabled()

    def run(t0: int, t1: int, ctrl, acc: torch.Tensor, states: States) -> tuple[torch.Tensor, States]:
        """Steps t0..t1-1 from `states`; the callbacks see the scene at the current state."""
        saved = scene._states
        try:
            for t in range(t0, t1):
                # every step starts from fresh tensor objects (views, no copy): a solver cache keyed on the identity
                # of its input tensors (the rigid forward kinematics of the last qpos) then misses at every step, so
                # each step records the same ops whether it starts a checkpointed segment (forward or recomputation)
                # or not, and the graphs (hence the gradients, bitwise) do not depend on checkpoint_every
                scene._states = states = pytree.tree_map(lambda x: x.view_as(x), states)
                if apply_control is not None:
                    u = None if ctrl is None else (ctrl[t - t0] if isinstance(ctrl, torch.Tensor)
                                                   else type(ctrl)(c[t - t0] for c in ctrl))
                    apply_control(t, u)
                states = step(scene._states)
                if loss_fn is not None:
                    scene._states = states
                    value = loss_fn(t)
                    if not isinstance(value, torch.Tensor) or value.dim() != 0:
                        raise InvalidInputError(f"rollout: loss_fn({t}) must return a 0-dim tensor, got "
                                                f"{type(value).__name__} {getattr(value, 'shape', '')}.")
                    acc = acc + value
        finally:
            scene._states = saved
        return acc, states

    k = T if checkpoint_every is None or not grad else checkpoint_every
    acc = torch.zeros((), dtype=scene.dtype, device=scene.device)
    states = dict(scene._states)
    with torch.set_grad_enabled(grad):
        params, shared = (grad_params(scene) if k < T else []), {}
        if k < T:  # a leaf, so the segments' outputs require grad and the backward runs (and checks the graph)
            acc = acc.requires_grad_(True)
        for t0 in range(0, T, k):
            t1 = min(t0 + k, T)
            ctrl = None if segment_controls is None else segment_controls(t0, t1)
            if k == T:
                acc, states = run(t0, t1, ctrl, acc, states)
                continue
            runner = SegmentRunner(scene, run, t0, t1, ctrl, states, params, shared)
            acc, *flat = Segment.apply(runner, acc, *runner.inputs)
            states = pytree.tree_unflatten(flat, runner.state_spec)
    scene._states = states
    scene._t += T
    scene._check_divergence()
    return acc

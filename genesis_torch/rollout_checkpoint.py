"""The recomputed segment of a checkpointed `gs.rollout` (rollout.py): a `torch.autograd.Function` over the states.

Forward: k steps without a graph; only the segment's inputs are saved (the state at its start, its controls, the
model parameters that require grad). Backward: the k steps again with a graph from detached copies of those inputs
(the parameters swapped into the solvers for the recomputation), then `torch.autograd.grad` of the outputs with the
incoming gradients. One Python call per segment, none per saved tensor (`torch.utils.checkpoint`'s non-reentrant
hooks cost one per saved tensor, ~14,000 per Franka step: 2-4x the step time here).

Bitwise: every step of a rollout starts from fresh views of its state (rollout.py), so the gradient of a state
tensor at a segment boundary is a sum of two terms (the next step's view, the loss of the step before), the same
two terms with or without a boundary; controls enter one step each. So the gradients of the initial state and of
the controls are bitwise those of `checkpoint_every=None`. A model parameter enters every step: its gradient is a
sum over the steps, which segments associate differently (equal to ~1e-16 relative, not bitwise).
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
import torch.utils._pytree as pytree

from .errors import InvalidInputError, SceneStateError

__all__ = ["Segment", "SegmentRunner", "grad_params"]


def grad_params(scene) -> list[tuple[int, str, torch.Tensor]]:
    """`(solver index in scene._active, field, tensor)` of every model parameter that requires grad: the tensor
    fields of each physics solver's `params` dataclass (rigid gains, masses, friction; MPM / FEM E, nu)."""
    out = []
    for i, s in enumerate(scene._active):
        p = getattr(s.solver, "params", None)
        if p is not None and dataclasses.is_dataclass(p):
            for f in dataclasses.fields(p):
                t = getattr(p, f.name)
                if isinstance(t, torch.Tensor) and t.requires_grad:
                    out.append((i, f.name, t))
    return out


class SegmentRunner:
    """Steps t0..t1-1 of a rollout: `run(acc, ctrl, states) -> (acc, states)` and how the Function's flat tensor
    inputs `(*ctrl leaves, *state leaves, *params)` split."""

    def __init__(self, scene, run, t0: int, t1: int, ctrl, states, params, shared: dict):
        self.scene, self.run, self.t0, self.t1 = scene, run, t0, t1
        ctrl_leaves, self.ctrl_spec = ([], None) if ctrl is None else pytree.tree_flatten(ctrl)
        state_leaves, self.state_spec = pytree.tree_flatten(states)
        self.n_ctrl, self.n_state = len(ctrl_leaves), len(state_leaves)
        self.param_slots = [(i, name) for i, name, _ in params]
        self.inputs = (*ctrl_leaves, *state_leaves, *(t for _, _, t in params))
        self.shared = shared  # {'checked': bool}: one graph check per rollout (the last segment's backward)

    def unpack(self, inputs):
        c, s = self.n_ctrl, self.n_ctrl + self.n_state
        return (None if self.ctrl_spec is None else pytree.tree_unflatten(list(inputs[:c]), self.ctrl_spec),
                pytree.tree_unflatten(list(inputs[c:s]), self.state_spec), inputs[s:])

    @contextlib.contextmanager
    def params_swapped(self, originals, replacements):
        """The solvers' parameter fields set to `replacements` (the recomputation's leaves), restored afterwards.
        Raises when a parameter was replaced since the rollout's forward (the recomputation would differ)."""
        objs = [self.scene._active[i].solver.params for i, _ in self.param_slots]
        for obj, (_, name), orig in zip(objs, self.param_slots, originals):
            if getattr(obj, name) is not orig:
                raise SceneStateError(f"backward() of a checkpointed gs.rollout: the model parameter {name} changed "
                                      "after the rollout, so its segments cannot be recomputed; call backward() "
                                      "before setting parameters again.")
        try:
            for obj, (_, name), new in zip(objs, self.param_slots, replacements):
                setattr(obj, name, new)
            yield
        finally:
            for obj, (_, name), orig in zip(objs, self.param_slots, originals):
                setattr(obj, name, orig)

    def check_captured(self, outputs, leaves) -> None:
        """Raise unless every leaf the recomputed graph reaches is one of `leaves`: a tensor requiring grad that the
        callbacks capture (not in controls) or a solver holds outside `params` would lose its gradient here."""
        mine = {id(t) for t in leaves}
        seen, todo = set(), [o.grad_fn for o in outputs]
        while todo:
            f = todo.pop()
            if f is None or f in seen:
                continue
            seen.add(f)
            var = getattr(f, "variable", None)  # AccumulateGrad
            if var is not None and id(var) not in mine:
                raise InvalidInputError(
                    f"gs.rollout(checkpoint_every=...): the steps use a tensor that requires grad (shape "
                    f"{tuple(var.shape)}) that is neither in controls nor a solver parameter (captured by loss_fn or "
                    "apply_control, or held by a solver); pass it in controls, or use checkpoint_every=None.")
            todo.extend(n for n, _ in f.next_functions)


class Segment(torch.autograd.Function):
    """`Segment.apply(runner, acc, *runner.inputs) -> (acc, *state leaves)` (see the module docstring)."""

    @staticmethod
    def forward(ctx, runner: SegmentRunner, acc, *inputs):
        ctrl, states, _ = runner.unpack(inputs)
        acc_out, out = runner.run(runner.t0, runner.t1, ctrl, acc, states)
        flat = pytree.tree_flatten(out)[0]
        ctx.runner = runner
        ctx.save_for_backward(acc, *inputs)
        ctx.mark_non_differentiable(*(t for t in flat if not t.is_floating_point()))
        return (acc_out, *flat)

    @staticmethod
    def backward(ctx, *grads):
        runner, saved = ctx.runner, ctx.saved_tensors
        need = ctx.needs_input_grad[1:]
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(bool(n)) if t.is_floating_point() else t.detach()
                      for t, n in zip(saved, need)]
            ctrl, states, params = runner.unpack(leaves[1:])
            _, _, originals = runner.unpack(saved[1:])
            with runner.params_swapped(originals, params):
                acc_out, out = runner.run(runner.t0, runner.t1, ctrl, leaves[0], states)
            outs = (acc_out, *pytree.tree_flatten(out)[0])
            pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
            wrt = [t for t in leaves if t.requires_grad]
            if not runner.shared.get("checked"):
                runner.check_captured([o for o, _ in pairs], wrt)
                runner.shared["checked"] = True
            got = iter(torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True)
                       if pairs and wrt else [None] * len(wrt))
        return (None, *(next(got) if t.requires_grad else None for t in leaves))

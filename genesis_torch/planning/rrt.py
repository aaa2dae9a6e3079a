"""Batched sampling-based planners in joint space: RRT (LaValle 1998, "Rapidly-exploring random trees: a new tool for
path planning", TR 98-11) and RRT-Connect (Kuffner & LaValle 2000, ICRA), with Genesis 1.4.5's variants of them
(`genesis/utils/path_planning.py`): one extension step per iteration, steps clipped per coordinate to `step`, goal
bias 0.05 (RRT) / 0.1 (RRT-Connect), RRT done within 5e-3 rad of the goal, RRT-Connect done when a new node lies
within `step` (per coordinate) of the other tree, both trees in one buffer of `max_nodes` nodes.

All envs' trees grow in the same tensor ops; the Python loop is over iterations only. Random numbers come from
torch's global RNG (`torch.manual_seed` makes a plan reproducible). Paths are `(Bs, L, n)` tensors with lengths
`(Bs,)`; the entries past an env's length repeat its last point.
"""
from __future__ import annotations

import math
import time

import torch


def _trace(parent: torch.Tensor, node: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Node indices `(Bs, D)` from `node (Bs,)` up to its tree's root (a root is its own parent) and lengths."""
    ar = torch.arange(node.shape[0], device=node.device)
    out, cur = [node], node
    for _ in range(parent.shape[1]):
        nxt = parent[ar, cur]
        if bool((nxt == cur).all()):
            break
        out.append(nxt)
        cur = nxt
    idx = torch.stack(out, 1)
    at_root = parent.gather(1, idx) == idx
    return idx, (~at_root).sum(1) + 1


def _take(seq: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """seq `(Bs, L, n)` at per-env indices `j (Bs, M)` -> `(Bs, M, n)`."""
    return seq.gather(1, j[..., None].expand(-1, -1, seq.shape[-1]))


def reverse(seq, length):
    """Each env's first `length` points in reverse order (padding repeats the new last point)."""
    j = torch.arange(seq.shape[1], device=seq.device)[None]
    return _take(seq, (length[:, None] - 1 - j).clamp(min=0))


def concat(a, la, b, lb):
    """Per env: the first `la` points of `a`, then the first `lb` of `b`; lengths `la + lb`."""
    L = a.shape[1] + b.shape[1]
    j = torch.arange(L, device=a.device)[None].expand(a.shape[0], -1)
    from_a = j < la[:, None]
    pa = _take(a, j.clamp(max=a.shape[1] - 1))
    pb = _take(b, (j - la[:, None]).clamp(min=0).minimum(lb[:, None] - 1))
    return torch.where(from_a[..., None], pa, pb), la + lb


def _sample(lower, upper, target, bias):
    s = lower + torch.rand(lower.shape, dtype=lower.dtype, device=lower.device) * (upper - lower)
    pick = torch.rand(lower.shape[0], device=lower.device) < bias
    return torch.where(pick[:, None], target, s)


def _steer(nodes, mask, sample, step):
    """Nearest node of `nodes (Bs, M, n)` among `mask (Bs, M)` to `sample`, and the step from it towards the sample
    clipped per coordinate to `step` (Genesis' steer). Returns (nearest index, new configuration)."""
    d = ((nodes - sample[:, None]) ** 2).sum(-1).masked_fill(~mask, math.inf)
    near = d.argmin(1)
    qn = nodes[torch.arange(nodes.shape[0], device=nodes.device), near]
    return near, qn + (sample - qn).clamp(-step, step)


def rrt(check, q_start, q_goal, lower, upper, active, max_nodes, step, timeout, goal_bias=0.05, tol=5e-3):
    """RRT from `q_start (Bs, n)` to `q_goal`; `active (Bs,)` envs to plan for. Returns (path, length, failed)."""
    Bs, n = q_start.shape
    dev = q_start.device
    ar = torch.arange(Bs, device=dev)
    nodes = q_start.new_zeros(Bs, max_nodes, n)
    nodes[:, 0] = q_start
    parent = torch.zeros(Bs, max_nodes, dtype=torch.long, device=dev)
    size = torch.ones(Bs, dtype=torch.long, device=dev)
    reached = torch.zeros(Bs, dtype=torch.long, device=dev)
    active = active.clone()
    slots = torch.arange(max_nodes, device=dev)[None]
    t0 = time.time()
    for _ in range(max_nodes):
        if not bool(active.any()):
            break
        near, new = _steer(nodes, slots < size[:, None], _sample(lower, upper, q_goal, goal_bias), step)
        add = active & (size < max_nodes - 1) & ~check(new[None])[0]
        at = torch.where(add, size, max_nodes - 1)  # the last slot is never a node: a harmless write target
        nodes[ar, at] = torch.where(add[:, None], new, nodes[ar, at])
        parent[ar, at] = torch.where(add, near, parent[ar, at])
        done = add & ((new - q_goal).abs() <= tol).all(-1)
        reached = torch.where(done, size, reached)
        size = size + add.long()
        active &= ~done
        if timeout is not None and time.time() - t0 > timeout:
            break
    failed = active | (reached == 0)
    idx, length = _trace(parent, reached)
    path = reverse(_take(nodes, idx), length)
    # end exactly at the goal: the last node is within `tol` (< step) of it per coordinate and the goal is checked
    return concat(path, length, q_goal[:, None], torch.ones_like(length)) + (failed,)


def rrt_connect(check, q_start, q_goal, lower, upper, active, max_nodes, step, timeout, goal_bias=0.1):
    """RRT-Connect: a tree from the start (tree 0) and one from the goal (tree 1) grown in turn, one step each.
    Returns (path, length, failed)."""
    Bs, n = q_start.shape
    dev = q_start.device
    ar = torch.arange(Bs, device=dev)
    nodes = q_start.new_zeros(Bs, max_nodes, n)
    nodes[:, 0], nodes[:, 1] = q_start, q_goal
    parent = torch.arange(max_nodes, device=dev)[None].repeat(Bs, 1)  # roots (and unused slots) are their own parent
    tree = torch.zeros(Bs, max_nodes, dtype=torch.long, device=dev)
    tree[:, 1] = 1
    size = torch.full((Bs,), 2, dtype=torch.long, device=dev)
    link = torch.zeros(Bs, 2, dtype=torch.long, device=dev)  # connecting nodes of tree 0 and of tree 1
    active = active.clone()
    slots = torch.arange(max_nodes, device=dev)[None]
    t0 = time.time()
    t = 0
    for _ in range(max_nodes):
        used = slots < size[:, None]
        near, new = _steer(nodes, used & (tree == t), _sample(lower, upper, q_goal if t == 0 else q_start, goal_bias),
                           step)
        add = active & (size < max_nodes - 1) & ~check(new[None])[0]
        at = torch.where(add, size, max_nodes - 1)
        nodes[ar, at] = torch.where(add[:, None], new, nodes[ar, at])
        parent[ar, at] = torch.where(add, near, parent[ar, at])
        tree[ar, at] = torch.where(add, t, tree[ar, at])
        close = ((nodes - new[:, None]).abs() <= step).all(-1) & used & (tree == 1 - t)  # (Bs, M)
        done = add & close.any(1)
        other = close.to(torch.int8).argmax(1)
        pair = torch.stack((at, other), 1) if t == 0 else torch.stack((other, at), 1)
        link = torch.where(done[:, None], pair, link)
        size = size + add.long()
        active &= ~done
        t = 1 - t
        if not bool(active.any()):
            break
        if timeout is not None and time.time() - t0 > timeout:
            break
    failed = active | (link[:, 1] == 0)
    ia, la = _trace(parent, link[:, 0])
    ib, lb = _trace(parent, link[:, 1])
    return concat(reverse(_take(nodes, ia), la), la, _take(nodes, ib), lb) + (failed,)


def interpolate(path, length, num):
    """Each env's path resampled to `num` points spaced evenly in the waypoint index (Genesis'
    `align_waypoints_length`, linear with aligned corners): `(Bs, num, n)`, first and last points exact."""
    j = torch.arange(num, device=path.device, dtype=path.dtype)[None]
    t = j * (length[:, None] - 1).to(path.dtype) / max(num - 1, 1)
    i0 = t.floor().long().clamp(max=path.shape[1] - 1).minimum(length[:, None] - 1)
    i1 = (i0 + 1).minimum(length[:, None] - 1)
    f = (t - i0.to(path.dtype))[..., None]
    p0, p1 = _take(path, i0), _take(path, i1)
    return torch.where(f == 0, p0, p0 + f * (p1 - p0))


def segment_free(check, a, b, step, on):
    """(Bs,) bool: the straight segment from `a` to `b (Bs, n)` is free, checked at points at most `step` apart per
    coordinate (the ends are not checked: they are path points, already checked). `on (Bs,)`: envs to check."""
    m = int(math.ceil(float(((b - a).abs().amax(-1) * on).max()) / step)) if bool(on.any()) else 0
    if m <= 1:
        return torch.ones_like(on)
    s = torch.arange(1, m, device=a.device, dtype=a.dtype)[:, None, None] / m
    return ~check(a[None] + s * (b - a)[None]).any(0)


def shortcut(check, path, length, ok, step, iterations=10):
    """Genesis' `shortcut_path`: `iterations` times, per env two random waypoints i < j (j - i > 1) and, when the
    straight segment between them is free, the waypoints between them put on it. `ok (Bs,)`: envs with a path."""
    Bs, L, n = path.shape
    dev = path.device
    k = torch.arange(L, device=dev)[None]
    for _ in range(iterations):
        lf = length.to(path.dtype)
        i = (torch.rand(Bs, device=dev, dtype=path.dtype) * lf).long().minimum(length - 1)
        j = (torch.rand(Bs, device=dev, dtype=path.dtype) * (lf - 1)).long().minimum(length - 2).clamp(min=0)
        j = j + (j >= i).long()
        i, j = torch.minimum(i, j), torch.maximum(i, j)
        on = ok & (j - i > 1) & (length > 2)
        if not bool(on.any()):
            continue
        a, b = path[torch.arange(Bs), i], path[torch.arange(Bs), j]
        on &= segment_free(check, a, b, step, on)
        s = ((k - i[:, None]).to(path.dtype) / (j - i).clamp(min=1)[:, None].to(path.dtype))[..., None]
        put = on[:, None] & (k > i[:, None]) & (k < j[:, None])
        path = torch.where(put[..., None], a[:, None] + s * (b - a)[:, None], path)
    return path

"""Graph colouring of constraints for the parallel Gauss-Seidel sweep of XPBD (docs/pbd.md, "Solving in parallel").

Constraints of one colour share no particle, so all of them are projected at once (one batch of tensor ops) and
their corrections scatter without conflicts; colours follow one another, as in a Gauss-Seidel sweep (Fratarcangeli
& Pellacini 2015, "Scalable partitioning for parallel position based dynamics", Eurographics; the colouring below
is Luby's / Jones & Plassmann's parallel maximal-independent-set rounds with random priorities, vectorised in NumPy,
at build time only).
"""

from __future__ import annotations

import numpy as np

__all__ = ["colour_constraints"]


def colour_constraints(idx: np.ndarray, n_particles: int, seed: int = 0) -> list[np.ndarray]:
    """Partition constraints `idx (k, a)` int (the particles of each) into colours: a list of int64 arrays of
    constraint numbers, each a maximal set of constraints sharing no particle; together they cover 0..k-1 once.
    Deterministic for a given `seed`. Cost: NumPy ops per round, no Python loop over constraints."""
    idx = np.asarray(idx, dtype=np.int64)
    k, a = idx.shape
    if k == 0:
        return []
    prio = np.random.default_rng(seed).permutation(k).astype(np.float64)
    remaining = np.arange(k)
    colours = []
    while remaining.size:
        chosen = np.zeros(0, dtype=np.int64)
        used = np.zeros(n_particles, dtype=bool)
        cand = remaining
        while cand.size:  # Luby rounds: local priority minima among the candidates join the colour
            best = np.full(n_particles, np.inf)
            np.minimum.at(best, idx[cand].ravel(), np.repeat(prio[cand], a))
            win = (best[idx[cand]] == prio[cand][:, None]).all(1)
            chosen = np.concatenate((chosen, cand[win]))
            used[idx[cand[win]].ravel()] = True
            cand = cand[~win]
            cand = cand[~used[idx[cand]].any(1)]  # those touching a chosen constraint wait for a later colour
        colours.append(np.sort(chosen))
        keep = np.ones(k, dtype=bool)
        keep[chosen] = False
        remaining = remaining[keep[remaining]]
    return colours

"""Mixing sources to exact shares of tokens (not documents, not interleaving probabilities).

Each source's documents are shuffled with the seed and the shortest prefix closest to its token target is taken, so
a source's achieved share is off by at most half a document. Shares used as interleaving probabilities while every
document is consumed anyway give a mix that is just the sources' sizes; here the target and the achieved share are
both reported, and a source too small for its target is an error rather than a silent shortfall.
"""

from __future__ import annotations

import numpy as np

from tinymath.errors import UserError


def largest_total(available: dict[str, int], shares: dict[str, float]) -> int:
    """The most tokens a mix can have without repeating a document: the scarcest source relative to its share."""
    return int(min(available[s] / shares[s] for s in shares))


def closest_prefix(lengths: np.ndarray, target: int) -> int:
    """Number k of leading documents whose token total is closest to `target` (ties: fewer documents)."""
    totals = np.concatenate([[0], np.cumsum(lengths)])  # [n + 1]
    return int(np.argmin(np.abs(totals - target)))


def mix(lengths: dict[str, np.ndarray], shares: dict[str, float], total: int | None, seed: int,
        what: str) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Choose documents of each source so its tokens are `share x total`.

    lengths: source -> [n_docs] token counts. Returns source -> chosen document indices, and the report
    {source: {"target", "achieved", "tokens"}}, shares of the chosen total.
    """
    available = {s: int(lengths[s].sum()) for s in shares}
    total = largest_total(available, shares) if total is None else total
    chosen = {}
    for i, (source, share) in enumerate(shares.items()):
        target = round(share * total)
        if available[source] < target:
            raise UserError(f"prepare.sources.{source}: {what} needs {target} tokens for its share {share:g} of "
                            f"{total}, got only {available[source]} after cleaning")
        order = np.random.default_rng([seed, i]).permutation(len(lengths[source]))  # [n_docs]
        chosen[source] = order[:closest_prefix(lengths[source][order], target)]
    tokens = {s: int(lengths[s][idx].sum()) for s, idx in chosen.items()}
    grand = max(sum(tokens.values()), 1)
    report = {s: {"target": shares[s], "achieved": tokens[s] / grand, "tokens": tokens[s]} for s in shares}
    return chosen, report

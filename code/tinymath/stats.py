"""Statistics on per-problem verdicts: intervals, paired comparisons of two models, and tests on proportions.

Two models evaluated on the same problems are compared pairwise: the difference of their accuracies gets a paired
bootstrap interval (problems resampled together), and McNemar's exact test asks whether the problems only one of
them solves split unevenly. Every resampling is seeded, so the same verdicts give the same interval on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest, norm


def bootstrap_ci(scores: Sequence[float], samples: int, seed: int) -> list[float]:
    """Percentile 95% interval of the mean over `samples` resamples with a fixed seed (same draw every run)."""
    x = np.asarray(scores, dtype=float)
    idx = np.random.default_rng(seed).integers(0, x.size, size=(samples, x.size))
    lo, hi = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    return [float(lo), float(hi)]


def mcnemar_exact(a: Sequence[int], b: Sequence[int]) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 verdicts: a binomial test on the discordant problems."""
    x, y = _paired(a, b)
    only_a, only_b = int(np.sum(x & ~y)), int(np.sum(~x & y))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_difference(a: Sequence[int], b: Sequence[int], samples: int, seed: int) -> dict[str, float | list]:
    """Accuracy of `b` minus accuracy of `a` on the same problems, its paired bootstrap 95% interval and McNemar p."""
    x, y = _paired(a, b)
    diff = y.astype(float) - x.astype(float)
    return {"n": int(x.size), "difference": float(diff.mean()), "ci95": bootstrap_ci(diff, samples, seed),
            "mcnemar_p": mcnemar_exact(a, b), "only_a": int(np.sum(x & ~y)), "only_b": int(np.sum(~x & y))}


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z test that two independent proportions are equal."""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if k1 * n2 == k2 * n1 else 0.0
    return float(2 * norm.sf(abs(k1 / n1 - k2 / n2) / se))


def _paired(a: Sequence[int], b: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired verdicts need two equally long non-empty vectors, got {x.shape} and {y.shape}")
    return x, y

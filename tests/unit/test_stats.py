"""Paired statistics on hand-made verdict vectors whose answers are known in closed form."""

from __future__ import annotations

import pytest

from tinymath import stats


def test_mcnemar_exact_matches_the_binomial_tail():
    # 10 problems only b solves, 2 only a solves: p = 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * 79 / 4096
    a = [1] * 2 + [0] * 10 + [1] * 30 + [0] * 58
    b = [0] * 2 + [1] * 10 + [1] * 30 + [0] * 58
    assert stats.mcnemar_exact(a, b) == pytest.approx(2 * 79 / 4096)
    assert stats.mcnemar_exact(a, a) == 1.0  # no discordant problem
    assert stats.mcnemar_exact([1, 0], [0, 1]) == 1.0  # one each way: as balanced as it gets


def test_paired_difference_counts_and_interval():
    a = [1] * 2 + [0] * 10 + [1] * 30 + [0] * 58
    b = [0] * 2 + [1] * 10 + [1] * 30 + [0] * 58
    d = stats.paired_difference(a, b, samples=2000, seed=0)
    assert (d["n"], d["only_a"], d["only_b"]) == (100, 2, 10)
    assert d["difference"] == pytest.approx(0.08)
    lo, hi = d["ci95"]
    assert lo < 0.08 < hi and lo > 0  # 8 net problems of 100 with 12 discordant: clearly positive
    assert stats.paired_difference(a, b, 2000, 0) == d  # seeded


def test_paired_difference_of_identical_vectors_is_exactly_zero():
    a = [1, 0, 1, 1, 0]
    d = stats.paired_difference(a, a, samples=500, seed=1)
    assert d["difference"] == 0 and d["ci95"] == [0.0, 0.0] and d["mcnemar_p"] == 1.0


def test_paired_statistics_reject_unequal_vectors():
    with pytest.raises(ValueError, match="equally long"):
        stats.mcnemar_exact([1, 0], [1])


def test_two_proportion_p_known_values():
    assert stats.two_proportion_p(50, 100, 50, 100) == pytest.approx(1.0)
    # 60/100 vs 40/100: z = 0.2 / sqrt(0.25 * 0.02) = 2.828..., two-sided p = 0.004678
    assert stats.two_proportion_p(60, 100, 40, 100) == pytest.approx(0.004678, abs=1e-5)
    assert stats.two_proportion_p(0, 10, 0, 10) == 1.0


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    scores = [1.0] * 30 + [0.0] * 70
    lo, hi = stats.bootstrap_ci(scores, 1000, seed=0)
    assert stats.bootstrap_ci(scores, 1000, seed=0) == [lo, hi]
    assert lo < 0.3 < hi and hi - lo < 0.25

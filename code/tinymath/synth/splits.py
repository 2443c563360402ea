"""Leak-proof splits: a problem's split is a function of its canonical form, never of its position.

The canonical form of a problem is its template id plus its numbers (names and wording excluded), so two renderings
of the same arithmetic land in the same split. A held-out fraction of calculations (hash-selected) never appears in
train, validation or the corpus; test problems made only of them form the `novel-arithmetic` subset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TypeVar

from tinymath.errors import UserError

TRAIN, VALIDATION, TEST = "train", "validation", "test"
T = TypeVar("T")


def unit_hash(*parts: object) -> float:
    """A uniform number in [0, 1) from sha256 of the parts (stable across processes, unlike `hash()`)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Splitter:
    """Assigns canonical problems to splits and decides which calculations are held out, for one seed."""

    def __init__(self, seed: int, test_share: float, validation_share: float, holdout_fraction: float = 0.0):
        self.seed = seed
        self.test_share = test_share
        self.validation_share = validation_share
        self.holdout_fraction = holdout_fraction
        self.held = lru_cache(maxsize=1 << 18)(self._held)

    def split(self, key: str) -> str:
        u = unit_hash(self.seed, "split", key)
        if u < self.test_share:
            return TEST
        return VALIDATION if u < self.test_share + self.validation_share else TRAIN

    def _held(self, calc: str) -> bool:
        """True when the canonical calculation `calc` is reserved for the novel-arithmetic test subset."""
        return unit_hash(self.seed, "holdout", calc) < self.holdout_fraction


def shares(train: int, validation: int, test: int) -> tuple[float, float]:
    """Hash-split shares proportional to the wanted counts, so all splits fill at about the same time."""
    total = train + validation + test
    return test / total, validation / total


def fill_quotas(want: dict[str, int], draws: Iterator[tuple[str, T]], bucket_of: Callable[[T], str | None],
                stale_limit: int, too_few: str) -> dict[str, list[T]]:
    """Take drawn problems until every bucket holds its quota.

    `draws` yields (canonical key, problem) without end; a key seen before is skipped, and a new problem goes to
    `bucket_of(problem)` (None: unusable) while that bucket has room. After `stale_limit` draws in a row that kept
    nothing, the counts are declared impossible: a UserError `too_few` with how far each bucket got.
    """
    out: dict[str, list[T]] = {k: [] for k in want}
    seen: set[str] = set()
    stale = 0  # draws since a problem was last kept
    while any(len(out[k]) < want[k] for k in want):
        stale += 1
        if stale > stale_limit:
            filled = {k: f"{len(out[k])}/{want[k]}" for k in want}
            raise UserError(too_few.format(filled=filled))
        key, problem = next(draws)
        if key in seen:
            continue
        seen.add(key)
        bucket = bucket_of(problem)
        if bucket is not None and len(out[bucket]) < want[bucket]:
            out[bucket].append(problem)
            stale = 0
    return out

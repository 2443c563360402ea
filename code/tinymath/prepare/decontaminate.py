"""Decontamination: drop training documents that overlap an evaluation set.

Two tests, counted per evaluation set:
  * n-gram overlap (GPT-3 style): a document sharing any 13-word n-gram (lower case, punctuation stripped) with a
    question of the real GSM8K / MATH-500 test sets. Questions shorter than n words contribute no n-gram.
  * verbatim: a document containing the exact text of a synthetic test problem. Candidates are found by the
    problem's first words (lower case, punctuation stripped), then confirmed by substring search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

WORD = re.compile(r"[a-z0-9]+")
PREFIX_WORDS = 8  # words of a synthetic problem used to find candidate documents


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return zip(*(tokens[i:] for i in range(n)))


class NgramIndex:
    """The set of word n-grams of one evaluation set."""

    def __init__(self, questions: Iterable[str], n: int):
        self.n = n
        self.grams = {g for q in questions for g in ngrams(words(q), n)}

    def hits(self, text: str, tokens: list[str]) -> bool:
        """tokens: `words(text)`, computed once per document for all indexes."""
        return not self.grams.isdisjoint(ngrams(tokens, self.n))


class VerbatimIndex:
    """Exact-substring search for many problems at once: candidates share a problem's first words (a set
    intersection per document), and only candidates are searched for."""

    def __init__(self, problems: Iterable[str]):
        self.by_prefix: dict[tuple[str, ...], list[str]] = {}
        for p in problems:
            head = tuple(words(p)[:PREFIX_WORDS])
            if head:
                self.by_prefix.setdefault(head, []).append(p)
        sizes = {len(k) for k in self.by_prefix}
        self.prefixes = {size: {k for k in self.by_prefix if len(k) == size} for size in sizes}

    def hits(self, text: str, tokens: list[str]) -> bool:
        for size, prefixes in self.prefixes.items():
            for head in prefixes.intersection(ngrams(tokens, size)):
                if any(p in text for p in self.by_prefix[head]):
                    return True
        return False

"""Document quality heuristics (after Gopher, Rae et al. 2021, as used by FineWeb), applied before dedup.

Each document is checked against the filters in order and counted under the first one it fails, so the counts in
`stats.json` add up to the number of documents removed.
"""

from __future__ import annotations

import re
from collections import Counter

from tinymath.prepare.config import QualityConfig

FILTERS = ("min_words", "alpha_words", "duplicate_lines", "top_ngram")
ALPHA_WORD = re.compile(r"(?<!\S)\S*?[^\W\d_]\S*")  # a whitespace-separated word with at least one letter


def failed_filter(text: str, cfg: QualityConfig) -> str | None:
    """The name of the first filter `text` fails, or None when it passes them all."""
    words = text.split()
    if len(words) < cfg.min_words:
        return "min_words"
    if len(ALPHA_WORD.findall(text)) < cfg.min_alpha_word_ratio * len(words):
        return "alpha_words"
    if duplicate_line_ratio(text) > cfg.max_duplicate_line_ratio:
        return "duplicate_lines"
    if top_ngram_ratio(words, 3) > cfg.max_top_ngram_ratio:
        return "top_ngram"
    return None


def duplicate_line_ratio(text: str) -> float:
    """Fraction of non-empty lines that repeat an earlier line (boilerplate, spam, scraped menus)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (len(lines) - len(set(lines))) / len(lines) if lines else 0.0


def top_ngram_ratio(words: list[str], n: int) -> float:
    """Characters covered by the most frequent word n-gram, over all word characters (Gopher's repetition test).

    Counted as occurrences x characters of the n-gram, so a phrase repeated throughout a document scores high while
    ordinary prose, whose most common 3-gram appears a handful of times, scores low.
    """
    if len(words) < n:
        return 0.0
    grams = Counter(zip(*(words[i:] for i in range(n))))
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0
    return count * sum(map(len, gram)) / sum(map(len, words))

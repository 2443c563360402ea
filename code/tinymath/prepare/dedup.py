"""MinHash near-duplicate removal over the whole corpus with datatrove, using FineWeb's parameters.

Each document's text is normalised (lower case, no punctuation, whitespace and optionally numbers normalised), split
into word 5-grams, and hashed with 14 bands x 8 hashes (112 permutations, 64-bit xxhash); two documents sharing every
hash of some band are duplicates: detection probability 1 - (1 - J^8)^14 for Jaccard similarity J, 50% at J = 0.69
and 92% at J = 0.8. Duplicate pairs are joined into
clusters and one document per cluster is kept. Unlike a per-file exact `hash()` (salted per process), this is
reproducible and catches lightly edited reposts.

Three datatrove steps find the duplicates (`pipeline.py` runs them): the signature of every document of every task
(`Signature`, datatrove's MinhashDedupSignature with the same output, faster), duplicate pairs within each band
(MinhashDedupBuckets, one task per band), union-find over the pairs into `<task>.remove` files of document indices
(MinhashDedupCluster, one task); datatrove's MinhashDedupFilter then drops those documents as it streams them again.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer

from tinymath.prepare.config import DedupConfig


class WhitespaceWords(WordTokenizer):
    """Whitespace word splitting for already-normalised text.

    datatrove's default English tokenizer is spaCy's, about 10x slower here; after `simplify_text` (which strips
    punctuation and normalises whitespace) a plain split gives the same words for the English and math text we dedup.
    """

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class Signature(MinhashDedupSignature):
    """datatrove's signature step with the same shingles, computed faster.

    For ASCII text the per-character diacritics pass of `simplify_text` is a no-op, so it is skipped (it was half of
    the stage's time), and n-grams are built with `zip` instead of `itertools.tee`.
    """

    def get_shingles(self, text: str) -> np.ndarray:
        norm = self.config.norm_config
        if text.isascii():
            norm = dataclasses.replace(norm, norm_unicode_diacritics=False)
        words = self.word_tokenizer.word_tokenize(simplify_text(text, norm))
        grams = zip(*(words[i:] for i in range(self.config.n_grams)))
        return np.fromiter((self._hash_func(" ".join(g)) for g in grams), dtype=np.uint64).reshape((-1, 1))  # [N, 1]


def minhash_config(cfg: DedupConfig) -> MinhashConfig:
    return MinhashConfig(n_grams=cfg.ngram, num_buckets=cfg.buckets, hashes_per_bucket=cfg.hashes_per_bucket,
                         hash_config=HashConfig(precision=64, hash_fc="xxhash"),
                         norm_config=TextNormConfig(norm_numbers=cfg.normalize_numbers))

"""MinHash near-duplicate removal over the whole corpus with datatrove, using FineWeb's parameters.

Each document's text is normalised (lower case, no punctuation, whitespace and optionally numbers normalised), split
into word 5-grams, and hashed with 14 bands x 8 hashes (112 permutations, 64-bit xxhash); two documents sharing every
hash of some band are duplicates: detection probability 1 - (1 - J^8)^14 for Jaccard similarity J, 50% at J = 0.69
and 92% at J = 0.8. Duplicate pairs are joined into
clusters and one document per cluster is kept. Unlike a per-file exact `hash()` (salted per process), this is
reproducible and catches lightly edited reposts.

Three datatrove stages run here, each through a `LocalPipelineExecutor` (in-process when `workers` is 1):
    1. Signature              the signature of each document of each input shard (one task per shard); datatrove's
                              MinhashDedupSignature with the same output, faster
    2. MinhashDedupBuckets    duplicate pairs within each band (tasks: a multiple of the 14 bands)
    3. MinhashDedupCluster    union-find over the pairs -> `<shard>.remove` files of document indices
The fourth datatrove stage (MinhashDedupFilter) re-reads the documents to drop the removed ones; here the documents
are already in memory, so the `.remove` files are read directly.

At paper scale the same three stages run on a Slurm cluster by swapping the executor, e.g.
    SlurmPipelineExecutor(pipeline=[DocumentShards(src), Signature(sigs, config=cfg,
                          language=WhitespaceWords())], tasks=1000, time="10:00:00", partition="cpu",
                          logging_dir=..., job_name="mh1")
then stage 2 with `tasks=14 * k, depends=stage1`, stage 3 with `tasks=1, depends=stage2`, and MinhashDedupFilter
with JsonlWriter to rewrite the corpus shards; every step used here is an importable top-level class for that reason.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer
from loguru import logger as datatrove_logger

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


class DocumentShards(PipelineStep):
    """Reader step: task `rank` yields the documents of `<folder>/<rank:05d>.jsonl` (`{"id", "text"}` per line)."""

    name = "tinymath document shards"
    type = "READER"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def run(self, data: Iterator[Document] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        with open(Path(self.folder) / f"{rank:05d}.jsonl") as f:
            for line in f:
                record = json.loads(line)
                yield Document(text=record["text"], id=record["id"])


def minhash_config(cfg: DedupConfig) -> MinhashConfig:
    return MinhashConfig(n_grams=cfg.ngram, num_buckets=cfg.buckets, hashes_per_bucket=cfg.hashes_per_bucket,
                         hash_config=HashConfig(precision=64, hash_fc="xxhash"),
                         norm_config=TextNormConfig(norm_numbers=cfg.normalize_numbers))


def near_duplicates(texts: Sequence[str], cfg: DedupConfig, workdir: Path) -> set[int]:
    """Indices of `texts` to remove: all but one document of every near-duplicate cluster."""
    shards = min(cfg.workers, max(len(texts), 1))
    write_shards(texts, shards, workdir / "input")
    mh = minhash_config(cfg)
    common = {"workers": cfg.workers, "skip_completed": False}
    stages = [
        ([DocumentShards(str(workdir / "input")),
          Signature(str(workdir / "signatures"), config=mh, language=WhitespaceWords())], shards),
        ([MinhashDedupBuckets(str(workdir / "signatures"), str(workdir / "buckets"), config=mh)], cfg.buckets),
        ([MinhashDedupCluster(str(workdir / "buckets"), str(workdir / "remove"), config=mh)], 1),
    ]
    datatrove_logger.disable("datatrove")  # its per-task console reports would drown the stage's log
    try:
        for i, (pipeline, tasks) in enumerate(stages):
            LocalPipelineExecutor(pipeline, tasks=tasks, logging_dir=str(workdir / f"logs{i}"), **common).run()
    finally:
        datatrove_logger.enable("datatrove")
    return removed_indices(workdir / "remove", shards, len(texts))


def write_shards(texts: Sequence[str], shards: int, folder: Path) -> None:
    """Document i goes to shard i % shards, as line i // shards."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [open(folder / f"{s:05d}.jsonl", "w") for s in range(shards)]
    try:
        for i, text in enumerate(texts):
            files[i % shards].write(json.dumps({"id": str(i), "text": text}) + "\n")
    finally:
        for f in files:
            f.close()


def removed_indices(folder: Path, shards: int, n: int) -> set[int]:
    """Read the cluster stage's `<shard:06d>.remove` files (uint32 line numbers) back into corpus indices."""
    removed = set()
    for shard in range(shards):
        path = folder / f"{shard:06d}.remove"
        if path.is_file():
            data = path.read_bytes()
            removed.update(line * shards + shard for line in struct.unpack(f"<{len(data) // 4}I", data))
    assert all(i < n for i in removed), "dedup removed an index beyond the corpus"
    return removed

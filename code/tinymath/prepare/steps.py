"""The datatrove steps of the data stage that are ours (the dedup steps and JSONL I/O are datatrove's own).

Every step is an importable top-level class holding only plain settings: the executors copy, pickle (Ray, Slurm) or
re-import them in each worker, and heavy state (tokenizer, n-gram indexes) is built inside `run`. A task writes only
files named after its rank, opened for writing from scratch, so a task rerun after a crash overwrites its own output.

Intermediate files, below the stage's `pipeline/` folder:
    docs/<rank>.jsonl            documents passing the quality filters (datatrove JSONL: text, id, metadata)
    tokens/<rank>.tokens.bin     int32 token ids of the task's documents, concatenated, each ending in <|endoftext|>
    tokens/<rank>.docs.bin       int64 [documents, 4]: corpus order, source index, split index, token count
    tokens/<rank>.ids.jsonl      document ids, one JSON string a line (only with `row_documents`)
    plan/<split>.bin             int64 [documents, 4] in packing order: token task, token offset in it, count, start
    plan/<split>.ids.jsonl       their ids (only with `row_documents`); plan/mix.json: tokens, rows, shards, mix
    pack/<shard>.json            the shard's index.json entry
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import islice
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.readers.base import BaseReader

from tinymath import packed
from tinymath.errors import UserError
from tinymath.io import iter_jsonl, read_jsonl, read_tokenizer
from tinymath.prepare import decontaminate, mix, pack, quality
from tinymath.prepare.config import QualityConfig

SPLITS = ("train", "validation")
META = 4  # columns of tokens/<rank>.docs.bin and plan/<split>.bin


def rank_name(rank: int) -> str:
    return f"{rank:05d}"


class SynthCorpus(BaseReader):
    """Task `rank` of `world_size` reads documents rank, rank + world_size, ... of the synth corpus (one JSONL file),
    those of a configured family, tagged with their source and their corpus position (`order`)."""

    name = "tinymath synth corpus"

    def __init__(self, path: str, families: dict[str, str]):  # family -> source name
        super().__init__()
        self.path, self.families = path, families

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for order, record in zip(range(rank, 2**62, world_size),
                                 iter_jsonl(Path(self.path), ("id", "source", "text"), (rank, world_size))):
            self.stat_update(f"family_{record['source']}")
            source = self.families.get(record["source"])
            if source is not None:
                self.stat_update(f"read_{source}")
                yield Document(text=record["text"], id=str(record["id"]), metadata={"source": source, "order": order})


class HubSources(BaseReader):
    """paper: task `rank` streams its shard of each hub source with datatrove's HF reader until the documents that
    pass the quality filters hold its part (1 / world_size) of `oversample` x the source's share of the tokens."""

    name = "tinymath hub sources"

    def __init__(self, sources: dict[str, dict], budgets: dict[str, float], tokenizer: str,
                 quality_configs: dict[str, QualityConfig]):
        super().__init__()
        self.sources, self.budgets, self.tokenizer, self.quality_configs = sources, budgets, tokenizer, quality_configs

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from datatrove.pipeline.readers import HuggingFaceDatasetReader

        tok = read_tokenizer(Path(self.tokenizer))
        for index, (name, s) in enumerate(self.sources.items()):
            options = {"split": s["split"], **({"name": s["hub_config"]} if s["hub_config"] else {}),
                       **({"data_files": s["data_files"]} if s["data_files"] else {})}
            reader = HuggingFaceDatasetReader(s["hub_id"], dataset_options=options, streaming=True,
                                              text_key=s["text_field"])
            budget, have = self.budgets[name] / world_size, 0
            for i, doc in enumerate(reader.run(None, rank, world_size)):
                self.stat_update(f"read_{name}")
                doc.metadata = {"source": name, "order": (index * world_size + rank) * 2**40 + i}
                yield doc
                if quality.failed_filter(doc.text, self.quality_configs[name]) is None:
                    have += len(tok.encode(doc.text, add_special_tokens=False).ids) + 1
                if have >= budget:
                    break


class QualityFilter(BaseFilter):
    """The Gopher-style heuristics of `quality.py`; a removed document counts as `dropped_<filter>`."""

    name = "tinymath quality"

    def __init__(self, configs: dict[str, QualityConfig]):  # source -> its filters
        super().__init__()
        self.configs = configs

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        source = doc.metadata["source"]
        reason = quality.failed_filter(doc.text, self.configs[source])
        if reason is not None:
            return False, reason
        self.stat_update(f"kept_{source}")
        return True


class TaskShard(JsonlReader):
    """Task `rank` reads the file task `rank` of an earlier step wrote (none: no documents), so document indices
    line up with that task's MinHash signatures even when another task wrote nothing."""

    name = "tinymath task shard"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        name = f"{rank_name(rank)}.jsonl"
        if self.data_folder.exists(name):
            yield from self.read_file(name)


class Decontaminate(BaseFilter):
    """Drops a document hitting an evaluation set (`decontaminate.py`), counted as `dropped_<set>` under the first
    set it hits. eval_sets: name -> JSONL of questions (n-gram test); synth_tests: name -> (JSONL, field) (verbatim)."""

    name = "tinymath decontamination"

    def __init__(self, eval_sets: dict[str, str], ngram: int, synth_tests: dict[str, tuple[str, str]]):
        super().__init__()
        self.eval_sets, self.ngram, self.synth_tests = eval_sets, ngram, synth_tests
        self._indexes = None

    def indexes(self) -> dict:
        if self._indexes is None:
            self._indexes = {name: decontaminate.NgramIndex(eval_questions(Path(path)), self.ngram)
                             for name, path in self.eval_sets.items()}
            for name, (path, field) in self.synth_tests.items():
                self._indexes[name] = decontaminate.VerbatimIndex(r[field] for r in iter_jsonl(Path(path), (field,)))
        return self._indexes

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        words = decontaminate.words(doc.text)
        for name, index in self.indexes().items():
            if index.hits(doc.text, words):
                return False, name
        return True


def eval_questions(path: Path) -> list[str]:
    """The question text of each record of an evaluation JSONL (`question` for GSM8K, `problem` for MATH)."""
    records = read_jsonl(path)
    field = next((k for k in ("question", "problem") if records and k in records[0]), None)
    if field is None:
        raise UserError(f"{path}: expected records with a 'question' or 'problem' field")
    return [r[field] for r in records]


def split_of(text: str, fraction: float, seed: int) -> int:
    """Index in SPLITS: validation by a seeded hash of the text, so a document's split needs nothing else."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{text}".encode()).digest()[:8], "little")
    return SPLITS.index("validation" if h < fraction * 2**64 else "train")


class TokenShards(PipelineStep):
    """Tokenises the task's documents in batches (each followed by <|endoftext|>) into tokens/<rank>.*; the
    documents stream through, only one batch is held."""

    name = "tinymath token shards"
    type = "TOKENIZER"

    def __init__(self, folder: str, tokenizer: str, sources: list[str], batch: int, validation_fraction: float,
                 seed: int, with_ids: bool):
        super().__init__()
        self.folder, self.tokenizer, self.sources, self.batch = folder, tokenizer, sources, batch
        self.validation_fraction, self.seed, self.with_ids = validation_fraction, seed, with_ids

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> None:
        tok = read_tokenizer(Path(self.tokenizer))
        base = Path(self.folder) / rank_name(rank)
        base.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as files:
            tokens, meta = (files.enter_context(open(f"{base}.{kind}.bin", "wb")) for kind in ("tokens", "docs"))
            ids = files.enter_context(open(f"{base}.ids.jsonl", "w")) if self.with_ids else None
            for docs in batched(data or (), self.batch):
                with self.track_time(unit="batch"):
                    encoded = pack.encode(tok, [d.text for d in docs], len(docs))
                for doc, doc_ids in zip(docs, encoded):
                    tokens.write(doc_ids.tobytes())
                    row = (doc.metadata["order"], self.sources.index(doc.metadata["source"]),
                           split_of(doc.text, self.validation_fraction, self.seed), len(doc_ids))
                    meta.write(np.array(row, dtype="<i8").tobytes())
                    if ids is not None:
                        ids.write(json.dumps(doc.id) + "\n")
                    self.stat_update("tokens", value=len(doc_ids))
                    self.stat_update(f"documents_{SPLITS[row[2]]}")


def batched(items, n: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


def read_meta(folder: Path, rank: int) -> np.ndarray:
    path = folder / f"{rank_name(rank)}.docs.bin"
    return np.fromfile(path, dtype="<i8").reshape(-1, META) if path.is_file() else np.zeros((0, META), np.int64)


def read_ids(path: Path) -> list[str]:
    with open(path) as f:
        return [json.loads(line) for line in f]


class MixPlan(PipelineStep):
    """One task: reads every document's metadata (4 numbers a document, never its text or tokens), puts them in
    corpus order, holds out the validation split, mixes the train split to the token shares (`mix.py`) and shuffles
    each split with the seed; writes plan/ (the packing order) and plan/mix.json."""

    name = "tinymath mix"
    type = "MIX"

    def __init__(self, tokens: str, plan: str, token_tasks: int, sources: dict[str, float], total: int | None,
                 seed: int, seq_len: int, rows_per_shard: int, with_ids: bool, validation_fraction: float):
        super().__init__()
        self.tokens, self.plan, self.token_tasks, self.sources, self.total = tokens, plan, token_tasks, sources, total
        self.seed, self.seq_len, self.rows_per_shard, self.with_ids = seed, seq_len, rows_per_shard, with_ids
        self.validation_fraction = validation_fraction

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> None:
        docs, ids = self.documents()
        out = Path(self.plan)
        out.mkdir(parents=True, exist_ok=True)
        summary: dict = {"tokens": {}, "rows": {}, "shards": {}}
        for index, split in enumerate(SPLITS):
            members = np.flatnonzero(docs[:, 2] == index)  # [n] in corpus order
            if len(members) == 0:
                raise UserError(f"validation_fraction: {self.validation_fraction} leaves the {split} split empty "
                                f"({len(docs)} documents after cleaning)")
            if split == "train":
                members, summary["mix"] = self.mix_train(docs, members)
            picked = members[np.random.default_rng([self.seed, len(SPLITS), index]).permutation(len(members))]
            lengths = docs[picked, 3]
            plan = np.stack([docs[picked, 4], docs[picked, 5], lengths, np.cumsum(lengths) - lengths], axis=1)
            plan.astype("<i8").tofile(out / f"{split}.bin")
            if self.with_ids:
                (out / f"{split}.ids.jsonl").write_text("".join(json.dumps(ids[i]) + "\n" for i in picked))
            tokens = int(lengths.sum())
            rows = -(-tokens // (self.seq_len + 1))
            summary["tokens"][split], summary["rows"][split] = tokens, rows
            summary["shards"][split] = -(-rows // self.rows_per_shard)
        (out / "mix.json").write_text(json.dumps(summary, indent=1) + "\n")

    def documents(self) -> tuple[np.ndarray, list[str] | None]:
        """[documents, 6] (order, source, split, tokens, token task, offset in it) sorted by corpus order; ids."""
        folder, parts, ids = Path(self.tokens), [], []
        for task in range(self.token_tasks):
            meta = read_meta(folder, task)
            offsets = np.cumsum(meta[:, 3]) - meta[:, 3]
            parts.append(np.column_stack([meta, np.full(len(meta), task), offsets]))
            if self.with_ids:
                ids += read_ids(folder / f"{rank_name(task)}.ids.jsonl")
        docs = np.concatenate(parts) if parts else np.zeros((0, META + 2), np.int64)
        order = np.argsort(docs[:, 0], kind="stable")
        return docs[order], ([ids[i] for i in order] if self.with_ids else None)

    def mix_train(self, docs: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, dict]:
        """The train documents chosen to meet the token shares, concatenated source by source; the mix report."""
        by_source = {name: members[docs[members, 1] == i] for i, name in enumerate(self.sources)}
        lengths = {name: docs[idx, 3] for name, idx in by_source.items()}
        chosen, report = mix.mix(lengths, self.sources, self.total, self.seed, "split train")
        return np.concatenate([by_source[n][chosen[n]] for n in self.sources]), report


class PackShards(PipelineStep):
    """Task `rank` packs output shards rank, rank + world_size, ... of each split: it reads the shard's token range
    of the packing order from the token shards and writes `<split>-NNNNN` (`packed.py`) and pack/<shard>.json.
    One shard's rows are in memory at a time."""

    name = "tinymath pack"
    type = "PACK"

    def __init__(self, tokens: str, plan: str, packed_dir: str, entries: str, seq_len: int, rows_per_shard: int,
                 with_ids: bool):
        super().__init__()
        self.tokens, self.plan, self.packed_dir, self.entries = tokens, plan, packed_dir, entries
        self.seq_len, self.rows_per_shard, self.with_ids = seq_len, rows_per_shard, with_ids

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> None:
        summary = json.loads((Path(self.plan) / "mix.json").read_text())
        for d in (self.packed_dir, self.entries):
            Path(d).mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            shards = range(rank, summary["shards"][split], world_size)
            if not shards:
                continue
            plan = np.memmap(Path(self.plan) / f"{split}.bin", dtype="<i8", mode="r").reshape(-1, META)
            ids = read_ids(Path(self.plan) / f"{split}.ids.jsonl") if self.with_ids else None
            with TokenFiles(Path(self.tokens)) as tokens:
                for shard in shards:
                    with self.track_time(unit="shard"):
                        self.write_shard(split, shard, plan, ids, summary["tokens"][split], tokens)

    def write_shard(self, split: str, shard: int, plan: np.ndarray, ids: list[str] | None, total: int,
                    tokens: TokenFiles) -> None:
        width = self.seq_len + 1
        begin, end = shard * self.rows_per_shard * width, min((shard + 1) * self.rows_per_shard * width, total)
        starts, lengths = plan[:, 3], plan[:, 2]
        first = int(np.searchsorted(starts + lengths, begin, side="right"))  # first document reaching into the shard
        last = int(np.searchsorted(starts, end, side="left"))  # one past the last starting in it
        pieces = [tokens.read(plan[i], max(begin - starts[i], 0), min(end - starts[i], lengths[i]))
                  for i in range(first, last)]
        arrays = pack.pack(pieces, self.seq_len)
        name = f"{split}-{shard:05d}"
        packed.write_shard(Path(self.packed_dir), name, arrays)
        entry = {"name": name, "rows": int(arrays["tokens"].shape[0])}
        if ids is not None:
            entry["documents"] = pack.row_documents(np.array([len(p) for p in pieces], np.int64), ids[first:last],
                                                    width)
        (Path(self.entries) / f"{name}.json").write_text(json.dumps(entry) + "\n")
        self.stat_update("rows", value=entry["rows"])


class TokenFiles(ExitStack):
    """The token shards of the tokenize step, each opened once (a pack task reads documents in shuffled order)."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder, self.files = folder, {}

    def read(self, doc: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Tokens [lo, hi) of the document whose plan row is `doc` (task, offset, count, start)."""
        task = int(doc[0])
        if task not in self.files:
            self.files[task] = self.enter_context(open(self.folder / f"{rank_name(task)}.tokens.bin", "rb"))
        f = self.files[task]
        f.seek((int(doc[1]) + int(lo)) * 4)
        return np.fromfile(f, dtype="<i4", count=int(hi - lo)).astype(np.int32)

"""Stage `prepare`: read sources -> quality filters -> MinHash near-dedup -> decontamination -> tokenise -> split
-> mix to token shares -> pack. Outputs `packed/` (see `tinymath.packed`) and `stats.json`.

Offline profiles read the synth stage's `corpus/documents.jsonl`, one source per `source` family; `paper` streams each
hub source until it holds `oversample` x its share of the training tokens. Validation documents are held out by a
seeded hash of their text before mixing; the train split is mixed to the configured token shares.

The corpus is held in memory, which suits the offline profiles and a paper-config run on a sample (`--set
tokens=...`). The full 300B-token paper corpus does not fit one machine: there each step becomes a sharded
datatrove stage on a Slurm cluster (dedup.py shows the layout), with the same filters, parameters and counts.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from tinymath import packed, paths
from tinymath.errors import UserError
from tinymath.io import iter_jsonl, read_jsonl, read_tokenizer
from tinymath.log import logger
from tinymath.prepare import decontaminate, dedup, mix, pack, quality
from tinymath.prepare.config import Config
from tinymath.runner import Run

SPLITS = ("train", "validation")
SYNTH_TESTS = {"synth_gsm_test": ("gsm/test.jsonl", "question"), "synth_math_test": ("math/test.jsonl", "problem")}


@dataclass(frozen=True)
class Doc:
    id: str
    source: str  # the key of its source in `prepare.sources`
    text: str


def needs(cfg: Config) -> list[str]:
    return ["tokenizer"] if cfg.from_hub else ["tokenizer", "synth"]


def external_inputs(cfg: Config) -> list[Path]:
    """The real evaluation sets that exist here (absent ones are skipped with a warning in `main`)."""
    return [p for p in eval_paths(cfg).values() if p.is_file()]


def eval_paths(p: Config) -> dict[str, Path]:
    return {name: paths.resolve(path) for name, path in p.decontamination.eval_sets.items()}


def main(cfg: Config, run: Run) -> None:
    tok = read_tokenizer(run.input("tokenizer") / "tokenizer" / "tokenizer.json")
    stats: dict = {}
    docs = read_sources(cfg, run, tok, stats)
    docs = remove_near_duplicates(docs, cfg, stats)
    docs = remove_contaminated(docs, cfg, None if cfg.from_hub else run, stats)
    ids = pack.encode(tok, [d.text for d in docs], cfg.encode_batch)
    out = run.dir / "packed"
    out.mkdir(parents=True, exist_ok=True)
    stats.update(tokens={}, rows={})
    index = {split: write_split(out, split, members, docs, ids, cfg, cfg.seed, stats)
             for split, members in split_documents(docs, cfg.validation_fraction, cfg.seed).items()}
    packed.write_index(out, cfg.seq_len, tok.get_vocab_size(), index)
    (run.dir / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    logger.info("data: %s tokens, %s rows of %d", stats["tokens"], stats["rows"], cfg.seq_len + 1)


def read_sources(p: Config, run: Run, tok: Tokenizer, stats: dict) -> list[Doc]:
    """All documents of the configured sources that pass the quality filters; counts go to `stats`."""
    raw = stream_hub(p, tok) if p.from_hub else read_corpus(run.input("synth") / "corpus" / "documents.jsonl", p)
    kept, read, failed = [], Counter(), Counter()
    for doc in raw:
        read[doc.source] += 1
        reason = quality.failed_filter(doc.text, p.sources[doc.source].quality or p.quality)
        if reason is None:
            kept.append(doc)
        else:
            failed[reason] += 1
    for name in p.sources:
        if not any(d.source == name for d in kept):
            raise UserError(f"sources.{name}: no documents left after the quality filters "
                            f"({read[name]} read)")
    stats["documents"] = {name: read[name] for name in p.sources}
    stats["filters"] = {f: failed[f] for f in quality.FILTERS}
    logger.info("data: read %d documents, %d removed by quality filters", sum(read.values()), sum(failed.values()))
    return kept


def read_corpus(path: Path, p: Config) -> list[Doc]:
    """Documents of the synth corpus whose family is a configured source; a missing or empty source is an error."""
    family = {(s.family or name): name for name, s in p.sources.items()}
    docs, seen = [], Counter()
    for record in iter_jsonl(path, ("id", "source", "text")):
        seen[record["source"]] += 1
        if record["source"] in family:
            docs.append(Doc(str(record["id"]), family[record["source"]], record["text"]))
    for fam, name in family.items():
        if seen[fam] == 0:
            raise UserError(f"sources.{name}: family {fam!r} has no documents in {path} "
                            f"(families there: {sorted(seen)})")
    return docs


def stream_hub(p: Config, tok: Tokenizer) -> list[Doc]:
    """paper: stream each source until its quality-passing documents hold `oversample` x its token target."""
    from tinymath.prepare.hub import stream_source

    if p.tokens is None:
        raise UserError("tokens: the paper profile needs a token total to size the hub streams, got null")
    docs = []
    for name, source in p.sources.items():
        budget, have = p.oversample * source.share * p.tokens, 0
        for i, text in enumerate(stream_source(name, source)):
            docs.append(Doc(f"{name}-{i}", name, text))
            if quality.failed_filter(text, source.quality or p.quality) is None:
                have += len(tok.encode(text, add_special_tokens=False).ids) + 1
            if have >= budget:
                break
    return docs


def remove_near_duplicates(docs: list[Doc], p: Config, stats: dict) -> list[Doc]:
    with tempfile.TemporaryDirectory(prefix="tinymath-minhash-") as work:
        removed = dedup.near_duplicates([d.text for d in docs], p.dedup, Path(work))
    stats["dedup"] = {"input": len(docs), "removed": len(removed), "kept": len(docs) - len(removed)}
    logger.info("data: MinHash dedup removed %d of %d documents", len(removed), len(docs))
    return [d for i, d in enumerate(docs) if i not in removed]


def remove_contaminated(docs: list[Doc], p: Config, run: Run | None, stats: dict) -> list[Doc]:
    indexes = eval_indexes(p, run)
    found = decontaminate.contaminated([d.text for d in docs], indexes)
    stats["decontamination"] = {name: len(idx) for name, idx in found.items()}
    logger.info("data: decontamination removed %s", stats["decontamination"])
    drop = set().union(*found.values())
    return [d for i, d in enumerate(docs) if i not in drop]


def eval_indexes(p: Config, run: Run | None) -> dict:
    """n-gram indexes of the real eval sets present here, and verbatim indexes of the synth test problems."""
    indexes: dict = {}
    for name, path in eval_paths(p).items():
        if not path.is_file():
            logger.warning("data: evaluation set %s not found at %s: not decontaminated against it", name, path)
            continue
        indexes[name] = decontaminate.NgramIndex(eval_questions(path), p.decontamination.ngram)
    if run is not None:
        for name, (rel, field) in SYNTH_TESTS.items():
            rows = iter_jsonl(run.input("synth") / rel, (field,))
            indexes[name] = decontaminate.VerbatimIndex(r[field] for r in rows)
    return indexes


def eval_questions(path: Path) -> list[str]:
    """The question text of each record of an evaluation JSONL (`question` for GSM8K, `problem` for MATH)."""
    records = read_jsonl(path)
    field = next((k for k in ("question", "problem") if records and k in records[0]), None)
    if field is None:
        raise UserError(f"{path}: expected records with a 'question' or 'problem' field")
    return [r[field] for r in records]


def split_documents(docs: list[Doc], fraction: float, seed: int) -> dict[str, list[int]]:
    """Indices of the train and validation documents; validation by a seeded hash of the text."""
    split: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, d in enumerate(docs):
        h = int.from_bytes(hashlib.sha256(f"{seed}:{d.text}".encode()).digest()[:8], "little")
        split["validation" if h < fraction * 2**64 else "train"].append(i)
    return split


def write_split(out: Path, split: str, members: list[int], docs: list[Doc], ids: list[np.ndarray],
                p: Config, seed: int, stats: dict) -> list[dict]:
    """Pack a split, its documents shuffled together: train mixed to the configured token shares, validation
    every held-out document (too few per source to mix exactly; it is a loss probe, not a training set)."""
    if not members:
        raise UserError(f"validation_fraction: {p.validation_fraction} leaves the {split} split empty "
                        f"({len(docs)} documents after cleaning)")
    picked = np.array(members, dtype=np.int64)
    if split == "train":
        picked = mix_train(members, docs, ids, p, seed, stats)
    picked = picked[np.random.default_rng([seed, len(SPLITS), SPLITS.index(split)]).permutation(len(picked))]
    stats["tokens"][split] = int(sum(len(ids[i]) for i in picked))
    doc_ids = [docs[i].id for i in picked] if p.row_documents else None
    entries = pack.write_split(out, split, [ids[i] for i in picked], doc_ids, p.seq_len, p.rows_per_shard)
    stats["rows"][split] = sum(e["rows"] for e in entries)
    return entries


def mix_train(members: list[int], docs: list[Doc], ids: list[np.ndarray], p: Config, seed: int,
              stats: dict) -> np.ndarray:
    """Indices of the training documents chosen to meet the token shares; the report goes to stats["mix"]."""
    by_source = {name: [i for i in members if docs[i].source == name] for name in p.sources}
    lengths = {name: np.array([len(ids[i]) for i in idx], dtype=np.int64) for name, idx in by_source.items()}
    chosen, stats["mix"] = mix.mix(lengths, {n: s.share for n, s in p.sources.items()}, p.tokens, seed,
                                   "split train")
    return np.array([by_source[n][j] for n in p.sources for j in chosen[n]], dtype=np.int64)

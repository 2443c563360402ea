"""Stage `synth`: embedded offline datasets in the real GSM8K and MATH-500 formats, plus a pretraining corpus.

    tinymath synth --profile cpu
    tinymath synth --config configs/synth/smoke.yaml --set gsm.train=5000

Writes below runs/<profile>/synth/:
    gsm/{train,validation,test}.jsonl    {"question", "answer"} as in GSM8K (`<<48/2=24>>24`, final `#### N`)
    gsm/test_meta.jsonl                  per test line: level, template, calculations, novel_arithmetic, ...
    math/{train,validation,test}.jsonl   {"problem", "solution", "answer", "subject", "level", "unique_id"}
    math/test_meta.jsonl                 per test line: level, subject, template, answer_seen_in_train
    corpus/documents.jsonl               {"id", "source", "text"}
    summary.json                         counts per split/level/subject/template/source and sha256 of every file
Same config and seed give byte-identical files; splits are decided by hashes of canonical problems (`splits.py`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tinymath.io import write_jsonl
from tinymath.log import logger
from tinymath.manifest import sha256_file, write_json_atomic
from tinymath.runner import Run
from tinymath.synth import competition, gsm
from tinymath.synth.config import Config
from tinymath.synth.corpus import Corpus


def needs(cfg: Config) -> list[str]:
    return []


def _counts(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


def write_gsm(cfg: Config, out: Path) -> dict:
    splits, meta = gsm.generate(cfg.gsm, cfg.seed)
    for split, problems in splits.items():
        write_jsonl(out / "gsm" / f"{split}.jsonl", [p.record() for p in problems])
    write_jsonl(out / "gsm" / "test_meta.jsonl", meta)
    summary = {
        "counts": {s: len(ps) for s, ps in splits.items()},
        "levels": {s: _counts(p.level for p in ps) for s, ps in splits.items()},
        "templates": {s: _counts(p.template for p in ps) for s, ps in splits.items()},
        "novel_arithmetic_test": sum(m["novel_arithmetic"] for m in meta),
        "test_calcs_seen_in_train": sum(m["calcs_seen_in_train"] for m in meta),
    }
    logger.info("gsm: %s problems, %d novel-arithmetic test records", summary["counts"],
                summary["novel_arithmetic_test"])
    return summary


def write_math(cfg: Config, out: Path) -> dict:
    held = gsm.splitter_of(cfg.gsm, cfg.seed).held
    problems, records, meta = competition.generate(cfg.math, cfg.seed, held)
    for split, rows in records.items():
        write_jsonl(out / "math" / f"{split}.jsonl", rows)
    write_jsonl(out / "math" / "test_meta.jsonl", meta)
    summary = {
        "counts": {s: len(rs) for s, rs in records.items()},
        "levels": {s: _counts(r["level"] for r in rs) for s, rs in records.items()},
        "subjects": {s: _counts(r["subject"] for r in rs) for s, rs in records.items()},
        "templates": {s: _counts(p.template for p in ps) for s, ps in problems.items()},
    }
    logger.info("math: %s problems", summary["counts"])
    return summary


def write_corpus(cfg: Config, out: Path) -> dict:
    docs = Corpus(cfg, cfg.seed).generate()
    write_jsonl(out / "corpus" / "documents.jsonl", docs)
    summary = {"documents": len(docs), "sources": _counts(d["source"] for d in docs),
               "distinct_texts": len({d["text"] for d in docs})}
    logger.info("corpus: %d documents %s", len(docs), summary["sources"])
    return summary


def main(cfg: Config, run: Run) -> None:
    out = Path(run.dir)
    summary = {"seed": cfg.seed, "gsm": write_gsm(cfg, out), "math": write_math(cfg, out),
               "corpus": write_corpus(cfg, out)}
    summary["files"] = {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*.jsonl"))}
    write_json_atomic(out / "summary.json", summary)

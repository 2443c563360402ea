"""Stage `synth`: embedded offline datasets in the real GSM8K and MATH-500 formats, plus a pretraining corpus.

    tinymath data synth --profile cpu
    tinymath data synth --config configs/data/smoke.yaml --set synth.gsm.train=5000

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

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from tinymath.data.synthetic import competition, gsm
from tinymath.data.synthetic.corpus import Corpus
from tinymath.log import logger
from tinymath.manifest import sha256_file, write_json_atomic

if TYPE_CHECKING:
    from tinymath.data.config import DataConfig
    from tinymath.runner import Run


def __getattr__(name: str):
    """`Config` is `DataConfig`, imported on first use: `tinymath.data.config` itself imports this package."""
    if name == "Config":
        from tinymath.data.config import DataConfig

        return DataConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enabled(cfg: DataConfig) -> bool:
    """The paper profile reads hub datasets instead (`synth: null`)."""
    return cfg.synth is not None


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object per line, serialised as the real files are (`json.dumps` defaults: ASCII, `, ` and `: `)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def _counts(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


def write_gsm(cfg: DataConfig, out: Path) -> dict:
    splits, meta = gsm.generate(cfg.synth.gsm, cfg.seed)
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


def write_math(cfg: DataConfig, out: Path) -> dict:
    held = gsm.splitter_of(cfg.synth.gsm, cfg.seed).held
    problems, records, meta = competition.generate(cfg.synth.math, cfg.seed, held)
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


def write_corpus(cfg: DataConfig, out: Path) -> dict:
    docs = Corpus(cfg.synth, cfg.seed).generate()
    write_jsonl(out / "corpus" / "documents.jsonl", docs)
    summary = {"documents": len(docs), "sources": _counts(d["source"] for d in docs),
               "distinct_texts": len({d["text"] for d in docs})}
    logger.info("corpus: %d documents %s", len(docs), summary["sources"])
    return summary


def main(cfg: DataConfig, run: Run) -> None:
    out = Path(run.dir)
    summary = {"seed": cfg.seed, "gsm": write_gsm(cfg, out), "math": write_math(cfg, out),
               "corpus": write_corpus(cfg, out)}
    summary["files"] = {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*.jsonl"))}
    write_json_atomic(out / "summary.json", summary)

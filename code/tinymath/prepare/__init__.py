"""Stage `prepare`: read sources -> quality filters -> MinHash near-dedup -> decontamination -> tokenise -> split
-> mix to token shares -> pack, as one datatrove pipeline (`pipeline.py`) on the configured executor (local, ray,
slurm). Outputs `packed/` (see `tinymath.packed`) and `stats.json`.

Offline profiles read the synth stage's `corpus/documents.jsonl`, one source per `source` family; `paper` streams each
hub source until it holds `oversample` x its share of the training tokens. Validation documents are held out by a
seeded hash of their text before mixing; the train split is mixed to the configured token shares. No step holds the
corpus: documents stream through each task, and the mix holds six numbers a document (`pipeline.py`).

    tinymath prepare --profile cpu
    tinymath prepare --profile paper --dry-run     # the plan, offline; slurm: its sbatch scripts
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from datatrove.pipeline.dedup.minhash import MinhashDedupFilter

from tinymath import packed, paths
from tinymath.errors import UserError
from tinymath.io import read_tokenizer
from tinymath.log import logger
from tinymath.prepare import pipeline, quality, steps
from tinymath.prepare.config import Config
from tinymath.prepare.steps import SPLITS
from tinymath.runner import Run, hub_reachable

SYNTH_TESTS = {"synth_gsm_test": ("gsm/test.jsonl", "question"), "synth_math_test": ("math/test.jsonl", "problem")}


def needs(cfg: Config) -> list[str]:
    return ["tokenizer"] if cfg.from_hub else ["tokenizer", "synth"]


def external_inputs(cfg: Config, root: Path) -> list[Path]:
    """The real evaluation sets that exist here (absent ones are skipped with a warning in `main`)."""
    return [p for p in eval_paths(cfg).values() if p.is_file()]


def eval_paths(p: Config) -> dict[str, Path]:
    return {name: paths.resolve(path) for name, path in p.decontamination.eval_sets.items()}


def main(cfg: Config, run: Run) -> None:
    tokenizer = run.input("tokenizer") / "tokenizer" / "tokenizer.json"
    vocab = read_tokenizer(tokenizer).get_vocab_size()  # also checks the file before any task starts
    if cfg.from_hub:
        check_hub(cfg)
    corpus = None if cfg.from_hub else run.input("synth") / "corpus" / "documents.jsonl"
    if corpus is not None and not corpus.is_file():
        raise UserError(f"{corpus}: file not found")
    plan = build(cfg, run, tokenizer, corpus)
    logs = pipeline.folders(run.dir)["logs"]
    stats: dict = {}
    pipeline.run(cfg, plan, logs, lambda step: record(step, cfg, logs, stats))
    finish(cfg, run.dir, vocab, stats)


def dry_run(cfg: Config, root: Path, out: Path) -> list[str]:
    """The plan of a run into `root` (runs/<profile>), read from the config alone: no input, network or cluster is
    touched; for `executor: slurm` the sbatch scripts go to `out`."""
    run = Run(stage="prepare", profile=root.name, dir=root / ".prepare.work", root=root, config_path=Path())
    corpus = None if cfg.from_hub else run.input("synth") / "corpus" / "documents.jsonl"
    plan = build(cfg, run, run.input("tokenizer") / "tokenizer" / "tokenizer.json", corpus)
    lines = pipeline.describe(cfg, plan)
    if cfg.executor == "slurm":
        written = pipeline.slurm_scripts(cfg, plan, out / "logs", out)
        lines.append(f"sbatch scripts: {', '.join(str(p) for p in written)}")
    return lines


def build(cfg: Config, run: Run, tokenizer: Path, corpus: Path | None) -> list[pipeline.Step]:
    synth = {} if corpus is None else {n: (run.input("synth") / rel, field) for n, (rel, field) in SYNTH_TESTS.items()}
    return pipeline.build(cfg, run.dir, tokenizer, corpus, present_eval_sets(cfg), synth)


def present_eval_sets(cfg: Config) -> dict[str, Path]:
    found = {}
    for name, path in eval_paths(cfg).items():
        if path.is_file():
            found[name] = path
        else:
            logger.warning("data: evaluation set %s not found at %s: not decontaminated against it", name, path)
    return found


def check_hub(cfg: Config) -> None:
    if cfg.tokens is None:
        raise UserError("tokens: the paper profile needs a token total to size the hub streams, got null")
    remote = [n for n, s in cfg.sources.items() if s.data_files is None]
    if remote and not hub_reachable():
        s = cfg.sources[remote[0]]
        raise UserError(f"sources.{remote[0]}: cannot stream {s.hub_id}: huggingface.co is unreachable "
                        "(or HF_HUB_OFFLINE=1); the paper profile needs the hub")


def record(step: str, cfg: Config, logs: Path, stats: dict) -> None:
    """Counts of a finished step into `stats` (the layout of stats.json); a source left empty is an error."""
    c = pipeline.counts(logs, step)
    if step == "read":
        read = c.get(steps.SynthCorpus.name, c.get(steps.HubSources.name, Counter()))
        kept = c.get(steps.QualityFilter.name, Counter())
        check_sources(cfg, read, kept)
        stats["documents"] = {n: read[f"read_{n}"] for n in cfg.sources}
        stats["filters"] = {f: kept[f"dropped_{f}"] for f in quality.FILTERS}
        logger.info("data: read %d documents, %d removed by quality filters", sum(stats["documents"].values()),
                    sum(stats["filters"].values()))
    elif step == "tokenize":
        mh, decon = c.get(MinhashDedupFilter.name, Counter()), c.get(steps.Decontaminate.name, Counter())
        stats["dedup"] = {"input": mh["total"], "removed": mh["dropped"], "kept": mh["total"] - mh["dropped"]}
        names = [n for n, path in eval_paths(cfg).items() if path.is_file()] + ([] if cfg.from_hub else [*SYNTH_TESTS])
        stats["decontamination"] = {n: decon[f"dropped_{n}"] for n in names}
        logger.info("data: MinHash dedup removed %d of %d documents", mh["dropped"], mh["total"])
        logger.info("data: decontamination removed %s", stats["decontamination"])


def check_sources(cfg: Config, read, kept) -> None:
    for name, s in cfg.sources.items():
        family = s.family or name
        if not cfg.from_hub and read[f"family_{family}"] == 0:
            seen = sorted(k.removeprefix("family_") for k, v in read.items() if k.startswith("family_") and v)
            raise UserError(f"sources.{name}: family {family!r} has no documents in the synth corpus "
                            f"(families there: {seen})")
        if kept[f"kept_{name}"] == 0:
            raise UserError(f"sources.{name}: no documents left after the quality filters "
                            f"({read[f'read_{name}']} read)")


def finish(cfg: Config, work: Path, vocab: int, stats: dict) -> None:
    """index.json from the pack tasks' entries, stats.json; the intermediate files go."""
    f = pipeline.folders(work)
    summary = json.loads((f["plan"] / "mix.json").read_text())
    index = {split: [json.loads((f["pack"] / f"{split}-{i:05d}.json").read_text())
                     for i in range(summary["shards"][split])] for split in SPLITS}
    packed.write_index(work / "packed", cfg.seq_len, vocab, index)
    stats.update(tokens=summary["tokens"], rows=summary["rows"], mix=summary["mix"])
    (work / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    shutil.rmtree(f["base"])
    logger.info("data: %s tokens, %s rows of %d", stats["tokens"], stats["rows"], cfg.seq_len + 1)

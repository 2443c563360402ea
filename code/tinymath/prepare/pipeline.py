"""The data stage as six datatrove steps, each run by the configured executor (local, ray or slurm), in order:

    read      read the sources -> quality filters -> documents as JSONL -> MinHash signatures   (`tasks` tasks)
    buckets   duplicate pairs within each MinHash band                                         (one task a band)
    cluster   union-find over the pairs -> the documents to remove                             (1 task)
    tokenize  the JSONL again -> MinHash filter -> decontamination -> token shards            (`tasks` tasks)
    mix       split, mix the train split to the token shares, shuffle: the packing order      (1 task)
    pack      the packing order -> packed shards                                               (`tasks` tasks)

Every step streams documents, or (mix) holds six numbers a document. Each step logs below `pipeline/logs/<step>/`,
where datatrove marks every finished task (`completions/<rank>`): an interrupted stage rerun with the same
fingerprint keeps its work directory (`tinymath.runner`), and the executors skip the tasks already done.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor, SlurmPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.writers import JsonlWriter
from loguru import logger as datatrove_logger

from tinymath.log import logger
from tinymath.prepare import dedup, steps
from tinymath.prepare.config import Config

MAX_ARRAY = 1001  # SlurmPipelineExecutor's default max_array_size: more tasks are several arrays


@dataclass(frozen=True)
class Step:
    name: str
    what: str  # one line for the plan
    pipeline: list
    tasks: int


def folders(work: Path) -> dict[str, Path]:
    base = Path(work) / "pipeline"
    names = ("docs", "signatures", "buckets", "remove", "tokens", "plan", "pack", "logs")
    return {n: base / n for n in names} | {"base": base}


def build(cfg: Config, work: Path, tokenizer: Path, corpus: Path | None, eval_sets: dict[str, Path],
          synth_tests: dict[str, tuple[Path, str]]) -> list[Step]:
    """The steps for a run in `work`: the synth `corpus` (offline) or the hub sources (corpus None)."""
    f = {k: str(v) for k, v in folders(work).items()}
    mh = dedup.minhash_config(cfg.dedup)
    qualities = {n: s.quality or cfg.quality for n, s in cfg.sources.items()}
    ids = cfg.row_documents
    decon = steps.Decontaminate({n: str(p) for n, p in eval_sets.items()}, cfg.decontamination.ngram,
                                {n: (str(p), field) for n, (p, field) in synth_tests.items()})
    return [
        Step("read", "read the sources, quality filters, documents as JSONL, MinHash signatures",
             [reader(cfg, tokenizer, corpus, qualities), steps.QualityFilter(qualities),
              JsonlWriter(f["docs"], output_filename="${rank}.jsonl", compression=None),
              dedup.Signature(f["signatures"], config=mh, language=dedup.WhitespaceWords())], cfg.tasks),
        Step("buckets", "MinHash duplicate pairs, one task a band",
             [MinhashDedupBuckets(f["signatures"], f["buckets"], config=mh)], cfg.dedup.buckets),
        Step("cluster", "union-find over the pairs: one document kept per cluster",
             [MinhashDedupCluster(f["buckets"], f["remove"], config=mh)], 1),
        Step("tokenize", "the JSONL again, MinHash filter, decontamination, token shards",
             [steps.TaskShard(f["docs"]), MinhashDedupFilter(f["remove"]), decon,
              steps.TokenShards(f["tokens"], str(tokenizer), list(cfg.sources), cfg.encode_batch,
                                cfg.validation_fraction, cfg.seed, ids)], cfg.tasks),
        Step("mix", "validation split, token-exact mix of the train split, seeded shuffle: the packing order",
             [steps.MixPlan(f["tokens"], f["plan"], cfg.tasks, {n: s.share for n, s in cfg.sources.items()},
                            cfg.tokens, cfg.seed, cfg.seq_len, cfg.rows_per_shard, ids, cfg.validation_fraction)], 1),
        Step("pack", "packed shards of rows with segment ids and restarting positions",
             [steps.PackShards(f["tokens"], f["plan"], str(Path(work) / "packed"), f["pack"], cfg.seq_len,
                               cfg.rows_per_shard, ids)], cfg.tasks),
    ]


def reader(cfg: Config, tokenizer: Path, corpus: Path | None, qualities: dict) -> steps.BaseReader:
    if corpus is not None:
        return steps.SynthCorpus(str(corpus), {(s.family or n): n for n, s in cfg.sources.items()})
    budgets = {n: cfg.oversample * s.share * (cfg.tokens or 0) for n, s in cfg.sources.items()}
    sources = {n: s.model_dump(include={"hub_id", "hub_config", "split", "text_field", "data_files"})
               for n, s in cfg.sources.items()}
    return steps.HubSources(sources, budgets, str(tokenizer), qualities)


def executor(cfg: Config, step: Step, logs: Path, depends: PipelineExecutor | None = None) -> PipelineExecutor:
    common = {"pipeline": step.pipeline, "tasks": step.tasks, "logging_dir": str(logs / step.name),
              "skip_completed": True}
    workers = at_once(cfg, step)
    if cfg.executor == "local":
        # fork: workers inherit the quiet datatrove logger (a failing task's error is the stage's one-line error)
        return LocalPipelineExecutor(**common, workers=workers, start_method="fork")
    if cfg.executor == "ray":
        return RayPipelineExecutor(**common, workers=workers, cpus_per_task=cfg.ray.cpus_per_task,
                                   mem_per_cpu_gb=cfg.ray.mem_per_cpu_gb)
    s = cfg.slurm
    return SlurmPipelineExecutor(**common, workers=workers, time=s.time, partition=s.partition,
                                 cpus_per_task=s.cpus_per_task, mem_per_cpu_gb=s.mem_per_cpu_gb,
                                 job_name=f"tinymath-prepare-{step.name}", env_command=s.env_command,
                                 slurm_logs_folder=str(logs / step.name / "slurm"), depends=depends)


def at_once(cfg: Config, step: Step) -> int:
    return min(cfg.dedup.workers if step.name == "buckets" else cfg.workers, step.tasks)


def run(cfg: Config, plan: list[Step], logs: Path, after: Callable[[str], None]) -> None:
    """Run the steps in order; `after(step)` checks a step's counts before the next one starts (slurm: at the end,
    as every job array is submitted at once, each depending on the one before)."""
    with quiet_datatrove(), ray_cluster(cfg):
        if cfg.executor == "slurm":
            run_slurm(cfg, plan, logs)
            for step in plan:
                after(step.name)
            return
        for step in plan:
            ex = executor(cfg, step, logs)
            if done := step.tasks - len(ex.get_incomplete_ranks(range(step.tasks))):
                logger.info("data: step %s: %d of %d tasks already done, skipped", step.name, done, step.tasks)
            t0 = time.perf_counter()
            ex.run()
            check_complete(ex, step, logs)
            logger.info("data: step %s done in %.2f s", step.name, time.perf_counter() - t0)
            after(step.name)


def check_complete(ex: PipelineExecutor, step: Step, logs: Path) -> None:
    missing = ex.get_incomplete_ranks(range(step.tasks))
    if missing:
        raise RuntimeError(f"prepare step {step.name}: task(s) {missing[:10]} of {step.tasks} did not finish "
                           f"(logs in {logs / step.name / 'logs'})")


def run_slurm(cfg: Config, plan: list[Step], logs: Path) -> None:
    """Submit one job array a step (each after the previous), then wait for the last step's tasks to finish."""
    chain = None
    for step in plan:
        chain = executor(cfg, step, logs, depends=chain)
    chain.run()
    while missing := chain.get_incomplete_ranks(range(plan[-1].tasks)):
        logger.info("data: waiting for slurm: %d of %d pack tasks unfinished", len(missing), plan[-1].tasks)
        time.sleep(cfg.slurm.poll_s)


def slurm_scripts(cfg: Config, plan: list[Step], logs: Path, out: Path) -> list[Path]:
    """The sbatch script of each step as `run_slurm` submits it (it also writes the pickled executor each script
    runs), and `submit.sh`: a step over `max_array_size` tasks is several arrays (RUN_OFFSET), each step after
    every array of the previous one (afterok)."""
    out.mkdir(parents=True, exist_ok=True)
    written, previous = [], []
    submit = ["#!/bin/bash", "# The data stage's job arrays in order, each step after the previous one succeeded.",
              "set -euo pipefail"]
    for i, step in enumerate(plan):
        ex = executor(cfg, step, logs)
        size = min(step.tasks, ex.max_array_size)
        script = ex.get_launch_file_contents(ex.get_sbatch_args(size), "srun -l -n 1 launch_pickled_pipeline "
                                             + ex.logging_dir.resolve_paths("executor.pik"))
        path = out / f"{i + 1}_{step.name}.slurm"
        path.write_text(script)
        written.append(path)
        dep = f" --dependency=afterok:{':'.join(previous)}" if previous else ""
        jobs = [f"job{i + 1}_{k}" for k in range(-(-step.tasks // size))]
        submit += [f"{job}=$(sbatch --parsable --export=ALL,RUN_OFFSET={k}{dep} {path.name})"
                   for k, job in enumerate(jobs)]
        previous = [f"${job}" for job in jobs]
    (out / "submit.sh").write_text("\n".join(submit) + "\n")
    return [*written, out / "submit.sh"]


@contextmanager
def ray_cluster(cfg: Config) -> Iterator[None]:
    """Join `ray.address`, or start a local cluster for the run (and stop it after); a cluster this process already
    joined is used as it is."""
    if cfg.executor != "ray":
        yield
        return
    import ray

    if ray.is_initialized():
        yield
        return
    local = cfg.ray.address is None
    ray.init(address=cfg.ray.address, num_cpus=cfg.ray.num_cpus if local else None, include_dashboard=False,
             log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def quiet_datatrove() -> Iterator[None]:
    """datatrove's per-task console reports would drown the stage's log (they stay in each step's logs/)."""
    datatrove_logger.disable("datatrove")
    try:
        yield
    finally:
        datatrove_logger.enable("datatrove")


def counts(logs: Path, step: str) -> dict[str, Counter]:
    """The stats datatrove saved for each finished task of `step`, summed: pipeline step name -> key -> total
    (datatrove saves a block per step, named "<type>: <name>")."""
    totals: dict[str, Counter] = {}
    for path in sorted((logs / step / "stats").glob("*.json")):
        for block in json.loads(path.read_text()):
            c = totals.setdefault(block["name"].split(": ", 1)[-1], Counter())
            for key, value in block["stats"].items():
                c[key] += value["total"] if isinstance(value, dict) else value
    return totals


def describe(cfg: Config, plan: list[Step]) -> list[str]:
    """The plan in words: sources and token targets, steps and tasks, expected output, the executor's jobs."""
    total = cfg.tokens
    lines = [f"prepare: executor {cfg.executor}, {cfg.tasks} tasks a per-document step, {cfg.workers} at once"]
    lines.append("sources (share of the training tokens; read until oversample x target pass the quality filters):"
                 if cfg.from_hub else "sources (synth corpus families; share of the training tokens):")
    for name, s in cfg.sources.items():
        where = f"{s.hub_id}" + (f" ({s.hub_config})" if s.hub_config else "") if cfg.from_hub else (s.family or name)
        target = f"target {s.share * total:,.0f} tokens" if total else "target: the largest mix repeating nothing"
        read = f", read {cfg.oversample * s.share * total:,.0f}" if total and cfg.from_hub else ""
        lines.append(f"  {name:<16} {where:<44} share {s.share:.2f}  {target}{read}")
    lines.append("steps:")
    lines += [f"  {i + 1} {s.name:<9} {s.tasks:>6} task(s)  {s.what}" for i, s in enumerate(plan)]
    lines += output_lines(cfg)
    lines.append(f"executor {cfg.executor}: " + layout(cfg, plan))
    return lines


def output_lines(cfg: Config) -> list[str]:
    if cfg.tokens is None:
        return ["output: packed/ train and validation shards; their size follows from the corpus (tokens: null)"]
    width = cfg.seq_len + 1
    rows = -(-cfg.tokens // width)
    shards = -(-rows // cfg.rows_per_shard)
    arrays = rows * width * 4 * 3  # tokens, segment ids, positions: int32 each
    read = cfg.oversample * cfg.tokens if cfg.from_hub else cfg.tokens
    val = cfg.validation_fraction * read  # at most: the held-out share of every document read
    return [f"output: train {cfg.tokens:,} tokens = {rows:,} rows of {width} = {shards:,} shards of "
            f"{cfg.rows_per_shard:,} rows, {shards * 3:,} .npy files, {arrays / 1e12:,.3f} TB",
            f"        validation: at most {val:,.0f} tokens ({cfg.validation_fraction:g} of the documents read), "
            f"{-(-int(val) // width // cfg.rows_per_shard):,} shards",
            f"        intermediate: token shards of about {read * 4 / 1e12:,.3f} TB (int32), removed at the end"]


def layout(cfg: Config, plan: list[Step]) -> str:
    if cfg.executor == "local":
        return f"one process, {cfg.workers} worker process(es) per step, steps in order"
    if cfg.executor == "ray":
        where = cfg.ray.address or f"a local cluster ({cfg.ray.num_cpus or 'all'} CPUs)"
        return (f"{where}; each task a Ray task of {cfg.ray.cpus_per_task} CPU(s), {cfg.ray.mem_per_cpu_gb:g} GB a "
                f"CPU, up to {cfg.workers} at once; steps in order")
    s = cfg.slurm
    jobs = [f"tinymath-prepare-{p.name}: {p.tasks} task(s) in {-(-p.tasks // MAX_ARRAY)} array(s), "
            f"{at_once(cfg, p)} at once" for p in plan]
    return (f"one job array a step, each after the previous (afterok); partition {s.partition}, time {s.time}, "
            f"{s.cpus_per_task} CPU(s) and {s.mem_per_cpu_gb} GB a CPU per task:\n  " + "\n  ".join(jobs))

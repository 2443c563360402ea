"""The schema of `configs/prepare/<profile>.yaml`: cleaning, near-dedup, mixing, decontamination, packing, executor.

Kept apart from the stage code so that the tokenizer stage reads `SourceConfig` without importing datatrove.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer, model_validator

from tinymath.config import Requirements, Section


class OmitsDefaults(Section):
    """A section whose `OMITTED` fields are left out of its dump while at their defaults: fields added to the schema
    later, so a config that does not use them resolves (config.yaml, fingerprint, output hashes) as it did before."""

    OMITTED: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict:
        data = handler(self)
        for key in self.OMITTED:
            if getattr(self, key) == type(self).model_fields[key].get_default(call_default_factory=True):
                data.pop(key, None)
        return data


class QualityConfig(Section):
    """Gopher-style heuristics: too short, too few alphabetic words, too repetitive."""

    min_words: int = Field(default=5, gt=0)
    min_alpha_word_ratio: float = Field(default=0.5, ge=0, le=1)  # words containing a letter / words
    max_duplicate_line_ratio: float = Field(default=0.3, ge=0, le=1)  # repeated lines / lines
    max_top_ngram_ratio: float = Field(default=0.3, ge=0, le=1)  # chars in the most frequent word 3-gram / chars


class SourceConfig(OmitsDefaults):
    """One pretraining source and its target share of the training tokens.

    Offline profiles read the synth corpus's documents whose `source` equals `family` (default: the source's key);
    `paper` streams `hub_id` (with `hub_config`, `split`, `text_field`) from the Hugging Face hub.
    """

    share: float = Field(gt=0, le=1)
    family: str | None = None
    quality: QualityConfig | None = None  # replaces the top-level `quality` for this source (e.g. digit-heavy tables)
    hub_id: str | None = None
    hub_config: str | None = None
    split: str = "train"
    text_field: str = "text"
    data_files: str | None = None  # local files for a `datasets` builder named by hub_id (json, parquet): no hub

    OMITTED: ClassVar[tuple[str, ...]] = ("data_files",)


class DedupConfig(Section):
    """MinHash near-duplicate removal with FineWeb's parameters: 5-grams, 14 bands x 8 hashes."""

    ngram: int = Field(default=5, gt=0)
    buckets: int = Field(default=14, gt=0)
    hashes_per_bucket: int = Field(default=8, gt=0)
    workers: int = Field(default=1, gt=0)  # bucket tasks (one a band) run at once
    # FineWeb maps every digit to 0 before shingling; math text that differs only in its numbers (a table of 4s vs
    # a table of 7s, the same exercise with other values) is then a duplicate, so math-heavy corpora turn it off.
    normalize_numbers: bool = True


class DecontaminationConfig(Section):
    """Drop training documents sharing an `ngram`-word n-gram with an evaluation set.

    `eval_sets` maps a name to a project-relative JSONL path with a `question` or `problem` field (real GSM8K and
    MATH-500 test sets); a missing file is skipped with a warning so the offline profiles run without them.
    """

    ngram: int = Field(default=13, gt=0)
    eval_sets: dict[str, str] = {}


class RayConfig(Section):
    """`executor: ray`: the cluster to join (null: start a local one with `num_cpus`) and each task's resources."""

    address: str | None = None
    num_cpus: int | None = Field(default=None, gt=0)  # local cluster only; null = every core
    cpus_per_task: int = Field(default=1, gt=0)
    mem_per_cpu_gb: float = Field(default=2, gt=0)


class SlurmConfig(Section):
    """`executor: slurm`: one job array per step, each task a Slurm array task (see `tinymath prepare --dry-run`)."""

    partition: str = "cpu"
    time: str = "10:00:00"  # per task
    cpus_per_task: int = Field(default=1, gt=0)
    mem_per_cpu_gb: int = Field(default=2, gt=0)
    env_command: str | None = None  # run before each task, e.g. "source .venv/bin/activate"
    poll_s: int = Field(default=60, gt=0)  # how often the submitting process checks for finished tasks


class Config(OmitsDefaults):
    seed: int = 0
    requires: Requirements = Requirements()
    sources: dict[str, SourceConfig] = Field(min_length=1)
    # Training tokens after mixing; null = the largest mix that needs no source repeated. A source with fewer tokens
    # than its share of `tokens` is an error (never silently repeated or dropped).
    tokens: int | None = Field(default=None, gt=0)
    # paper: each hub source is streamed until it holds `oversample` x its share of `tokens` (after quality filters),
    # leaving room for dedup and decontamination to remove documents.
    oversample: float = Field(default=1.25, ge=1)
    seq_len: int = Field(gt=0)
    validation_fraction: float = Field(default=0.02, gt=0, lt=1)  # documents held out for the validation split
    rows_per_shard: int = Field(default=8192, gt=0)
    row_documents: bool = True  # list each row's document ids in index.json (off at paper scale: ~70M rows)
    encode_batch: int = Field(default=1024, gt=0)
    quality: QualityConfig = QualityConfig()
    dedup: DedupConfig = DedupConfig()
    # How the datatrove steps run (docs/pipeline.md): `tasks` splits the per-document steps (read, tokenize, pack) and
    # is the number of MinHash signature shards; `workers` of their tasks run at once (local processes, Ray tasks,
    # Slurm array tasks); `dedup.workers` bucket tasks run at once.
    executor: Literal["local", "ray", "slurm"] = "local"
    tasks: int = Field(default=1, gt=0)
    workers: int = Field(default=1, gt=0)
    ray: RayConfig = RayConfig()
    slurm: SlurmConfig = SlurmConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()

    OMITTED: ClassVar[tuple[str, ...]] = ("executor", "tasks", "workers", "ray", "slurm")

    @property
    def from_hub(self) -> bool:
        """True when the sources are hub datasets (paper), False when they are synth-corpus families."""
        return all(s.hub_id is not None for s in self.sources.values())

    @model_validator(mode="after")
    def _sources(self) -> Config:
        total = sum(s.share for s in self.sources.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"source shares summing to 1, got {total:g}")
        if len({s.hub_id is None for s in self.sources.values()}) > 1:
            raise ValueError("sources all with a hub_id (hub) or all without (synth corpus), got a mixture")
        return self

"""What every TRL stage shares: training sources, TRL argument checks, the metrics log, resumable checkpoints, and
safe model loading and saving.

Each trainer stage writes `model/` (safetensors and tokenizer), `metrics.jsonl`, `trainer_args.json` (every field of
the TRL config it trained with, TRL's own defaults included), `validation.json` when it has a held-out set, and,
while running, `checkpoints/` (removed on success;
a rerun resumes from the newest checkpoint that loads, and transformers reads its optimizer, scheduler and RNG files
with `torch.load(weights_only=True)`, never unpickling).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
import time
import typing
import zipfile
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
import trl
from datasets import load_dataset
from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from tinymath import specials
from tinymath.config import Requirements, Section
from tinymath.errors import UserError
from tinymath.io import MetricsLog, check_model_dir, read_jsonl, safetensors_damage
from tinymath.log import logger
from tinymath.posttrain import chat
from tinymath.posttrain.dev_curve import DevConfig
from tinymath.runner import Run

# TRL config fields the stages set themselves: where checkpoints go, seeds, what the loss covers, no trackers.
RESERVED = ("output_dir", "seed", "data_seed", "assistant_only_loss", "completion_only_loss", "report_to",
            "resume_from_checkpoint", "push_to_hub")
DIGEST_FILE = "config_sha256"  # beside the checkpoints: a checkpoint resumes only the config that wrote it
ARGS_FILE = "trainer_args.json"
VALIDATION_FILE = "validation.json"  # the held-out loss once training ends: {"step", "val_loss"}


class Source(Section):
    """One training set: a file of the synth stage (offline) or a hub dataset with its exact id, split and size."""

    format: str  # record schema, a key of tinymath.posttrain.chat.FORMATS
    path: str | None = None  # below runs/<profile>/synth/
    hub: str | None = None  # dataset id on the Hugging Face hub
    subset: str | None = None  # hub config name (GSM8K: main)
    split: str = "train"
    rows: int | None = Field(None, gt=0)  # hub rows expected before formatting: a changed dataset is an error
    max_rows: int | None = Field(None, gt=0)  # use only the first rows (what a short run can see)

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in chat.FORMATS:
            raise ValueError(f"one of {sorted(chat.FORMATS)}")
        return v

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        if (self.path is None) == (self.hub is None):
            raise ValueError("exactly one of path (offline synth file) or hub (dataset id)")
        return self


class PolicyConfig(Section):
    """What the stages that train the SFT policy on prompts (grpo, dpo) configure alike; `TRL_CONFIG` is the TRL
    config class whose fields `trainer` holds."""

    TRL_CONFIG: ClassVar[type]
    seed: int = 0
    requires: Requirements = Requirements()
    prompts: Source
    dev: DevConfig | None = None  # learning curve: greedy accuracy on a dev subset during training
    trainer: dict[str, Any]  # TRL_CONFIG keyword arguments

    @field_validator("trainer")
    @classmethod
    def _trainer(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_fields(v, cls.TRL_CONFIG)


def check_fields(trainer: dict[str, Any], config_class: type) -> dict[str, Any]:
    """Reject keys the installed TRL config class does not have and the ones the stage sets itself, and coerce every
    value to its field's type (YAML reads `1e-5` as a string, which would reach torch as one)."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(trainer) - known)
    if unknown:
        raise ValueError(f"fields of {config_class.__name__} in TRL {trl.__version__}, unknown {unknown}")
    reserved = sorted(set(trainer) & set(RESERVED))
    if reserved:
        raise ValueError(f"no {reserved}: the stage sets them")
    types = typing.get_type_hints(config_class)
    return {key: _typed(key, value, types[key]) for key, value in trainer.items()}


def _typed(key: str, value: Any, hint: Any) -> Any:
    try:
        typed = TypeAdapter(hint).validate_python(value)
    except ValidationError:
        raise ValueError(f"trainer.{key} of type {_type_name(hint)}, got {value!r}") from None
    return typed.value if isinstance(typed, enum.Enum) else typed


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def needs_synth(*sources: Source) -> list[str]:
    return ["synth"] if any(s.path is not None for s in sources) else []


def load_records(src: Source, run: Run) -> list[dict[str, Any]]:
    """Raw records of one source; hub datasets must have exactly `rows` rows (a silent upstream change is an error)."""
    if src.path is not None:
        return read_jsonl(run.input("synth") / src.path, chat.FIELDS[src.format])[:src.max_rows]
    ds = load_dataset(src.hub, src.subset, split=src.split)
    if src.rows is not None and len(ds) != src.rows:
        raise UserError(f"{src.hub} ({src.subset}, {src.split}): expected {src.rows} rows, got {len(ds)}")
    missing = [f for f in chat.FIELDS[src.format] if f not in ds.column_names]
    if missing:
        raise UserError(f"{src.hub} ({src.subset}, {src.split}): no column(s) {', '.join(missing)} for format "
                        f"{src.format!r} (columns: {', '.join(ds.column_names)})")
    return list(ds.select(range(min(len(ds), src.max_rows or len(ds)))))


class MetricsWriter(TrainerCallback):
    """Appends one `metrics.jsonl` line per logging step with the stage's fixed keys (`tinymath.io.METRIC_KEYS`).

    `keys` maps the trainer's log names to ours; with `rate`, `tokens_per_s` comes from TRL's cumulative `num_tokens`
    over wall time; `extra(logs)` adds stage-specific values (GRPO's per-reward means).
    """

    def __init__(self, path: Path, keys: dict[str, str], rate: bool = False,
                 extra: Callable[[dict], dict] | None = None):
        self.log, self.keys, self.rate, self.extra = MetricsLog(path), keys, rate, extra
        self.mark = (time.perf_counter(), 0.0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.mark = (time.perf_counter(), 0.0)  # TRL's token count restarts at 0 in every process, resumed or not

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **_: Any) -> None:
        if state.is_world_process_zero and logs and "loss" in logs:
            self.log.append(self.row(state.global_step, logs))

    def row(self, step: int, logs: dict[str, Any]) -> dict[str, Any]:
        row = {"step": step, **{ours: logs[theirs] for theirs, ours in self.keys.items() if theirs in logs}}
        if self.rate and "num_tokens" in logs:
            now, tokens = time.perf_counter(), float(logs["num_tokens"])
            row["tokens_per_s"] = round((tokens - self.mark[1]) / max(now - self.mark[0], 1e-9), 1)
            self.mark = (now, tokens)
        return {**row, **(self.extra(logs) if self.extra else {})}


def resume_point(out: Path, digest: str) -> str | None:
    """The newest intact checkpoint in `out` when it was written under this config; otherwise start clean.

    A damaged checkpoint (a truncated weight or optimizer file, an unreadable trainer state) is removed with a
    warning, and the next older one, or a clean start, is used instead.
    """
    stamp = out / DIGEST_FILE
    if out.is_dir() and (not stamp.is_file() or stamp.read_text() != digest):
        logger.info("checkpoints in %s come from another config: starting over", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    while (last := get_last_checkpoint(str(out))) is not None:
        if (damage := checkpoint_damage(Path(last))) is None:
            return last
        logger.warning("checkpoint %s is damaged (%s): removed, trying an older one", last, damage)
        shutil.rmtree(last)
    return None


def checkpoint_damage(path: Path) -> str | None:
    """What makes a transformers checkpoint unusable, without unpickling anything; None when it is intact."""
    try:
        json.loads((path / "trainer_state.json").read_text())
        for weights in path.glob("*.safetensors"):
            if (damage := safetensors_damage(weights)) is not None:
                return f"{weights.name}: {damage}"
        for archive in [*path.glob("*.pt"), *path.glob("*.pth")]:
            with zipfile.ZipFile(archive) as z:  # torch.save writes zip archives; testzip checks every CRC
                if (bad := z.testzip()) is not None:
                    return f"{archive.name}: member {bad} fails its CRC"
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return None


def trl_args(config_class: type, cfg: Any, out: Path, run: Run, **fixed: Any) -> Any:
    """`config_class(**cfg.trainer)` plus the stage's own fields, recorded whole in the run directory and manifest.

    TRL's own value checks become UserErrors naming the config file.
    """
    try:
        args = config_class(output_dir=str(out), seed=cfg.seed, data_seed=cfg.seed, report_to="none",
                            **fixed, **cfg.trainer)
    except (TypeError, ValueError) as e:
        raise UserError(f"{run.config_path}: trainer: {str(e).splitlines()[0]}") from None
    resolved = json.loads(json.dumps(args.to_dict(), default=str))
    resolved.pop("output_dir")  # the work directory's absolute path: not a setting
    (run.dir / ARGS_FILE).write_text(json.dumps(resolved, indent=1, sort_keys=True) + "\n")
    run.resolved["trainer_args"] = resolved
    return args


def load_model(path: Path) -> tuple[Any, Any]:
    """A local HF model and tokenizer: safetensors weights only, never remote code; float32 master weights."""
    check_model_dir(path)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    return model, tok


def load_policy(path: Path) -> tuple[Any, Any]:
    """`load_model` for a stage that samples from the model: generation stops at any stop token and pads with PAD."""
    model, tok = load_model(path)
    model.generation_config.eos_token_id = list(specials.STOP_IDS)
    model.generation_config.pad_token_id = specials.PAD_ID
    return model, tok


def needs_policy(cfg: PolicyConfig) -> list[str]:
    """The upstream stages of a stage that samples the SFT model on its prompts, with an optional dev curve."""
    return ["sft", *(needs_synth(cfg.prompts) or (["synth"] if cfg.dev else []))]


def save_model(trainer: Any, tok: Any, out: Path) -> None:
    """safetensors + tokenizer; generation stops at <|im_end|> or <|endoftext|>, as evaluation and GRPO expect."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.config.use_cache = True
    model.generation_config.eos_token_id = list(specials.STOP_IDS)
    model.generation_config.pad_token_id = specials.PAD_ID
    if trainer.is_world_process_zero():
        model.save_pretrained(out)
        tok.save_pretrained(out)
    trainer.accelerator.wait_for_everyone()


def fit(trainer: Any, tok: Any, run: Run, metrics: MetricsWriter, last: str | None) -> None:
    """Train (resuming from `last`), measure the held-out loss when there is an eval set, save `model/`, then drop
    the checkpoints: they only serve crash recovery."""
    metrics.log.keep_until(int(Path(last).name.rsplit("-", 1)[-1]) if last else 0)
    trainer.train(resume_from_checkpoint=last)
    if trainer.eval_dataset is not None:
        loss = trainer.evaluate()["eval_loss"]
        if trainer.is_world_process_zero():
            (run.dir / VALIDATION_FILE).write_text(json.dumps({"step": trainer.state.global_step, "val_loss": loss}))
    save_model(trainer, tok, run.dir / "model")
    if trainer.is_world_process_zero():
        shutil.rmtree(trainer.args.output_dir)

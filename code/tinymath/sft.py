"""Stage `sft`: supervised fine-tuning of the converted base model with TRL, ChatML, loss on assistant turns only.

    tinymath sft --profile cpu       # synthetic GSM8K/MATH train splits, CPU, float32
    tinymath sft --profile paper     # MetaMathQA + MathInstruct (CoT) + GSM8K train from the hub, GPU
    accelerate launch --num_processes 8 -m tinymath sft --profile paper     # several GPUs

Shaped like TRL's `trl/scripts/sft.py`: load data, build `SFTTrainer`, `train()`, save. The `trainer:` block of the
config is passed to `SFTConfig` as is, after checking every key against the installed TRL's fields (a key TRL does
not know would otherwise be dropped or renamed silently between versions). Writes `model/` (safetensors and
tokenizer), `metrics.jsonl`, and while running `checkpoints/` (removed on success; a rerun resumes from the last one,
and transformers reads its optimizer, scheduler and RNG files with `torch.load(weights_only=True)`, never unpickling).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
import trl
from datasets import Dataset, load_dataset
from pydantic import Field, field_validator, model_validator
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from tinymath import chat, specials
from tinymath.config import Section, config_digest
from tinymath.errors import UserError
from tinymath.log import logger
from tinymath.runner import Requirements, Run

# SFTConfig fields the stage sets itself: where checkpoints go, seeds, what the loss covers, no trackers.
RESERVED = ("output_dir", "seed", "data_seed", "assistant_only_loss", "completion_only_loss", "report_to",
            "resume_from_checkpoint", "push_to_hub")
METRIC_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "epoch": "epoch"}
DIGEST_FILE = "config_sha256"  # beside the checkpoints: a checkpoint resumes only the config that wrote it


class Source(Section):
    """One training set: a file of the synth stage (offline) or a hub dataset with its exact id, split and size."""

    format: str  # record schema, a key of tinymath.chat.FORMATS
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


def check_fields(trainer: dict[str, Any], config_class: type) -> dict[str, Any]:
    """Reject keys the installed TRL config class does not have, and the ones the stage sets itself."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(trainer) - known)
    if unknown:
        raise ValueError(f"fields of {config_class.__name__} in TRL {trl.__version__}, unknown {unknown}")
    reserved = sorted(set(trainer) & set(RESERVED))
    if reserved:
        raise ValueError(f"no {reserved}: the stage sets them")
    return trainer


class Config(Section):
    seed: int = 0
    requires: Requirements = Requirements()
    sources: dict[str, Source] = Field(min_length=1)
    trainer: dict[str, Any]  # trl.SFTConfig keyword arguments

    @field_validator("trainer")
    @classmethod
    def _trainer(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_fields(v, SFTConfig)


def needs(cfg: Config) -> list[str]:
    offline = any(s.path is not None for s in cfg.sources.values())
    return ["convert", "synth"] if offline else ["convert"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path}: not found (run 'tinymath data synth' for this profile)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_records(src: Source, run: Run) -> list[dict[str, Any]]:
    """Raw records of one source; hub datasets must have exactly `rows` rows (a silent upstream change is an error)."""
    if src.path is not None:
        return read_jsonl(run.input("synth") / src.path)[:src.max_rows]
    ds = load_dataset(src.hub, src.subset, split=src.split)
    if src.rows is not None and len(ds) != src.rows:
        raise UserError(f"{src.hub} ({src.subset}, {src.split}): expected {src.rows} rows, got {len(ds)}")
    return list(ds.select(range(min(len(ds), src.max_rows or len(ds)))))


def conversations(cfg: Config, run: Run) -> list[list[dict[str, str]]]:
    """Every source formatted as ChatML conversations; records without a usable final answer are dropped, counted."""
    out = []
    for name, src in cfg.sources.items():
        records = load_records(src, run)
        convs = [c for c in map(chat.FORMATS[src.format], records) if c is not None]
        logger.info("sft data %s: %d records, %d conversations (%d dropped)", name, len(records), len(convs),
                    len(records) - len(convs))
        out += convs
    return out


def add_tokens(model: Any, tokenizer: Any, tokens: list[str]) -> list[str]:
    """Add the missing `tokens`; their embedding rows start at the mean of the existing rows.

    A random row (the resize default) has a norm unlike any trained row, so the new token's logit starts far off
    and its first gradient steps disturb the rest; the mean row starts as "an average token".
    """
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if not missing:
        return []
    old = len(tokenizer)
    tokenizer.add_tokens(missing, special_tokens=True)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    matrices = {model.get_input_embeddings().weight, model.get_output_embeddings().weight}  # one when tied
    with torch.no_grad():
        for w in matrices:
            w[old:len(tokenizer)] = w[:old].mean(dim=0)
    return missing


class MetricsWriter(TrainerCallback):
    """Appends one `metrics.jsonl` line per logging step with the stage's fixed keys (docs/pipeline.md).

    `keys` maps the trainer's log names to ours; with `rate`, `tokens_per_s` comes from TRL's cumulative `num_tokens`
    over wall time; `extra(logs)` adds stage-specific values (GRPO's per-reward means).
    """

    def __init__(self, path: Path, keys: dict[str, str], rate: bool = False,
                 extra: Callable[[dict], dict] | None = None):
        self.path, self.keys, self.rate, self.extra = path, keys, rate, extra
        self.mark = (time.perf_counter(), 0.0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.mark = (time.perf_counter(), 0.0)  # TRL's token count restarts at 0 in every process, resumed or not

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **_: Any) -> None:
        if state.is_world_process_zero and logs and "loss" in logs:
            self.write(state.global_step, logs)

    def row(self, step: int, logs: dict[str, Any]) -> dict[str, Any]:
        row = {"step": step, **{ours: logs[theirs] for theirs, ours in self.keys.items() if theirs in logs}}
        if self.rate and "num_tokens" in logs:
            now, tokens = time.perf_counter(), float(logs["num_tokens"])
            row["tokens_per_s"] = round((tokens - self.mark[1]) / max(now - self.mark[0], 1e-9), 1)
            self.mark = (now, tokens)
        return {**row, **(self.extra(logs) if self.extra else {})}

    def write(self, step: int, logs: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(self.row(step, logs)) + "\n")

    def keep_until(self, step: int) -> None:
        """Drop lines after `step`: a resumed run repeats the steps after its checkpoint."""
        if self.path.is_file():
            lines = [ln for ln in self.path.read_text().splitlines() if json.loads(ln)["step"] <= step]
            self.path.write_text("".join(ln + "\n" for ln in lines))


def resume_point(out: Path, digest: str) -> str | None:
    """The last checkpoint in `out` when it was written under this config; otherwise start clean."""
    stamp = out / DIGEST_FILE
    if out.is_dir() and (not stamp.is_file() or stamp.read_text() != digest):
        logger.info("checkpoints in %s come from another config: starting over", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return get_last_checkpoint(str(out))


def trl_args(config_class: type, cfg: Any, out: Path, source: Path, **fixed: Any) -> Any:
    """`config_class(**cfg.trainer)` plus the stage's own fields; TRL's own value checks become UserErrors."""
    try:
        return config_class(output_dir=str(out), seed=cfg.seed, data_seed=cfg.seed, report_to="none",
                            **fixed, **cfg.trainer)
    except (TypeError, ValueError) as e:
        raise UserError(f"{source}: trainer: {str(e).splitlines()[0]}") from None


def load_model(path: Path) -> tuple[Any, Any]:
    """A local HF model and tokenizer (never remote code); float32 master weights, bf16 only under autocast."""
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: no Hugging Face model here (config.json missing)")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tok


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
    """Train (resuming from `last`), save `model/`, then drop the checkpoints: they only serve crash recovery."""
    metrics.keep_until(int(Path(last).name.rsplit("-", 1)[-1]) if last else 0)
    trainer.train(resume_from_checkpoint=last)
    save_model(trainer, tok, run.dir / "model")
    if trainer.is_world_process_zero():
        shutil.rmtree(trainer.args.output_dir)


def main(cfg: Config, run: Run) -> None:
    model, tok = load_model(run.input("convert") / "hf")
    if added := add_tokens(model, tok, list(specials.SPECIAL_TOKENS)):
        logger.warning("tokenizer lacked %s: added, embeddings mean-initialised", added)
    data = Dataset.from_dict({"messages": conversations(cfg, run)})
    out = run.dir / "checkpoints"
    last = resume_point(out, config_digest(cfg))
    args = trl_args(SFTConfig, cfg, out, run.config_path, assistant_only_loss=True)
    metrics = MetricsWriter(run.dir / "metrics.jsonl", METRIC_KEYS, rate=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[metrics])
    logger.info("sft: %d conversations%s", len(data), f", resuming from {last}" if last else "")
    fit(trainer, tok, run, metrics, last)

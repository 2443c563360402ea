"""Stage `sft`: supervised fine-tuning of the converted base model with TRL, ChatML, loss on assistant turns only.

    tinymath sft --profile cpu       # synthetic GSM8K/MATH train splits, CPU, float32
    tinymath sft --profile paper     # MetaMathQA + MathInstruct (CoT) + GSM8K train from the hub, GPU
    accelerate launch --num_processes 8 -m tinymath sft --profile paper     # several GPUs

Shaped like TRL's `trl/scripts/sft.py`: load data, build `SFTTrainer`, `train()`, save. The `trainer:` block of the
config is passed to `SFTConfig` as is, after checking every key against the installed TRL's fields (a key TRL does
not know would otherwise be dropped or renamed silently between versions). Outputs: `tinymath.posttrain.common`.
"""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from pydantic import Field, field_validator
from trl import SFTConfig, SFTTrainer

from tinymath import specials
from tinymath.config import Requirements, Section, config_digest
from tinymath.log import logger
from tinymath.posttrain import chat
from tinymath.posttrain.common import (
    MetricsWriter,
    Source,
    check_fields,
    fit,
    load_model,
    load_records,
    needs_synth,
    resume_point,
    trl_args,
)
from tinymath.posttrain.dev_curve import DevConfig, DevCurve
from tinymath.runner import Run

METRIC_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "epoch": "epoch"}


class Config(Section):
    seed: int = 0
    requires: Requirements = Requirements()
    sources: dict[str, Source] = Field(min_length=1)
    # held-out conversations whose loss is measured once training ends (a verdict metric no single batch decides)
    validation: Source | None = None
    dev: DevConfig | None = None  # learning curve: greedy accuracy on a dev subset during training
    trainer: dict[str, Any]  # trl.SFTConfig keyword arguments

    @field_validator("trainer")
    @classmethod
    def _trainer(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_fields(v, SFTConfig)


def needs(cfg: Config) -> list[str]:
    synth = needs_synth(*cfg.sources.values(), *filter(None, [cfg.validation])) or (["synth"] if cfg.dev else [])
    return ["convert", *synth]


def conversations(sources: dict[str, Source], run: Run) -> list[list[dict[str, str]]]:
    """Every source formatted as ChatML conversations; records without a usable final answer are dropped, counted."""
    out = []
    for name, src in sources.items():
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


def main(cfg: Config, run: Run) -> None:
    model, tok = load_model(run.input("convert") / "hf")
    if added := add_tokens(model, tok, list(specials.SPECIAL_TOKENS)):
        logger.warning("tokenizer lacked %s: added, embeddings mean-initialised", added)
    data = Dataset.from_dict({"messages": conversations(cfg.sources, run)})
    held_out = (Dataset.from_dict({"messages": conversations({"validation": cfg.validation}, run)})
                if cfg.validation else None)
    out = run.dir / "checkpoints"
    last = resume_point(out, config_digest(cfg))
    args = trl_args(SFTConfig, cfg, out, run, assistant_only_loss=True)
    metrics = MetricsWriter(run.dir / "metrics.jsonl", METRIC_KEYS, rate=True)
    callbacks = [metrics] + ([DevCurve(cfg.dev, run.input("synth"), tok, run.dir)] if cfg.dev else [])
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, eval_dataset=held_out, processing_class=tok,
                         callbacks=callbacks)
    logger.info("sft: %d conversations%s", len(data), f", resuming from {last}" if last else "")
    fit(trainer, tok, run, metrics, last)

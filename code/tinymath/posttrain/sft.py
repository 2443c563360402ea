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
import torch.nn.functional as F
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

METRIC_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "epoch": "epoch",
               "entropy": "entropy", "mean_token_accuracy": "token_accuracy"}


class LabelOnlySFTTrainer(SFTTrainer):
    """`SFTTrainer` whose training loss projects only the positions that carry a label; metrics on logging steps.

    TRL runs every training forward through its fused LM head, which off Triton devices projects every position
    (system prompt, question and padding too) in chunks through a custom autograd function and computes entropy
    and top-1 at each, every step. Here only the hidden states of the assistant positions go through the LM head
    (the same loss), and entropy and token accuracy come from those logits on the steps that are logged. Under
    several processes, with MoE auxiliary losses and in evaluation it defers to TRL (the backbone is called
    directly, outside a DDP wrapper).
    """

    def _logs_this_step(self) -> bool:
        step, every = self.state.global_step + 1, self.args.logging_steps  # the Trainer logs after this step if so
        every = every if every >= 1 else max(1, int(every * self.state.max_steps))
        return step % every == 0 or (self.args.logging_first_step and step == 1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs or not model.training or self.accelerator.num_processes > 1 or self.aux_loss_enabled:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        net = self.accelerator.unwrap_model(model)
        hidden = net.get_decoder()(**{k: v for k, v in inputs.items() if k != "labels"},
                                   use_cache=False).last_hidden_state[:, :-1]
        labels = inputs["labels"][:, 1:]
        mask = labels != -100
        logits, target = net.get_output_embeddings()(hidden[mask]).float(), labels[mask]
        count = mask.sum() if num_items_in_batch is None else num_items_in_batch
        loss = F.cross_entropy(logits, target, reduction="sum") / torch.as_tensor(count).clamp(min=1)
        if self._logs_this_step():
            self._log_token_metrics(logits.detach(), target)
        attention = inputs.get("attention_mask")
        self._total_train_tokens += int(attention.sum()) if attention is not None else inputs["position_ids"].size(1)
        self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
        return loss

    def _log_token_metrics(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        with torch.no_grad():
            logp, valid = torch.log_softmax(logits, dim=-1), max(target.numel(), 1)
            self._metrics["train"]["entropy"].append(float(-(logp.exp() * logp).sum()) / valid)
            self._metrics["train"]["mean_token_accuracy"].append(float((logp.argmax(-1) == target).sum()) / valid)


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
    trainer = LabelOnlySFTTrainer(model=model, args=args, train_dataset=data, eval_dataset=held_out,
                                  processing_class=tok, callbacks=callbacks)
    logger.info("sft: %d conversations%s", len(data), f", resuming from {last}" if last else "")
    fit(trainer, tok, run, metrics, last)

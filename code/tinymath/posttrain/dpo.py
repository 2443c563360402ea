"""Stage `dpo`: direct preference optimisation (TRL DPOTrainer) of the SFT model on pairs of its own answers.

    tinymath dpo --profile cpu       # synthetic GSM8K train prompts, CPU
    tinymath dpo --profile paper     # openai/gsm8k (main) train prompts, GPU

The pairs are on-policy. The SFT model samples `pairs.samples` completions per train prompt (seeded), the
evaluation's own checker (`tinymath.eval.scoring.chat_score`) scores each, and a prompt with both a correct and an
incorrect completion yields up to `pairs.per_prompt` pairs (chosen = correct, rejected = incorrect, distinct texts
in sampling order). A prompt whose samples are all correct or all wrong yields none; both kinds are counted.
DPO then trains the SFT model against itself as the frozen reference, the loss on the completion tokens only.

Outputs, besides those of every trainer stage (`tinymath.posttrain.common`):
- `pairs.jsonl`, one line per pair in TRL's conversational preference format:
  {"prompt": [system, user turns], "chosen": [assistant turn], "rejected": [assistant turn],
   "answer": gold, "index": the prompt's row in the prompt source};
- `pairs_stats.json`: {"prompts", "samples_per_prompt", "sample_accuracy", "pairs", "prompts_paired",
  "all_correct", "all_wrong", "reference_paired" (all-wrong prompts paired with their reference solution, only
  with `pairs.reference_when_all_wrong`)}.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import torch
from datasets import Dataset
from pydantic import Field, field_validator
from trl import DPOConfig, DPOTrainer

from tinymath.answer import gsm_gold
from tinymath.config import Section, config_digest
from tinymath.errors import UserError
from tinymath.eval.scoring import chat_score
from tinymath.io import read_jsonl, write_jsonl
from tinymath.log import logger
from tinymath.posttrain import chat
from tinymath.posttrain.common import (
    MetricsWriter,
    PolicyConfig,
    Source,
    fit,
    load_policy,
    load_records,
    needs_policy,
    resume_point,
    trl_args,
)
from tinymath.posttrain.dev_curve import DevCurve, generate
from tinymath.runner import Run

METRIC_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "epoch": "epoch",
               "rewards/accuracies": "reward_accuracy", "rewards/margins": "reward_margin",
               "rewards/chosen": "reward_chosen", "rewards/rejected": "reward_rejected"}
PAIRS_FILE, STATS_FILE = "pairs.jsonl", "pairs_stats.json"
PAIR_FIELDS = ("prompt", "chosen", "rejected", "answer", "index")


class PairsConfig(Section):
    """How the preference pairs are sampled from the SFT model."""

    samples: int = Field(8, ge=2)  # completions per prompt
    per_prompt: int = Field(1, ge=1)  # pairs kept per prompt, at most
    temperature: float = Field(1.0, gt=0)
    max_new_tokens: int = Field(128, gt=0)
    batch_size: int = Field(16, gt=0)  # prompts per generate call
    # Off-policy fallback for a model that is never right (the smoke profile's): a prompt whose samples are all
    # wrong pairs the record's own reference solution, in the answer form, with its first wrong sample.
    reference_when_all_wrong: bool = False


class Config(PolicyConfig):
    TRL_CONFIG = DPOConfig
    # prompts: GSM8K-format train problems
    pairs: PairsConfig = PairsConfig()

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: Source) -> Source:
        if v.format != "gsm8k":
            raise ValueError("prompt format gsm8k")
        return v


def needs(cfg: Config) -> list[str]:
    return needs_policy(cfg)


def make_pairs(completions: list[str], verdicts: list[bool], per_prompt: int) -> list[tuple[str, str]]:
    """(chosen, rejected) pairs of one prompt: its distinct correct and distinct incorrect completions zipped in
    sampling order, at most `per_prompt`; none when every completion is correct or every one wrong."""
    right = list(dict.fromkeys(c for c, ok in zip(completions, verdicts, strict=True) if ok))
    wrong = list(dict.fromkeys(c for c, ok in zip(completions, verdicts, strict=True) if not ok))
    return list(zip(right, wrong))[:per_prompt]


def sample_pairs(cfg: Config, model: Any, tok: Any, records: list[dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pair rows and their statistics, from `cfg.pairs.samples` seeded samples per prompt."""
    p = cfg.pairs
    torch.manual_seed(cfg.seed)
    texts = generate(model, tok, [r["question"] for r in records], p.max_new_tokens, p.batch_size,
                     samples=p.samples, temperature=p.temperature)
    rows, counts, correct = [], {"prompts_paired": 0, "all_correct": 0, "all_wrong": 0, "reference_paired": 0}, 0
    for index, rec in enumerate(records):
        gold, group = gsm_gold(rec["answer"]), texts[index * p.samples:(index + 1) * p.samples]
        verdicts = [bool(chat_score(t, gold, "gsm")) for t in group]
        correct += sum(verdicts)
        pairs = make_pairs(group, verdicts, p.per_prompt)
        counts["prompts_paired" if pairs else "all_correct" if all(verdicts) else "all_wrong"] += 1
        if not any(verdicts) and p.reference_when_all_wrong:
            pairs = [(chat.from_gsm8k(rec)[-1]["content"], group[0])]
            counts["reference_paired"] += 1
        rows += [{"prompt": chat.prompt(rec["question"]), "chosen": [{"role": "assistant", "content": c}],
                  "rejected": [{"role": "assistant", "content": r}], "answer": gold, "index": index}
                 for c, r in pairs]
    stats = {"prompts": len(records), "samples_per_prompt": p.samples,
             "sample_accuracy": round(correct / max(len(texts), 1), 4), "pairs": len(rows), **counts}
    return rows, stats


def pairs_dataset(cfg: Config, run: Run, model: Any, tok: Any) -> Dataset:
    """The preference pairs, sampled once per work directory: a resumed run reads the file it wrote before."""
    path = run.dir / PAIRS_FILE
    if not path.is_file():
        rows, stats = sample_pairs(cfg, model, tok, load_records(cfg.prompts, run))
        if not rows:
            raise UserError(f"{run.config_path}: no prompt yielded a pair ({stats['all_correct']} all correct, "
                             f"{stats['all_wrong']} all wrong of {stats['prompts']}): sample more per prompt")
        (run.dir / STATS_FILE).write_text(json.dumps(stats, indent=1) + "\n")
        write_jsonl(path.with_suffix(".partial"), rows)
        path.with_suffix(".partial").replace(path)  # last, and atomic: its presence marks the sampling as done
    stats = json.loads((run.dir / STATS_FILE).read_text())
    logger.info("dpo pairs: %d from %d prompts (%d all correct, %d all wrong; sample accuracy %.3f)",
                stats["pairs"], stats["prompts"], stats["all_correct"], stats["all_wrong"], stats["sample_accuracy"])
    rows = read_jsonl(path, PAIR_FIELDS)
    return Dataset.from_dict({k: [r[k] for r in rows] for k in ("prompt", "chosen", "rejected")})


def frozen_copy(model: Any) -> Any:
    """The reference policy: the SFT weights as loaded, never updated (TRL would otherwise reload them itself)."""
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def main(cfg: Config, run: Run) -> None:
    model, tok = load_policy(run.input("sft") / "model")
    data = pairs_dataset(cfg, run, model, tok)
    out = run.dir / "checkpoints"
    last = resume_point(out, config_digest(cfg))
    args = trl_args(DPOConfig, cfg, out, run)
    metrics = MetricsWriter(run.dir / "metrics.jsonl", METRIC_KEYS)
    callbacks = [metrics] + ([DevCurve(cfg.dev, run.input("synth"), tok, run.dir)] if cfg.dev else [])
    trainer = DPOTrainer(model=model, ref_model=frozen_copy(model), args=args, train_dataset=data,
                         processing_class=tok, callbacks=callbacks)
    logger.info("dpo: %d pairs%s", len(data), f", resuming from {last}" if last else "")
    fit(trainer, tok, run, metrics, last)

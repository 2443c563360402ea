"""Stage `grpo`: GRPO with verifiable rewards (TRL GRPOTrainer) on the SFT model, prompts from GSM8K train.

    tinymath grpo --profile cpu      # synthetic GSM8K train prompts, CPU
    tinymath grpo --profile paper    # openai/gsm8k (main) train prompts, GPU

Each prompt is the system + user turns the SFT model was trained on; TRL samples `num_generations` completions,
stopping at <|im_end|>, and scores them with the reward functions the config names (`tinymath.posttrain.rewards`:
correctness by the evaluation's answer rule, true written arithmetic, strict answer format, repetition penalty),
weighted by the config's `trainer.reward_weights`. Writes `model/` and `metrics.jsonl` like `sft`.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from pydantic import Field, field_validator
from trl import GRPOConfig, GRPOTrainer

from tinymath.answer import gsm_gold
from tinymath.config import config_digest
from tinymath.log import logger
from tinymath.posttrain import chat, rewards
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
from tinymath.posttrain.dev_curve import DevCurve
from tinymath.runner import Run

METRIC_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "reward": "reward_mean",
               "reward_std": "reward_std", "kl": "kl", "completions/mean_length": "completion_length",
               "frac_reward_zero_std": "frac_zero_std"}
# Per record format: the question field, the gold answer, and the answer kind of `answer.is_correct`.
QUESTION = {"gsm8k": "question", "math": "problem"}
GOLD = {"gsm8k": lambda rec: gsm_gold(rec["answer"]), "math": lambda rec: rec["answer"]}
KIND = {"gsm8k": "gsm", "math": "math"}


class Config(PolicyConfig):
    TRL_CONFIG = GRPOConfig
    # prompts: GSM8K train (gsm8k format) or a MATH-format set
    rewards: list[str] = Field(min_length=1)  # names from tinymath.posttrain.rewards.REWARDS, in reward_weights order

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: Source) -> Source:
        if v.format not in GOLD:
            raise ValueError(f"prompt format one of {sorted(GOLD)}")
        return v

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, v: list[str]) -> list[str]:
        unknown = [r for r in v if r not in rewards.REWARDS]
        if unknown:
            raise ValueError(f"reward names from {sorted(rewards.REWARDS)}")
        return v


def needs(cfg: Config) -> list[str]:
    return needs_policy(cfg)


def prompt_dataset(cfg: Config, run: Run) -> Dataset:
    """`prompt` (system + user messages), `answer` (gold) and `kind` columns; TRL passes the last two to rewards."""
    records = load_records(cfg.prompts, run)
    fmt = cfg.prompts.format
    return Dataset.from_dict({"prompt": [chat.prompt(r[QUESTION[fmt]]) for r in records],
                              "answer": [GOLD[fmt](r) for r in records], "kind": [KIND[fmt]] * len(records)})


def reward_means(logs: dict[str, Any]) -> dict[str, Any]:
    """`{"rewards": {name: mean}}` from TRL's `rewards/<name>/mean` log entries."""
    means = {k.split("/")[1]: v for k, v in logs.items() if k.startswith("rewards/") and k.endswith("/mean")}
    return {"rewards": means} if means else {}


def main(cfg: Config, run: Run) -> None:
    model, tok = load_policy(run.input("sft") / "model")  # TRL stops sampling at any stop token
    data = prompt_dataset(cfg, run)
    out = run.dir / "checkpoints"
    last = resume_point(out, config_digest(cfg))
    args = trl_args(GRPOConfig, cfg, out, run)
    metrics = MetricsWriter(run.dir / "metrics.jsonl", METRIC_KEYS, extra=reward_means)
    reward_funcs = [rewards.with_special_tokens(rewards.REWARDS[r], tok) for r in cfg.rewards]
    callbacks = [metrics] + ([DevCurve(cfg.dev, run.input("synth"), tok, run.dir)] if cfg.dev else [])
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args,
                          train_dataset=data, processing_class=tok, callbacks=callbacks)
    logger.info("grpo: %d prompts, rewards %s%s", len(data), cfg.rewards, f", resuming from {last}" if last else "")
    fit(trainer, tok, run, metrics, last)

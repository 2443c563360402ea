"""SFT step speed: the sft stage's trainer against TRL's SFTTrainer and a minimal PyTorch loop, side by side.

    python benchmarks/sft_step.py                      # the cpu profile's model and synthetic GSM conversations
    python benchmarks/sft_step.py --batch 32 --steps 30 --rounds 3 --runs runs

All three train the same model from the same start on the same batches (TRL's tokenisation, assistant-only labels,
the cpu config's length grouping) with the same optimizer (AdamW, clipping, cosine schedule). The minimal loop is
what a hand-written training script does: the model's forward with labels, backward, clip, step. Rounds alternate
the variants so that machine noise hits all of them alike; each reports tokens/s (non-padding tokens) of its best
round, and the ratio to the minimal loop (target: the stage's trainer at 0.85 or more).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, get_scheduler
from trl import SFTConfig, SFTTrainer

from tinymath import paths
from tinymath.io import read_jsonl
from tinymath.posttrain import chat
from tinymath.posttrain.sft import LabelOnlySFTTrainer


class StepClock(TrainerCallback):
    def __init__(self):
        self.marks: list[float] = []

    def on_step_end(self, args, state, control, **_):
        self.marks.append(time.perf_counter())


def config(a: argparse.Namespace) -> SFTConfig:
    return SFTConfig(output_dir="/tmp/tinymath-sft-bench", seed=0, data_seed=0, report_to="none", use_cpu=True,
                     bf16=False, assistant_only_loss=True, learning_rate=1e-3, lr_scheduler_type="cosine",
                     warmup_steps=0.03, max_grad_norm=1.0, max_steps=a.steps, per_device_train_batch_size=a.batch,
                     packing=False, train_sampling_strategy="group_by_length", max_length=512, logging_steps=10,
                     save_strategy="no", dataloader_num_workers=0, disable_tqdm=True)


def tokens(batch: dict) -> int:
    return int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel())


def trainer_round(cls: type, model_dir: Path, data: Dataset, tok, a) -> tuple[float, int]:
    clock = StepClock()
    trainer = cls(model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), args=config(a),
                  train_dataset=data, processing_class=tok, callbacks=[clock])
    counted = sum(tokens(b) for i, b in enumerate(trainer.get_train_dataloader()) if a.skip <= i < a.steps)
    trainer.train()
    return clock.marks[-1] - clock.marks[a.skip - 1], counted


def plain_round(model_dir: Path, data: Dataset, tok, a) -> tuple[float, int]:
    """The minimal loop on the dataloader TRL builds (same batches, same collation)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    loader = SFTTrainer(model=model, args=config(a), train_dataset=data, processing_class=tok).get_train_dataloader()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    sched = get_scheduler("cosine", opt, num_warmup_steps=1, num_training_steps=a.steps)
    marks, counted = [], 0
    for i, batch in enumerate(loader):
        if i >= a.steps:
            break
        model(**batch, use_cache=False).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        counted += tokens(batch) if i >= a.skip else 0
        marks.append(time.perf_counter())
    return marks[-1] - marks[a.skip - 1], counted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=paths.runs_root(), help="runs root holding the cpu profile")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=3, help="first steps not timed (warm-up)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    root = a.runs / a.profile
    model_dir = root / "convert" / "hf"
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = read_jsonl(root / "synth" / "gsm" / "train.jsonl")[:a.batch * a.steps * 4]
    data = Dataset.from_dict({"messages": [chat.from_gsm8k(r) for r in rows]})
    variants = {"stage trainer": lambda: trainer_round(LabelOnlySFTTrainer, model_dir, data, tok, a),
                "TRL SFTTrainer": lambda: trainer_round(SFTTrainer, model_dir, data, tok, a),
                "minimal loop": lambda: plain_round(model_dir, data, tok, a)}
    best: dict[str, float] = {}
    for r in range(a.rounds):
        for name, run in variants.items():
            seconds, counted = run()
            best[name] = max(best.get(name, 0.0), counted / seconds)
            print(f"round {r + 1} {name}: {counted / seconds:,.0f} tokens/s", flush=True)
    print(f"\nbatch {a.batch}, {a.steps - a.skip} timed steps, {torch.get_num_threads()} threads, best of {a.rounds}")
    for name, rate in best.items():
        print(f"{name:15s} {rate:9,.0f} tokens/s   {rate / best['minimal loop']:.2f}x the minimal loop")


if __name__ == "__main__":
    main()

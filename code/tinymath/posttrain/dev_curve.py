"""Learning curves: greedy accuracy on a fixed dev subset at evenly spaced steps of a trainer stage.

The dev subset is the first `rows` problems of the synthetic GSM validation split: the same distribution as the
training problems, and disjoint from them and from the test split by the synth stage's hash split. At each of
`points` steps (the last one included) the model answers every dev problem greedily through the chat template and
`tinymath.eval.scoring.chat_score` scores it, as the chat evaluation does. One `dev_curve.jsonl` line per point:
{"step", "wall_s" (since training began), "accuracy", "n"}.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from transformers import TrainerCallback

from tinymath import specials
from tinymath.answer import gsm_gold
from tinymath.config import Section
from tinymath.eval.scoring import chat_score
from tinymath.io import MetricsLog, read_jsonl
from tinymath.posttrain.chat import prompt

FILE = "dev_curve.jsonl"


class DevConfig(Section):
    path: str = "gsm/validation.jsonl"  # below runs/<profile>/synth/, GSM8K format
    rows: int = Field(default=100, gt=0)
    points: int = Field(default=6, ge=2)  # measurements over training, the last step included
    max_new_tokens: int = Field(default=128, gt=0)
    batch_size: int = Field(default=64, gt=0)


def checkpoints(max_steps: int, points: int) -> list[int]:
    """`points` steps spread evenly over training, ending at the last step."""
    return sorted({round(max_steps * (i + 1) / points) for i in range(points)} - {0})


class DevCurve(TrainerCallback):
    """Measures dev accuracy at `checkpoints(max_steps, points)` and appends it to `dev_curve.jsonl`."""

    def __init__(self, cfg: DevConfig, synth_dir: Path, tokenizer: Any, out: Path):
        rows = read_jsonl(synth_dir / cfg.path, ("question", "answer"))[:cfg.rows]
        self.cfg, self.tok, self.log = cfg, tokenizer, MetricsLog(out / FILE)
        self.questions = [r["question"] for r in rows]
        self.golds = [gsm_gold(r["answer"]) for r in rows]
        self.steps: set[int] = set()
        self.t0 = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.steps = set(checkpoints(state.max_steps, self.cfg.points))
        self.t0 = time.perf_counter()
        self.log.keep_until(state.global_step)  # a resumed run measures the later points again

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> None:
        if state.global_step in self.steps and state.is_world_process_zero:
            wall = time.perf_counter() - self.t0
            verdicts = [chat_score(text, gold, "gsm") for text, gold in zip(self.answers(model), self.golds)]
            self.log.append({"step": state.global_step, "wall_s": round(wall, 1),
                             "accuracy": sum(verdicts) / len(verdicts), "n": len(verdicts)})

    def answers(self, model: Any) -> list[str]:
        """Greedy completions of every dev problem, decoded with the reasoning delimiters kept."""
        return generate(model, self.tok, self.questions, self.cfg.max_new_tokens, self.cfg.batch_size)


@torch.no_grad()
def generate(model: Any, tok: Any, questions: list[str], max_new_tokens: int, batch_size: int, samples: int = 1,
             temperature: float = 0.0) -> list[str]:
    """`samples` completions per question through the chat template (greedy at temperature 0), in question order,
    decoded with <think> and </think> kept and the stop and padding tokens dropped. Sampling draws from torch's
    global generator: seed it for a reproducible draw."""
    was_training, side = model.training, tok.padding_side
    model.eval()
    tok.padding_side = "left"  # generation appends to the right end of every row
    sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0} if temperature > 0 else \
        {"do_sample": False}
    drop = set(specials.STOP_IDS) | {specials.PAD_ID}
    out = []
    try:
        for i in range(0, len(questions), batch_size):
            chats = [tok.apply_chat_template(prompt(q), tokenize=False, add_generation_prompt=True)
                     for q in questions[i:i + batch_size]]
            batch = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            rows = model.generate(**batch, max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                  eos_token_id=list(specials.STOP_IDS), pad_token_id=specials.PAD_ID, use_cache=True,
                                  **sampling)
            start = batch["input_ids"].shape[1]
            out += [tok.decode([t for t in row[start:].tolist() if t not in drop]) for row in rows]
    finally:
        tok.padding_side = side
        model.train(was_training)
    return out

"""Upstream run directories for the data stage's tests: a tokenizer and a synth corpus with planted duplicates and
contamination, and the cpu prepare config sized down for them."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tinymath import manifest, paths, prepare as stage
from tinymath.config import load_config
from tinymath.runner import Run

FAMILIES = ("worked_examples", "edu_english", "math_prose", "math_tables")
SYNTH_GSM_TEST = "Mia packs 17 boxes with 23 crayons each and gives away 41 crayons to her cousins. How many are left?"
SYNTH_MATH_TEST = "What is the remainder when $7^{2024}$ is divided by $13$?"


def vocabulary(seed: int, n: int = 600) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(n)]


def distinct_texts(n: int, seed: int = 0) -> list[str]:
    """Random-word documents of 40-120 words: pairwise far below the near-duplicate threshold."""
    rng, words = random.Random(seed), vocabulary(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + "." for _ in range(n)]


def edited(text: str, seed: int) -> str:
    """A light edit (one word replaced), as a repost would be."""
    words = text.split()
    words[random.Random(seed).randrange(len(words))] = "changed"
    return " ".join(words)


def first_gsm8k_test_question(shared_data: Path) -> str:
    with (shared_data / "gsm8k" / "test.jsonl").open() as f:
        return json.loads(f.readline())["question"]


def make_runs(root: Path, gsm_question: str | None) -> None:
    """Upstream outputs for the data stage: a tokenizer, a synth corpus with planted duplicates and contamination."""
    texts = distinct_texts(482)  # the last two carry the planted contamination
    docs = [{"id": f"doc{i}", "source": FAMILIES[i % 4], "text": t} for i, t in enumerate(texts[:480])]
    docs += [{"id": f"dup{i}", "source": FAMILIES[i % 4], "text": edited(texts[i], i)} for i in range(0, 40, 2)]
    docs.append({"id": "contaminated-synth", "source": "edu_english",
                 "text": texts[480] + " Practice: " + SYNTH_GSM_TEST + " Show your work."})
    if gsm_question is not None:
        docs.append({"id": "contaminated-gsm8k", "source": "worked_examples",
                     "text": "Worked example. " + gsm_question.lower() + " " + texts[481]})
    synth = root / "synth"
    for sub in ("corpus", "gsm", "math"):
        (synth / sub).mkdir(parents=True)
    (synth / "corpus" / "documents.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (synth / "gsm" / "test.jsonl").write_text(json.dumps({"question": SYNTH_GSM_TEST, "answer": "#### 350"}) + "\n")
    (synth / "math" / "test.jsonl").write_text(json.dumps({"problem": SYNTH_MATH_TEST, "solution": "$\\boxed{9}$"})
                                               + "\n")
    from tinymath.tokenizer import train_tokenizer

    train_tokenizer(texts[:200], vocab_size=400).save_pretrained(root / "tokenizer" / "tokenizer")
    for upstream in ("synth", "tokenizer"):
        manifest.write_json_atomic(root / upstream / manifest.MANIFEST, {"outputs": {}})


def cpu_config(**prepare) -> stage.Config:
    """configs/prepare/cpu.yaml (its shares and filters), sized down for the test corpus."""
    cfg = load_config(paths.CONFIGS / "prepare" / "cpu.yaml", stage.Config)
    return stage.Config.model_validate(cfg.model_dump() | {"seq_len": 64, "validation_fraction": 0.1,
                                                           "rows_per_shard": 16} | prepare)


def run_prepare(root: Path, cfg: stage.Config) -> Path:
    run = Run(stage="prepare", profile="test", dir=root / "prepare", root=root, config_path=root / "cpu.yaml")
    run.dir.mkdir(parents=True, exist_ok=True)
    stage.main(cfg, run)
    return run.dir

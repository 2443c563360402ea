"""Tiny Hugging Face models and upstream run directories for the post-training and chat tests (seconds on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tinymath import specials
from tinymath.manifest import write_json_atomic

MATH = {"problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?", "solution": "We get $\\boxed{\\frac{3}{4}}$.",
        "answer": "\\frac{3}{4}", "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"}


def tiny_model(tok) -> LlamaForCausalLM:
    """A random 2-layer LlamaForCausalLM over `tok`'s vocabulary, seeded."""
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=None, eos_token_id=specials.EOS_ID,
                      pad_token_id=specials.PAD_ID)
    return LlamaForCausalLM(cfg)


def gsm_records(n: int) -> list[dict[str, str]]:
    """`n` one-step GSM8K-format problems with calculator annotations (golds 5, 7, 9, ...)."""
    out = []
    for i in range(n):
        a, b = 2 + i % 7, 3 + i % 5
        out.append({"question": f"Tom has {a} apples and buys {b} more. How many apples does he have now?",
                    "answer": f"Tom has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}"})
    return out


def finish(run_dir: Path) -> None:
    """Mark a hand-made stage directory done (a manifest without sizes: its files are not verified)."""
    write_json_atomic(run_dir / "manifest.json", {"outputs": {p.name: "x" for p in run_dir.iterdir()}})


def make_upstream(root: Path, tok, model_stage: str = "convert", model_dir: str = "hf") -> None:
    """Fake upstream run dirs under `root` (= runs/<profile>): a tiny model and tiny synthetic GSM/MATH splits."""
    model_path = root / model_stage / model_dir
    tiny_model(tok).save_pretrained(model_path)
    tok.save_pretrained(model_path)
    finish(root / model_stage)
    for name, rows in (("gsm", gsm_records(40)), ("math", [MATH] * 8)):
        (root / "synth" / name).mkdir(parents=True, exist_ok=True)
        for split in ("train", "validation"):
            (root / "synth" / name / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    finish(root / "synth")


def write_tiny_model(out: Path, tokenizer, chat_template: bool = True) -> Path:
    """A random 2-layer LlamaForCausalLM saved with the project's tokenizer, ending turns with <|im_end|> as the
    chat models do; `chat_template=False` drops the template."""
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, bos_token_id=None, eos_token_id=specials.IM_END_ID,
                      pad_token_id=specials.PAD_ID, initializer_range=0.5)  # wide: varied, not constant, text
    LlamaForCausalLM(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    if not chat_template:
        (out / "chat_template.jinja").unlink()
    return out

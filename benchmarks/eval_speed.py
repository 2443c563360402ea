"""Evaluation throughput: real GSM8K test problems per minute through `tinymath eval` for a cpu-profile-sized model.

    python benchmarks/eval_speed.py                          # full GSM8K test (1319), batch 32, 128 new tokens
    python benchmarks/eval_speed.py --limit 256 --batch-size 64 --suite paper

The model is a random LlamaForCausalLM of the cpu profile's shape (`ModelConfig.small`, 256-token context) with a
tokenizer trained here on GSM8K train questions. Untrained, it never emits a stop token, so every problem generates
the full `--max-gen-toks`: the worst case of the real run. Target: the full test in <= 5 min on 2 cores
(>= 264 problems/minute) in the chat suite (zero-shot, the SFT/GRPO path).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET_PER_MIN = 1319 / 5


def build_model(out: Path, questions: list[str]) -> Path:
    """A random cpu-profile-shaped Llama with the project's tokenizer, saved as an HF directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tinymath import specials
    from tinymath.model import ModelConfig
    from tinymath.tokenizer import train_tokenizer

    shape = ModelConfig.small()
    tok = train_tokenizer(questions, vocab_size=shape.vocab_size)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
                      num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
                      num_key_value_heads=shape.num_kv_heads, head_dim=shape.head_dim,
                      max_position_embeddings=shape.max_seq_len, tie_word_embeddings=True, bos_token_id=None,
                      eos_token_id=specials.IM_END_ID, pad_token_id=specials.PAD_ID)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=1319)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-gen-toks", type=int, default=128)
    parser.add_argument("--suite", choices=["chat", "paper"], default="chat", help="chat: zero-shot; paper: 8-shot")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the cpu profile uses 1)")
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()

    from tinymath import manifest, paths, runner
    from tinymath.config import validate
    from tinymath.eval import Config, main as evaluate

    data_dir = paths.resolve(args.data_dir)
    train = [json.loads(x)["question"] for x in (data_dir / "gsm8k" / "train.jsonl").read_text().splitlines()]
    model = "sft" if args.suite == "chat" else "base"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        stage, sub = {"sft": ("sft", "model"), "base": ("convert", "hf")}[model]
        build_model(root / stage / sub, train)
        manifest.write_json_atomic(root / stage / manifest.MANIFEST, {"outputs": {}})
        cfg = validate(Config, {
            "batch_size": args.batch_size, "threads": args.threads, "max_gen_toks": args.max_gen_toks,
            "limit": args.limit,
            "data_dir": str(data_dir), "suites": {args.suite: {
                "models": [model], "chat": args.suite == "chat",
                "tasks": {"gsm8k": {"num_fewshot": 0 if args.suite == "chat" else 8}}}}}, "benchmark")
        run = runner.Run("eval", "bench", root / "eval", root, Path("benchmark"))
        t0 = time.perf_counter()
        evaluate(cfg, run)
        wall = time.perf_counter() - t0
        n = json.loads((run.dir / f"eval_{model}.json").read_text())["tasks"]
        n = next(iter(n.values()))["n"]
    rate = n / wall * 60
    print(json.dumps({"suite": args.suite, "problems": n, "batch_size": args.batch_size,
                      "max_gen_toks": args.max_gen_toks, "threads": args.threads, "wall_s": round(wall, 1),
                      "problems_per_min": round(rate, 1), "target_per_min": round(TARGET_PER_MIN, 1),
                      "meets_target": rate >= TARGET_PER_MIN}))


if __name__ == "__main__":
    main()

"""Throughput of the data stage's hot path on real text: tokenise + pack (the whole pipeline: data_scale.py).

    RAYON_NUM_THREADS=1 python benchmarks/data_pipeline.py            # per-core numbers (target: >= 1M tokens/s)
    python benchmarks/data_pipeline.py --vocab 32000 --repeat 3

The text is the GSM8K and MATH training sets in ../shared/data (real English and LaTeX math, about 15 MB); the
tokenizer is the project's digit-split BPE trained on a sample of it. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from tinymath import paths
from tinymath.prepare import pack
from tinymath.tokenizer import train_tokenizer

SOURCES = (("../shared/data/gsm8k/train.jsonl", ("question", "answer")),
           ("../shared/data/math/train.jsonl", ("problem", "solution")))


def load_texts() -> list[str]:
    texts = []
    for rel, fields in SOURCES:
        path = paths.resolve(rel)
        if not path.is_file():
            raise SystemExit(f"{path}: not found (see ../shared/data/README.md)")
        with path.open() as f:
            texts += ["\n".join(json.loads(line)[k] for k in fields) for line in f]
    return texts


def best_of(repeat: int, fn) -> tuple[float, float, object]:
    """Fastest wall time and fastest CPU time (all threads) of `repeat` calls, and the last result.

    CPU time is the per-core cost even when other processes share the cores, which makes wall time noisy.
    """
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count()))
    texts = load_texts()
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    tok = train_tokenizer(texts[::10], args.vocab).backend_tokenizer
    print(f"corpus: {len(texts)} documents, {megabytes:.1f} MB; tokenizer vocab {tok.get_vocab_size()}; "
          f"{threads} thread(s)")

    w_enc, c_enc, ids = best_of(args.repeat, lambda: pack.encode(tok, texts, 1024))
    tokens = sum(map(len, ids))
    w_pack, c_pack, rows = best_of(args.repeat, lambda: pack.pack(ids, args.seq_len))
    for name, wall, cpu in (("tokenise", w_enc, c_enc), ("pack", w_pack, c_pack),
                            ("tokenise+pack", w_enc + w_pack, c_enc + c_pack)):
        print(f"{name}: {tokens / wall / 1e6:.2f} M tokens/s wall ({wall:.2f} s), {tokens / cpu / 1e6:.2f} M tokens/s "
              f"per core-second of CPU, {megabytes / cpu:.1f} MB/s per core")
    print(f"rows: {rows['tokens'].shape[0]} x {args.seq_len + 1}")


if __name__ == "__main__":
    main()

"""Bounded memory of the data stage, measured: the offline pipeline on the synth corpus at 1x, 4x and 16x, one run.

    python benchmarks/data_scale.py                        # base 5,000 documents: 1x, 4x, 16x
    python benchmarks/data_scale.py --base 2000 --scales 1 4 --runs /tmp/data-scale

Each size gets its own runs root: `tinymath synth` on the smoke config with `corpus.documents` = scale x base, the
tokenizer of the 1x corpus (copied, so every size tokenises alike), then `tinymath prepare` on the smoke config in a
fresh child process, whose peak RSS (ru_maxrss of that process) is read after it exits. `tasks` grows with the corpus
(tasks = scale), as a larger corpus runs on more tasks of the same size; `workers: 1`, so every task runs inside the
measured process, one after the other. `row_documents: false`: index.json then lists no document ids (a list that
grows with the corpus by design). Prints, per size: documents, tokens, stage wall time, tokens/s for the stage and for
its tokenize and pack steps, and peak RSS; then the 16x / 1x (largest / smallest) RSS ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def tinymath(*args: str, measure: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tinymath", *args]
    if measure:
        cmd = [sys.executable, "-c", MEASURE, *cmd]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"tinymath {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def make_inputs(root: Path, documents: int, tokenizer_from: Path | None) -> None:
    tinymath("synth", "--profile", "smoke", "--runs", str(root), "--set", f"corpus.documents={documents}")
    if tokenizer_from is None:
        tinymath("tokenizer", "--profile", "smoke", "--runs", str(root))
    else:
        shutil.copytree(tokenizer_from, root / "smoke" / "tokenizer")


def measure(root: Path, tasks: int) -> dict:
    t0 = time.perf_counter()
    result = tinymath("prepare", "--profile", "smoke", "--runs", str(root), "--set", f"tasks={tasks}",
                      "--set", "workers=1", "--set", "row_documents=false", measure=True)
    wall = time.perf_counter() - t0
    stats = json.loads((root / "smoke" / "prepare" / "stats.json").read_text())
    steps = {m[0]: float(m[1]) for m in re.findall(r"data: step (\w+) done in ([\d.]+) s", result.stderr)}
    rss = int(re.search(r"MAXRSS_KB (\d+)", result.stderr).group(1)) / 1024
    return {"documents": sum(stats["documents"].values()), "tokens": sum(stats["tokens"].values()), "wall": wall,
            "steps": steps, "rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=int, default=5000, help="synth corpus documents at 1x")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--runs", type=Path, default=Path("/tmp/tinymath-data-scale"))
    args = ap.parse_args()
    shutil.rmtree(args.runs, ignore_errors=True)
    results, tokenizer = {}, None
    for scale in sorted(args.scales):
        root = args.runs / f"x{scale}"
        make_inputs(root, scale * args.base, tokenizer)
        tokenizer = tokenizer or root / "smoke" / "tokenizer"
        r = results[scale] = measure(root, tasks=scale)
        tok_pack = r["steps"]["tokenize"] + r["steps"]["pack"]
        print(f"{scale:>3}x: {r['documents']:>8,} documents read, {r['tokens']:>11,} tokens packed, "
              f"stage {r['wall']:6.1f} s = {r['tokens'] / r['wall'] / 1e6:.3f} M tokens/s, tokenize+pack steps "
              f"{tok_pack:6.1f} s = {r['tokens'] / tok_pack / 1e6:.3f} M tokens/s, peak RSS {r['rss_mb']:7.1f} MB",
              flush=True)
    lo, hi = min(results), max(results)
    print(f"peak RSS {hi}x / {lo}x: {results[hi]['rss_mb'] / results[lo]['rss_mb']:.3f} "
          f"(corpus {results[hi]['documents'] / results[lo]['documents']:.1f}x)")


if __name__ == "__main__":
    main()

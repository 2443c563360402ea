"""Throughput of the offline generators (target: >= 100,000 GSM problems per minute on one core).

    python benchmarks/synth_speed.py                  # the cpu profile's sizes
    python benchmarks/synth_speed.py --scale 0.2 --repeat 3

Times, in one process, the whole GSM split generation (drawing, verifying every answer, dedup, hash split,
hold-out), the MATH generation and the corpus, each with the sizes of `configs/synth/<profile>.yaml` times `--scale`.
Prints one line per generator: items, best wall time of `--repeat` runs, items per minute.
"""

from __future__ import annotations

import argparse
import time

from tinymath import paths, synth as synthetic
from tinymath.config import load_config
from tinymath.synth import competition, gsm
from tinymath.synth.corpus import Corpus


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count by this")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    cfg = load_config(paths.CONFIGS / "synth" / f"{args.profile}.yaml", synthetic.Config)

    def scaled(section, *fields):
        return section.model_copy(update={f: max(1, int(getattr(section, f) * args.scale)) for f in fields})

    g = scaled(cfg.gsm, "train", "validation", "test", "novel_test")
    m = scaled(cfg.math, "train", "validation", "test")
    synth = cfg.model_copy(update={"gsm": g, "math": m, "corpus": scaled(cfg.corpus, "documents")})
    held = gsm.splitter_of(g, cfg.seed).held
    runs = {
        "gsm problems": (g.train + g.validation + g.test, lambda: gsm.generate(g, cfg.seed)),
        "math problems": (m.train + m.validation + m.test, lambda: competition.generate(m, cfg.seed, held)),
        "corpus documents": (synth.corpus.documents, lambda: Corpus(synth, cfg.seed).generate()),
    }
    for name, (count, fn) in runs.items():
        wall = best_of(args.repeat, fn)
        print(f"{name:17s} {count:8d} in {wall:6.2f} s = {count / wall * 60:10,.0f} per minute")


if __name__ == "__main__":
    main()

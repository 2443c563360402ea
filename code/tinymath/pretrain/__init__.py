"""Stage `pretrain`: the Llama decoder trained from scratch in JAX on the packed corpus.

    tinymath pretrain --profile cpu                               # resumes from runs/cpu/pretrain/checkpoints
    tinymath pretrain --config configs/pretrain/paper.yaml --dry-run  # compile for the v4-32 mesh, print memory/time
    tinymath pretrain --profile cpu --print-batch 10               # the documents of step 10's batch

Reads `runs/<profile>/prepare/packed` and the tokenizer; writes `checkpoints/` (Orbax), `metrics.jsonl` and
`final/params.safetensors` + `final/model_config.json`.
"""

from __future__ import annotations

from tinymath.pretrain.config import Config
from tinymath.pretrain.dryrun import dry_run
from tinymath.pretrain.loader import print_batch
from tinymath.pretrain.train import train as main

__all__ = ["Config", "dry_run", "main", "needs", "print_batch"]


def needs(cfg: Config) -> list[str]:
    return ["prepare", "tokenizer"]

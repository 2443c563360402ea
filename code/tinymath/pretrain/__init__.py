"""Stage `pretrain`: the Llama decoder trained from scratch in JAX on the packed corpus.

    tinymath pretrain --profile cpu                               # resumes from runs/cpu/pretrain/checkpoints
    tinymath pretrain --config configs/pretrain/paper.yaml --dry-run  # compile for the v4-32 mesh, print memory/time
    tinymath data batch --profile cpu --step 10                   # the documents of step 10's batch

Reads `runs/<profile>/data/packed` and the tokenizer; writes `checkpoints/` (Orbax), `metrics.jsonl` and
`final/params.safetensors` + `final/model_config.json`.
"""

from __future__ import annotations

from pathlib import Path

from tinymath.pretrain.config import Config

__all__ = ["Config", "dry_run", "main", "needs", "print_batch"]


def needs(cfg: Config) -> list[str]:
    return ["data", "tokenizer"]


def main(cfg: Config, run) -> None:
    from tinymath.pretrain.train import train

    train(cfg, run)


def dry_run(cfg: Config) -> dict:
    """Compile the train step abstractly for the config's mesh; print and return memory, FLOPs and predicted days."""
    from tinymath.pretrain.dryrun import dry_run as run_dry

    return run_dry(cfg)


def print_batch(cfg: Config, root: Path, step: int) -> list[str]:
    from tinymath.pretrain.loader import print_batch as show

    return show(cfg, root, step)

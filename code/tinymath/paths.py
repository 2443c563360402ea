"""Where things live, relative to the project root (never a machine-specific absolute path)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
RESULTS = REPO / "results"
FIGURES = REPO / "figures"
PAPER = REPO / "paper"


def runs_root() -> Path:
    """Root of all run directories: `runs/` in the project, or $TINYMATH_RUNS."""
    return Path(os.environ.get("TINYMATH_RUNS", REPO / "runs"))


def resolve(path: str | Path) -> Path:
    """A path from a config: absolute as given, else relative to the project root."""
    path = Path(path)
    return path if path.is_absolute() else REPO / path

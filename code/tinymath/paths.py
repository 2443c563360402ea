"""Where things live, relative to the project root (never a machine-specific absolute path)."""

from __future__ import annotations

import os
from pathlib import Path

from tinymath.errors import UserError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
RESULTS = REPO / "results"
FIGURES = REPO / "figures"
PAPER = REPO / "paper"


def runs_root() -> Path:
    """Root of all run directories: `runs/` in the project, or $TINYMATH_RUNS."""
    value = os.environ.get("TINYMATH_RUNS")
    if value is None:
        return REPO / "runs"
    if not value.strip():  # Path("") is the working directory: runs would land wherever the command was started
        raise UserError("environment variable TINYMATH_RUNS: expected a directory path, got an empty string")
    return Path(value)


def resolve(path: str | Path) -> Path:
    """A path from a config: absolute as given, else relative to the project root."""
    path = Path(path)
    return path if path.is_absolute() else REPO / path

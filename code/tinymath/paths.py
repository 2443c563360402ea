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


def portable(path: str | Path) -> str:
    """`path` as a record may show it on any machine: relative to the project root, or `$TINYMATH_RUNS/...` under a
    runs root set elsewhere; as given when it is under neither."""
    full = Path(path).resolve()
    if full.is_relative_to(REPO):
        return full.relative_to(REPO).as_posix()
    runs = os.environ.get("TINYMATH_RUNS", "").strip()
    if runs and full.is_relative_to(Path(runs).resolve()):
        return f"$TINYMATH_RUNS/{full.relative_to(Path(runs).resolve()).as_posix()}"
    return str(path)


def resolve(path: str | Path) -> Path:
    """A path from a config: absolute as given, else relative to the project root."""
    path = Path(path)
    return path if path.is_absolute() else REPO / path

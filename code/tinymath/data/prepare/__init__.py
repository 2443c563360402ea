"""Stage `data`: clean, near-dedup, mix, decontaminate, tokenise and pack the pretraining corpus.

    tinymath data prepare --profile cpu

The stage attributes (`Config`, `main`, `needs`, `external_inputs`) are loaded lazily from `stage.py`, because
`tinymath.data.config` imports `tinymath.data.prepare.config`, which imports this package first: an eager import
of the stage here would be circular.
"""

from __future__ import annotations

import importlib
from typing import Any

_STAGE_ATTRS = ("Config", "main", "needs", "external_inputs")


def __getattr__(name: str) -> Any:
    if name in _STAGE_ATTRS:
        return getattr(importlib.import_module("tinymath.data.prepare.stage"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

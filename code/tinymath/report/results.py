"""The results schema: every file in `results/<profile>/` is one JSON envelope, loaded through one validating reader.

    {"schema_version": 1, "kind": "eval", "name": "eval_sft", "profile": "cpu",
     "provenance": {"git", "versions", "host", "config_sha256", "manifests": {stage: {"path", "sha256"}},
                    "command", "wall_time_s"},
     "data": {...}}

Reported numbers (`kind: "reported"`, from outside this artifact) carry `provenance: {"source", "url"}` instead and
are never mixed with reproduced ones. A malformed file is a `UserError` naming the file and the field, so a figure
or a paper number can never silently come from a half-valid result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinymath import manifest
from tinymath.errors import UserError

SCHEMA_VERSION = 1
# Required keys of `data`, per kind: what figures, paper numbers and the comparison rely on.
DATA_KEYS = {
    "data_stats": ("documents", "filters", "dedup", "decontamination", "mix", "tokens", "rows"),
    "pretrain_curve": ("train", "validation", "summary"),
    "sft_curve": ("train", "summary"),
    "grpo_curve": ("train", "summary"),
    "dpo_curve": ("train", "pairs", "summary"),
    "eval": ("model", "tasks"),
    "model_eval": ("model", "source", "tasks", "skipped"),  # `tinymath eval --model`: any HF model, as stages are
    "dry_run": ("n_params", "flops_per_token", "per_device_bytes", "roofline", "model"),
    "configs": ("profile", "paper"),
    "parity": (),
    "reported": ("models", "benchmarks"),
    "variance": ("seeds", "start", "metrics"),
    "paired": ("bootstrap", "comparisons"),
    "timings": ("stages", "total_s"),
    "verdict": ("counts", "metrics"),
}
REPRODUCED_PROVENANCE = ("git", "versions", "host", "config_sha256", "manifests", "command")
REPORTED_PROVENANCE = ("source", "url")


def envelope(kind: str, name: str, profile: str, provenance: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Wrap `data` in the schema; validated immediately so a writer cannot produce what a reader would reject."""
    doc = {"schema_version": SCHEMA_VERSION, "kind": kind, "name": name, "profile": profile,
           "provenance": provenance, "data": data}
    validate(doc, f"<{name}>")
    return doc


def write(directory: Path, doc: dict[str, Any]) -> Path:
    path = Path(directory) / f"{doc['name']}.json"
    manifest.write_json_atomic(path, doc)
    return path


def validate(doc: Any, source: str) -> dict[str, Any]:
    """Check the envelope and the kind's required data keys; raise a one-line UserError on the first problem."""
    if not isinstance(doc, dict):
        raise UserError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    for key in ("schema_version", "kind", "name", "profile", "provenance", "data"):
        if key not in doc:
            raise UserError(f"{source}: missing field {key!r}")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise UserError(f"{source}: field 'schema_version': expected {SCHEMA_VERSION}, got {doc['schema_version']!r}")
    for key in ("name", "profile"):
        if not isinstance(doc[key], str):
            raise UserError(f"{source}: field {key!r}: expected a string, got {type(doc[key]).__name__}")
    kind = doc["kind"]
    if kind not in DATA_KEYS:
        raise UserError(f"{source}: field 'kind': expected one of {', '.join(DATA_KEYS)}, got {kind!r}")
    _require(doc["provenance"], REPORTED_PROVENANCE if kind == "reported" else REPRODUCED_PROVENANCE,
             source, "provenance")
    _require(doc["data"], DATA_KEYS[kind], source, "data")
    return doc


def _require(obj: Any, keys: tuple[str, ...], source: str, where: str) -> None:
    if not isinstance(obj, dict):
        raise UserError(f"{source}: field {where!r}: expected an object, got {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise UserError(f"{source}: missing field '{where}.{key}'")


def load(path: Path) -> dict[str, Any]:
    """Read and validate one results file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: results file not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON (line {e.lineno}: {e.msg})") from None
    return validate(doc, str(path))


def load_dir(directory: Path) -> dict[str, dict[str, Any]]:
    """Every results file of a directory, keyed by name; an absent directory holds no results."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    return {p.stem: load(p) for p in sorted(directory.glob("*.json"))}

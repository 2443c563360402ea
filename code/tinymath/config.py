"""Typed, validated configuration loaded from YAML.

Every stage declares a pydantic model deriving from `Section`; values live in `configs/<stage>/<profile>.yaml`.
A file may start with `base: other.yaml` (relative to itself) and then only states what differs; mappings are merged
key by key. Command-line overrides use dotted keys, `--set optimizer.lr=1e-4`, values parsed as YAML scalars.
Unknown keys, wrong types and out-of-range values are `UserError`s naming the file, key, expectation and value.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tinymath.errors import UserError

S = TypeVar("S", bound="Section")


class Section(BaseModel):
    """Base of every config block: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Requirements(Section):
    """What a profile needs from the host; checked before the stage starts."""

    accelerator: Literal["none", "tpu", "gpu"] = "none"
    network: bool = False


def read_yaml(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML mapping, resolving `base:` inheritance."""
    path = Path(path)
    if not path.is_file():
        where = f" (the base of {_chain[-1]})" if _chain else ""
        raise UserError(f"{path}: config file not found{where}")
    if path.resolve() in _chain:
        raise UserError(f"{path}: base: inheritance loops back to {path.name} "
                        f"({' -> '.join(p.name for p in (*_chain, path.resolve()))})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise UserError(f"{path}: key 'base': expected a file name, got {base!r}")
    return deep_merge(read_yaml(path.parent / base, (*_chain, path.resolve())), data)


def config_files(path: Path) -> list[Path]:
    """A config file and the files its `base:` chain inherits from: everything `read_yaml(path)` reads."""
    files, path = [], Path(path)
    while path.is_file() and path not in files:
        files.append(path)
        data = yaml.safe_load(path.read_text())
        base = data.get("base") if isinstance(data, dict) else None
        if not isinstance(base, str):
            break
        path = path.parent / base
    return files


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; the value is parsed as YAML (`1e-4`, `true`, `[1, 2]`)."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected key.sub=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"--set {item!r}: {part!r} is not a mapping")
            node = child
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError:
            node[leaf] = raw
    return data


def describe_error(source: str, error: ValidationError) -> str:
    """One line from the first pydantic error: file, dotted key, expectation, actual value."""
    errors = error.errors()
    # An unknown key first: it is usually a misspelling of the key reported missing.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    key = ".".join(str(p) for p in err["loc"]) or "<top>"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key {key!r}"
    if err["type"] == "missing":
        return f"{source}: missing key {key!r}"
    expected = err["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
    if ", got " in expected:  # the validator named the offending value itself
        return f"{source}: key {key!r}: expected {expected}"
    return f"{source}: key {key!r}: expected {expected}, got {err.get('input')!r}"


def validate(schema: type[S], data: dict[str, Any], source: str) -> S:
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_error(source, e)) from None


def load_config(path: Path, schema: type[S], overrides: list[str] = ()) -> S:
    """Load `path` into `schema`, applying `--set` overrides."""
    data = apply_overrides(read_yaml(path), list(overrides))
    source = str(path) + (" (with --set)" if overrides else "")
    return validate(schema, data, source)


def config_digest(cfg: BaseModel) -> str:
    """sha256 of the canonical JSON of a resolved config."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def dump_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)

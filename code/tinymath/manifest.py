"""Stage manifests: what a stage read, how it was configured, what it wrote, where and with what.

A stage is done only when `manifest.json` exists in its run directory; it is written last, atomically.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
# Packages whose versions are recorded in every manifest and result.
TRACKED_PACKAGES = (
    "tinymath", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy", "torch", "transformers",
    "trl", "datasets", "tokenizers", "safetensors", "accelerate", "lm-eval", "math-verify", "datatrove",
    "matplotlib", "pydantic",
)
# Files in a run directory that are not artifacts and are not hashed: logs, and what a stage set aside as unusable
# (a top-level `*-quarantine` folder, kept for inspection).
UNHASHED_SUFFIXES = (".log",)
QUARANTINE_SUFFIX = "-quarantine"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every artifact file below `root`, keyed by POSIX relative path, sorted."""
    out = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST or rel.endswith(UNHASHED_SUFFIXES) or rel.split("/")[0].endswith(QUARANTINE_SUFFIX):
            continue
        out[rel] = sha256_file(path)
    return out


def output_record(root: Path) -> dict[str, Any]:
    """The manifest's view of a finished run directory: sha256 of every artifact, and its size and mtime.

    Size and mtime make the up-to-date check cheap: a file whose size differs is damaged, one whose mtime differs is
    hashed again, and only one whose size and mtime both match is trusted without reading it.
    """
    outputs = hash_tree(root)
    stats = {rel: [(root / rel).stat().st_size, (root / rel).stat().st_mtime_ns] for rel in outputs}
    return {"outputs": outputs, "output_stats": stats}


def verify_outputs(root: Path, record: dict[str, Any]) -> str | None:
    """None when every output listed in `record` is still as it was written; else what changed."""
    stats = record.get("output_stats", {})
    for rel, digest in record.get("outputs", {}).items():
        path = Path(root) / rel
        if not path.is_file():
            return f"output {rel} is missing"
        st = path.stat()
        size, mtime = stats.get(rel, (None, None))
        if st.st_size != size:
            return f"output {rel} has {st.st_size} bytes, the manifest recorded {size}"
        if st.st_mtime_ns != mtime and sha256_file(path) != digest:
            return f"output {rel} changed since the manifest was written (sha256 differs)"
    return None


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temp file and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(repo: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        state = {"commit": git("rev-parse", "HEAD"), "dirty": dirty}
        if state["dirty"]:  # which uncommitted changes: the diff itself stays on the machine, its hash travels
            state["diff_sha256"] = hashlib.sha256(git("diff", "HEAD").encode()).hexdigest()
        return state
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": "unknown", "dirty": None}


def host_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        ram_gib = None
    return {
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "accelerator": accelerator(),
    }


def accelerator() -> str:
    """Describe the accelerator without importing a framework (that would be slow and may grab devices)."""
    if Path("/dev/accel0").exists() or os.environ.get("TPU_NAME"):
        return "tpu"
    if Path("/proc/driver/nvidia/gpus").is_dir():
        gpus = list(Path("/proc/driver/nvidia/gpus").iterdir())
        if gpus:
            return f"nvidia-gpu x{len(gpus)}"
    return "none"


def provenance(repo: Path) -> dict[str, Any]:
    """Where and with what something was produced: shared by manifests and result files."""
    return {"git": git_state(repo), "versions": package_versions(), "host": host_info()}

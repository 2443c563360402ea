"""`tinymath eval --model`: any Hugging Face causal LM through a profile's evaluation, beside the stage models.

    tinymath eval --model runs/cpu/sft/model --name my-sft --profile cpu
    tinymath eval --model Qwen/Qwen2.5-0.5B@main --name qwen2.5-0.5b --profile paper

Every suite of configs/eval/<profile>.yaml runs with the settings the stage models get, whichever models the suite
lists; a chat suite runs only when the model's tokenizer has a chat template, and is otherwise logged and listed
under `skipped`. A hub model is fetched as safetensors and tokenizer files only (never pickled weights, never remote
code) and recorded with the commit its revision resolved to.

Writes `runs/<profile>/eval-models/<NAME>/`: `eval_<NAME>.json` (the stage models' schema, plus `source`),
`<suite>_<task>/samples.jsonl`, the generated task YAMLs, `eval.log` and `manifest.json` (config, source,
provenance). The report of the profile collects each as `model_<NAME>.json`.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tinymath import log, manifest, paths, runner
from tinymath.config import config_digest
from tinymath.errors import UserError
from tinymath.eval import Config, run_tasks, task_manager, torch_threads
from tinymath.eval.tasks import TASKS, plan
from tinymath.io import check_model_dir
from tinymath.lock import profile_lock
from tinymath.log import logger

MODELS_DIR = "eval-models"  # below runs/<profile>/
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# What a model directory needs: configs, safetensors weights, tokenizer files and the chat template.
HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "tokenizer.model"]
NO_TEMPLATE = "skipped: the model's tokenizer has no chat template"


@dataclass(frozen=True)
class Source:
    """Where an evaluated model came from."""

    spec: str  # as given to --model
    path: str  # the local directory loaded
    hub_id: str | None
    revision: str | None  # as requested (hub models; "main" when none was given)
    commit: str | None  # the hub commit the revision resolved to

    def record(self) -> dict[str, str | None]:
        """What the results keep: no machine path (a hub model's path is its cache entry)."""
        return {"spec": self.spec, "hub_id": self.hub_id, "revision": self.revision, "commit": self.commit}


def resolve(spec: str) -> Source:
    """A local model directory, or a hub id with optional `@revision` fetched (or found in the cache)."""
    if Path(spec).exists():
        check_model_dir(Path(spec))
        return Source(spec, str(Path(spec).resolve()), None, None, None)
    hub_id, _, revision = spec.partition("@")
    if not HUB_ID_RE.match(hub_id):
        raise UserError(f"--model {spec}: no such directory, and not a hub id (owner/name[@revision])")
    path = fetch(hub_id, revision or "main")
    check_model_dir(path)
    return Source(spec, str(path), hub_id, revision or "main", path.name)


def fetch(hub_id: str, revision: str) -> Path:
    """The hub snapshot's local directory (named by its commit); a one-line UserError naming the id otherwise."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(snapshot_download(hub_id, revision=revision, allow_patterns=HUB_FILES))
    except (OSError, ValueError, HfHubHTTPError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"--model {hub_id}@{revision}: cannot fetch it from the Hugging Face hub ({reason})") from None


def main(cfg: Config, spec: str, name: str, profile: str, runs: Path | None = None) -> Path:
    """Evaluate the model `spec` as `name`; returns its directory below runs/<profile>/eval-models/."""
    if not NAME_RE.match(name):
        raise UserError(f"--name {name!r}: letters, digits, '.', '_' and '-' only (it names files)")
    root = Path(runs or paths.runs_root()) / profile
    if any(TASKS[t].source == "synth" for s in cfg.suites.values() for t in s.tasks) and \
            manifest.read_manifest(root / "synth") is None:
        raise UserError(f"{root / 'synth'}: no manifest.json: run 'tinymath synth --profile {profile}' first "
                        "(the profile's suites read its test sets)")
    with profile_lock(root):  # a profile run may be rewriting the test sets this reads
        return evaluate_into(cfg, spec, name, profile, root)


def evaluate_into(cfg: Config, spec: str, name: str, profile: str, root: Path) -> Path:
    source = resolve(spec)
    final = root / MODELS_DIR / name
    work = final.with_name(f".{name}.work")
    shutil.rmtree(work, ignore_errors=True)
    started = time.perf_counter()
    handler = log.attach_file(work / "eval.log")
    try:
        skipped = evaluate(cfg, source, name, root, work)
    finally:
        log.detach(handler)
    record = {"model": name, "source": source.record(), "path": source.path, "profile": profile,
              "config_sha256": config_digest(cfg),
              "config": cfg.model_dump(mode="json"), "skipped": skipped,
              "command": f"tinymath eval --model {spec} --name {name} --profile {profile}",
              **manifest.output_record(work), **manifest.provenance(paths.REPO),
              "wall_time_s": round(time.perf_counter() - started, 2)}
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    manifest.write_json_atomic(final / manifest.MANIFEST, record)
    logger.info("eval: %s -> %s", name, final / f"eval_{name}.json")
    return final


def evaluate(cfg: Config, source: Source, name: str, root: Path, out: Path) -> dict[str, str]:
    """Every suite on the model (chat suites only with a chat template); writes `eval_<name>.json` into `out`."""
    from tinymath.eval import harness

    planned, skipped = plan(cfg, root / "synth", hub=runner.hub_reachable())
    for task, why in skipped.items():
        logger.warning("eval: %s %s", task, why["reason"])
    lm = harness.load_model(cfg, Path(source.path))
    chat = [p for p in planned if p.chat]
    if chat and harness.chat_template_sha256(lm) is None:
        logger.warning("eval: %s has no chat template: skipping the chat suite (%s)", name,
                       ", ".join(p.name for p in chat))
        skipped |= {p.name: {"suite": p.suite, "reason": NO_TEMPLATE} for p in chat}
        planned = [p for p in planned if not p.chat]
    manager = task_manager(cfg, planned, out / "tasks")
    with torch_threads(cfg.threads):
        tasks = run_tasks(cfg, lm, name, planned, manager, out, root)
    reasons = {k: v["reason"] for k, v in skipped.items()}
    manifest.write_json_atomic(out / f"eval_{name}.json", {
        "model": name, "model_dir": source.hub_id or source.spec, "source": source.record(), "tasks": tasks,
        "skipped": reasons})
    return reasons


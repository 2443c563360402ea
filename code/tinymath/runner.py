"""Running a pipeline stage: validate its config, check its inputs, skip it when up to date, write its manifest.

A stage is one module (the `Stage` protocol) with one config folder, `configs/<stage>/<profile>.yaml`, and one line in
`PIPELINE`; the CLI command is the stage name (`tinymath <stage>`). Its run directory is `runs/<profile>/<stage>/`.

A stage works in `runs/<profile>/.<stage>.work/` and only a finished stage is moved into place with its manifest, so
a run directory never mixes two runs and a failed or interrupted run leaves the previous result untouched. The work
directory survives a failure (checkpoints inside it let the next run resume) as long as the stage's fingerprint
(config and inputs) stays the same; otherwise it is discarded. One lock per profile directory keeps two processes
from running stages into the same folders.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from tinymath import log, manifest, paths
from tinymath.config import Requirements, Section, config_digest, dump_yaml, load_config
from tinymath.errors import UserError
from tinymath.lock import profile_lock

__all__ = ["PIPELINE", "Requirements", "Run", "Stage", "run_profile", "run_stage"]


@runtime_checkable
class Stage(Protocol):
    """What the runner needs of a stage module. Optionally `external_inputs(cfg, root) -> list[Path]`: the files it
    reads outside its upstream stages' run directories (root is runs/<profile>), hashed into its fingerprint."""

    Config: type[Section]

    def needs(self, cfg: Any) -> list[str]:
        """Upstream stages whose run directories the stage reads."""

    def main(self, cfg: Any, run: Run) -> None:
        """Do the work, writing only below `run.dir`."""


@dataclass(frozen=True)
class StageSpec:
    name: str  # run directory, config folder and CLI command
    module: str
    help: str = ""  # the command's line in `tinymath --help`


PIPELINE = (
    StageSpec("synth", "tinymath.synth", "generate the embedded GSM8K/MATH-format data and corpus"),
    StageSpec("tokenizer", "tinymath.tokenizer", "train the digit-split byte-level BPE tokenizer"),
    StageSpec("prepare", "tinymath.prepare",
              "filter, dedup, mix, decontaminate, tokenise and pack the pretraining corpus"),
    StageSpec("pretrain", "tinymath.pretrain", "pretrain the Llama model in JAX"),
    StageSpec("convert", "tinymath.convert", "convert the JAX checkpoint to Hugging Face and prove logit parity"),
    StageSpec("sft", "tinymath.posttrain.sft", "supervised fine-tuning with TRL (ChatML, assistant-only loss)"),
    StageSpec("grpo", "tinymath.posttrain.grpo", "GRPO with verifiable rewards (TRL)"),
    StageSpec("dpo", "tinymath.posttrain.dpo", "DPO on the SFT model's own correct/incorrect answer pairs (TRL)"),
    StageSpec("eval", "tinymath.eval", "evaluate every stage's model with lm-evaluation-harness"),
    StageSpec("report", "tinymath.report", "collect results; regenerate figures and the paper"),
)
STAGES = {s.name: s for s in PIPELINE}


@dataclass(frozen=True)
class Run:
    """What a stage's `main` knows about where it runs."""

    stage: str
    profile: str
    dir: Path  # the work directory: every output goes below it, moved to runs/<profile>/<stage> when done
    root: Path  # runs/<profile>
    config_path: Path
    resolved: dict[str, Any] = field(default_factory=dict)  # settings the stage resolved (recorded in its manifest)

    def input(self, stage: str) -> Path:
        """The run directory of an upstream stage (its manifest was checked before `main` started)."""
        return self.root / stage


def config_path(stage: str, profile: str) -> Path:
    return paths.CONFIGS / stage / f"{profile}.yaml"


def profile_of(path: Path) -> str:
    return Path(path).stem


def profiles() -> list[str]:
    """Every profile with at least one stage config."""
    return sorted({p.stem for s in PIPELINE for p in (paths.CONFIGS / s.name).glob("*.yaml") if p.stem != "base"})


def load_stage(stage: str) -> Stage:
    if stage not in STAGES:
        raise UserError(f"stage {stage!r}: expected one of {', '.join(STAGES)}")
    module = importlib.import_module(STAGES[stage].module)
    if not isinstance(module, Stage):
        raise TypeError(f"{module.__name__} does not define Config, needs and main (the Stage protocol)")
    return module


def external_inputs(module: ModuleType, cfg: Section, root: Path) -> list[Path]:
    return [Path(p) for p in getattr(module, "external_inputs", lambda _cfg, _root: [])(cfg, root)]


def check_requirements(req: Requirements | None, source: Path) -> None:
    if req is None:
        return
    host = manifest.accelerator()
    if req.accelerator == "tpu" and host != "tpu":
        raise UserError(f"{source}: requires.accelerator is 'tpu' but this host has {host!r}: "
                        "run this stage on a TPU VM, or use the cpu profile")
    if req.accelerator == "gpu" and not host.startswith("nvidia"):
        raise UserError(f"{source}: requires.accelerator is 'gpu' but this host has {host!r}: "
                        "run this stage on a CUDA machine, or use the cpu profile")
    if req.network and not hub_reachable():
        raise UserError(f"{source}: requires.network is true but huggingface.co is unreachable "
                        "(or HF_HUB_OFFLINE=1): the paper profile streams hub datasets")


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def fingerprint(cfg: Section, run_root: Path, needs: list[str], external: list[Path]) -> dict[str, Any]:
    """What decides whether a stage is up to date: its config, its upstream outputs, its external files."""
    inputs = {}
    for stage in needs:
        upstream = manifest.read_manifest(run_root / stage)
        inputs[stage] = manifest.sha256_json(upstream["outputs"]) if upstream else None
    ext = {str(p): manifest.sha256_file(p) if p.is_file() else None for p in external}
    return {"config_sha256": config_digest(cfg), "inputs": inputs, "external": ext}


@dataclass(frozen=True)
class Prepared:
    """A stage with its config loaded and its inputs located: everything `run --plan` shows."""

    name: str
    module: Stage
    cfg: Section
    run: Run
    needs: list[str]
    external: list[Path]

    def missing(self) -> list[str]:
        return [n for n in self.needs if manifest.read_manifest(self.run.root / n) is None] + \
               [str(p) for p in self.external if not p.is_file()]

    def wanted(self) -> dict[str, Any]:
        return fingerprint(self.cfg, self.run.root, self.needs, self.external)

    def stale_reason(self) -> str | None:
        """None when the finished run matches this config and inputs and its files are intact; else why not."""
        old = manifest.read_manifest(self.run.root / self.name)
        if old is None:
            return "no manifest"
        changed = [k for k, v in self.wanted().items() if old.get(k) != v]
        if changed:
            return f"{', '.join(changed)} changed"
        return manifest.verify_outputs(self.run.root / self.name, old)


def prepare(stage: str, config: Path, overrides: list[str] = (), runs: Path | None = None) -> Prepared:
    module = load_stage(stage)
    cfg = load_config(config, module.Config, overrides)
    profile = profile_of(config)
    root = Path(runs or paths.runs_root()) / profile
    run = Run(stage=stage, profile=profile, dir=root / f".{stage}.work", root=root, config_path=Path(config))
    return Prepared(stage, module, cfg, run, list(module.needs(cfg)), external_inputs(module, cfg, root))


def run_stage(stage: str, config: Path, overrides: list[str] = (), force: bool = False,
              runs: Path | None = None) -> Path:
    """Run one stage unless it is up to date; return its run directory."""
    p = prepare(stage, config, overrides, runs)
    with profile_lock(p.run.root):
        return _run_prepared(p, force)


def _run_prepared(p: Prepared, force: bool) -> Path:
    for need in p.needs:
        record = manifest.read_manifest(p.run.root / need)
        if record is None:
            raise UserError(f"stage {p.name} needs {need} ({p.run.root / need} has no manifest): "
                            f"run 'tinymath {need} --profile {p.run.profile}' first")
        damage = manifest.verify_outputs(p.run.root / need, record) if "output_stats" in record else None
        if damage is not None:  # (a manifest the runner wrote records its files' sizes; one made by hand does not)
            raise UserError(f"stage {p.name} needs {need}, whose {damage}: "
                            f"rerun 'tinymath {need} --profile {p.run.profile} --force'")
    for path in p.external:
        if not path.is_file():
            raise UserError(f"stage {p.name} needs file {path}: not found")
    reason = "--force" if force else p.stale_reason()
    if reason is None:
        log.logger.info("%s (%s): up to date, skipped (use --force to rerun)", p.name, p.run.profile)
        return p.run.root / p.name
    check_requirements(getattr(p.cfg, "requires", None), p.run.config_path)
    log.logger.info("%s (%s): running (%s)", p.name, p.run.profile, reason)
    return _execute(p, fresh=force)


def _work_dir(p: Prepared, wanted: dict[str, Any], fresh: bool) -> Path:
    """The stage's work directory, kept from an interrupted run of the same fingerprint (to resume), else new."""
    work, stamp = p.run.dir, p.run.dir / ".fingerprint"
    digest = manifest.sha256_json(wanted)
    if work.exists() and (fresh or not stamp.is_file() or stamp.read_text() != digest):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return work


def _execute(p: Prepared, fresh: bool) -> Path:
    run, wanted = p.run, p.wanted()
    work = _work_dir(p, wanted, fresh)
    (work / "config.yaml").write_text(dump_yaml(p.cfg))
    handler = log.attach_file(work / f"{run.stage}.log")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    try:
        p.module.main(p.cfg, run)
    finally:
        log.detach(handler)
    wall = time.perf_counter() - t0
    (work / ".fingerprint").unlink()
    record = {
        "schema_version": manifest.SCHEMA_VERSION,
        "stage": run.stage,
        "profile": run.profile,
        "config_path": paths.portable(run.config_path),
        **wanted,
        "config": p.cfg.model_dump(mode="json"),
        "resolved": run.resolved,
        "seed": getattr(p.cfg, "seed", None),
        **manifest.output_record(work),
        **manifest.provenance(paths.REPO),
        "started_at": started.isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 2),
    }
    final = run.root / run.stage
    _replace(final, work)
    manifest.write_json_atomic(final / manifest.MANIFEST, record)
    log.logger.info("%s (%s): done in %.1f s", run.stage, run.profile, wall)
    return final


def _replace(final: Path, work: Path) -> None:
    """Move the finished work directory into place; the old result is removed only after that succeeded."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    work.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def profile_stages(profile: str, start: str | None = None) -> list[str]:
    """The stages with a config in this profile, in pipeline order, from `start` on."""
    if profile not in profiles():
        raise UserError(f"--profile {profile!r}: expected one of {', '.join(profiles())}")
    names = [s.name for s in PIPELINE]
    if start is not None and start not in names:
        raise UserError(f"--from {start!r}: expected one of {', '.join(names)}")
    chosen = names[names.index(start) if start else 0:]
    return [n for n in chosen if config_path(n, profile).is_file()]


def run_profile(profile: str, start: str | None = None, force: bool = False, runs: Path | None = None) -> None:
    """Run every stage of a profile in pipeline order, optionally starting at `start`."""
    stages = profile_stages(profile, start)
    root = Path(runs or paths.runs_root()) / profile
    with profile_lock(root):
        for name in stages:
            # Loaded only now: a stage's config may depend on what an earlier stage just wrote.
            _run_prepared(prepare(name, config_path(name, profile), runs=runs), force)


def plan(profile: str, runs: Path | None = None) -> list[str]:
    """One line per stage of the profile: its inputs and whether it is up to date, without running anything."""
    lines = []
    for name in profile_stages(profile):
        p = prepare(name, config_path(name, profile), runs=runs)
        inputs = [*p.needs, *(paths.portable(e) for e in p.external)]
        missing = p.missing()
        state = f"waiting for {', '.join(missing)}" if missing else (p.stale_reason() or "up to date")
        lines.append(f"{name:<10} <- {', '.join(inputs) or '(nothing)'}  [{state}]")
    return lines

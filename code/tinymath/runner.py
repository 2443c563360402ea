"""Running a pipeline stage: validate its config, check its inputs, skip it when up to date, write its manifest.

Every stage is a module exposing
    Config                          the pydantic schema of its config file (configs/<config_dir>/<profile>.yaml)
    main(cfg, run) -> None          does the work, writing only below `run.dir`
and optionally
    needs(cfg) -> list[str]         upstream stages whose outputs it reads (default: none)
    external_inputs(cfg) -> list    files outside the runs tree it reads (hashed into the manifest)
    enabled(cfg) -> bool            False when the profile does not use the stage (default: True)
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from tinymath import log, manifest, paths
from tinymath.config import Section, config_digest, dump_yaml, load_config
from tinymath.errors import UserError


@dataclass(frozen=True)
class StageSpec:
    name: str  # run directory name
    module: str  # module implementing the stage
    config_dir: str  # configs/<config_dir>/<profile>.yaml
    command: str  # how the CLI spells it


PIPELINE = (
    StageSpec("synth", "tinymath.data.synthetic", "data", "data synth"),
    StageSpec("tokenizer", "tinymath.tokenizer", "tokenizer", "tokenizer"),
    StageSpec("data", "tinymath.data.prepare", "data", "data prepare"),
    StageSpec("pretrain", "tinymath.pretrain", "pretrain", "pretrain"),
    StageSpec("convert", "tinymath.convert", "convert", "convert"),
    StageSpec("sft", "tinymath.sft", "sft", "sft"),
    StageSpec("grpo", "tinymath.grpo", "grpo", "grpo"),
    StageSpec("eval", "tinymath.evaluate", "eval", "eval"),
    StageSpec("report", "tinymath.report", "report", "report"),
)
STAGES = {s.name: s for s in PIPELINE}


class Requirements(Section):
    """What a profile needs from the host; checked before the stage starts."""

    accelerator: Literal["none", "tpu", "gpu"] = "none"
    network: bool = False


@dataclass(frozen=True)
class Run:
    """What a stage's `main` knows about where it runs."""

    stage: str
    profile: str
    dir: Path  # runs/<profile>/<stage>: every output goes below it
    root: Path  # runs/<profile>
    config_path: Path

    def input(self, stage: str) -> Path:
        """The run directory of an upstream stage (its manifest was checked before `main` started)."""
        return self.root / stage


def config_path(stage: str, profile: str) -> Path:
    return paths.CONFIGS / STAGES[stage].config_dir / f"{profile}.yaml"


def profile_of(path: Path) -> str:
    return Path(path).stem


def load_stage(stage: str) -> ModuleType:
    return importlib.import_module(STAGES[stage].module)


def _needs(module: ModuleType, cfg: Section) -> list[str]:
    return list(module.needs(cfg)) if hasattr(module, "needs") else []


def _external(module: ModuleType, cfg: Section) -> list[Path]:
    return [Path(p) for p in module.external_inputs(cfg)] if hasattr(module, "external_inputs") else []


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


def run_stage(stage: str, config: Path, overrides: list[str] = (), force: bool = False,
              runs: Path | None = None) -> Path | None:
    """Run one stage; return its run directory, or None when the profile does not use it."""
    module = load_stage(stage)
    cfg = load_config(config, module.Config, overrides)
    profile = profile_of(config)
    if hasattr(module, "enabled") and not module.enabled(cfg):
        log.logger.info("%s: not used by profile %s", stage, profile)
        return None
    root = Path(runs or paths.runs_root()) / profile
    run = Run(stage=stage, profile=profile, dir=root / stage, root=root, config_path=Path(config))
    needs = _needs(module, cfg)
    for need in needs:
        if manifest.read_manifest(root / need) is None:
            cmd = f"tinymath {STAGES[need].command} --profile {profile}"
            raise UserError(f"stage {stage} needs {need} ({root / need} has no manifest): run '{cmd}' first")
    external = _external(module, cfg)
    for path in external:
        if not path.is_file():
            raise UserError(f"stage {stage} needs file {path}: not found")
    wanted = fingerprint(cfg, root, needs, external)
    old = manifest.read_manifest(run.dir)
    if old and not force and all(old.get(k) == v for k, v in wanted.items()):
        log.logger.info("%s (%s): up to date, skipped (use --force to rerun)", stage, profile)
        return run.dir
    check_requirements(getattr(cfg, "requires", None), Path(config))
    return _execute(module, cfg, run, wanted, fresh=force)


def _execute(module: ModuleType, cfg: Section, run: Run, wanted: dict[str, Any], fresh: bool) -> Path:
    if fresh and run.dir.exists():
        shutil.rmtree(run.dir)
    run.dir.mkdir(parents=True, exist_ok=True)
    (run.dir / manifest.MANIFEST).unlink(missing_ok=True)  # not done until main returns
    (run.dir / "config.yaml").write_text(dump_yaml(cfg))
    handler = log.attach_file(run.dir / f"{run.stage}.log")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    try:
        log.logger.info("%s (%s): running, outputs in %s", run.stage, run.profile, run.dir)
        module.main(cfg, run)
        wall = time.perf_counter() - t0
        record = {
            "schema_version": manifest.SCHEMA_VERSION,
            "stage": run.stage,
            "profile": run.profile,
            "config_path": _relative(run.config_path),
            **wanted,
            "config": cfg.model_dump(mode="json"),
            "seed": getattr(cfg, "seed", None),
            "outputs": manifest.hash_tree(run.dir),
            **manifest.provenance(paths.REPO),
            "started_at": started.isoformat(timespec="seconds"),
            "wall_time_s": round(wall, 2),
        }
        manifest.write_json_atomic(run.dir / manifest.MANIFEST, record)
        log.logger.info("%s (%s): done in %.1f s", run.stage, run.profile, wall)
    finally:
        log.detach(handler)
    return run.dir


def _relative(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(paths.REPO).as_posix()
    except ValueError:
        return str(path)


def run_profile(profile: str, start: str | None = None, force: bool = False, runs: Path | None = None) -> None:
    """Run every stage of a profile in pipeline order, optionally starting at `start`."""
    names = [s.name for s in PIPELINE]
    if start is not None and start not in names:
        raise UserError(f"--from {start!r}: expected one of {', '.join(names)}")
    for name in names[names.index(start) if start else 0:]:
        path = config_path(name, profile)
        if not path.is_file():
            log.logger.info("%s: no %s, not part of profile %s", name, _relative(path), profile)
            continue
        run_stage(name, path, force=force, runs=runs)

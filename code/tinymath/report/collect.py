"""Collect: reduce every upstream stage's outputs of a profile to compact, schema-checked results files.

Curves are subsampled to at most `curve_points` points (the last point always kept), so `results/<profile>/`
stays small enough to commit while still drawing every figure and feeding every paper number.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from tinymath import log, manifest, paths, runner
from tinymath.config import config_digest, load_config, read_yaml
from tinymath.errors import UserError
from tinymath.io import METRIC_KEYS, read_json, read_jsonl
from tinymath.report import results

# The paper profile's configs that the results carry (and the paper's configuration table shows).
PAPER_CONFIGS = ("prepare", "pretrain", "sft", "grpo", "dpo", "eval")


def subsample(rows: list[dict[str, Any]], max_points: int) -> list[dict[str, Any]]:
    """Evenly spaced rows including first and last: the curve's shape survives, its size is bounded."""
    if len(rows) <= max_points:
        return list(rows)
    idx = np.unique(np.linspace(0, len(rows) - 1, max_points).round().astype(int))
    return [rows[i] for i in idx]


def tail_mean(values: list[float], fraction: float = 0.1) -> float | None:
    """Mean over the last `fraction` of a curve: a final value that no single noisy batch decides."""
    if not values:
        return None
    n = max(1, int(len(values) * fraction))
    return float(statistics.fmean(values[-n:]))


def head_mean(values: list[float], fraction: float = 0.1) -> float | None:
    return tail_mean(values[::-1], fraction)


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def column(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in rows if key in r]


def keep(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in keys if k in r} for r in rows]


def provenance(run: runner.Run, stage: str) -> dict[str, Any]:
    """Where the upstream numbers came from: its manifest's git/versions/host/config, hashed and located."""
    stage_dir = run.input(stage)
    record = manifest.read_manifest(stage_dir)
    if record is None:
        raise UserError(f"{stage_dir}: no manifest.json: run 'tinymath {stage} "
                        f"--profile {run.profile}' first")
    rel = (stage_dir / manifest.MANIFEST).relative_to(run.root.parent).as_posix()
    return {
        "git": record.get("git"), "versions": record.get("versions"), "host": record.get("host"),
        "config_sha256": record.get("config_sha256"),
        "manifests": {stage: {"path": rel, "sha256": manifest.sha256_file(stage_dir / manifest.MANIFEST),
                              "outputs_sha256": manifest.sha256_json(record.get("outputs", {}))}},
        "command": f"tinymath {stage} --profile {run.profile}",
        "wall_time_s": record.get("wall_time_s"),
    }


def dev_curve(stage_dir: Path) -> list[dict[str, Any]]:
    """The stage's dev-subset learning curve (`dev_curve.jsonl`), empty when it measured none."""
    path = stage_dir / "dev_curve.jsonl"
    return read_jsonl(path, ("step", "wall_s", "accuracy", "n")) if path.is_file() else []


def collect_data(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    path = run.input("prepare") / "stats.json"
    if not path.is_file():
        raise UserError(f"{path}: data statistics not found")
    stats = json.loads(path.read_text())
    return [results.envelope("data_stats", "data", run.profile, provenance(run, "prepare"), stats)]


def collect_pretrain(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    directory = run.input("pretrain")
    rows = read_jsonl(directory / "metrics.jsonl")
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_loss" in r]
    model_path = directory / "final" / "model_config.json"
    summary = {
        "steps": train[-1]["step"] if train else 0,
        "tokens": train[-1]["tokens"] if train else 0,
        "first_loss": head_mean(column(train, "loss")),
        "final_loss": tail_mean(column(train, "loss")),
        "final_val_loss": val[-1]["val_loss"] if val else None,
        "min_val_loss": min(column(val, "val_loss")) if val else None,
        "tokens_per_s_median": median(column(train, "tokens_per_s")),
        "mfu_median": median(column(train, "mfu")),
        "model": json.loads(model_path.read_text()) if model_path.is_file() else None,
    }
    data = {"train": keep(subsample(train, max_points), METRIC_KEYS["pretrain"]),
            "validation": keep(subsample(val, max_points), ("step", "tokens", "val_loss")), "summary": summary}
    return [results.envelope("pretrain_curve", "pretrain", run.profile, provenance(run, "pretrain"), data)]


def collect_convert(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    """The JAX -> Hugging Face logit-parity check, kept whole: it is small and it is the conversion's evidence."""
    path = run.input("convert") / "parity.json"
    if not path.is_file():
        raise UserError(f"{path}: conversion parity report not found")
    parity = json.loads(path.read_text())
    return [results.envelope("parity", "parity", run.profile, provenance(run, "convert"), parity)]


def collect_sft(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    train = [r for r in read_jsonl(run.input("sft") / "metrics.jsonl") if "loss" in r]
    held_out = run.input("sft") / "validation.json"
    val = [json.loads(held_out.read_text())] if held_out.is_file() else []
    summary = {
        "steps": train[-1]["step"] if train else 0,
        "epochs": max(column(train, "epoch"), default=0.0),  # trainer progress in epochs (fractional)
        "first_loss": head_mean(column(train, "loss")),
        "final_loss": tail_mean(column(train, "loss")),
        "final_val_loss": val[-1]["val_loss"] if val else None,
        "tokens_per_s_median": median(column(train, "tokens_per_s")),
    }
    data = {"train": keep(subsample(train, max_points), METRIC_KEYS["sft"]),
            "validation": val, "dev_curve": dev_curve(run.input("sft")), "summary": summary}
    return [results.envelope("sft_curve", "sft", run.profile, provenance(run, "sft"), data)]


def collect_grpo(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    train = [r for r in read_jsonl(run.input("grpo") / "metrics.jsonl") if "reward_mean" in r]
    functions = sorted({fn for r in train for fn in r.get("rewards", {})})
    summary = {
        "steps": train[-1]["step"] if train else 0,
        "reward_first": head_mean(column(train, "reward_mean")),
        "reward_final": tail_mean(column(train, "reward_mean")),
        "rewards_final": {fn: tail_mean([r["rewards"][fn] for r in train if fn in r.get("rewards", {})])
                          for fn in functions},
        "kl_final": tail_mean(column(train, "kl")),
        "completion_length_final": tail_mean(column(train, "completion_length")),
    }
    data = {"train": keep(subsample(train, max_points), METRIC_KEYS["grpo"]), "dev_curve": dev_curve(run.input("grpo")),
            "summary": summary}
    return [results.envelope("grpo_curve", "grpo", run.profile, provenance(run, "grpo"), data)]


def collect_dpo(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    """The preference pairs' statistics and the DPO training curve (loss, implicit-reward accuracy and margin)."""
    train = [r for r in read_jsonl(run.input("dpo") / "metrics.jsonl") if "loss" in r]
    pairs = json.loads((run.input("dpo") / "pairs_stats.json").read_text())
    summary = {
        "steps": train[-1]["step"] if train else 0,
        "pairs": pairs["pairs"],
        "first_loss": head_mean(column(train, "loss")),
        "final_loss": tail_mean(column(train, "loss")),
        "reward_accuracy_final": tail_mean(column(train, "reward_accuracy")),
        "reward_margin_final": tail_mean(column(train, "reward_margin")),
    }
    data = {"train": keep(subsample(train, max_points), METRIC_KEYS["dpo"]), "pairs": pairs,
            "dev_curve": dev_curve(run.input("dpo")), "summary": summary}
    return [results.envelope("dpo_curve", "dpo", run.profile, provenance(run, "dpo"), data)]


def collect_eval(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    files = sorted(run.input("eval").glob("eval_*.json"))
    if not files:
        raise UserError(f"{run.input('eval')}: no eval_<model>.json files")
    prov = provenance(run, "eval")
    docs = []
    for path in files:
        evaluation = json.loads(path.read_text())
        data = {"model": evaluation["model"], "tasks": evaluation["tasks"], "skipped": evaluation.get("skipped", {})}
        docs.append(results.envelope("eval", path.stem, run.profile, prov, data))
    return docs


def model_eval_dirs(root: Path) -> list[Path]:
    """The `tinymath eval --model` runs of a profile: runs/<profile>/eval-models/<NAME>/ (not their work dirs)."""
    from tinymath.eval.external import MODELS_DIR

    return sorted(p for p in (root / MODELS_DIR).glob("*") if p.is_dir() and p.name[0] != ".")


def model_eval_files(root: Path) -> list[Path]:
    """What the report reads of each finished model evaluation: its manifest and its results."""
    return [d / name for d in model_eval_dirs(root) if (d / manifest.MANIFEST).is_file()
            for name in (manifest.MANIFEST, f"eval_{d.name}.json")]


def collect_model_evals(run: runner.Run) -> list[dict[str, Any]]:
    """Every `tinymath eval --model` run of the profile (runs/<profile>/eval-models/<NAME>/) as `model_<NAME>`."""
    docs = []
    for directory in model_eval_dirs(run.root):
        record = manifest.read_manifest(directory)
        if record is None:
            raise UserError(f"{directory}: no manifest.json (an interrupted tinymath eval --model: rerun it)")
        evaluation = read_json(directory / f"eval_{directory.name}.json", ("model", "source", "tasks", "skipped"))
        path = directory / manifest.MANIFEST
        found = {"path": path.relative_to(run.root.parent).as_posix(), "sha256": manifest.sha256_file(path),
                 "outputs_sha256": manifest.sha256_json(record["outputs"])}
        prov = {**{k: record[k] for k in ("git", "versions", "host", "config_sha256", "command", "wall_time_s")},
                "manifests": {directory.name: found}}
        data = {key: evaluation[key] for key in ("model", "source", "tasks", "skipped")}
        docs.append(results.envelope("model_eval", f"model_{directory.name}", run.profile, prov, data))
    return docs


def collect_configs(run: runner.Run, stages: list[str]) -> dict[str, Any]:
    """Resolved configs: this profile's (as its stages ran them) and the paper profile's (as configured)."""
    ran = {s: manifest.read_manifest(run.input(s))["config"] for s in stages}
    paper = {}
    for stage in PAPER_CONFIGS:
        path = runner.config_path(stage, "paper")
        if path.is_file():
            paper[stage] = read_yaml(path)
    prov = {**manifest.provenance(paths.REPO), "config_sha256": None, "manifests": {},
            "command": f"tinymath report --profile {run.profile}"}
    return results.envelope("configs", "configs", run.profile, prov, {"profile": ran, "paper": paper})


def collect_dry_run(config: str, profile: str) -> dict[str, Any]:
    """The paper configuration's parameters, FLOPs, per-device memory and predicted days, computed abstractly.

    `tinymath.pretrain.dry_run(cfg)` compiles the train step for the config's mesh on simulated CPU devices; its
    result is stored with the architecture it was computed for, so the paper's model description and memory
    figure follow the config instead of being typed.
    """
    try:
        from tinymath import pretrain
        dry_run = pretrain.dry_run
    except (ImportError, AttributeError) as e:
        raise UserError(f"dry_run: {config} is configured but tinymath.pretrain.dry_run is unavailable ({e}); "
                        "set dry_run: null in configs/report/<profile>.yaml to collect without it") from None
    cfg = load_config(paths.resolve(config), pretrain.Config)
    prov = {**manifest.provenance(paths.REPO), "config_sha256": config_digest(cfg), "manifests": {},
            "command": f"tinymath pretrain --config {config} --dry-run"}
    data = {**dry_run(cfg), "model": cfg.model.nominal().model_dump(mode="json")}
    return results.envelope("dry_run", "dry_run", profile, prov, data)


def collect_nothing(run: runner.Run, max_points: int) -> list[dict[str, Any]]:
    """Stages whose outputs feed no results file of their own (their wall time enters `timings`)."""
    return []


def collect_timings(run: runner.Run, stages: list[str]) -> dict[str, Any]:
    """Wall time of every collected stage, from its manifest, and their sum: what one run of the profile took."""
    seconds = {s: manifest.read_manifest(run.input(s))["wall_time_s"] for s in stages}
    prov = {**manifest.provenance(paths.REPO), "config_sha256": None, "manifests": {},
            "command": f"tinymath run --profile {run.profile}"}
    data = {"stages": seconds, "total_s": round(sum(seconds.values()), 1)}
    return results.envelope("timings", "timings", run.profile, prov, data)


COLLECTORS = {"synth": collect_nothing, "tokenizer": collect_nothing, "prepare": collect_data,
              "pretrain": collect_pretrain, "convert": collect_convert, "sft": collect_sft, "grpo": collect_grpo,
              "dpo": collect_dpo, "eval": collect_eval}


def collect(run: runner.Run, stages: list[str], max_points: int, dry_run: str | None) -> list[Path]:
    """Write every results file of the profile into `run.dir/results`, replacing any from an earlier run."""
    out = run.dir / "results"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        stale.unlink()
    docs = [doc for stage in stages for doc in COLLECTORS[stage](run, max_points)]
    docs += collect_model_evals(run)
    docs.append(collect_configs(run, stages))
    docs.append(collect_timings(run, stages))
    if dry_run is not None:
        docs.append(collect_dry_run(dry_run, run.profile))
    written = [results.write(out, doc) for doc in docs]
    log.logger.info("report: %d results files in %s", len(written), out)
    return written

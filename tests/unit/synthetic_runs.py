"""Small synthetic run directories in the documented formats (docs/pipeline.md), for the report's tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tinymath import manifest, runner
from tinymath.report import collect, results

MODELS = {"base": 0.05, "sft": 0.30, "grpo": 0.38, "dpo": 0.33}  # synthetic GSM-format accuracy per stage
STAGES = ["prepare", "pretrain", "convert", "sft", "grpo", "dpo", "eval"]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def finish(stage_dir: Path, stage: str, config: dict) -> None:
    """A manifest like the runner writes, so `needs` and provenance see a finished stage."""
    record = {"schema_version": 1, "stage": stage, "profile": stage_dir.parent.name, "config_sha256": f"{stage}-cfg",
              "config": config, "outputs": manifest.hash_tree(stage_dir),
              "git": {"commit": "0" * 40, "dirty": False}, "versions": {"tinymath": "1.0.0"},
              "host": {"cpu": "test cpu", "cores": 2, "accelerator": "none"}, "wall_time_s": 12.5}
    manifest.write_json_atomic(stage_dir / "manifest.json", record)


def data_stats() -> dict:
    return {"documents": {"web": 400, "math": 350, "proof": 150, "code": 100},
            "filters": {"length": 12, "language": 3}, "dedup": {"input": 985, "removed": 25, "kept": 960},
            "decontamination": {"gsm8k_test": 4, "math500_test": 1},
            "mix": {"web": {"target": 0.40, "achieved": 0.41, "tokens": 41000},
                    "math": {"target": 0.35, "achieved": 0.34, "tokens": 34000},
                    "proof": {"target": 0.15, "achieved": 0.15, "tokens": 15000},
                    "code": {"target": 0.10, "achieved": 0.10, "tokens": 10000}},
            "tokens": {"train": 100000, "validation": 2000}, "rows": {"train": 390, "validation": 8}}


def pretrain_rows(steps: int) -> list[dict]:
    rows = []
    for s in range(1, steps + 1):
        lr = 3e-4 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps)))
        rows.append({"step": s, "tokens": s * 1024, "loss": 8.0 * math.exp(-s / 80) + 2.0, "lr": lr,
                     "grad_norm": 1.0, "tokens_per_s": 5000.0 + s % 7, "mfu": 0.2})
        if s % 50 == 0:
            rows.append({"step": s, "tokens": s * 1024, "val_loss": 8.0 * math.exp(-s / 80) + 2.1})
    return rows


GSM, MATH = "chat_synth_gsm/accuracy", "chat_synth_math/accuracy"  # eval task keys: <suite>_<task>/<metric>


def cell(n: int, value: float) -> dict:
    half = 1.96 * math.sqrt(value * (1 - value) / n)
    return {"n": n, "value": value, "ci95": [max(0.0, value - half), min(1.0, value + half)]}


def eval_doc(model: str, acc: float) -> dict:
    gsm = {**cell(200, acc), "metric": "accuracy", "stderr": 0.01, "settings": {"suite": "chat"},
           "subsets": {f"level_{k}": cell(50, max(0.0, acc - 0.05 * k)) for k in range(1, 4)}
           | {"novel_arithmetic": cell(40, acc / 2)}}
    math_ = {**cell(100, acc / 3), "metric": "accuracy", "stderr": 0.01, "settings": {"suite": "chat"},
             "subsets": {}}
    return {"model": model, "model_dir": f"runs/x/{model}", "tasks": {GSM: gsm, MATH: math_}}


def build_runs(runs: Path, profile: str = "cpu", steps: int = 400) -> Path:
    """runs/<profile>/{data,pretrain,convert,sft,grpo,dpo,eval} with manifests; returns runs/<profile>."""
    root = runs / profile
    (root / "prepare").mkdir(parents=True, exist_ok=True)
    (root / "prepare" / "stats.json").write_text(json.dumps(data_stats()))
    finish(root / "prepare", "prepare", {"seed": 0})
    write_jsonl(root / "pretrain" / "metrics.jsonl", pretrain_rows(steps))
    finish(root / "pretrain", "pretrain", {"steps": steps})
    (root / "convert").mkdir(parents=True, exist_ok=True)
    (root / "convert" / "parity.json").write_text(json.dumps({"max_abs_diff": 1e-5, "greedy_agreement": 1.0}))
    finish(root / "convert", "convert", {})
    write_jsonl(root / "sft" / "metrics.jsonl",
                [{"step": s, "epoch": s / 30, "loss": 2.0 / (1 + s / 20), "lr": 2e-5, "grad_norm": 1.0,
                  "tokens_per_s": 900.0} for s in range(1, 61)])
    write_jsonl(root / "sft" / "dev_curve.jsonl", [{"step": s, "wall_s": 6.0 * s, "accuracy": s / 200, "n": 100}
                                                   for s in (10, 20, 30, 40, 50, 60)])
    finish(root / "sft", "sft", {"epochs": 2})
    write_jsonl(root / "grpo" / "metrics.jsonl",
                [{"step": s, "loss": 0.0, "lr": 1e-6, "grad_norm": 0.5, "reward_mean": 0.2 + s / 100,
                  "reward_std": 0.3, "rewards": {"correctness": 0.1 + s / 100, "format": 0.8}, "kl": 0.01 * s,
                  "completion_length": 120.0, "frac_zero_std": 0.2} for s in range(1, 31)])
    write_jsonl(root / "grpo" / "dev_curve.jsonl", [{"step": s, "wall_s": 9.0 * s, "accuracy": 0.3 + s / 300,
                                                     "n": 100} for s in (5, 10, 15, 20, 25, 30)])
    finish(root / "grpo", "grpo", {"steps": 30})
    write_jsonl(root / "dpo" / "metrics.jsonl",
                [{"step": s, "epoch": s / 10, "loss": 0.69 - s / 100, "lr": 1e-5, "grad_norm": 1.0,
                  "reward_accuracy": 0.5 + s / 50, "reward_margin": s / 20, "reward_chosen": s / 40,
                  "reward_rejected": -s / 40} for s in range(1, 21)])
    (root / "dpo" / "pairs_stats.json").write_text(json.dumps(
        {"prompts": 64, "samples_per_prompt": 8, "sample_accuracy": 0.3, "pairs": 70, "prompts_paired": 40,
         "all_correct": 4, "all_wrong": 20, "reference_paired": 0}))
    finish(root / "dpo", "dpo", {"steps": 20})
    (root / "eval").mkdir(parents=True, exist_ok=True)
    for model, acc in MODELS.items():
        (root / "eval" / f"eval_{model}.json").write_text(json.dumps(eval_doc(model, acc)))
    finish(root / "eval", "eval", {"tasks": [GSM, MATH]})
    return root


def write_dry_run(results_dir: Path) -> None:
    """A dry-run result in the format `tinymath.pretrain.dry_run` returns, for the paper configuration."""
    model = {"vocab_size": 32000, "padded_vocab_size": 32768, "hidden_size": 2048, "intermediate_size": 5632,
             "num_layers": 22, "num_heads": 16, "num_kv_heads": 4, "head_dim": 128, "max_seq_len": 4096}
    data = {"devices": 16, "n_params": 1_123_117_056, "flops_per_token": 7.6e9, "tokens": 299_999_690_752,
            "per_device_bytes": {"params": 2**28, "optimizer_state": 2**29, "activations": 2**33,
                                 "total": 2**28 + 2**29 + 2**33},
            "hbm_bytes": 32 * 2**30, "fits": True, "model": model,
            "roofline": {"step_s": {"compute": 5.16, "memory": 21.35, "collective": 0.48},
                         "bound_s": {"overlapped": 21.35, "serial": 21.83, "fused": 5.16},
                         "mfu": {"overlapped": 0.191, "serial": 0.187, "fused": 0.79},
                         "days": {"overlapped": 35.4, "serial": 36.15, "fused": 8.5},
                         "device_hours": {"overlapped": 13575.3, "serial": 13882.0, "fused": 3264.0}}}
    prov = {"git": {}, "versions": {}, "host": {}, "config_sha256": "x", "manifests": {},
            "command": "tinymath pretrain --config configs/pretrain/paper.yaml --dry-run"}
    results.write(results_dir, results.envelope("dry_run", "dry_run", "cpu", prov, data))


def collect_synthetic(tmp: Path, profile: str = "cpu", draw: bool = True) -> Path:
    """Run the real report stage on synthetic runs (or only its collection, when figures are not needed)."""
    runs = tmp / "runs"
    build_runs(runs, profile)
    config = tmp / "configs" / f"{profile}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"stages": STAGES, "curve_points": 50, "dry_run": None,
                                  "tolerances": {"loss_rtol": 0.02, "reward_atol": 0.05}}))
    if draw:
        return runner.run_stage("report", config, runs=runs)
    run = runner.Run("report", profile, runs / profile / "report", runs / profile, config)
    collect.collect(run, STAGES, 50, None)
    return run.dir

"""lm-eval's logged samples -> our per-sample records and the task entries of `eval_<model>.json`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tinymath.answer import SYSTEM_PROMPT, extract_boxed
from tinymath.eval import scoring
from tinymath.eval.harness import leaf_tasks, metric_keys
from tinymath.eval.tasks import TASKS, Planned
from tinymath.io import read_jsonl
from tinymath.manifest import sha256_file
from tinymath.paths import REPO
from tinymath.stats import bootstrap_ci


def read_meta(path: Path | None) -> dict[int, dict[str, Any]]:
    """A synth sidecar by problem id (0-based line of test.jsonl); empty when the task has none."""
    if path is None:
        return {}
    return {int(r["id"]): r for r in read_jsonl(path, ("id",))}


def sample_records(result: dict[str, Any], item: Planned, meta: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per problem: prompt, generation, extracted answer(s), gold, verdict per metric, subsets."""
    records = []
    for leaf in leaf_tasks(result, item.harness_name):
        by_doc: dict[int, dict[str, Any]] = {}
        for s in result["samples"][leaf]:
            doc_id = int(s["doc_id"])
            if doc_id not in by_doc:
                by_doc[doc_id] = _record(s, leaf, doc_id, item, meta.get(doc_id))
            rec = by_doc[doc_id]
            rec["extracted"][s["filter"]] = _extracted(s, item)
            rec["correct"].update({f"{m},{s['filter']}": float(s[m]) for m in s["metrics"]})
        records += [by_doc[k] for k in sorted(by_doc)]
    return records


def _record(s: dict[str, Any], leaf: str, doc_id: int, item: Planned, meta: dict[str, Any] | None) -> dict[str, Any]:
    generative = isinstance(s["resps"][0][0], str)
    kind = TASKS[item.task].answer
    return {"task": leaf, "doc_id": doc_id, "prompt": s["arguments"][0][0],
            "generation": s["resps"][0][0] if generative else None,
            "choices": None if generative else [a[1] for a in s["arguments"]],
            "gold": scoring.chat_gold(s["doc"], kind) if item.chat else s["target"],
            "extracted": {}, "correct": {}, "subsets": scoring.subset_keys(s["doc"], meta)}


def _extracted(s: dict[str, Any], item: Planned) -> Any:
    """What was compared with the gold: our checker's answer (chat), lm-eval's filtered answer or argmax choice."""
    if item.chat:
        return extract_boxed(s["resps"][0][0])
    filtered = s["filtered_resps"]
    if isinstance(filtered[0], str):
        return filtered[0]
    return max(range(len(filtered)), key=lambda i: filtered[i][0])


def task_entries(result: dict[str, Any], item: Planned, records: list[dict[str, Any]], settings: dict[str, Any],
                 cfg: Any) -> dict[str, dict[str, Any]]:
    """One entry per lm-eval metric of the task, recomputed from the records and checked against lm-eval."""
    entries = {}
    for key in metric_keys(result, item.harness_name):
        scores = [r["correct"][key] for r in records]
        value = float(result["results"][item.harness_name][key])
        if abs(sum(scores) / len(scores) - value) > 1e-9:
            raise RuntimeError(f"{item.harness_name} {key}: samples average {sum(scores) / len(scores)} "
                               f"but lm-eval reports {value}")
        metric, filt = key.split(",", 1)
        entry = {"n": len(scores), "metric": key, "value": value, "stderr": scoring.stderr(scores),
                 "ci95": bootstrap_ci(scores, cfg.bootstrap_samples, cfg.seed),
                 "subsets": scoring.subsets(scores, [r["subsets"] for r in records], cfg.bootstrap_samples, cfg.seed),
                 "settings": settings, **verdicts(scores)}
        if item.chat:  # the zero-shot chat solutions write their calculations out; few-shot ones may not
            entry["arithmetic"] = scoring.arithmetic([r["generation"] for r in records], scores)
        entries[f"{item.name}/{metric if filt == 'none' else filt}"] = entry
    return entries


def verdicts(scores: list[float]) -> dict[str, str]:
    """`{"correct": "0110..."}`, one character per problem in doc order, when every score is 0 or 1: what paired
    comparisons (stage against stage, fresh run against committed run) need."""
    if any(s not in (0.0, 1.0) for s in scores):
        return {}
    return {"correct": "".join("1" if s else "0" for s in scores)}


def data_record(data: dict[str, str], run_root: Path) -> dict[str, Any]:
    """Which data a task read, without machine paths: runs-relative or project-relative, with sha256."""
    if "hub" in data:
        return data
    return {split: {"path": _portable(Path(p), run_root), "sha256": sha256_file(Path(p))} for split, p in data.items()}


def _portable(path: Path, run_root: Path) -> str:
    if path.is_relative_to(run_root.resolve()):
        return path.relative_to(run_root.resolve()).as_posix()
    return Path(os.path.relpath(path, REPO)).as_posix()


def harness_settings(result: dict[str, Any], item: Planned, cfg: Any, template_sha: str | None,
                     run_root: Path) -> dict[str, Any]:
    """Exactly how the numbers were produced, from lm-eval's own record of the task config."""
    leaf = leaf_tasks(result, item.harness_name)[0]
    task_cfg = result["configs"][leaf]
    return {
        "lm_eval_version": result["lm_eval_version"], "harness_task": item.harness_name, "suite": item.suite,
        "num_fewshot": result["n-shot"][leaf], "limit": item.limit,
        "n_available": sum(result["n-samples"][t]["original"] for t in leaf_tasks(result, item.harness_name)),
        "data": data_record(item.data, run_root),
        "filters": task_cfg.get("filter_list"), "metrics": task_cfg.get("metric_list"),
        "generation_kwargs": task_cfg.get("generation_kwargs"), "doc_to_text": str(task_cfg.get("doc_to_text")),
        "chat_template": item.chat, "system_instruction": SYSTEM_PROMPT if item.chat else None,
        "chat_template_sha256": template_sha, "backend": cfg.backend, "dtype": cfg.dtype,
        "batch_size": cfg.batch_size, "seed": cfg.seed,
        "bootstrap": {"samples": cfg.bootstrap_samples, "seed": cfg.seed},
        "scorer": "tinymath.answer.is_correct" if item.chat else "lm-eval",
    }

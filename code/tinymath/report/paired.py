"""Stage-to-stage differences on the same problems: a paired bootstrap interval and McNemar's exact p per task.

Two models are compared on every task both were evaluated on under the same key (SFT -> GRPO), or on the keys a
comparison names (the base model's few-shot task -> the SFT model's chat task on the same test problems). The
per-problem verdicts come from the eval results (`correct`), so the comparison is paired: a problem either model
solves alone is what the difference is made of.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tinymath import manifest, paths, stats
from tinymath.config import Section
from tinymath.io import EvalGrid, eval_grid
from tinymath.report import results


class Comparison(Section):
    """`after` against `before`: on the tasks they share, or on `tasks` (before's key -> after's key)."""

    before: str
    after: str
    tasks: dict[str, str] = {}


class PairedConfig(Section):
    comparisons: list[Comparison] = []
    bootstrap_samples: int = Field(default=2000, ge=100)
    seed: int = 0


def task_pairs(grid: EvalGrid, c: Comparison) -> dict[str, str]:
    if c.tasks:
        return dict(c.tasks)
    shared = {t for t in grid.tasks() if grid.entry(c.before, t) and grid.entry(c.after, t)}
    return {t: t for t in sorted(shared)}


def compare_models(grid: EvalGrid, c: Comparison, cfg: PairedConfig) -> list[dict[str, Any]]:
    """One paired difference per task pair whose both sides carry per-problem verdicts on the same problems."""
    out = []
    for before_task, after_task in task_pairs(grid, c).items():
        a, b = grid.entry(c.before, before_task), grid.entry(c.after, after_task)
        if not (a and b and a.get("correct") and b.get("correct")) or len(a["correct"]) != len(b["correct"]):
            continue
        diff = stats.paired_difference([int(x) for x in a["correct"]], [int(x) for x in b["correct"]],
                                       cfg.bootstrap_samples, cfg.seed)
        out.append({"before": c.before, "after": c.after, "before_task": before_task, "after_task": after_task,
                    "before_value": a["value"], "after_value": b["value"], **diff})
    return out


def paired_results(res: dict[str, dict[str, Any]], cfg: PairedConfig, profile: str) -> dict[str, Any] | None:
    """The `paired` results document, or None when no comparison has models in these results."""
    grid = eval_grid(res)
    rows = [row for c in cfg.comparisons if {c.before, c.after} <= set(grid.models)
            for row in compare_models(grid, c, cfg)]
    if not rows:
        return None
    prov = {**manifest.provenance(paths.REPO), "config_sha256": None, "manifests": {},
            "command": f"tinymath report --profile {profile}"}
    data = {"bootstrap": {"samples": cfg.bootstrap_samples, "seed": cfg.seed}, "comparisons": rows}
    return results.envelope("paired", "paired", profile, prov, data)

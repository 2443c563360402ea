"""Reproduction verdict: every metric of a fresh run against the committed results, within stated tolerances.

    tinymath compare runs/cpu/report/results results/cpu

Tolerances come from `configs/report/<profile>.yaml`: exact for counts and hashes, relative for losses, absolute
for GRPO rewards, overlapping 95% intervals for accuracies. A metric that cannot be checked here (a task whose data
is absent on this machine, a machine-dependent throughput) is listed as `not checked` with the reason and counts
neither as passed nor as failed. Exit status 0 when every checked metric passes, 1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinymath import runner
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.report import results


@dataclass(frozen=True)
class Metric:
    """One comparable quantity: its rule (count, hash, loss, reward, accuracy, machine) and value."""

    rule: str
    value: Any
    ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class Row:
    name: str
    committed: str
    fresh: str
    tolerance: str
    verdict: str  # "pass", "FAIL" or "not checked: <reason>"


def data_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    d = doc["data"]
    out = {f"data.{group}.{k}": Metric("count", v) for group in ("documents", "filters", "decontamination",
                                                                   "tokens", "rows") for k, v in d[group].items()}
    out |= {f"data.dedup.{k}": Metric("count", v) for k, v in d["dedup"].items()}
    out |= {f"data.mix.{s}.tokens": Metric("count", m["tokens"]) for s, m in d["mix"].items() if "tokens" in m}
    out["data.outputs_sha256"] = Metric("hash", doc["provenance"]["manifests"]["prepare"]["outputs_sha256"])
    return out


def curve_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    """Step counts exactly, final losses relatively, rewards absolutely; throughput depends on the machine."""
    rules = {"steps": "count", "tokens": "count", "final_loss": "loss", "final_val_loss": "loss",
             "reward_final": "reward", "tokens_per_s_median": "machine", "mfu_median": "machine"}
    s = doc["data"]["summary"]
    return {f"{doc['name']}.{k}": Metric(rule, s[k]) for k, rule in rules.items() if s.get(k) is not None}


def eval_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    out = {}
    for task, t in doc["data"]["tasks"].items():
        prefix = f"{doc['name']}.{task}"
        out[prefix] = Metric("accuracy", t["value"], tuple(t["ci95"]))
        out[f"{prefix}.n"] = Metric("count", t["n"])
        out |= {f"{prefix}[{name}]": Metric("accuracy", s["value"], tuple(s["ci95"]))
                for name, s in t.get("subsets", {}).items()}
    return out


def skip_reasons(res: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Why the eval stage did not run a task on this machine ("eval_sft.<task>" -> reason), from its own log."""
    return {f"{doc['name']}.{task}": reason for doc in res.values() if doc["kind"] == "eval"
            for task, reason in doc["data"].get("skipped", {}).items()}


def dry_run_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    d = doc["data"]
    out = {"dry_run.n_params": Metric("count", d["n_params"]),
           "dry_run.flops_per_token": Metric("count", d["flops_per_token"])}
    return out | {f"dry_run.per_device_bytes.{k}": Metric("count", v) for k, v in d["per_device_bytes"].items()}


EXTRACTORS = {"data_stats": data_metrics, "pretrain_curve": curve_metrics, "sft_curve": curve_metrics,
              "grpo_curve": curve_metrics, "eval": eval_metrics, "dry_run": dry_run_metrics}


def metrics(res: dict[str, dict[str, Any]]) -> dict[str, Metric]:
    return {k: m for doc in res.values() if doc["kind"] in EXTRACTORS for k, m in EXTRACTORS[doc["kind"]](doc).items()}


def show(m: Metric | None) -> str:
    if m is None:
        return "-"
    if m.ci95 is not None:
        return f"{m.value:.4f} [{m.ci95[0]:.4f}, {m.ci95[1]:.4f}]"
    return f"{m.value:.6g}" if isinstance(m.value, float) else str(m.value)[:16]


def judge(c: Metric, f: Metric, tol: Any) -> tuple[str, bool | str]:
    """(tolerance text, passed) for one metric, or a reason string when the rule does not compare values."""
    if c.rule in ("count", "hash"):
        return "exact", c.value == f.value
    if c.rule == "loss":
        return f"rel {tol.loss_rtol:g}", abs(f.value - c.value) <= tol.loss_rtol * abs(c.value)
    if c.rule == "reward":
        return f"abs {tol.reward_atol:g}", abs(f.value - c.value) <= tol.reward_atol
    if c.rule == "accuracy":
        return "95% CI overlap", f.ci95[0] <= c.ci95[1] and c.ci95[0] <= f.ci95[1]
    return "-", "machine-dependent (hardware and load)"


def row(name: str, c: Metric | None, f: Metric | None, tol: Any, skipped: dict[str, str]) -> Row:
    if f is None:
        reason = next((r for task, r in skipped.items() if name.startswith(task)), "absent from the fresh results")
        return Row(name, show(c), show(f), "-", f"not checked: {reason}")
    if c is None:
        return Row(name, show(c), show(f), "-", "not checked: not in the committed results")
    tolerance, passed = judge(c, f, tol)
    verdict = f"not checked: {passed}" if isinstance(passed, str) else ("pass" if passed else "FAIL")
    return Row(name, show(c), show(f), tolerance, verdict)


def tolerances(res: dict[str, dict[str, Any]], source: Path) -> Any:
    """The tolerances of the committed results' profile, from configs/report/<profile>.yaml."""
    from tinymath.report import Config

    profiles = {d["profile"] for d in res.values()}
    if len(profiles) != 1:
        raise UserError(f"{source}: expected results of one profile, found {sorted(profiles)}")
    return load_config(runner.config_path("report", profiles.pop()), Config).tolerances


def compare(fresh: Path, committed: Path) -> list[Row]:
    new, old = results.load_dir(fresh), results.load_dir(committed)
    for path, res in ((fresh, new), (committed, old)):
        if not res:
            raise UserError(f"{path}: no results files (*.json)")
    tol = tolerances(old, committed)
    a, b = metrics(old), metrics(new)
    skipped = skip_reasons(new)
    return [row(name, a.get(name), b.get(name), tol, skipped) for name in sorted(a.keys() | b.keys())]


def render(rows: list[Row]) -> str:
    header = Row("metric", "committed", "fresh", "tolerance", "verdict")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("name", "committed", "fresh", "tolerance")]
    lines = ["  ".join([r.name.ljust(widths[0]), r.committed.ljust(widths[1]), r.fresh.ljust(widths[2]),
                        r.tolerance.ljust(widths[3]), r.verdict]) for r in [header, *rows]]
    checked = [r for r in rows if not r.verdict.startswith("not checked")]
    passed = sum(r.verdict == "pass" for r in checked)
    lines.append(f"not checked: {len(rows) - len(checked)} metrics")
    lines.append(f"reproduced: {passed}/{len(checked)} metrics within tolerance")
    return "\n".join(lines)


def main(fresh: Path, committed: Path) -> int:
    rows = compare(Path(fresh), Path(committed))
    print(render(rows))
    return 0 if all(r.verdict == "pass" for r in rows if not r.verdict.startswith("not checked")) else 1

"""Reproduction verdict: every metric of a fresh run against the committed results.

    tinymath compare runs/cpu/report/results results/cpu [--out verdict.json]

Each metric is one of
- identical: bit for bit the committed value (and, for an accuracy, the same verdict on every problem);
- within measured variance: a continuous metric or an accuracy within 3 sigma of the committed value, sigma being
  the seed-to-seed spread in the committed `variance.json` (`tinymath variance`); an accuracy without a measured
  spread is tested instead (McNemar's exact test on the per-problem verdicts, or a test on two proportions), and a
  continuous metric without one (or whose seeds all agreed) falls back to the tolerance of
  `configs/report/<profile>.yaml`;
- outside: anything else, including every count or hash that differs (counts and hashes stay exact);
- not checked: throughput (it depends on the machine and its load) and tasks this machine could not run.
The exit status is 1 when a metric is outside, 2 when an input is malformed, else 0. The verdict is also written as
JSON (`--out`, default: `verdict.json` beside the fresh results directory).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tinymath import manifest, paths, runner, stats
from tinymath.config import describe_error, load_config
from tinymath.errors import UserError
from tinymath.report import results

SIGMAS = 3.0  # a continuous metric is within measured variance when |fresh - committed| <= 3 sigma
ALPHA = 0.01  # an accuracy without a measured spread passes when the test's p-value is at least this
IDENTICAL, WITHIN, OUTSIDE = "identical", "within measured variance", "outside"
CAUSES = {
    "count": "the data, the config or a library changed (counts are exact)",
    "hash": "the data pipeline wrote different bytes (code, config or library versions differ)",
    "loss": "training numerics moved beyond the seed-to-seed spread",
    "reward": "the GRPO policy moved beyond the seed-to-seed spread",
    "accuracy": "the evaluated model differs beyond the seed-to-seed spread (see the losses above it)",
}


@dataclass(frozen=True)
class Metric:
    """One comparable quantity: its rule (count, hash, loss, reward, accuracy, machine) and value."""

    rule: str
    value: Any
    ci95: tuple[float, float] | None = None
    n: int | None = None
    correct: str | None = None  # per-problem verdicts of an accuracy, "0"/"1" in problem order


@dataclass(frozen=True)
class Row:
    name: str
    committed: str
    fresh: str
    tolerance: str
    verdict: str  # identical, within measured variance, outside, or "not checked: <reason>"
    cause: str = ""


# --- metrics of each results kind ------------------------------------------------------------------------------------

def data_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    d = doc["data"]
    out = {f"data.{group}.{k}": Metric("count", v) for group in ("documents", "filters", "decontamination",
                                                                   "tokens", "rows") for k, v in d[group].items()}
    out |= {f"data.dedup.{k}": Metric("count", v) for k, v in d["dedup"].items()}
    out |= {f"data.mix.{s}.tokens": Metric("count", m["tokens"]) for s, m in d["mix"].items() if "tokens" in m}
    out["data.outputs_sha256"] = Metric("hash", doc["provenance"]["manifests"]["prepare"]["outputs_sha256"])
    return out


CURVE_RULES = {"steps": "count", "tokens": "count", "final_loss": "loss", "final_val_loss": "loss",
               "reward_final": "reward", "pairs": "count", "tokens_per_s_median": "machine", "mfu_median": "machine"}


def curve_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    """Step counts exactly; losses and rewards by the measured spread; throughput depends on the machine."""
    s = doc["data"]["summary"]
    return {f"{doc['name']}.{k}": Metric(rule, s[k]) for k, rule in CURVE_RULES.items() if s.get(k) is not None}


def eval_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    out = {}
    for task, t in doc["data"]["tasks"].items():
        prefix = f"{doc['name']}.{task}"
        out[prefix] = Metric("accuracy", t["value"], tuple(t["ci95"]), t["n"], t.get("correct"))
        out[f"{prefix}.n"] = Metric("count", t["n"])
        out |= {f"{prefix}[{name}]": Metric("accuracy", s["value"], tuple(s["ci95"]), s["n"])
                for name, s in t.get("subsets", {}).items()}
    return out


def dry_run_metrics(doc: dict[str, Any]) -> dict[str, Metric]:
    d = doc["data"]
    out = {"dry_run.n_params": Metric("count", d["n_params"]),
           "dry_run.flops_per_token": Metric("count", d["flops_per_token"])}
    return out | {f"dry_run.per_device_bytes.{k}": Metric("count", v) for k, v in d["per_device_bytes"].items()}


EXTRACTORS = {"data_stats": data_metrics, "pretrain_curve": curve_metrics, "sft_curve": curve_metrics,
              "grpo_curve": curve_metrics, "dpo_curve": curve_metrics, "eval": eval_metrics, "dry_run": dry_run_metrics}


def metrics(res: dict[str, dict[str, Any]]) -> dict[str, Metric]:
    """Every comparable metric of a results directory; a malformed document is a one-line UserError."""
    out = {}
    for name, doc in res.items():
        if doc["kind"] not in EXTRACTORS:
            continue
        try:
            found = EXTRACTORS[doc["kind"]](doc)
            for key, m in found.items():
                check_types(key, m)
            out |= found
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{name}.json: malformed {doc['kind']} results ({type(e).__name__}: {e})") from None
    return out


def check_types(key: str, m: Metric) -> None:
    """Values a verdict computes with must be numbers; a string or a list there is a malformed file."""
    numeric = m.rule not in ("hash",)
    if numeric and (isinstance(m.value, bool) or not isinstance(m.value, int | float)):
        raise TypeError(f"{key}: expected a number, got {m.value!r}")
    if m.ci95 is not None and (len(m.ci95) != 2 or not all(isinstance(x, int | float) for x in m.ci95)):
        raise TypeError(f"{key}: ci95 expected [low, high], got {list(m.ci95)!r}")
    if m.correct is not None and not (isinstance(m.correct, str) and len(m.correct) == m.n
                                      and set(m.correct) <= {"0", "1"}):
        raise TypeError(f"{key}: correct expected {m.n} characters 0/1 (one per problem), got {m.correct!r:.40}")


def skip_reasons(res: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Why the eval stage did not run a task on this machine ("eval_sft.<task>" -> reason), from its own log."""
    out = {}
    for doc in res.values():
        skipped = doc["data"].get("skipped", {}) if doc["kind"] == "eval" else {}
        if not isinstance(skipped, dict):
            raise UserError(f"{doc['name']}.json: field 'data.skipped': expected an object (task -> reason), "
                            f"got {type(skipped).__name__}")
        out |= {f"{doc['name']}.{task}": str(reason) for task, reason in skipped.items()}
    return out


# --- judging ----------------------------------------------------------------------------------------------------------

def show(m: Metric | None) -> str:
    if m is None:
        return "-"
    if m.ci95 is not None:
        return f"{m.value:.4f} [{m.ci95[0]:.4f}, {m.ci95[1]:.4f}]"
    return f"{m.value:.6g}" if isinstance(m.value, float) else str(m.value)[:16]


def accuracy_sigma(sigma: float, m: Metric) -> float:
    """The seed spread, floored at the binomial standard error: three seeds can agree by chance."""
    if m.n is None or m.n == 0:
        return sigma
    return max(sigma, math.sqrt(max(m.value * (1 - m.value), 1 / m.n) / m.n))


def judge(c: Metric, f: Metric, sigma: float | None, tol: Any) -> tuple[str, str]:
    """(verdict, tolerance text) for one metric present on both sides."""
    if c.value == f.value and (c.correct is None or f.correct is None or c.correct == f.correct):
        return IDENTICAL, "exact" if c.rule in ("count", "hash") else "-"
    if c.rule in ("count", "hash"):
        return OUTSIDE, "exact"
    if c.rule == "accuracy" and sigma is None:
        return test_proportions(c, f)
    if sigma is None or (sigma == 0 and c.rule != "accuracy"):  # every seed gave the same value: no spread known
        return fallback(c, f, tol)
    if c.rule == "accuracy":
        sigma = accuracy_sigma(sigma, c)
    passed = abs(f.value - c.value) <= SIGMAS * sigma
    return (WITHIN if passed else OUTSIDE), f"{SIGMAS:g} sigma, sigma {sigma:.3g}"


def test_proportions(c: Metric, f: Metric) -> tuple[str, str]:
    if c.correct and f.correct and len(c.correct) == len(f.correct):
        p, test = stats.mcnemar_exact([int(x) for x in c.correct], [int(x) for x in f.correct]), "McNemar"
    else:
        p, test = stats.two_proportion_p(round(c.value * c.n), c.n, round(f.value * f.n), f.n), "two proportions"
    return (WITHIN if p >= ALPHA else OUTSIDE), f"{test} p {p:.3g} (>= {ALPHA:g})"


def fallback(c: Metric, f: Metric, tol: Any) -> tuple[str, str]:
    """No measured spread: the configured tolerance, labelled as such."""
    if c.rule == "loss":
        return (WITHIN if abs(f.value - c.value) <= tol.loss_rtol * abs(c.value) else OUTSIDE), \
            f"rel {tol.loss_rtol:g} (no measured sigma)"
    return (WITHIN if abs(f.value - c.value) <= tol.reward_atol else OUTSIDE), \
        f"abs {tol.reward_atol:g} (no measured sigma)"


def row(name: str, c: Metric | None, f: Metric | None, sigma: float | None, tol: Any, skipped: dict[str, str],
        host_note: str) -> Row:
    if f is None:
        reason = next((r for task, r in skipped.items() if name.startswith(task)), "absent from the fresh results")
        return Row(name, show(c), show(f), "-", f"not checked: {reason}")
    if c is None:
        return Row(name, show(c), show(f), "-", "not checked: not in the committed results")
    if c.rule == "machine":
        return Row(name, show(c), show(f), "-", "not checked: machine-dependent (hardware and load)")
    verdict, tolerance = judge(c, f, sigma, tol)
    cause = CAUSES.get(c.rule, "") + host_note if verdict == OUTSIDE else ""
    return Row(name, show(c), show(f), tolerance, verdict, cause)


# --- inputs -----------------------------------------------------------------------------------------------------------

class VarianceMetric(BaseModel):
    values: list[float]
    mean: float
    std: float


class VarianceData(BaseModel):
    seeds: list[int]
    start: str
    metrics: dict[str, VarianceMetric]


def load_variance(committed: Path) -> dict[str, float]:
    """metric -> seed-to-seed standard deviation, from the committed `variance.json` (empty when there is none)."""
    path = committed / "variance.json"
    if not path.is_file():
        return {}
    doc = results.load(path)
    try:
        data = VarianceData.model_validate(doc["data"])
    except ValidationError as e:
        raise UserError(describe_error(str(path), e)) from None
    return {name: m.std for name, m in data.metrics.items()}


def load_side(path: Path) -> dict[str, dict[str, Any]]:
    res = {k: v for k, v in results.load_dir(path).items() if v["kind"] not in ("variance", "verdict")}
    if not res:
        raise UserError(f"{path}: no results files (*.json)")
    return res


def tolerances(res: dict[str, dict[str, Any]], source: Path) -> Any:
    """The fallback tolerances of the committed results' profile, from configs/report/<profile>.yaml."""
    from tinymath.report import Config

    profiles = {d["profile"] for d in res.values()}
    if len(profiles) != 1:
        raise UserError(f"{source}: expected results of one profile, found {sorted(profiles)}")
    profile = profiles.pop()
    if profile not in runner.profiles():
        raise UserError(f"{source}: field 'profile': expected one of {', '.join(runner.profiles())}, got {profile!r}")
    return load_config(runner.config_path("report", profile), Config).tolerances


def host_note(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    """'; committed on X, fresh on Y' when the two runs' processors differ (bitwise equality is then not expected)."""
    def cpu(res: dict[str, dict[str, Any]]) -> str | None:
        return next((d["provenance"].get("host", {}).get("cpu") for d in res.values() if d["kind"] == "eval"), None)

    a, b = cpu(old), cpu(new)
    return f"; committed on {a}, fresh on {b}" if a and b and a != b else ""


def compare(fresh: Path, committed: Path) -> list[Row]:
    new, old = load_side(fresh), load_side(committed)
    tol, sigma = tolerances(old, committed), load_variance(committed)
    a, b = metrics(old), metrics(new)
    skipped, note = skip_reasons(new), host_note(old, new)
    return [row(name, a.get(name), b.get(name), sigma.get(name), tol, skipped, note)
            for name in sorted(a.keys() | b.keys())]


# --- output -----------------------------------------------------------------------------------------------------------

def counts(rows: list[Row]) -> dict[str, int]:
    kinds = (IDENTICAL, WITHIN, OUTSIDE)
    out = {k: sum(r.verdict == k for r in rows) for k in kinds}
    out["not checked"] = sum(r.verdict not in kinds for r in rows)
    return out


def render(rows: list[Row]) -> str:
    header = Row("metric", "committed", "fresh", "tolerance", "verdict")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("name", "committed", "fresh", "tolerance")]
    lines = ["  ".join([r.name.ljust(widths[0]), r.committed.ljust(widths[1]), r.fresh.ljust(widths[2]),
                        r.tolerance.ljust(widths[3]), r.verdict]) for r in [header, *rows]]
    outside = [r for r in rows if r.verdict == OUTSIDE]
    lines += ["", *(f"outside: {r.name}: {r.committed} -> {r.fresh} ({r.tolerance}); likely cause: {r.cause}"
                    for r in outside)]
    c = counts(rows)
    checked = c[IDENTICAL] + c[WITHIN] + c[OUTSIDE]
    lines.append(f"identical: {c[IDENTICAL]}, within measured variance: {c[WITHIN]}, outside: {c[OUTSIDE]}, "
                 f"not checked: {c['not checked']}")
    lines.append(f"reproduced: {c[IDENTICAL] + c[WITHIN]}/{checked} metrics ({c[IDENTICAL]} bit-identical)")
    return "\n".join(lines)


def main(fresh: Path, committed: Path, out: Path | None = None) -> int:
    fresh, committed = Path(fresh), Path(committed)
    rows = compare(fresh, committed)
    print(render(rows))
    out = Path(out) if out else fresh.parent / "verdict.json"
    profile = next(iter(load_side(committed).values()))["profile"]
    shown = {"fresh": paths.portable(fresh), "committed": paths.portable(committed)}  # no machine's absolute paths
    prov = {**manifest.provenance(paths.REPO), "config_sha256": None, "manifests": {},
            "command": f"tinymath compare {shown['fresh']} {shown['committed']}"}
    data = {**shown, "counts": counts(rows), "sigmas": SIGMAS,
            "alpha": ALPHA, "metrics": [asdict(r) for r in rows]}
    manifest.write_json_atomic(out, results.envelope("verdict", "verdict", profile, prov, data))
    print(f"verdict: {out}")
    return 1 if any(r.verdict == OUTSIDE for r in rows) else 0

"""Figures: one function per figure, each reading only results and returning a matplotlib Figure.

    tinymath report figures --results results/cpu --out figures

Every figure is written as PDF (for the paper) and PNG (for the README) with fixed metadata, so regenerating from the
same results gives identical bytes. A figure whose input result is missing is skipped with the reason logged; the
paper prints the same reason in its place (`skip_reason`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("agg")  # no display, same rendering everywhere
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tinymath import log  # noqa: E402
from tinymath.io import DATASET_NAMES, STAGE_MODELS, task_label  # noqa: E402
from tinymath.report import results as results_io  # noqa: E402

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MODEL_COLOURS = {m: PALETTE[i] for i, m in enumerate(STAGE_MODELS)}
STYLE = {
    "backend": "agg",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.2,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "pdf.fonttype": 42,
    "svg.hashsalt": "tinymath",
    "path.simplify": False,
}
# Fixed metadata: no creation date or version-dependent software string in the bytes.
METADATA = {"pdf": {"CreationDate": None, "Creator": "tinymath", "Producer": "tinymath"},
            "png": {"Software": "tinymath"}}
WIDE = (6.4, 2.6)

Results = dict[str, dict[str, Any]]


def readable(key: str) -> str:
    """A results key as a reader names it: `synth_gsm` -> `Synthetic GSM`, `level_1` -> `level 1`."""
    return DATASET_NAMES.get(key, key.replace("_", " "))


def data(res: Results, name: str) -> dict[str, Any]:
    return res[name]["data"]


def evals(res: Results) -> list[dict[str, Any]]:
    """Eval results in pipeline order of the models (base, sft, grpo, dpo)."""
    order = {m: i for i, m in enumerate(MODEL_COLOURS)}
    docs = [d["data"] for n, d in res.items() if n.startswith("eval_")]
    return sorted(docs, key=lambda d: order.get(d["model"], len(order)))


def pct(value: float) -> float:
    """Accuracies are fractions in results and percentages in figures."""
    return 100.0 * value


def pretrain_loss(res: Results) -> Figure:
    """Training and validation loss against tokens seen, with the learning-rate schedule that produced them."""
    d = data(res, "pretrain")
    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=WIDE)
    ax.plot([r["tokens"] for r in d["train"]], [r["loss"] for r in d["train"]], label="train")
    val = d["validation"]
    ax.plot([r["tokens"] for r in val], [r["val_loss"] for r in val], "o-", ms=3, label="validation")
    ax.set(xlabel="tokens", ylabel="cross-entropy (nats)", title="pretraining loss")
    ax.legend()
    ax_lr.plot([r["tokens"] for r in d["train"] if "lr" in r], [r["lr"] for r in d["train"] if "lr" in r],
               color=PALETTE[3])
    ax_lr.set(xlabel="tokens", ylabel="learning rate", title="schedule")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return fig


def pretrain_throughput(res: Results) -> Figure:
    """Tokens per second and model FLOPs utilisation per step: where pretraining time goes."""
    train = data(res, "pretrain")["train"]
    fig, (ax, ax_mfu) = plt.subplots(1, 2, figsize=WIDE)
    rows = [r for r in train if "tokens_per_s" in r]
    ax.plot([r["step"] for r in rows], [r["tokens_per_s"] for r in rows])
    ax.set(xlabel="step", ylabel="tokens / s", title="throughput")
    ax_mfu.plot([r["step"] for r in train if "mfu" in r], [pct(r["mfu"]) for r in train if "mfu" in r],
                color=PALETTE[2])
    ax_mfu.set(xlabel="step", ylabel="MFU (%)", title="model FLOPs utilisation")
    return fig


def sft_loss(res: Results) -> Figure:
    """SFT loss on assistant tokens against training progress in epochs (steps when epochs are not logged)."""
    train = data(res, "sft")["train"]
    x = "epoch" if all("epoch" in r for r in train) else "step"
    fig, ax = plt.subplots(figsize=(3.4, 2.6))
    ax.plot([r[x] for r in train], [r["loss"] for r in train])
    ax.set(xlabel=x, ylabel="loss (assistant tokens)", title="supervised fine-tuning")
    return fig


def grpo_rewards(res: Results) -> Figure:
    """Mean group reward (with its spread) and each reward function's mean per GRPO step."""
    train = data(res, "grpo")["train"]
    steps = [r["step"] for r in train]
    mean = [r["reward_mean"] for r in train]
    std = [r.get("reward_std", 0.0) for r in train]
    fig, (ax, ax_fn) = plt.subplots(1, 2, figsize=WIDE)
    ax.plot(steps, mean, label="mean")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.25,
                    label="$\\pm$ 1 std")
    ax.set(xlabel="step", ylabel="reward", title="GRPO reward")
    ax.legend()
    for i, fn in enumerate(sorted({fn for r in train for fn in r.get("rewards", {})})):
        rows = [r for r in train if fn in r.get("rewards", {})]
        ax_fn.plot([r["step"] for r in rows], [r["rewards"][fn] for r in rows], color=PALETTE[i % len(PALETTE)],
                   label=fn)
    ax_fn.set(xlabel="step", ylabel="mean reward", title="per reward function")
    ax_fn.legend()
    return fig


def dpo_rewards(res: Results) -> Figure:
    """DPO loss, and how often the implicit reward ranks the chosen answer above the rejected one, per step."""
    train = data(res, "dpo")["train"]
    ranked = [r for r in train if "reward_accuracy" in r]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=WIDE)
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], color=MODEL_COLOURS["dpo"])
    ax_loss.set(xlabel="step", ylabel="loss", title="DPO loss")
    ax_acc.plot([r["step"] for r in ranked], [pct(r["reward_accuracy"]) for r in ranked], color=MODEL_COLOURS["dpo"])
    ax_acc.set(xlabel="step", ylabel="chosen ranked first (%)", title="implicit reward accuracy", ylim=(-2, 102))
    return fig


DEV_CURVE_STAGES = ("sft", "grpo", "dpo")  # the trainer stages that measure a dev-subset learning curve


def learning_curves(res: Results) -> Figure:
    """Greedy dev-subset accuracy during SFT, GRPO and DPO, against the stage's step and its wall time."""
    stages = [s for s in DEV_CURVE_STAGES if s in res and data(res, s).get("dev_curve")]
    fig, axes = plt.subplots(1, len(stages), figsize=WIDE if len(stages) > 1 else (3.4, 2.6), squeeze=False,
                             sharey=True)  # one accuracy scale from 0: a stage's change reads at its true size
    for ax, stage in zip(axes[0], stages):
        curve = data(res, stage)["dev_curve"]
        steps = [r["step"] for r in curve]
        ax.plot(steps, [100 * r["accuracy"] for r in curve], marker="o", ms=3, color=MODEL_COLOURS[stage])
        ax.set(xlabel="step", ylabel=f"dev accuracy (%, n={curve[0]['n']})", title=f"{stage.upper()} learning curve")
        ax.set_ylim(bottom=0)
        # The wall time of each measured point, above it: no interpolation beyond the measurements.
        top = ax.secondary_xaxis("top")
        top.set_xticks(steps, [f"{r['wall_s'] / 60:.1f}" for r in curve], fontsize="x-small")
        top.set_xlabel("wall time (min)")
    return fig


def _bars(ax: Any, groups: list[str], series: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Grouped bars of accuracy with asymmetric 95% interval error bars; series[model][group] = {value, ci95}."""
    width = 0.8 / max(1, len(series))
    for i, (model, cells) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups)) if groups[g] in cells]
        vals = [pct(cells[g]["value"]) for g in groups if g in cells]
        lo = [v - pct(cells[g]["ci95"][0]) for v, g in zip(vals, [g for g in groups if g in cells])]
        hi = [pct(cells[g]["ci95"][1]) - v for v, g in zip(vals, [g for g in groups if g in cells])]
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=2, label=model,
               color=MODEL_COLOURS.get(model, PALETTE[(i + 3) % len(PALETTE)]))
    ax.set_xticks(range(len(groups)), [readable(g) for g in groups], rotation=20, ha="right")
    ax.set_ylim(0, max(5.0, ax.get_ylim()[1]))  # an all-zero panel still shows a 0-5% scale, not +-0.05
    ax.set_ylabel("accuracy (%)")
    ax.legend()


# The one metric drawn per model and test set, first found: the chat suite's accuracy, else lm-eval's lenient
# extraction (GSM8K flexible-extract, MATH math_verify); the eval table has every metric.
HEADLINE_METRICS = ("accuracy", "flexible-extract", "math_verify")


def headline(tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{test set: result} from {"<suite>_<test set>/<metric>": result}, one headline metric per test set."""
    out: dict[str, dict[str, Any]] = {}
    for metric in HEADLINE_METRICS:
        for key, result in sorted(tasks.items()):
            task, task_metric = key.split("/", 1)
            test_set = task.removeprefix(f"{result['settings']['suite']}_")
            if task_metric == metric and test_set not in out:
                out[test_set] = result
    return out


def accuracy_by_stage(res: Results) -> Figure:
    """Each stage's model side by side on every test set (its headline metric), with 95% intervals."""
    series = {d["model"]: headline(d["tasks"]) for d in evals(res)}
    test_sets = sorted({t for cells in series.values() for t in cells})
    fig, ax = plt.subplots(figsize=WIDE)
    _bars(ax, test_sets, series)
    ax.set_title("accuracy per stage (95% intervals; base few-shot, the others zero-shot chat)")
    return fig


def accuracy_by_subset(res: Results) -> Figure:
    """Accuracy by difficulty level and other subsets (e.g. novel arithmetic), one panel per task with subsets."""
    docs = evals(res)
    tasks = sorted({t for d in docs for t, v in d["tasks"].items() if v.get("subsets")})
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        subsets = sorted({s for d in docs for s in d["tasks"].get(task, {}).get("subsets", {})})
        _bars(ax, subsets, {d["model"]: d["tasks"][task].get("subsets", {}) for d in docs if task in d["tasks"]})
        ax.set_title(task_label(task, next(d["tasks"][task] for d in docs if task in d["tasks"])))
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    return fig


def data_mix(res: Results) -> Figure:
    """Target vs achieved token share per source, and what filtering, dedup and decontamination removed."""
    stats = data(res, "data")
    sources = sorted(stats["mix"])
    fig, (ax, ax_rm) = plt.subplots(1, 2, figsize=WIDE)
    xs = range(len(sources))
    ax.bar([x - 0.2 for x in xs], [pct(stats["mix"][s]["target"]) for s in sources], 0.4, label="target")
    ax.bar([x + 0.2 for x in xs], [pct(stats["mix"][s]["achieved"]) for s in sources], 0.4, label="achieved")
    ax.set_xticks(list(xs), [readable(s) for s in sources], rotation=20, ha="right")
    ax.set(ylabel="share of training tokens (%)", title="data mix")
    ax.legend()
    removed = {**{f"filter: {readable(k)}": v for k, v in stats["filters"].items()},
               "near-duplicates": stats["dedup"]["removed"],
               **{f"decontam: {readable(k.removesuffix('_test'))} test": v
                  for k, v in stats["decontamination"].items()}}
    names = list(removed)
    ax_rm.barh(range(len(names)), [removed[n] for n in names], color=PALETTE[3])
    ax_rm.set_yticks(range(len(names)), names)
    ax_rm.invert_yaxis()
    ax_rm.set(xlabel="documents removed", title="cleaning")
    return fig


def step_budget(res: Results) -> Figure:
    """The paper configuration per device: memory by component against the HBM, and the step time's roofline terms
    against its bounds."""
    d = data(res, "dry_run")
    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(6.8, 2.8))
    parts = {k: v for k, v in d["per_device_bytes"].items() if k != "total"}
    bottom = 0.0
    for i, (part, value) in enumerate(parts.items()):
        label = f"{part.replace('_', ' ')} ({value / 2**30:.2f} GiB)"  # small parts stay readable
        ax_mem.bar([0], [value / 2**30], 0.5, bottom=bottom, label=label, color=PALETTE[i % len(PALETTE)])
        bottom += value / 2**30
    if d.get("hbm_bytes"):
        hbm = d["hbm_bytes"] / 2**30
        ax_mem.axhline(hbm, color="black", ls="--", lw=1, label=f"device HBM ({hbm:.0f} GiB)")
    ax_mem.set_xticks([0], ["per device"])
    ax_mem.set_xlim(-1, 1.6)
    ax_mem.set(ylabel="GiB", title="memory")
    ax_mem.legend(loc="upper right", fontsize=6)
    terms, bounds = d["roofline"]["step_s"], d["roofline"]["bound_s"]
    ax_time.barh(range(len(terms)), list(terms.values()), color=[PALETTE[i] for i in range(len(terms))])
    ax_time.set_yticks(range(len(terms)), list(terms))
    ax_time.invert_yaxis()
    for i, (name, value) in enumerate(bounds.items()):
        ax_time.axvline(value, color="black", ls=("--", ":", "-.")[i % 3], lw=1, label=f"{name} bound {value:.1f} s")
    ax_time.set(xlabel="seconds per step, at peak", title="step time")
    ax_time.legend(loc="lower right", fontsize=6)
    fig.suptitle("paper configuration, per device", fontsize=9)
    return fig


# name -> (function, result names it reads; "eval_*" means at least one eval result)
FIGURES: dict[str, tuple[Callable[[Results], Figure], tuple[str, ...]]] = {
    "pretrain_loss": (pretrain_loss, ("pretrain",)),
    "pretrain_throughput": (pretrain_throughput, ("pretrain",)),
    "sft_loss": (sft_loss, ("sft",)),
    "grpo_rewards": (grpo_rewards, ("grpo",)),
    "dpo_rewards": (dpo_rewards, ("dpo",)),
    "learning_curves": (learning_curves, ("sft",)),
    "accuracy_by_stage": (accuracy_by_stage, ("eval_*",)),
    "accuracy_by_subset": (accuracy_by_subset, ("eval_*",)),
    "data_mix": (data_mix, ("data",)),
    "step_budget": (step_budget, ("dry_run",)),
}


def skip_reason(name: str, res: Results, where: str) -> str | None:
    """Why a figure cannot be drawn from these results (None when it can)."""
    _, needs = FIGURES[name]
    missing = [n for n in needs if not fnmatch.filter(list(res), n)]
    if missing:
        return f"not drawn: {', '.join(m + '.json' for m in missing)} absent from {where}"
    if name == "learning_curves" and not any(data(res, s).get("dev_curve") for s in DEV_CURVE_STAGES if s in res):
        return f"not drawn: no dev-subset learning curve in {where}"
    if name == "accuracy_by_subset" and not any(t.get("subsets") for d in evals(res) for t in d["tasks"].values()):
        return f"not drawn: no evaluation task in {where} reports subsets"
    return None


def save(fig: Figure, stem: Path) -> list[Path]:
    written = []
    for ext in ("pdf", "png"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, format=ext, metadata=METADATA[ext], bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written


def render_all(results_dir: Path, out_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """Draw every figure the results allow; return the files written and the skipped figures with reasons."""
    res = results_io.load_dir(results_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], {}
    for name, (draw, _) in FIGURES.items():
        reason = skip_reason(name, res, str(results_dir))
        if reason:
            skipped[name] = reason
            log.logger.info("figure %s: %s", name, reason)
            continue
        with matplotlib.rc_context(STYLE):
            fig = draw(res)
            fig.tight_layout()
            written += save(fig, out_dir / name)
    return written, skipped

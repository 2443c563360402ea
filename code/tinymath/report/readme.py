"""The README's results block, generated from results/ so the front page never disagrees with the paper.

    from tinymath.report import readme; readme.update(Path("README.md"), Path("results/cpu"))

Only the text between `<!-- results:start -->` and `<!-- results:end -->` is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinymath.errors import UserError
from tinymath.io import eval_grid, pct_ci
from tinymath.report import figures, results

START, END = "<!-- results:start -->", "<!-- results:end -->"

def eval_table(res: dict[str, Any]) -> list[str]:
    grid = eval_grid(res)
    if not grid.models:
        return ["No evaluation results yet."]
    lines = ["| task | " + " | ".join(grid.models) + " |", "|---|" + "---|" * len(grid.models)]
    lines += [f"| {grid.label(task)} | " + " | ".join(pct_ci(grid.entry(m, task)) for m in grid.models) + " |"
              for task in grid.tasks()]
    notes = [f"- not evaluated: `{t}` ({r})" for t, r in sorted(grid.skipped().items())]
    return [*lines, "", *notes] if notes else lines


def training_lines(res: dict[str, Any]) -> list[str]:
    """One line per training stage with its final numbers."""
    lines = []
    if "pretrain" in res:
        s = res["pretrain"]["data"]["summary"]
        val = f"{s['final_val_loss']:.3f}" if s.get("final_val_loss") is not None else "-"
        lines.append(f"- pretraining: {s['steps']} steps, {s['tokens']:,} tokens, final validation loss {val}")
    if "sft" in res:
        s = res["sft"]["data"]["summary"]
        lines.append(f"- SFT: {s['steps']} steps, loss {s['first_loss']:.3f} -> {s['final_loss']:.3f}")
    if "grpo" in res:
        s = res["grpo"]["data"]["summary"]
        lines.append(f"- GRPO: {s['steps']} steps, mean reward {s['reward_first']:.3f} -> {s['reward_final']:.3f}")
    if "dpo" in res:
        s, pairs = res["dpo"]["data"]["summary"], res["dpo"]["data"]["pairs"]
        lines.append(f"- DPO: {pairs['pairs']} pairs from {pairs['prompts_paired']} of {pairs['prompts']} prompts "
                     f"({pairs['all_correct']} all correct, {pairs['all_wrong']} all wrong), {s['steps']} steps, "
                     f"loss {s['first_loss']:.3f} -> {s['final_loss']:.3f}")
    if "timings" in res:
        t = res["timings"]["data"]
        host = res["timings"]["provenance"].get("host", {})
        stages = ", ".join(f"{s} {v / 60:.1f}" for s, v in t["stages"].items())
        lines.append(f"- wall time: {t['total_s'] / 60:.1f} minutes on {host.get('cpu', 'an unknown host')} "
                     f"({host.get('cores', '?')} cores): {stages}")
    return lines


def paired_table(res: dict[str, Any]) -> list[str]:
    """Stage-to-stage differences in points with their paired 95% interval and McNemar's exact p."""
    if "paired" not in res:
        return []
    grid = eval_grid(res)
    lines = ["Stage-to-stage differences on the same problems (points, paired bootstrap 95% interval, McNemar p):",
             "", "| comparison | task | difference | p |", "|---|---|---|---|"]
    for c in res["paired"]["data"]["comparisons"]:
        lo, hi = c["ci95"]
        task = grid.label(c["after_task"]) if c["before_task"] == c["after_task"] else \
            f"{grid.label(c['before_task'])} -> {grid.label(c['after_task'])}"
        lines.append(f"| {c['before']} -> {c['after']} | {task} | {100 * c['difference']:+.1f} "
                     f"[{100 * lo:+.1f}, {100 * hi:+.1f}] | {c['mcnemar_p']:.2g} |")
    return [*lines, ""]


def figure_links(res: dict[str, Any], where: str) -> list[str]:
    """PNG links of the figures these results can draw (the README sits beside figures/)."""
    return [f"![{name}](figures/{name}.png)" for name in figures.FIGURES
            if figures.skip_reason(name, res, where) is None]


def render(results_dir: Path) -> str:
    """Markdown: accuracy per stage with 95% intervals, the training summaries, and the figures' PNGs."""
    results_dir = Path(results_dir)
    res = results.load_dir(results_dir)
    where = f"{results_dir.parent.name}/{results_dir.name}"
    if not res:
        return f"No results in `{where}` yet: run `bash reproduce.sh {results_dir.name}`.\n"
    parts = [f"Reproduced results (`{where}`, accuracy % with 95% intervals):", "", *eval_table(res), "",
             *paired_table(res), *training_lines(res), "", *figure_links(res, where)]
    return "\n".join(parts).rstrip() + "\n"


def block(text: str, source: Path) -> tuple[int, int]:
    """Character span between the markers; a README without them is an error, not a silent no-op."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise UserError(f"{source}: markers {START} ... {END} not found")
    return start + len(START), end


def current(readme_path: Path) -> str:
    text = Path(readme_path).read_text()
    lo, hi = block(text, readme_path)
    return text[lo:hi].strip("\n") + "\n"


def update(readme_path: Path, results_dir: Path) -> bool:
    """Rewrite the block; return whether the README changed."""
    text = Path(readme_path).read_text()
    lo, hi = block(text, readme_path)
    new = text[:lo] + "\n" + render(results_dir) + text[hi:]
    if new != text:
        Path(readme_path).write_text(new)
    return new != text

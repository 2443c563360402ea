"""Report: results of a profile's runs -> figures -> the paper's numbers, and the reproduction verdict.

    tinymath report --profile cpu                                  # collect runs/cpu/* into runs/cpu/report/results
    tinymath report publish --profile cpu                          # copy them into results/cpu (committed)
    tinymath report figures --results results/cpu --out figures    # PDF + PNG, from results only
    tinymath report paper --results results --out paper/generated  # numbers.tex macros and tables
    tinymath compare runs/cpu/report/results results/cpu           # fresh vs committed, per metric
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from tinymath import log, manifest, paths, runner
from tinymath.config import Section, config_files
from tinymath.errors import UserError
from tinymath.lock import profile_lock
from tinymath.report import results as results_io
from tinymath.report.card import CardConfig
from tinymath.report.paired import PairedConfig, paired_results

Stage = Literal[tuple(s.name for s in runner.PIPELINE if s.name != "report")]  # the stages a report can collect


class Tolerances(Section):
    """How close a fresh result must be to the committed one (read by `tinymath compare`)."""

    counts: Literal["exact"] = "exact"  # documents, removals, tokens, rows, steps
    hashes: Literal["exact"] = "exact"  # sha256 of a stage's outputs (the packed data)
    loss_rtol: float = Field(gt=0)  # |fresh - committed| <= loss_rtol * |committed|
    reward_atol: float = Field(gt=0)  # GRPO mean rewards lie in [0, 1]: an absolute tolerance


class Config(Section):
    stages: list[Stage]  # upstream stages collected, in pipeline order
    curve_points: int = Field(default=200, ge=10)  # at most this many points per committed curve
    dry_run: str | None = None  # pretrain config whose dry run (params, FLOPs, memory) enters the results
    tolerances: Tolerances
    card: CardConfig = CardConfig()
    paired: PairedConfig = PairedConfig()  # stage-to-stage differences on the same problems


def needs(cfg: Config) -> list[str]:
    return list(cfg.stages)


def external_inputs(cfg: Config, root: Path) -> list[Path]:
    """The paper profile's configs that the results carry, the config of the dry run, and every finished
    `tinymath eval --model` run of the profile (a new one makes the report stale)."""
    from tinymath.report.collect import PAPER_CONFIGS, model_eval_files

    configs = [runner.config_path(stage, "paper") for stage in PAPER_CONFIGS]
    if cfg.dry_run is not None:
        configs.append(paths.resolve(cfg.dry_run))
    return list(dict.fromkeys(f for c in configs for f in config_files(c))) + model_eval_files(root)


def main(cfg: Config, run: runner.Run) -> None:
    from tinymath.report import card as model_card, collect, figures, results

    collect.collect(run, list(cfg.stages), cfg.curve_points, cfg.dry_run)
    if (doc := paired_results(results.load_dir(run.dir / "results"), cfg.paired, run.profile)) is not None:
        results.write(run.dir / "results", doc)
    figures.render_all(run.dir / "results", run.dir / "figures")
    card = model_card.from_results(results.load_dir(run.dir / "results"), cfg.card, run.profile)
    if card is not None:
        (run.dir / "model_card").mkdir(exist_ok=True)
        card.save(run.dir / "model_card" / "README.md")


def command(action: str, profile: str, results: Path | None = None, out: Path | None = None,
            runs: Path | None = None, allow_dirty: bool = False) -> int:
    """`tinymath report figures|paper|publish`: the steps after collecting, each from files only."""
    if action in ("figures", "paper"):
        source = results or (paths.RESULTS / profile if action == "figures" else paths.RESULTS)
        if not Path(source).is_dir():
            raise UserError(f"--results {source}: not a directory (publish a run first, or name a results directory)")
    if action == "figures":
        from tinymath.report import figures

        written, skipped = figures.render_all(results or paths.RESULTS / profile, out or paths.FIGURES)
        log.logger.info("figures: %d files written, %d figures skipped", len(written), len(skipped))
        return 0
    if action == "paper":
        from tinymath.report import paper_numbers

        paper_numbers.write_all(results or paths.RESULTS, out or paths.PAPER / "generated", profile)
        return 0
    if action == "publish":
        root = Path(runs or paths.runs_root()) / profile
        with profile_lock(root):  # not while a run of the profile rewrites its report
            publish(root / "report", out or paths.RESULTS / profile, allow_dirty)
        return 0
    raise UserError(f"report {action!r}: expected figures, paper or publish")


def publish(report_dir: Path, dest: Path, allow_dirty: bool = False) -> None:
    """Replace the committed results of a profile by those of a finished report run (its variance.json stays).

    Results are published only when the tree is clean now and every result was produced from a clean tree, so that
    their commit is exactly the code that made them; `--allow-dirty` publishes anyway, the results then carrying the
    sha256 of the uncommitted diff they were produced with.
    """
    if manifest.read_manifest(report_dir) is None:
        raise UserError(f"{report_dir}: no manifest.json: run 'tinymath report --profile {report_dir.parent.name}' "
                        "first")
    docs = results_io.load_dir(report_dir / "results")
    if not allow_dirty:
        check_clean(docs)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob("*.json"):
        if stale.name != "variance.json":  # the seed spread of the profile: measured separately, kept
            stale.unlink()
    for path in sorted((report_dir / "results").glob("*.json")):
        shutil.copy2(path, dest / path.name)
    log.logger.info("published %s -> %s", report_dir / "results", dest)


def check_clean(docs: dict[str, dict]) -> None:
    state = manifest.git_state(paths.REPO)
    if state["dirty"]:
        raise UserError(f"{paths.REPO}: the working tree has uncommitted changes: commit them and rerun the profile, "
                        "or publish with --allow-dirty")
    dirty = sorted(name for name, doc in docs.items() if doc["provenance"].get("git", {}).get("dirty"))
    if dirty:
        raise UserError(f"results {', '.join(dirty)}: produced from a tree with uncommitted changes: rerun the "
                        "profile from a clean tree, or publish with --allow-dirty")

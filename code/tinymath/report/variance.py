"""`tinymath variance --profile P --seeds N [--from STAGE]`: the seed-to-seed spread of every verdict metric.

Run 0 is the profile's own run (`runs/<profile>/`, run or reused when up to date). Every other run k reruns the
stages from `--from` on (default: pretrain, so the data and the test sets stay fixed) with k added to the seed of
each stage config that has one (so no rerun repeats the profile's seeds), in `runs/variance/seed<k>/<profile>/`,
where the stages before `--from` are links to the profile's own. The spread of every continuous metric and accuracy
across the N runs goes to `results/<profile>/variance.json`, which `tinymath compare` reads for its tolerances.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from tinymath import log, manifest, paths, runner
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.report import compare, results

SPREAD_RULES = ("loss", "reward", "accuracy")  # counts and hashes are exact; throughput is not compared


def seed_override(stage: str, profile: str, offset: int) -> list[str]:
    """The override that shifts the stage's configured seed by `offset` (none for a stage without a seed)."""
    schema = runner.load_stage(stage).Config
    if "seed" not in schema.model_fields:
        return []
    return [f"seed={load_config(runner.config_path(stage, profile), schema).seed + offset}"]


def seed_runs(profile: str, seed: int, start: str, runs: Path) -> Path:
    """Run the profile's stages from `start` with every seed shifted by `seed`; return that run's results directory."""
    if seed == 0:
        runner.run_profile(profile, runs=runs)
        return runs / profile / "report" / "results"
    root = runs / "variance" / f"seed{seed}"
    upstream = [s for s in runner.profile_stages(profile) if s not in runner.profile_stages(profile, start)]
    (root / profile).mkdir(parents=True, exist_ok=True)
    for stage in upstream:
        link = root / profile / stage
        if not link.exists():
            link.symlink_to((runs / profile / stage).resolve(), target_is_directory=True)
    for stage in runner.profile_stages(profile, start):
        runner.run_stage(stage, runner.config_path(stage, profile), seed_override(stage, profile, seed), runs=root)
    return root / profile / "report" / "results"


def spread(per_seed: dict[int, dict[str, compare.Metric]]) -> dict[str, dict[str, float | list[float]]]:
    """Mean and sample standard deviation of every metric that every seed has."""
    runs = list(per_seed.values())
    names = sorted(set.intersection(*(set(m) for m in runs)))
    out = {}
    for name in names:
        if runs[0][name].rule not in SPREAD_RULES:
            continue
        values = [float(m[name].value) for m in runs]
        out[name] = {"values": values, "mean": statistics.fmean(values), "std": statistics.stdev(values)}
    return out


def main(profile: str, seeds: int, start: str = "pretrain", runs: Path | None = None,
         out: Path | None = None) -> Path:
    if seeds < 2:
        raise UserError(f"--seeds {seeds}: expected at least 2 (a spread needs two runs)")
    runs = Path(runs or paths.runs_root())
    runner.profile_stages(profile, start)  # validates profile and stage before anything runs
    per_seed = {}
    for seed in range(seeds):
        log.logger.info("variance: seed %d of %d", seed + 1, seeds)
        per_seed[seed] = compare.metrics(compare.load_side(seed_runs(profile, seed, start, runs)))
    prov = {**manifest.provenance(paths.REPO), "config_sha256": None, "manifests": {},
            "command": f"tinymath variance --profile {profile} --seeds {seeds} --from {start}"}
    data = {"seeds": list(per_seed), "start": start, "metrics": spread(per_seed)}
    path = results.write(out or paths.RESULTS / profile, results.envelope("variance", "variance", profile, prov, data))
    log.logger.info("variance: %d metrics over %d seeds -> %s", len(data["metrics"]), seeds, path)
    return path

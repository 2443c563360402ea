"""Report stage: results schema, collection, figures, comparison verdict, README block.

Built on small synthetic run directories in the documented formats (docs/pipeline.md), from `synthetic_runs`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from synthetic_runs import GSM, MATH, STAGES, build_runs, cell, collect_synthetic, write_dry_run

from tinymath import manifest, paths, runner
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.report import compare, figures, readme, results, variance


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A collected report (results and figures) with a dry-run result added afterwards."""
    report = collect_synthetic(tmp_path_factory.mktemp("report"))
    write_dry_run(report / "results")
    return report


def copy_results(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_report_configs_load():
    from tinymath.report import Config

    for profile in ("smoke", "cpu", "paper"):
        cfg = load_config(runner.config_path("report", profile), Config)
        assert cfg.tolerances.counts == "exact" and cfg.tolerances.loss_rtol > 0


@pytest.mark.parametrize("stage, writer_options", [("sft", {"rate": True}), ("grpo", {"extra": "reward_means"}),
                                                    ("dpo", {})])
def test_report_keeps_only_metrics_the_stage_writes(stage, writer_options, tmp_path):
    """Every key the report keeps from a post-training metrics log (io.METRIC_KEYS) is one the stage's writer
    produces from a full TRL log line: a renamed key fails here, not as a silently empty curve."""
    import importlib

    from tinymath.io import METRIC_KEYS
    from tinymath.posttrain.common import MetricsWriter

    module = importlib.import_module(f"tinymath.posttrain.{stage}")
    options = {k: getattr(module, v) if k == "extra" else v for k, v in writer_options.items()}
    writer = MetricsWriter(tmp_path / "metrics.jsonl", module.METRIC_KEYS, **options)
    trl_log = {theirs: 1.0 for theirs in module.METRIC_KEYS} | {"num_tokens": 100.0, "rewards/correctness/mean": 0.5}
    assert set(METRIC_KEYS[stage]) <= set(writer.row(1, trl_log))


def test_report_collect_writes_valid_results(report_dir):
    res = results.load_dir(report_dir / "results")
    assert set(res) == {"data", "pretrain", "parity", "sft", "grpo", "dpo", "eval_base", "eval_sft", "eval_grpo",
                        "eval_dpo", "configs", "timings", "dry_run"}
    assert res["dpo"]["data"]["summary"]["pairs"] == 70 and res["dpo"]["data"]["pairs"]["all_wrong"] == 20
    assert res["timings"]["data"] == {"stages": {s: 12.5 for s in STAGES}, "total_s": 12.5 * len(STAGES)}
    prov = res["eval_sft"]["provenance"]
    assert prov["command"] == "tinymath eval --profile cpu"
    assert prov["manifests"]["eval"]["path"] == "cpu/eval/manifest.json"
    assert len(prov["manifests"]["eval"]["sha256"]) == 64


def test_report_collect_subsamples_curves_keeping_the_last_point(report_dir):
    pretrain = results.load(report_dir / "results" / "pretrain.json")["data"]
    assert len(pretrain["train"]) <= 50
    assert pretrain["train"][-1]["step"] == 400 and pretrain["train"][0]["step"] == 1
    assert pretrain["summary"]["tokens"] == 400 * 1024
    assert pretrain["summary"]["final_val_loss"] == pytest.approx(8.0 * math.exp(-5) + 2.1)


def test_report_needs_upstream_manifests(tmp_path):
    build_runs(tmp_path / "runs")
    (tmp_path / "runs" / "cpu" / "sft" / "manifest.json").unlink()
    config = tmp_path / "cpu.yaml"
    config.write_text(json.dumps({"stages": STAGES, "tolerances": {"loss_rtol": 0.02, "reward_atol": 0.05}}))
    with pytest.raises(UserError, match="needs sft"):
        runner.run_stage("report", config, runs=tmp_path / "runs")


def test_report_results_invalid_file_names_file_and_field(report_dir, tmp_path):
    doc = json.loads((report_dir / "results" / "sft.json").read_text())
    del doc["data"]["summary"]
    bad = tmp_path / "sft.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"sft\.json: missing field 'data\.summary'"):
        results.load(bad)
    del doc["provenance"]["command"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="provenance.command"):
        results.load(bad)


def test_report_reported_numbers_are_labelled_and_separate():
    doc = results.load(paths.RESULTS / "reported" / "released_model_cards.json")
    assert doc["kind"] == "reported" and doc["provenance"]["url"].startswith("https://github.com/")
    assert doc["data"]["models"]["grpo"]["gsm8k"] == 2.2
    assert not any(d["kind"] == "reported" for p in paths.RESULTS.iterdir() if p.is_dir() and p.name != "reported"
                   for d in results.load_dir(p).values())


def digests(directory: Path) -> dict[str, str]:
    return {p.name: manifest.sha256_file(p) for p in sorted(directory.iterdir())}


def test_report_figures_bytes_are_deterministic(report_dir, tmp_path):
    figures.render_all(report_dir / "results", tmp_path)
    again = digests(tmp_path)
    assert {f"{name}.{ext}" for name in figures.FIGURES for ext in ("pdf", "png")} == set(again)
    first = digests(report_dir / "figures")  # drawn by the stage, before the dry-run result existed
    assert first == {name: again[name] for name in first} and len(first) == len(again) - 2


def test_report_figures_skip_missing_results_with_reason(report_dir, tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    shutil.copy(report_dir / "results" / "sft.json", res)
    written, skipped = figures.render_all(res, tmp_path / "figs")
    assert [p.name for p in written] == ["sft_loss.pdf", "sft_loss.png", "learning_curves.pdf", "learning_curves.png"]
    assert skipped["grpo_rewards"] == f"not drawn: grpo.json absent from {res}"
    assert skipped["accuracy_by_stage"] == f"not drawn: eval_*.json absent from {res}"
    assert set(skipped) == set(figures.FIGURES) - {"sft_loss", "learning_curves"}


def verdict_lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_report_compare_identical_results_are_bit_identical(report_dir, tmp_path, capsys):
    assert compare.main(report_dir / "results", report_dir / "results", tmp_path / "verdict.json") == 0
    out = verdict_lines(capsys)
    assert out[-1] == f"verdict: {tmp_path / 'verdict.json'}"
    n, m = out[-2].split()[1].split("/")
    assert n == m and int(m) > 40 and out[-2].endswith(f"({m} bit-identical)")
    assert any("tokens_per_s_median" in line and "not checked" in line for line in out)
    verdict = json.loads((tmp_path / "verdict.json").read_text())["data"]
    assert verdict["counts"]["outside"] == 0 and verdict["counts"]["identical"] == int(m)


def test_report_compare_records_no_absolute_path_of_a_runs_root_set_elsewhere(report_dir, tmp_path, monkeypatch):
    runs = tmp_path / "elsewhere"
    fresh = copy_results(report_dir / "results", runs / "cpu" / "report" / "results")
    monkeypatch.setenv("TINYMATH_RUNS", str(runs))
    assert compare.main(fresh, report_dir / "results", tmp_path / "v.json") == 0
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["data"]["fresh"] == "$TINYMATH_RUNS/cpu/report/results"
    assert doc["provenance"]["command"] == f"tinymath compare $TINYMATH_RUNS/cpu/report/results {report_dir}/results"


def test_portable_paths_are_project_relative_or_under_the_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYMATH_RUNS", str(tmp_path / "runs"))
    assert paths.portable(paths.CONFIGS / "sft" / "cpu.yaml") == "configs/sft/cpu.yaml"
    assert paths.portable(tmp_path / "runs" / "cpu" / "sft") == "$TINYMATH_RUNS/cpu/sft"
    assert paths.portable(tmp_path / "other") == str(tmp_path / "other")  # under neither: as given


def perturb(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc["data"])
    path.write_text(json.dumps(doc))


def write_variance(directory: Path, sigmas: dict[str, float]) -> None:
    metrics = {name: {"values": [0.0, 0.0, 0.0], "mean": 0.0, "std": s} for name, s in sigmas.items()}
    prov = {"git": {}, "versions": {}, "host": {}, "config_sha256": None, "manifests": {}, "command": "x"}
    results.write(directory, results.envelope("variance", "variance", "cpu", prov,
                                              {"seeds": [0, 1, 2], "start": "pretrain", "metrics": metrics}))


def test_variance_reruns_shift_every_configured_seed_so_none_repeats_the_profile():
    """The cpu profile's SFT seed is 1 and GRPO's is 0: rerun 1 must not rerun SFT with seed 1."""
    sft = load_config(runner.config_path("sft", "cpu"), runner.load_stage("sft").Config).seed
    grpo = load_config(runner.config_path("grpo", "cpu"), runner.load_stage("grpo").Config).seed
    assert variance.seed_override("sft", "cpu", 1) == [f"seed={sft + 1}"]
    assert variance.seed_override("grpo", "cpu", 2) == [f"seed={grpo + 2}"]


def verdict_of(capsys, metric: str) -> str:
    return next(x for x in verdict_lines(capsys) if x.startswith(metric + " "))


@pytest.mark.parametrize("shift, code, verdict", [(0.5, 0, "within measured variance"), (1.0, 0, "within measured "
                                                  "variance"), (5.0, 1, "outside")])
def test_report_compare_judges_losses_by_the_measured_spread(report_dir, tmp_path, capsys, shift, code, verdict):
    committed = copy_results(report_dir / "results", tmp_path / "committed")
    sigma = 0.01
    write_variance(committed, {"pretrain.final_loss": sigma})
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    shifted = lambda d: d["summary"].update(final_loss=d["summary"]["final_loss"] + shift * sigma)  # noqa: E731
    perturb(fresh / "pretrain.json", shifted)
    assert compare.main(fresh, committed, tmp_path / "v.json") == code
    line = verdict_of(capsys, "pretrain.final_loss")
    assert line.endswith(verdict) and "3 sigma, sigma 0.01" in line


def test_report_compare_names_the_likely_cause_of_an_outside_metric(report_dir, tmp_path, capsys):
    committed = copy_results(report_dir / "results", tmp_path / "committed")
    write_variance(committed, {"sft.final_loss": 0.001})
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    perturb(fresh / "sft.json", lambda d: d["summary"].update(final_loss=d["summary"]["final_loss"] + 0.1))
    assert compare.main(fresh, committed, tmp_path / "v.json") == 1
    out = verdict_lines(capsys)
    assert any(x.startswith("outside: sft.final_loss") and "sigma 0.001" in x and "likely cause" in x for x in out)
    assert "outside: 1," in out[-3]


def test_report_compare_without_spread_uses_the_config_tolerance(report_dir, tmp_path, capsys):
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    perturb(fresh / "pretrain.json", lambda d: d["summary"].update(final_loss=d["summary"]["final_loss"] * 1.05))
    assert compare.main(fresh, report_dir / "results", tmp_path / "v.json") == 1
    assert "rel 0.02 (no measured sigma)" in verdict_of(capsys, "pretrain.final_loss")


def test_report_compare_count_change_fails(report_dir, tmp_path):
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    perturb(fresh / "data.json", lambda d: d["dedup"].update(removed=26))
    assert compare.main(fresh, report_dir / "results", tmp_path / "v.json") == 1


def test_report_compare_absent_task_is_not_checked(report_dir, tmp_path, capsys):
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    def drop(d):
        d["tasks"].pop(MATH)
        d["skipped"] = {MATH: "data file ../shared/data/math/test500.jsonl not found"}

    perturb(fresh / "eval_sft.json", drop)
    assert compare.main(fresh, report_dir / "results", tmp_path / "v.json") == 0
    assert verdict_of(capsys, f"eval_sft.{MATH}").endswith("not checked: data file ../shared/data/math/test500.jsonl "
                                                             "not found")


def test_report_compare_accuracy_without_spread_is_a_test_on_proportions(report_dir, tmp_path, capsys):
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    perturb(fresh / "eval_grpo.json", lambda d: d["tasks"][GSM].update(cell(200, 0.9)))
    assert compare.main(fresh, report_dir / "results", tmp_path / "v.json") == 1
    assert "two proportions p" in verdict_of(capsys, f"eval_grpo.{GSM}")
    perturb(fresh / "eval_grpo.json", lambda d: d["tasks"][GSM].update(cell(200, 0.39)))
    assert compare.main(fresh, report_dir / "results", tmp_path / "v.json") == 0


def test_report_compare_pairs_accuracies_on_per_problem_verdicts(report_dir, tmp_path, capsys):
    committed = copy_results(report_dir / "results", tmp_path / "committed")
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    base = "1" * 76 + "0" * 124  # 38% of 200
    perturb(committed / "eval_grpo.json", lambda d: d["tasks"][GSM].update(correct=base))
    moved = "0" * 20 + base[20:]  # 20 problems lost, none gained: McNemar p = 2 * 0.5**20
    perturb(fresh / "eval_grpo.json", lambda d: d["tasks"][GSM].update(value=56 / 200, correct=moved))
    assert compare.main(fresh, committed, tmp_path / "v.json") == 1
    assert "McNemar p 1.91e-06" in verdict_of(capsys, f"eval_grpo.{GSM}")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["tasks"][GSM].pop("ci95"), "KeyError"),
    (lambda d: d["tasks"][GSM].update(value="0.3"), "expected a number"),
    (lambda d: d.update(tasks=[1, 2]), "AttributeError"),
    (lambda d: d["tasks"][GSM].update(correct="01"), "correct expected 200 characters 0/1"),
    (lambda d: d["tasks"][GSM].update(correct="2" * 200), "correct expected 200 characters 0/1"),
    (lambda d: d.update(skipped=["paper_mmlu"]), "field 'data.skipped': expected an object"),
])
def test_report_compare_malformed_results_are_user_errors(report_dir, tmp_path, edit, message):
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    perturb(fresh / "eval_sft.json", edit)
    with pytest.raises(UserError, match=message) as e:
        compare.main(fresh, report_dir / "results", tmp_path / "v.json")
    assert "eval_sft.json" in str(e.value) and "\n" not in str(e.value)


def test_report_compare_non_string_profile_is_user_error(report_dir, tmp_path):
    committed = copy_results(report_dir / "results", tmp_path / "committed")
    doc = json.loads((committed / "sft.json").read_text())
    doc["profile"] = 3
    (committed / "sft.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="sft.json: field 'profile': expected a string, got int"):
        compare.main(report_dir / "results", committed, tmp_path / "v.json")


def test_report_compare_missing_profile_is_user_error(report_dir, tmp_path):
    fresh = copy_results(report_dir / "results", tmp_path / "fresh")
    doc = json.loads((fresh / "sft.json").read_text())
    del doc["profile"]
    (fresh / "sft.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="sft.json: missing field 'profile'"):
        compare.main(fresh, report_dir / "results", tmp_path / "v.json")


def test_report_publish_replaces_committed_results(report_dir, tmp_path):
    from tinymath.report import publish

    dest = tmp_path / "results" / "cpu"
    dest.mkdir(parents=True)
    (dest / "stale.json").write_text("{}")
    (dest / "variance.json").write_text("{}")
    publish(report_dir, dest, allow_dirty=True)
    assert sorted(p.name for p in dest.iterdir()) == sorted([p.name for p in (report_dir / "results").iterdir()]
                                                            + ["variance.json"])


def test_report_publish_refuses_results_of_a_dirty_tree(report_dir, tmp_path, monkeypatch):
    from tinymath.report import publish

    monkeypatch.setattr(manifest, "git_state", lambda repo: {"commit": "0" * 40, "dirty": True})
    with pytest.raises(UserError, match="uncommitted changes.*--allow-dirty"):
        publish(report_dir, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    publish(report_dir, tmp_path / "dest", allow_dirty=True)
    assert (tmp_path / "dest" / "sft.json").is_file()


def test_report_readme_update_replaces_only_the_block(report_dir, tmp_path):
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\n{readme.START}\nold\n{readme.END}\n\nrest\n")
    assert readme.update(path, report_dir / "results")
    text = path.read_text()
    assert text.startswith("# Title\n") and text.endswith(f"{readme.END}\n\nrest\n") and "old" not in text
    assert "| Synthetic GSM (0-shot chat) | 5.0 [2.0, 8.0] | 30.0 [23.6, 36.4] | 38.0 [31.3, 44.7] |" in text
    assert "![pretrain_loss](figures/pretrain_loss.png)" in text
    assert not readme.update(path, report_dir / "results")


def test_report_readme_block_is_fresh():
    path = paths.REPO / "README.md"
    if not path.is_file() or readme.START not in path.read_text():
        pytest.skip("README.md has no results markers")
    assert readme.current(path) == readme.render(paths.RESULTS / "cpu"), \
        "README results block is stale: run readme.update(Path('README.md'), Path('results/cpu'))"


def test_report_committed_figures_match_results(tmp_path):
    committed = sorted(paths.FIGURES.glob("*.pdf")) + sorted(paths.FIGURES.glob("*.png"))
    if not committed:
        pytest.skip("no committed figures in figures/")
    figures.render_all(paths.RESULTS / "cpu", tmp_path)
    assert {p.name: manifest.sha256_file(p) for p in committed} == \
        {p.name: manifest.sha256_file(tmp_path / p.name) for p in committed if (tmp_path / p.name).exists()}


def test_model_card_from_results_has_hub_metadata_and_model_index():
    from huggingface_hub import ModelCard

    from tinymath.report.card import CardConfig, from_results

    res = results.load_dir(paths.RESULTS / "smoke")
    card = ModelCard(str(from_results(res, CardConfig(), "smoke")))
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == "text-generation"
    tasks = res["eval_base"]["data"]["tasks"]
    assert len(card.data.eval_results) == len(tasks)
    first = card.data.eval_results[0]
    want = tasks[first.dataset_type]
    assert first.metric_value == want["value"]
    assert first.dataset_args == {"num_few_shot": want["settings"]["num_fewshot"]}
    plain = ModelCard(str(from_results({k: v for k, v in res.items() if k != "eval_base"}, CardConfig(), "smoke")))
    assert plain.data.eval_results is None and "not evaluated" in plain.text
    assert "last `\\boxed{}`" in plain.text and "chat_correct" in plain.text  # the answer rule, braces formatted
    assert from_results({k: v for k, v in res.items() if k != "parity"}, CardConfig(), "smoke") is None


def test_paired_results_compare_stages_on_the_same_problems():
    from tinymath.report.paired import Comparison, PairedConfig, paired_results

    def doc(model: str, tasks: dict[str, str]) -> dict:
        entries = {t: {"n": len(v), "value": v.count("1") / len(v), "ci95": [0, 1], "correct": v}
                   for t, v in tasks.items()}
        return {"kind": "eval", "data": {"model": model, "tasks": entries}}

    base = "1" * 2 + "0" * 98
    sft = "1" * 30 + "0" * 70
    grpo = "1" * 38 + "0" * 62
    res = {"eval_base": doc("base", {"few/flex": base}), "eval_sft": doc("sft", {"chat/acc": sft, "x/acc": sft}),
           "eval_grpo": doc("grpo", {"chat/acc": grpo})}
    cfg = PairedConfig(comparisons=[Comparison(before="base", after="sft", tasks={"few/flex": "chat/acc"}),
                                    Comparison(before="sft", after="grpo"), Comparison(before="sft", after="dpo")])
    rows = paired_results(res, cfg, "cpu")["data"]["comparisons"]
    assert [(r["before"], r["after"], r["before_task"], r["after_task"]) for r in rows] == [
        ("base", "sft", "few/flex", "chat/acc"), ("sft", "grpo", "chat/acc", "chat/acc")]  # no dpo results: skipped
    assert rows[0]["difference"] == pytest.approx(0.28) and (rows[0]["only_a"], rows[0]["only_b"]) == (0, 28)
    assert rows[1]["mcnemar_p"] == pytest.approx(2 * 0.5 ** 8) and rows[1]["ci95"][0] > 0
    assert paired_results({}, cfg, "cpu") is None

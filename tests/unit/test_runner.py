"""The stage runner: manifests, up-to-date skipping, missing inputs, failures leave nothing marked done."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import toy_stages

from tinymath import manifest, runner
from tinymath.errors import UserError


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """Register the toy stages and return (config path for profile 'demo', runs root)."""
    monkeypatch.setitem(runner.STAGES, "toy", runner.StageSpec("toy", "toy_stages"))
    monkeypatch.setitem(runner.STAGES, "down", runner.StageSpec("down", "toy_stages"))
    real_load = runner.load_stage
    monkeypatch.setattr(runner, "load_stage",
                        lambda s: toy_stages.Downstream if s == "down" else real_load(s))
    cfg = tmp_path / "demo.yaml"
    cfg.write_text("seed: 3\nlr: 0.01\n")
    return cfg, tmp_path / "runs"


def test_runner_writes_manifest_with_hashes(toy):
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    m = manifest.read_manifest(out)
    assert out == runs / "demo" / "toy"
    assert m["outputs"]["words.txt"] == manifest.sha256_file(out / "words.txt")
    assert "config.yaml" in m["outputs"] and "toy.log" not in m["outputs"]
    assert m["seed"] == 3 and m["config"]["lr"] == 0.01
    assert {"git", "versions", "host", "wall_time_s", "config_sha256"} <= m.keys()
    assert m["host"]["cores"] >= 1


def test_runner_skips_when_up_to_date(toy, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="tinymath")
    monkeypatch.setattr(logging.getLogger("tinymath"), "propagate", True)
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    before = (out / "manifest.json").read_text()
    runner.run_stage("toy", cfg, runs=runs)
    assert (out / "manifest.json").read_text() == before
    assert "up to date" in caplog.text


def test_runner_reruns_on_config_change_and_force(toy):
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    first = manifest.read_manifest(out)
    runner.run_stage("toy", cfg, ["words=[gamma]"], runs=runs)
    assert (out / "words.txt").read_text() == "gamma\n"
    second = manifest.read_manifest(out)
    assert second["config_sha256"] != first["config_sha256"]
    runner.run_stage("toy", cfg, ["words=[gamma]"], force=True, runs=runs)
    assert manifest.read_manifest(out)["started_at"] >= second["started_at"]


def test_runner_missing_input_names_stage_and_command(toy):
    cfg, runs = toy
    with pytest.raises(UserError, match=r"stage down needs toy .*run 'tinymath toy --profile demo' first"):
        runner.run_stage("down", cfg, runs=runs)


def test_runner_downstream_reruns_only_when_upstream_outputs_change(toy):
    cfg, runs = toy
    runner.run_stage("toy", cfg, runs=runs)
    down = runner.run_stage("down", cfg, runs=runs)
    stamp = manifest.read_manifest(down)["started_at"]
    runner.run_stage("toy", cfg, force=True, runs=runs)  # same outputs again
    runner.run_stage("down", cfg, runs=runs)
    assert manifest.read_manifest(down)["started_at"] == stamp
    runner.run_stage("toy", cfg, ["words=[a,b,c]"], runs=runs)
    runner.run_stage("down", cfg, ["words=[a,b,c]"], runs=runs)
    assert (down / "count.txt").read_text() == "3\n"


def test_runner_failed_stage_keeps_the_previous_result_untouched(toy):
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    before = (out / "manifest.json").read_text()
    with pytest.raises(UserError):
        runner.run_stage("toy", cfg, ["fail=true", "words=[x]"], runs=runs)
    assert (out / "manifest.json").read_text() == before and (out / "words.txt").read_text() == "alpha beta\n"
    work = runs / "demo" / ".toy.work"
    assert (work / "words.txt").read_text() == "x\n" and not (work / "manifest.json").exists()
    runner.run_stage("toy", cfg, ["words=[y]"], runs=runs)  # another fingerprint: the work directory starts over
    assert (out / "words.txt").read_text() == "y\n" and not work.exists()


def test_runner_requirements_refuse_missing_hardware(tmp_path):
    with pytest.raises(UserError, match="requires.accelerator is 'tpu'"):
        runner.check_requirements(runner.Requirements(accelerator="tpu"), tmp_path / "paper.yaml")


def test_manifest_atomic_write_leaves_no_temp_file(tmp_path):
    manifest.write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_pipeline_stage_modules_follow_the_stage_protocol():
    for spec in runner.PIPELINE:
        module = runner.load_stage(spec.name)
        assert isinstance(module, runner.Stage) and spec.module.rsplit(".", 1)[-1] == spec.name
        assert Path(runner.paths.CONFIGS / spec.name).is_dir(), spec.name


def test_runner_reruns_a_stage_whose_outputs_were_damaged(toy, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="tinymath")
    monkeypatch.setattr(logging.getLogger("tinymath"), "propagate", True)
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    (out / "words.txt").write_text("alpha\n")  # truncated
    runner.run_stage("toy", cfg, runs=runs)
    assert "words.txt has 6 bytes" in caplog.text and (out / "words.txt").read_text() == "alpha beta\n"
    (out / "words.txt").unlink()
    runner.run_stage("toy", cfg, runs=runs)
    assert "output words.txt is missing" in caplog.text and (out / "words.txt").is_file()


def test_runner_rehashes_an_output_whose_mtime_changed(toy):
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    record = manifest.read_manifest(out)
    os.utime(out / "words.txt", ns=(1, 1))  # touched, same bytes: still up to date
    assert manifest.verify_outputs(out, record) is None
    (out / "words.txt").write_text("alpha beto\n")  # same size, other bytes
    assert "sha256 differs" in manifest.verify_outputs(out, record)


def test_plan_shows_inputs_and_state_without_running(toy, monkeypatch):
    cfg, runs = toy
    monkeypatch.setattr(runner, "PIPELINE", (runner.STAGES["toy"], runner.STAGES["down"]))
    monkeypatch.setattr(runner, "config_path", lambda stage, profile: cfg)
    monkeypatch.setattr(runner, "profiles", lambda: ["demo"])
    assert runner.plan("demo", runs=runs) == ["toy        <- (nothing)  [no manifest]",
                                              "down       <- toy  [waiting for toy]"]
    assert not (runs / "demo" / "toy").exists()
    runner.run_stage("toy", cfg, runs=runs)
    assert runner.plan("demo", runs=runs)[0].endswith("[up to date]")


def test_unknown_profile_is_user_error():
    with pytest.raises(UserError, match=r"--profile 'smoek': expected one of cpu, paper, smoke"):
        runner.run_profile("smoek")

"""The stage runner: manifests, up-to-date skipping, missing inputs, failures leave nothing marked done."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import toy_stages
from tinymath import manifest, runner
from tinymath.errors import UserError


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """Register the toy stages and return (config path for profile 'demo', runs root)."""
    monkeypatch.setitem(runner.STAGES, "toy", runner.StageSpec("toy", "toy_stages", "toy", "toy"))
    monkeypatch.setitem(runner.STAGES, "down", runner.StageSpec("down", "toy_stages", "down", "down"))
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


def test_runner_failed_stage_leaves_no_manifest(toy):
    cfg, runs = toy
    out = runner.run_stage("toy", cfg, runs=runs)
    with pytest.raises(UserError):
        runner.run_stage("toy", cfg, ["fail=true"], runs=runs)
    assert manifest.read_manifest(out) is None
    assert (out / "words.txt").exists()  # files left behind do not make the stage done


def test_runner_requirements_refuse_missing_hardware(tmp_path):
    with pytest.raises(UserError, match="requires.accelerator is 'tpu'"):
        runner.check_requirements(runner.Requirements(accelerator="tpu"), tmp_path / "paper.yaml")


def test_manifest_atomic_write_leaves_no_temp_file(tmp_path):
    manifest.write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_pipeline_stage_modules_are_importable():
    for spec in runner.PIPELINE:
        module = runner.load_stage(spec.name)
        assert hasattr(module, "Config") and hasattr(module, "main"), spec.name
        assert Path(runner.paths.CONFIGS / spec.config_dir).is_dir(), spec.config_dir

"""Typed configs: inheritance, overrides, and one-line errors for bad values; every shipped config validates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

from tinymath import runner
from tinymath.config import Section, load_config
from tinymath.errors import UserError

REPO = Path(__file__).resolve().parents[2]


class Optim(Section):
    lr: float = Field(gt=0)
    betas: tuple[float, float] = (0.9, 0.95)


class Train(Section):
    seed: int = 0
    steps: int = Field(gt=0)
    optimizer: Optim


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_base_inheritance_merges_nested_keys(tmp_path):
    write(tmp_path / "base.yaml", "steps: 10\noptimizer: {lr: 0.1, betas: [0.8, 0.9]}\n")
    cfg = load_config(write(tmp_path / "cpu.yaml", "base: base.yaml\noptimizer: {lr: 0.5}\n"), Train)
    assert cfg.steps == 10 and cfg.optimizer.lr == 0.5 and cfg.optimizer.betas == (0.8, 0.9)


def test_config_set_overrides_parse_yaml_values(tmp_path):
    path = write(tmp_path / "c.yaml", "steps: 10\noptimizer: {lr: 0.1}\n")
    cfg = load_config(path, Train, ["optimizer.lr=1e-4", "steps=3"])
    assert cfg.optimizer.lr == 1e-4 and cfg.steps == 3


@pytest.mark.parametrize("text, overrides, expected", [
    ("steps: 10\noptimizer: {lr: 0.1}\nbogus: 1\n", [], "c.yaml: unknown key 'bogus'"),
    ("steps: ten\noptimizer: {lr: 0.1}\n", [], "c.yaml: key 'steps': expected a valid integer"),
    ("steps: 10\noptimizer: {lr: -0.1}\n", [], "c.yaml: key 'optimizer.lr': expected greater than 0, got -0.1"),
    ("steps: 10\n", [], "c.yaml: missing key 'optimizer'"),
    ("steps: 10\noptimizer: {lr: 0.1}\n", ["optimizer.lr=-1"], "(with --set): key 'optimizer.lr': expected greater"),
    ("steps: [10\n", [], "invalid YAML (expected ',' or ']'"),
])
def test_config_errors_are_one_line(tmp_path, text, overrides, expected):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(UserError) as err:
        load_config(path, Train, overrides)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_config_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", Train)


def shipped_configs() -> list[tuple[str, Path]]:
    """(stage, config file) for every profile config in configs/, excluding shared base files."""
    out = []
    for spec in runner.PIPELINE:
        for path in sorted((REPO / "configs" / spec.name).glob("*.yaml")):
            if not path.stem.startswith("base"):
                out.append((spec.name, path))
    return out


@pytest.mark.parametrize("stage, path", shipped_configs(), ids=lambda x: getattr(x, "name", x))
def test_config_every_shipped_config_validates(stage, path):
    module = runner.load_stage(stage)
    load_config(path, module.Config)


def test_config_every_stage_has_smoke_cpu_and_paper_configs():
    for spec in runner.PIPELINE:
        for profile in ("smoke", "cpu", "paper"):
            if (spec.name, profile) != ("synth", "paper"):  # the paper profile reads hub data only
                assert runner.config_path(spec.name, profile).is_file(), (spec.name, profile)


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinymath", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    bad = write(tmp_path / "cpu.yaml", "seed: 0\nnot_a_key: 1\n")
    result = run_cli("tokenizer", "--config", str(bad), "--runs", str(tmp_path / "runs"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("tinymath: error: ") and "not_a_key" in lines[-1]
    assert "Traceback" not in result.stderr


def test_cli_missing_input_exits_2_naming_the_stage(tmp_path):
    result = run_cli("pretrain", "--profile", "smoke", "--runs", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert "stage pretrain needs" in result.stderr and "first" in result.stderr
    assert "Traceback" not in result.stderr



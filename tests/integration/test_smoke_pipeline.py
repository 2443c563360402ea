"""The whole smoke profile through the real CLI: every stage runs, writes its manifest, and a rerun is a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinymath import manifest, runner

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def tinymath(*args: str, runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYMATH_RUNS": str(runs), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "tinymath", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = tinymath("run", "--profile", "smoke", runs=runs)
    assert result.returncode == 0, result.stderr[-4000:]
    return runs


def test_smoke_every_stage_writes_a_manifest(smoke_runs):
    for spec in runner.PIPELINE:
        m = manifest.read_manifest(smoke_runs / "smoke" / spec.name)
        assert m is not None, f"{spec.name} has no manifest"
        for rel, digest in m["outputs"].items():
            assert manifest.sha256_file(smoke_runs / "smoke" / spec.name / rel) == digest, rel


def test_smoke_second_run_is_up_to_date(smoke_runs):
    start = time.perf_counter()
    result = tinymath("run", "--profile", "smoke", runs=smoke_runs)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stderr.count("up to date") == len(runner.PIPELINE)
    assert time.perf_counter() - start < 60


def test_smoke_reproduces_committed_results(smoke_runs):
    result = tinymath("compare", str(smoke_runs / "smoke" / "report" / "results"), str(REPO / "results" / "smoke"),
                      runs=smoke_runs)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "reproduced:" in result.stdout.splitlines()[-1]

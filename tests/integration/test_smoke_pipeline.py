"""The whole smoke profile: every stage runs, reads only what it declares, writes its manifest; a rerun is a no-op.

The pipeline runs once in this process with an audit hook on every file `open`: while a stage's `main` runs, a file
it opens must lie in its work directory, in the run directory of a stage it `needs`, among its `external_inputs` or
its config files, or in the Python installation and system or cache folders. Anything else is an undeclared input,
which would make "up to date, skipped" untrue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

from tinymath import config, manifest, runner

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration
# Source code is not input (tests/ too: a warning reads the source line of the frame that raised it, maybe a test's).
LIBRARY_ROOTS = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", "/etc", "/proc",
                                             "/sys", "/dev", tempfile.gettempdir(), Path.home() / ".cache",
                                             Path.home() / ".config", REPO / "code", REPO / "tests"}]


def tinymath(*args: str, runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYMATH_RUNS": str(runs), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "tinymath", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


class OpenAudit:
    """Collects (stage, path) for every file opened outside what the running stage declared."""

    def __init__(self):
        self.allowed: list[Path] | None = None  # None: no stage is running
        self.stage = ""
        self.violations: list[tuple[str, str]] = []
        sys.addaudithook(self.hook)

    def hook(self, event: str, args: tuple) -> None:
        if event != "open" or self.allowed is None or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = Path(os.fsdecode(args[0]))
        if args[1] is None and not path.is_absolute():
            return  # os.open relative to a directory descriptor (directory fsyncs): the event does not say which
        path = Path(os.path.abspath(path))
        if not any(path.is_relative_to(root) for root in self.allowed):
            self.violations.append((self.stage, str(path)))

    def wrap(self, stage: str, module: runner.Stage) -> types.SimpleNamespace:
        def main(cfg, run):
            declared = [run.dir, *(run.input(n) for n in module.needs(cfg)),
                        *runner.external_inputs(module, cfg, run.root), *config.config_files(run.config_path)]
            self.allowed, self.stage = [Path(p).resolve() for p in declared] + LIBRARY_ROOTS, stage
            try:
                module.main(cfg, run)
            finally:
                self.allowed = None

        attrs = {k: getattr(module, k) for k in ("Config", "needs", "external_inputs") if hasattr(module, k)}
        return types.SimpleNamespace(**attrs, main=main)


@pytest.fixture(scope="module")
def audited_run(tmp_path_factory) -> tuple[Path, OpenAudit]:
    runs = tmp_path_factory.mktemp("runs")
    audit = OpenAudit()
    real_load = runner.load_stage
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_stage", lambda stage: audit.wrap(stage, real_load(stage)))
        runner.run_profile("smoke", runs=runs)
    return runs, audit


def test_smoke_every_stage_writes_a_manifest(audited_run):
    runs, _ = audited_run
    for spec in runner.PIPELINE:
        m = manifest.read_manifest(runs / "smoke" / spec.name)
        assert m is not None, f"{spec.name} has no manifest"
        for rel, digest in m["outputs"].items():
            assert manifest.sha256_file(runs / "smoke" / spec.name / rel) == digest, rel


def test_smoke_stages_read_only_declared_inputs(audited_run):
    _, audit = audited_run
    assert audit.violations == [], "\n".join(f"{stage}: {path}" for stage, path in audit.violations)


def test_smoke_second_run_is_up_to_date(audited_run):
    runs, _ = audited_run
    result = tinymath("run", "--profile", "smoke", runs=runs)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stderr.count("up to date") == len(runner.PIPELINE)


def test_smoke_rerun_from_scratch_is_bit_identical(audited_run, tmp_path):
    """Same machine, same config and seeds: every compared metric is identical (throughput is not compared)."""
    runs, _ = audited_run
    again = tmp_path / "again"
    assert tinymath("run", "--profile", "smoke", runs=again).returncode == 0
    verdict = tmp_path / "verdict.json"
    result = tinymath("compare", str(again / "smoke" / "report" / "results"),
                      str(runs / "smoke" / "report" / "results"), "--out", str(verdict), runs=again)
    assert result.returncode == 0, result.stdout[-4000:]
    counts = json.loads(verdict.read_text())["data"]["counts"]
    assert counts["within measured variance"] == 0 and counts["outside"] == 0 and counts["identical"] > 100


def test_smoke_reproduces_committed_results(audited_run):
    runs, _ = audited_run
    result = tinymath("compare", str(runs / "smoke" / "report" / "results"), str(REPO / "results" / "smoke"),
                      runs=runs)
    assert result.returncode == 0, result.stdout[-4000:]
    lines = result.stdout.splitlines()
    assert lines[-2].startswith("reproduced:") and lines[-1].startswith("verdict: ")


def test_audit_catches_an_undeclared_read(tmp_path):
    """The audit itself: a stage that opens a file it did not declare is reported."""
    secret = REPO / "results" / "smoke" / "eval_base.json"
    cfg_path = tmp_path / "demo.yaml"
    cfg_path.write_text("seed: 0\n")

    class Peek(config.Section):
        seed: int = 0

    module = types.SimpleNamespace(Config=Peek, needs=lambda cfg: [], main=lambda cfg, run: secret.read_bytes())
    audit = OpenAudit()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(runner.STAGES, "peek", runner.StageSpec("peek", "none"))
        mp.setattr(runner, "load_stage", lambda stage: audit.wrap(stage, module))
        runner.run_stage("peek", cfg_path, runs=tmp_path / "runs")
    assert audit.violations == [("peek", str(secret))]

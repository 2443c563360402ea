"""The data stage's datatrove pipeline: the Ray executor against local, resume after kill -9, the paper plan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prepare_runs import cpu_config, distinct_texts, make_runs, run_prepare

from tinymath import manifest

REPO = Path(__file__).resolve().parents[2]


def packed_tree(out: Path) -> dict:
    return {"packed": manifest.hash_tree(out / "packed"), "stats": (out / "stats.json").read_text()}


@pytest.fixture
def ray_cluster():
    """A real local Ray cluster of 2 CPUs, stopped after the test."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_executor_packs_byte_identical_to_local(tmp_path, ray_cluster):
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    for root in (local_root, ray_root):
        make_runs(root, gsm_question=None)
    local = run_prepare(local_root, cpu_config(tasks=3, workers=1))
    assert ray_cluster.is_initialized() and ray_cluster.cluster_resources()["CPU"] == 2
    on_ray = run_prepare(ray_root, cpu_config(tasks=3, workers=2, executor="ray"))
    assert packed_tree(on_ray) == packed_tree(local)
    assert json.loads((on_ray / "stats.json").read_text())["dedup"]["removed"] == 20


def big_runs(root: Path) -> None:
    """make_runs with a corpus of 3,000 documents, so the stage runs long enough to be killed mid-way."""
    make_runs(root, gsm_question=None)
    corpus = root / "synth" / "corpus" / "documents.jsonl"
    families = ("worked_examples", "edu_english", "math_prose", "math_tables")
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "source": families[i % 4], "text": t}) + "\n"
                              for i, t in enumerate(distinct_texts(3000, seed=5))))


def prepare_cli(config: Path, runs: Path) -> list[str]:
    return [sys.executable, "-m", "tinymath", "prepare", "--config", str(config), "--runs", str(runs)]


def test_prepare_resumes_after_kill_9_skipping_finished_tasks(tmp_path):
    cfg = cpu_config(tasks=6, workers=1).model_dump(mode="json")
    cfg["decontamination"]["eval_sets"] = {}
    config = tmp_path / "resume.yaml"  # profile "resume": runs/resume/
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for runs in (whole, killed):
        big_runs(runs / "resume")
    subprocess.run(prepare_cli(config, whole), check=True, env=env, capture_output=True, cwd=REPO)

    proc = subprocess.Popen(prepare_cli(config, killed), env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    marks = killed / "resume" / ".prepare.work" / "pipeline" / "logs" / "tokenize" / "completions"
    deadline = time.monotonic() + 300
    while not (marks.is_dir() and len(os.listdir(marks)) >= 2) and proc.poll() is None:
        assert time.monotonic() < deadline, "the stage never reached its tokenize step"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the stage finished before it could be killed"
    done = len(os.listdir(marks))
    assert not (killed / "resume" / "prepare").exists()

    rerun = subprocess.run(prepare_cli(config, killed), env=env, capture_output=True, text=True, cwd=REPO)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "step read: 6 of 6 tasks already done, skipped" in rerun.stderr
    skipped = [line for line in rerun.stderr.splitlines() if "step tokenize:" in line and "skipped" in line]
    assert skipped and int(skipped[0].split("tokenize: ")[1].split(" of")[0]) >= done
    assert packed_tree(killed / "resume" / "prepare") == packed_tree(whole / "resume" / "prepare")


def test_paper_dry_run_prints_the_plan_offline_and_writes_sbatch_scripts(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "tinymath", "prepare", "--profile", "paper", "--dry-run",
                          "--runs", str(tmp_path)], env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    plan = out.stdout
    assert "fineweb_edu" in plan and "target 120,000,000,000 tokens, read 150,000,000,000" in plan
    for step, tasks in [("read", 2000), ("buckets", 14), ("cluster", 1), ("tokenize", 2000), ("mix", 1),
                        ("pack", 2000)]:
        assert f" {step} " in plan and f"{tasks:>6} task(s)" in plan
    rows = -(-300_000_000_000 // 4097)
    assert f"{rows:,} rows of 4097 = {-(-rows // 8192):,} shards" in plan
    assert "tinymath-prepare-read: 2000 task(s) in 2 array(s), 500 at once" in plan
    scripts = tmp_path / "paper" / "prepare-plan"
    read = (scripts / "1_read.slurm").read_text()
    assert "#SBATCH --partition=cpu" in read and "#SBATCH --time=10:00:00" in read
    assert "#SBATCH --cpus-per-task=1" in read and "#SBATCH --array=0-1000%500" in read
    submit = (scripts / "submit.sh").read_text().splitlines()
    assert sum("1_read.slurm" in line for line in submit) == 2  # 2,000 tasks: two arrays of at most 1,001
    assert "--dependency=afterok:$job1_0:$job1_1 2_buckets.slurm" in submit[5]
    assert not (tmp_path / "paper" / "prepare").exists()  # planned, not run

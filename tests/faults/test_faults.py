"""Faults a careless user, a crashing machine or a damaged disk produce: each gives a one-line error (exit 2 for bad
input, 1 for the machine), never a traceback, an exit 0 on failure, or a stage wrongly marked done.

Families: concurrent runs, verified up-to-date checks, checkpoint corruption, pickle refusal, damaged inputs,
config errors found at load or run time, malformed results, and unusual commands and paths.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tinymath import io, manifest, packed, runner
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.posttrain import common, sft

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONHASHSEED": "0"}


def tinymath(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinymath", *args], cwd=REPO, env=env or ENV, capture_output=True,
                          text=True, timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    err = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and err[-1].startswith("tinymath: error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in err[-1], err[-1]


@pytest.fixture(scope="module")
def smoke_synth(tmp_path_factory) -> Path:
    """runs/ with the smoke profile's synth and tokenizer stages done (seconds)."""
    runs = tmp_path_factory.mktemp("runs")
    for stage in ("synth", "tokenizer"):
        result = tinymath(stage, "--profile", "smoke", "--runs", str(runs))
        assert result.returncode == 0, result.stderr[-2000:]
    return runs


# --- concurrent runs -------------------------------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from tinymath.lock import profile_lock
with profile_lock(Path(sys.argv[1])):
    print("HELD", flush=True)
    time.sleep(300)
"""


def hold_lock(root: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "HELD"
    return proc


def test_second_run_on_a_locked_profile_fails_at_once_naming_the_holder(tmp_path):
    holder = hold_lock(tmp_path / "runs" / "smoke")
    try:
        result = tinymath("synth", "--profile", "smoke", "--runs", str(tmp_path / "runs"))
        assert_one_line_error(result, 2, "another tinymath run holds", f"pid {holder.pid}", "started ")
        result = tinymath("run", "--profile", "smoke", "--runs", str(tmp_path / "runs"))
        assert_one_line_error(result, 2, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "runs" / "smoke" / "synth").exists()


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    holder = hold_lock(tmp_path / "runs" / "smoke")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    result = tinymath("synth", "--profile", "smoke", "--runs", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr[-2000:]
    log = " ".join(result.stderr.split())  # the console wraps long lines
    assert "taking over a lock left by a process that no longer runs" in log and f"pid {holder.pid}," in log
    assert manifest.read_manifest(tmp_path / "runs" / "smoke" / "synth") is not None


# --- verified up-to-date checks --------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "has 100 bytes"),
    (lambda p: p.unlink(), "is missing"),
    (lambda p: p.write_bytes(p.read_bytes()[:-2] + b"9\n"), "sha256 differs"),
])
def test_damaged_output_reruns_its_stage(smoke_synth, tmp_path, damage, reason):
    runs = tmp_path / "runs"
    (runs / "smoke").mkdir(parents=True)
    os.system(f"cp -r {smoke_synth / 'smoke' / 'synth'} {runs / 'smoke' / 'synth'}")
    target = runs / "smoke" / "synth" / "gsm" / "train.jsonl"
    os.utime(target, ns=(1, 1)) if "sha256" in reason else None  # a changed mtime forces the rehash
    damage(target)
    result = tinymath("synth", "--profile", "smoke", "--runs", str(runs))
    assert result.returncode == 0 and reason in result.stderr, result.stderr[-2000:]
    record = manifest.read_manifest(runs / "smoke" / "synth")
    assert manifest.sha256_file(target) == record["outputs"]["gsm/train.jsonl"]


def test_stage_on_a_damaged_upstream_output_is_a_one_line_error(smoke_synth, tmp_path):
    """A single-stage command verifies what it reads, as `tinymath run` does before it skips."""
    runs = tmp_path / "runs"
    os.system(f"cp -r {smoke_synth} {runs}")
    target = runs / "smoke" / "synth" / "corpus" / "documents.jsonl"
    target.write_bytes(target.read_bytes()[:100])
    before = (runs / "smoke" / "tokenizer" / "manifest.json").read_text()
    assert_one_line_error(tinymath("tokenizer", "--profile", "smoke", "--runs", str(runs), "--force"), 2,
                          "needs synth", "corpus/documents.jsonl has 100 bytes", "tinymath synth --profile smoke")
    assert (runs / "smoke" / "tokenizer" / "manifest.json").read_text() == before


def test_evaluating_a_model_waits_for_no_run_of_the_profile(smoke_synth, tmp_path):
    """eval --model writes below runs/<profile>/ and reads its test sets: not while a run holds the profile."""
    runs = tmp_path / "runs"
    os.system(f"cp -r {smoke_synth} {runs}")
    holder = hold_lock(runs / "smoke")
    try:
        result = tinymath("eval", "--model", str(tmp_path / "model"), "--name", "m", "--profile", "smoke", "--runs",
                          str(runs))
        assert_one_line_error(result, 2, "another tinymath run holds", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert not (runs / "smoke" / "eval-models").exists()


def test_failed_rerun_keeps_the_finished_result(smoke_synth, tmp_path):
    """A check that fails inside a stage (a vocabulary the corpus cannot give) removes nothing that was done."""
    runs = tmp_path / "runs"
    os.system(f"cp -r {smoke_synth} {runs}")
    before = (runs / "smoke" / "tokenizer" / "manifest.json").read_text()
    for extra in ([], ["--force"]):
        result = tinymath("tokenizer", "--profile", "smoke", "--runs", str(runs), "--set", "vocab_size=60000", *extra)
        assert_one_line_error(result, 2, "vocab_size 60000", "too small")
        assert (runs / "smoke" / "tokenizer" / "manifest.json").read_text() == before


# --- checkpoint corruption -------------------------------------------------------------------------------------------

def fake_checkpoint(out: Path, step: int) -> Path:
    """A transformers-style checkpoint: safetensors weights, a zip optimizer file, a trainer state."""
    path = out / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32)}, path / "model.safetensors")
    torch.save({"state": torch.ones(64)}, path / "optimizer.pt")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


@pytest.mark.parametrize("damage", ["weights", "optimizer", "state"])
def test_damaged_latest_trainer_checkpoint_falls_back_to_an_older_one(tmp_path, damage, caplog):
    out = tmp_path / "checkpoints"
    fake_checkpoint(out, 2)
    latest = fake_checkpoint(out, 4)
    (out / common.DIGEST_FILE).write_text("d")
    file = {"weights": "model.safetensors", "optimizer": "optimizer.pt", "state": "trainer_state.json"}[damage]
    (latest / file).write_bytes((latest / file).read_bytes()[:10])
    with caplog.at_level("WARNING", logger="tinymath"):
        assert common.resume_point(out, "d").endswith("checkpoint-2")
    assert "checkpoint-4 is damaged" in caplog.text and not latest.exists()


def test_only_checkpoint_damaged_means_a_clean_start(tmp_path):
    out = tmp_path / "checkpoints"
    only = fake_checkpoint(out, 4)
    (out / common.DIGEST_FILE).write_text("d")
    with zipfile.ZipFile(only / "optimizer.pt") as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the tensor data
    data = bytearray((only / "optimizer.pt").read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + 8] ^= 0xFF  # a byte of the tensor data flipped
    (only / "optimizer.pt").write_bytes(bytes(data))
    assert common.resume_point(out, "d") is None and not only.exists()


# --- pickle refusal --------------------------------------------------------------------------------------------------

def pickled_model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (path / "tokenizer.json").write_text("{}")
    torch.save({"w": torch.ones(2)}, path / "pytorch_model.bin")
    return path


def test_post_training_refuses_pickled_weights(tmp_path):
    with pytest.raises(UserError, match=r"no \*\.safetensors weights \(found pickled pytorch_model\.bin: never"):
        common.load_model(pickled_model_dir(tmp_path / "model"))


def test_evaluation_refuses_pickled_weights(tmp_path):
    from tinymath.eval.harness import load_model

    with pytest.raises(UserError, match="found pickled pytorch_model.bin"):
        load_model(load_config(runner.config_path("eval", "smoke"), runner.load_stage("eval").Config),
                   pickled_model_dir(tmp_path / "model"))


# --- damaged inputs --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ('{"question": "q", "answer": "#### 1"}\n{"question": \n', r"train\.jsonl:2: invalid JSON"),
    ("", r"train\.jsonl: empty file"),
    ('{"question": "q"}\n', r"train\.jsonl:1: missing key\(s\) answer"),
    ('[1, 2]\n', r"train\.jsonl:1: expected a JSON object, got list"),
    (b"\xff\xfe\x00", r"train\.jsonl: not UTF-8 text"),
])
def test_damaged_training_jsonl_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "synth" / "gsm" / "train.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run = runner.Run("sft", "t", tmp_path / "sft", tmp_path, tmp_path / "t.yaml")
    with pytest.raises(UserError, match=message) as e:
        common.load_records(common.Source(format="gsm8k", path="gsm/train.jsonl"), run)
    assert "\n" not in str(e.value)


def write_packed(directory: Path, rows: int = 4, seq_len: int = 8) -> None:
    directory.mkdir(parents=True)
    arrays = {k: np.ones((rows, seq_len + 1), np.int32) for k in packed.ARRAYS}
    packed.write_shard(directory, "train-00000", arrays)
    packed.write_index(directory, seq_len, 100, {"train": [{"name": "train-00000", "rows": rows}]})


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "train-00000.tokens.npy").write_bytes((d / "train-00000.tokens.npy").read_bytes()[:150]),
     "unreadable shard array"),
    (lambda d: np.save(d / "train-00000.positions.npy", np.ones((4, 9), np.int64)), "expected int32 [4, 9]"),
    (lambda d: np.save(d / "train-00000.segment_ids.npy", np.ones((3, 9), np.int32)), "got int32 [3, 9]"),
    (lambda d: (d / "index.json").write_text("{"), "index.json: not valid JSON"),
    (lambda d: (d / "index.json").write_text('{"format": "other"}'), "format: expected 'tinymath-packed-v1'"),
])
def test_damaged_packed_shards_are_one_line_errors(tmp_path, damage, message):
    write_packed(tmp_path / "packed")
    damage(tmp_path / "packed")
    with pytest.raises(UserError, match=message.replace("[", r"\[")) as e:
        packed.PackedSplit(tmp_path / "packed", "train")
    assert "\n" not in str(e.value)


def test_damaged_weights_and_tokenizer_files_are_one_line_errors(tmp_path):
    weights = tmp_path / "params.safetensors"
    save_file({"w": torch.ones(256)}, weights)
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(UserError, match="params.safetensors: damaged safetensors file"):
        io.read_safetensors(weights)
    (tmp_path / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(UserError, match="tokenizer.json: not a valid tokenizer file"):
        io.read_tokenizer(tmp_path / "tokenizer.json")


def test_truncated_model_weights_are_a_one_line_error_before_loading(tmp_path):
    path = pickled_model_dir(tmp_path / "model")
    (path / "pytorch_model.bin").unlink()
    save_file({"w": torch.ones(256)}, path / "model.safetensors")
    (path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:200])
    with pytest.raises(UserError, match=r"model\.safetensors: damaged safetensors file") as e:
        common.load_model(path)
    assert "\n" not in str(e.value)


def test_tokenizer_corpus_line_without_its_field_is_a_one_line_error(tmp_path):
    from tinymath.tokenizer import synth_texts

    for rel, row in (("corpus/documents.jsonl", {"txt": "a"}), ("gsm/train.jsonl", {"question": "q", "answer": "a"}),
                     ("math/train.jsonl", {"problem": "p", "solution": "s"})):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"documents\.jsonl:1: missing key\(s\) text"):
        list(synth_texts(tmp_path))


def test_empty_tokenizer_corpus_is_an_error_not_a_tiny_vocabulary(smoke_synth, tmp_path):
    runs = tmp_path / "runs"
    os.system(f"cp -r {smoke_synth} {runs}")
    synth = runs / "smoke" / "synth"
    for rel in ("corpus/documents.jsonl", "gsm/train.jsonl", "math/train.jsonl"):
        (synth / rel).write_text('{"id": 0, "source": "x", "text": "a", "question": "a", "answer": "b", '
                                 '"problem": "a", "solution": "b"}\n')
    (synth / "manifest.json").write_text(json.dumps({**manifest.read_manifest(synth), **manifest.output_record(synth)}))
    result = tinymath("tokenizer", "--profile", "smoke", "--runs", str(runs), "--force")
    assert_one_line_error(result, 2, "yield only", "too small or empty")


@pytest.mark.parametrize("workers", [1, 2])  # in process, and in datatrove's worker processes
def test_damaged_corpus_line_is_a_one_line_error_from_the_data_pipeline(smoke_synth, tmp_path, workers):
    runs = tmp_path / "runs"
    os.system(f"cp -r {smoke_synth} {runs}")
    corpus = runs / "smoke" / "synth" / "corpus" / "documents.jsonl"
    lines = corpus.read_text().splitlines(keepends=True)
    corpus.write_text("".join(lines[:4]) + '{"id": 4, "source": \n' + "".join(lines[5:]))
    synth = runs / "smoke" / "synth"  # as if synth itself had written the bad line: its manifest agrees
    manifest.write_json_atomic(synth / manifest.MANIFEST,
                               {**manifest.read_manifest(synth), **manifest.output_record(synth)})
    result = tinymath("prepare", "--profile", "smoke", "--runs", str(runs), "--set", "tasks=2",
                      "--set", f"workers={workers}")
    assert_one_line_error(result, 2, f"{corpus}:5: invalid JSON")


# --- config errors ---------------------------------------------------------------------------------------------------

def test_trainer_values_are_typed_like_the_trl_fields():
    cfg = load_config(runner.config_path("sft", "cpu"), sft.Config, ["trainer.learning_rate='1e-5'"])
    assert cfg.trainer["learning_rate"] == 1e-5 and isinstance(cfg.trainer["learning_rate"], float)
    with pytest.raises(UserError, match=r"trainer\.max_steps of type int, got 'lots'") as e:
        load_config(runner.config_path("sft", "cpu"), sft.Config, ["trainer.max_steps=lots"])
    assert "\n" not in str(e.value)


def test_config_inheritance_errors_are_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(UserError, match=r"inheritance loops back to a\.yaml \(a\.yaml -> b\.yaml -> a\.yaml\)"):
        load_config(tmp_path / "a.yaml", sft.Config)
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(UserError, match=r"missing\.yaml: config file not found \(the base of .*c\.yaml\)"):
        load_config(tmp_path / "c.yaml", sft.Config)
    (tmp_path / "d.yaml").write_text("base: [x]\n")
    with pytest.raises(UserError, match=r"key 'base': expected a file name, got \['x'\]"):
        load_config(tmp_path / "d.yaml", sft.Config)


def test_cli_config_errors_exit_2_without_traceback(tmp_path):
    assert_one_line_error(tinymath("sft", "--profile", "cpu", "--set", "trainer.max_steps=lots"), 2, "max_steps")
    assert_one_line_error(tinymath("run", "--profile", "smoek"), 2, "--profile 'smoek': expected one of")


# --- malformed results, unusual paths and commands -------------------------------------------------------------------

def test_compare_on_malformed_results_exits_2_not_1(tmp_path):
    fresh = tmp_path / "fresh"
    os.system(f"cp -r {REPO / 'results' / 'smoke'} {fresh}")
    doc = json.loads((fresh / "sft.json").read_text())
    doc["data"]["summary"]["final_loss"] = "low"
    (fresh / "sft.json").write_text(json.dumps(doc))
    assert_one_line_error(tinymath("compare", str(fresh), str(REPO / "results" / "smoke")), 2, "sft.json",
                          "expected a number")
    assert_one_line_error(tinymath("compare", str(tmp_path / "none"), str(REPO / "results" / "smoke")), 2,
                          "no results files")


def test_runs_path_that_is_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "runs").write_text("not a directory")
    assert_one_line_error(tinymath("synth", "--profile", "smoke", "--runs", str(tmp_path / "runs")), 1,
                          str(tmp_path / "runs"))


FULL_DISK_ON_JSON_WRITE = """
import errno, sys
from tinymath import cli, manifest
def full(path, obj):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))
manifest.write_json_atomic = full
sys.exit(cli.main(sys.argv[1:]))
"""


def test_full_disk_during_a_stage_is_one_line_and_leaves_it_not_done(tmp_path):
    runs = tmp_path / "runs"
    args = ["synth", "--profile", "smoke", "--runs", str(runs)]
    result = subprocess.run([sys.executable, "-c", FULL_DISK_ON_JSON_WRITE, *args], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert_one_line_error(result, 1, "No space left on device", ".synth.work")  # names the file it could not write
    assert not (runs / "smoke" / "synth").exists()
    rerun = tinymath(*args)
    assert rerun.returncode == 0 and "running (no manifest)" in rerun.stderr, rerun.stderr[-2000:]


def test_empty_runs_environment_variable_is_a_user_error_not_the_working_directory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinymath", "synth", "--profile", "smoke"], cwd=tmp_path,
                            env={**ENV, "TINYMATH_RUNS": ""}, capture_output=True, text=True, timeout=600)
    assert_one_line_error(result, 2, "TINYMATH_RUNS", "empty")
    assert list(tmp_path.iterdir()) == []


def test_report_commands_on_missing_results_are_errors(tmp_path):
    assert_one_line_error(tinymath("report", "figures", "--results", str(tmp_path / "none"), "--out",
                                   str(tmp_path / "f")), 2, "not a directory")
    assert not (tmp_path / "f").exists()


def test_reproduce_sh_rejects_an_unknown_mode_before_installing(tmp_path):
    result = subprocess.run(["bash", str(REPO / "reproduce.sh"), "smoek"], capture_output=True, text=True,
                            env={**ENV, "VENV": str(tmp_path / "venv")}, timeout=60)
    assert result.returncode == 2 and "unknown mode 'smoek'" in result.stderr
    assert not (tmp_path / "venv").exists()

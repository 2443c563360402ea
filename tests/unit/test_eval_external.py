"""`tinymath eval --model` on tiny local HF models (with and without a chat template), and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_runs import write_tiny_model

from tinymath import cli, manifest, paths
from tinymath.eval.external import MODELS_DIR, NO_TEMPLATE
from tinymath.report import results

GSM_ROWS = [{"question": f"Tom has {i} apples and buys {i + 2} more. How many apples does he have now?",
             "answer": f"He has {i} + {i + 2} = {2 * i + 2} apples.\n#### {2 * i + 2}"} for i in range(4)]





@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("models")
    return {"chat": write_tiny_model(tmp / "chat", tiny_tokenizer),
            "plain": write_tiny_model(tmp / "plain", tiny_tokenizer, chat_template=False)}


@pytest.fixture()
def setup(tmp_path) -> tuple[Path, Path]:
    """A config of profile `test` (a few-shot and a chat suite, 2 problems each) and a runs root with its synth."""
    synth = tmp_path / "runs" / "test" / "synth"
    for split in ("test", "train"):
        (synth / "gsm").mkdir(parents=True, exist_ok=True)
        (synth / "gsm" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM_ROWS))
    manifest.write_json_atomic(synth / manifest.MANIFEST, {"outputs": {}})
    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump({
        "batch_size": 2, "threads": 1, "max_gen_toks": 4, "limit": 2, "bootstrap_samples": 200,
        "suites": {"paper": {"models": ["base"], "tasks": {"synth_gsm": {"num_fewshot": 1}}},
                   "chat": {"models": ["sft"], "chat": True, "tasks": {"synth_gsm": {}}}}}))
    return config, tmp_path / "runs"


def _eval(model: Path | str, name: str, config: Path, runs: Path) -> int:
    return cli.main(["eval", "--model", str(model), "--name", name, "--config", str(config), "--runs", str(runs)])


def test_eval_model_with_chat_template_runs_every_suite(models, setup):
    config, runs = setup
    assert _eval(models["chat"], "tiny-chat", config, runs) == 0
    out = runs / "test" / MODELS_DIR / "tiny-chat"
    doc = json.loads((out / "eval_tiny-chat.json").read_text())
    assert doc["model"] == "tiny-chat" and doc["skipped"] == {}
    assert doc["source"] == {"spec": str(models["chat"]), "hub_id": None, "revision": None, "commit": None}
    assert set(doc["tasks"]) == {"paper_synth_gsm/strict-match", "paper_synth_gsm/flexible-extract",
                                 "chat_synth_gsm/accuracy"}
    for entry in doc["tasks"].values():
        assert entry["n"] == 2 and entry["correct"].count("1") / 2 == entry["value"]
    assert doc["tasks"]["chat_synth_gsm/accuracy"]["settings"]["chat_template"] is True
    results.envelope("eval", "eval_tiny-chat", "test", {k: None for k in results.REPRODUCED_PROVENANCE}, doc)
    rows = (out / "chat_synth_gsm" / "samples.jsonl").read_text().splitlines()
    assert len(rows) == 2 and "<|im_start|>system" in json.loads(rows[0])["prompt"]
    record = manifest.read_manifest(out)
    assert record["command"].startswith("tinymath eval --model") and "samples.jsonl" in str(record["outputs"])
    assert not (runs / "test" / MODELS_DIR / ".tiny-chat.work").exists()


def test_eval_model_without_chat_template_skips_the_chat_suite(models, setup, capsys):
    config, runs = setup
    assert _eval(models["plain"], "tiny-plain", config, runs) == 0
    doc = json.loads((runs / "test" / MODELS_DIR / "tiny-plain" / "eval_tiny-plain.json").read_text())
    assert set(doc["tasks"]) == {"paper_synth_gsm/strict-match", "paper_synth_gsm/flexible-extract"}
    assert doc["skipped"] == {"chat_synth_gsm": NO_TEMPLATE}
    assert "tiny-plain has no chat template: skipping the chat suite (chat_synth_gsm)" in capsys.readouterr().err


def test_eval_model_local_dir_that_is_no_model_is_one_line(tmp_path, setup, capsys):
    config, runs = setup
    (tmp_path / "notamodel").mkdir()
    assert _eval(tmp_path / "notamodel", "x", config, runs) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tinymath: error: {tmp_path / 'notamodel'}: no config.json (not a Hugging Face model directory)"]


def test_eval_model_offline_hub_id_is_one_line_naming_it(setup):
    config, runs = setup
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(runs / "hf-home"),
           "PYTHONPATH": str(paths.REPO / "code")}
    proc = subprocess.run([sys.executable, "-m", "tinymath", "eval", "--model", "TinyLlama/TinyLlama_v1.1@main",
                           "--config", str(config), "--runs", str(runs)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert errors[0].startswith("tinymath: error: --model TinyLlama/TinyLlama_v1.1@main: cannot fetch")
    assert not (runs / "test" / MODELS_DIR).exists()


def test_eval_model_rejects_a_name_that_is_no_file_name(models, setup):
    config, runs = setup
    assert _eval(models["chat"], "../escape", config, runs) == 2
    assert not (runs / "test" / MODELS_DIR).exists()


def test_report_collects_a_model_eval_into_the_paper_hub_table(models, tmp_path, shared_data):
    from tinymath import runner
    from tinymath.config import load_config
    from tinymath.eval import Config
    from tinymath.report import collect, paper_numbers

    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump({
        "batch_size": 2, "threads": 1, "max_gen_toks": 4, "limit": 2, "bootstrap_samples": 200,
        "data_dir": str(shared_data),
        "suites": {"paper": {"models": ["base"], "tasks": {"gsm8k": {"num_fewshot": 1}}}}}))
    runs = tmp_path / "runs"
    assert _eval(models["chat"], "qwen2.5-0.5b", config, runs) == 0
    run = runner.Run("report", "test", runs / "test" / ".report.work", runs / "test", config)
    docs = {d["name"]: d for d in collect.collect_model_evals(run)}
    assert list(docs) == ["model_qwen2.5-0.5b"] and docs["model_qwen2.5-0.5b"]["kind"] == "model_eval"
    measured = docs["model_qwen2.5-0.5b"]["data"]["tasks"]["paper_gsm8k/flexible-extract"]["value"]

    files = collect.model_eval_files(runs / "test")  # declared to the runner: a new model eval makes the report stale
    assert [f.name for f in files] == ["manifest.json", "eval_qwen2.5-0.5b.json"]
    report = runner.load_stage("report")
    report_cfg = load_config(runner.config_path("report", "cpu"), report.Config)
    assert set(files) <= set(runner.external_inputs(report, report_cfg, runs / "test"))

    reported = results.load(paths.RESULTS / "reported" / "released_model_cards.json")
    rows = paper_numbers.hub_table(docs, reported).split(r"\endhead")[1].splitlines()
    qwen = next(r for r in rows if r.startswith(r"\texttt{Qwen/\allowbreak{}Qwen2.\allowbreak{}5-0.\allowbreak{}5B}"))
    assert qwen.endswith(f"& {100 * measured:.1f} & -- & -- & -- & -- \\\\")
    hub = load_config(runner.config_path("eval", "paper"), Config).hub_models
    assert sum("not measured" in r for r in rows) == len(hub) - 1
    quoted = [r for r in rows if r.startswith(r"\quad quoted")]
    grpo = reported["data"]["models"]["grpo"]
    assert len(quoted) == 3 and quoted[2].endswith(
        " & ".join(f"{grpo[b]:.1f}" for b in paper_numbers.HUB_COLUMNS) + r" \\")

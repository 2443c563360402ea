"""`tinymath eval` on a tiny random model: real lm-eval runs on local data, outputs, settings and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tinymath import manifest, runner
from tinymath.answer import arithmetic_steps
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.eval import Config, external_inputs, main, needs
from tinymath.eval.harness import load_model
from tinymath.eval.scoring import arithmetic, process_gsm, process_math
from tinymath.eval.tasks import STOP_STRINGS, Planned, task_yaml
from tinymath.io import check_model_dir

ARC_ROWS = [{"id": f"q{i}", "question": f"Which number is larger, {i} or {i + 5}?",
             "choices": {"text": [str(i), str(i + 5)], "label": ["A", "B"]}, "answerKey": "B"} for i in range(3)]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random 2-layer LlamaForCausalLM with the project's tokenizer and chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tinymath import specials

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, bos_token_id=None, eos_token_id=specials.IM_END_ID,
                      pad_token_id=specials.PAD_ID)
    out = tmp_path_factory.mktemp("model")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _done(stage_dir: Path) -> None:
    manifest.write_json_atomic(stage_dir / manifest.MANIFEST, {"outputs": {}})


@pytest.fixture()
def runs(tmp_path, tiny_model_dir, shared_data) -> Path:
    """runs/<profile> with the tiny model as every stage's model and real-data slices as the synthetic splits."""
    root = tmp_path / "runs" / "test"
    for stage, sub in (("convert", "hf"), ("sft", "model"), ("grpo", "model")):
        shutil.copytree(tiny_model_dir, root / stage / sub)
        _done(root / stage)
    gsm = [json.loads(x) for x in (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:3]]
    math = [json.loads(x) for x in (shared_data / "math" / "test500.jsonl").read_text().splitlines()[:3]]
    synth = root / "synth"
    _write_jsonl(synth / "gsm" / "test.jsonl", gsm)
    _write_jsonl(synth / "gsm" / "train.jsonl", gsm)
    _write_jsonl(synth / "gsm" / "test_meta.jsonl",
                 [{"id": i, "level": 1 + i % 2, "novel_arithmetic": i == 0} for i in range(3)])
    _write_jsonl(synth / "math" / "test.jsonl", math)
    _done(synth)
    _write_jsonl(tmp_path / "arc" / "test.jsonl", ARC_ROWS)
    return root


def _config(tmp_path: Path, shared_data: Path, **extra) -> Config:
    """The paper suite (with a local ARC copy) and the chat suite, 2 problems each, as one config file."""
    data = {"batch_size": 2, "threads": 1, "max_gen_toks": 6, "limit": 2, "bootstrap_samples": 200,
            "data_dir": str(shared_data),
            "suites": {"paper": {"models": ["base"], "tasks": {
                "synth_gsm": {"num_fewshot": 2}, "math500": {"num_fewshot": 4},
                "arc_easy": {"num_fewshot": 0, "data_files": {"test": str(tmp_path / "arc" / "test.jsonl")}},
                "mmlu": {"num_fewshot": 5}}},
                "chat": {"models": ["sft"], "chat": True, "tasks": {"gsm8k": {}, "synth_math": {}}}}, **extra}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, Config)


def test_eval_main_writes_samples_and_results_in_pipeline_format(tmp_path, runs, shared_data, monkeypatch):
    monkeypatch.setattr(runner, "hub_reachable", lambda: False)
    cfg = _config(tmp_path, shared_data)
    assert needs(cfg) == ["convert", "sft", "synth"]
    assert shared_data / "math" / "test500.jsonl" in external_inputs(cfg, runs)
    run = runner.Run("eval", "test", runs / "eval", runs, tmp_path / "eval.yaml")
    main(cfg, run)
    base = json.loads((run.dir / "eval_base.json").read_text())
    assert base["model"] == "base" and base["model_dir"] == "convert/hf"
    assert set(base["tasks"]) == {"paper_synth_gsm/strict-match", "paper_synth_gsm/flexible-extract",
                                  "paper_math500/exact_match", "paper_math500/math_verify",
                                  "paper_arc_easy/acc", "paper_arc_easy/acc_norm"}
    assert "unreachable" in base["skipped"]["paper_mmlu"]
    entry = base["tasks"]["paper_synth_gsm/strict-match"]
    assert set(entry) == {"n", "metric", "value", "stderr", "ci95", "subsets", "settings", "correct"}
    assert entry["n"] == 2 and entry["metric"] == "exact_match,strict-match"
    assert len(entry["correct"]) == 2 and entry["correct"].count("1") / 2 == entry["value"]
    assert entry["ci95"][0] <= entry["value"] <= entry["ci95"][1]
    assert set(entry["subsets"]) == {"level_1", "level_2", "novel_arithmetic"}
    assert entry["subsets"]["novel_arithmetic"]["n"] == 1
    settings = entry["settings"]
    assert settings["num_fewshot"] == 2 and settings["lm_eval_version"] and settings["scorer"] == "lm-eval"
    assert settings["generation_kwargs"]["max_gen_toks"] == 6
    assert settings["data"]["test"]["path"] == "synth/gsm/test.jsonl"
    assert len(settings["data"]["test"]["sha256"]) == 64
    assert set(STOP_STRINGS) <= set(settings["generation_kwargs"]["until"])
    assert {f["name"] for f in settings["filters"]} == {"strict-match", "flexible-extract"}
    math_entry = base["tasks"]["paper_math500/math_verify"]
    assert set(math_entry["subsets"]) <= {f"level_{i}" for i in range(1, 6)}

    sft = json.loads((run.dir / "eval_sft.json").read_text())
    assert set(sft["tasks"]) == {"chat_gsm8k/accuracy", "chat_synth_math/accuracy"}
    chat = sft["tasks"]["chat_gsm8k/accuracy"]["settings"]
    assert chat["chat_template"] and len(chat["chat_template_sha256"]) == 64
    assert chat["scorer"] == "tinymath.answer.is_correct" and chat["num_fewshot"] == 0
    assert chat["generation_kwargs"]["until"] == STOP_STRINGS
    counts = sft["tasks"]["chat_gsm8k/accuracy"]["arithmetic"]
    assert set(counts) == {"steps", "false_steps", "wrong_answers", "wrong_with_false_step"}
    assert 0 <= counts["wrong_with_false_step"] <= counts["wrong_answers"] <= 2
    assert "arithmetic" not in entry  # few-shot generations need not write calculations out

    rows = [json.loads(x) for x in (run.dir / "sft" / "chat_gsm8k" / "samples.jsonl").read_text().splitlines()]
    assert [r["doc_id"] for r in rows] == [0, 1]
    assert rows[0]["gold"] == "18" and "<|im_start|>system" in rows[0]["prompt"]
    assert set(rows[0]) >= {"prompt", "generation", "extracted", "gold", "correct"}
    arc = [json.loads(x) for x in (run.dir / "base" / "paper_arc_easy" / "samples.jsonl").read_text().splitlines()]
    assert arc[0]["gold"] == 1 and arc[0]["choices"] == [" 0", " 5"] and arc[0]["extracted"]["none"] in (0, 1)


def test_process_results_score_a_correct_chat_answer():
    doc = {"question": "q", "answer": "work\n#### 1,200"}
    assert process_gsm(doc, ["<think>\nx\n</think>\nThe final answer is \\boxed{1200}."]) == {"accuracy": 1.0}
    assert process_gsm(doc, ["The final answer is \\boxed{120}."]) == {"accuracy": 0.0}
    assert process_gsm(doc, ["The final answer is 1200."]) == {"accuracy": 0.0}  # the answer form boxes it
    math_doc = {"problem": "p", "solution": "so $\\boxed{\\frac{1}{2}}$", "answer": "1/2"}
    assert process_math(math_doc, ["The final answer is \\boxed{0.5}."]) == {"accuracy": 1.0}


@pytest.mark.parametrize("text, expected", [
    ("Then she has 9 - 1 = 9 cards.", (1, 1)),
    ("Then she has 9 - 1 = 8 cards.", (1, 0)),
    ("480 * 30 / 100 = 144 workers like pizza.", (1, 0)),   # several operators, exact division
    ("2 + 3 * 4 = 14, not 2 + 3 * 4 = 20.", (2, 1)),        # the usual precedence
    ("He pays $12 x 3 = $36. Then 7 / 2 = 3.5 hours.", (2, 0)),  # amounts in $, `x`, a decimal result
    ("Each box holds 5 / 0 = 1 pen.", (1, 1)),               # a division by zero is false
    ("10 - 2 - 3 = 5 and 12 / 4 / 3 = 1", (2, 0)),             # left to right within a precedence level
    ("He keeps 410 - 002 = 408 stamps.", (1, 0)),              # numbers as a small model writes them
    ("He has 12 apples and 3 pears = 15 fruits.", (0, 0)),   # words between the numbers: not a calculation
    ("<<84*5=420>>420 miles", (0, 0)),                       # calculator annotations are not written steps
])
def test_arithmetic_steps_counts_written_calculations_and_false_ones(text, expected):
    assert arithmetic_steps(text) == expected


def test_arithmetic_counts_false_steps_in_wrong_answers():
    generations = ["9 - 1 = 9 so \\boxed{9}", "9 - 1 = 8 so \\boxed{8}", "4 + 4 = 8, 8 / 2 = 5 so \\boxed{5}",
                   "guess \\boxed{7}"]
    assert arithmetic(generations, [0.0, 1.0, 0.0, 0.0]) == {
        "steps": 4, "false_steps": 2, "wrong_answers": 3, "wrong_with_false_step": 2}


def test_task_yaml_overrides_only_data_stops_and_length(tmp_path):
    data = {"test": "/d/test.jsonl", "train": "/d/train.jsonl"}
    item = Planned("paper", "gsm8k", "paper_gsm8k", "paper_gsm8k", 8, False, data, None, None)
    doc = yaml.safe_load(task_yaml(item, 64))
    assert doc["include"].endswith("lm_eval/tasks/gsm8k/gsm8k.yaml")
    assert set(doc) == {"include", "task", "tag", "dataset_path", "dataset_name", "dataset_kwargs", "training_split",
                        "test_split", "fewshot_split", "generation_kwargs"}
    assert doc["generation_kwargs"]["until"] == ["Question:", "</s>", "<|im_end|>", "<|endoftext|>"]
    assert doc["generation_kwargs"]["max_gen_toks"] == 64 and doc["generation_kwargs"]["do_sample"] is False


@pytest.mark.parametrize("task, message", [("gsm9k", "unknown task 'gsm9k'"), ("hellaswag", "no final answer")])
def test_config_rejects_bad_chat_task_in_one_line(tmp_path, task, message):
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({"suites": {"chat": {"models": ["sft"], "chat": True, "tasks": {task: {}}}}}))
    with pytest.raises(UserError, match=message) as err:
        load_config(path, Config)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("remove, message", [("model.safetensors", "no \\*.safetensors"),
                                             ("tokenizer.json", "no tokenizer"), ("config.json", "no config.json")])
def test_check_model_dir_rejects_incomplete_dir(tmp_path, tiny_model_dir, remove, message):
    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    (model / remove).unlink()
    if remove == "tokenizer.json":
        (model / "tokenizer_config.json").unlink()
    with pytest.raises(UserError, match=message):
        check_model_dir(model)


def test_eval_rejects_unreadable_data_file(tmp_path, runs, shared_data, monkeypatch):
    monkeypatch.setattr(runner, "hub_reachable", lambda: False)
    (runs / "synth" / "gsm" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\nnot json\n')
    run = runner.Run("eval", "test", runs / "eval", runs, tmp_path / "eval.yaml")
    with pytest.raises(UserError, match=r"test.jsonl:2: invalid JSON"):
        main(_config(tmp_path, shared_data), run)


def test_vllm_backend_without_vllm_is_a_user_error(tmp_path, tiny_model_dir, shared_data, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(UserError, match="vllm"):
        load_model(_config(tmp_path, shared_data, backend="vllm"), tiny_model_dir)


def test_plan_skips_real_task_without_local_copy_or_hub(tmp_path, runs, shared_data):
    from tinymath.eval.tasks import plan

    cfg = _config(tmp_path, shared_data, data_dir=str(tmp_path / "absent"))
    planned, skipped = plan(cfg, runs / "synth", hub=False)
    assert "paper_math500" not in [p.harness_name for p in planned]
    assert skipped["paper_math500"]["suite"] == "paper"
    reason = skipped["paper_math500"]["reason"]
    assert "test500.jsonl" in reason and "unreachable" in reason
    planned, skipped = plan(cfg, runs / "synth", hub=True)
    assert next(p for p in planned if p.task == "math500").data == {"hub": "HuggingFaceH4/MATH-500"}
    mmlu = next(p for p in planned if p.task == "mmlu")
    assert (mmlu.name, mmlu.harness_name, mmlu.num_fewshot) == ("paper_mmlu", "mmlu", 5)
    assert skipped == {}


def test_cli_eval_model_without_weights_exits_2_with_one_line(tmp_path, runs, shared_data, capsys):
    from tinymath import cli

    (runs / "sft" / "model" / "model.safetensors").unlink()
    config = tmp_path / "test.yaml"  # profile "test" = the runs fixture's profile
    config.write_text(yaml.safe_dump(_config(tmp_path, shared_data).model_dump(mode="json")))
    assert cli.main(["eval", "--config", str(config), "--runs", str(runs.parent)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tinymath: error:")]
    assert len(errors) == 1 and errors[0].endswith("sft/model: no *.safetensors weights")

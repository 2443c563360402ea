"""SFT stage: data formatting, loss mask, packing isolation, token addition, config checks, a tiny real run."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from tiny_runs import MATH, gsm_records, make_upstream, tiny_model
from transformers import LlamaConfig, LlamaForCausalLM
from trl import SFTConfig, SFTTrainer

from tinymath import runner, specials
from tinymath.answer import SYSTEM_PROMPT, follows_format
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.posttrain import chat, common, sft

GSM = {"question": "Tom has 3 boxes of 12 pens and gives away 5. How many pens are left?",
       "answer": "He has 3 * 12 = <<3*12=36>>36 pens.\nHe keeps 36 - 5 = <<36-5=31>>31 pens.\n#### 31"}



def test_gsm_conversation_drops_annotations_and_final_line():
    system, user, assistant = chat.from_gsm8k(GSM)
    assert system == {"role": "system", "content": SYSTEM_PROMPT} and user["content"] == GSM["question"]
    assert "<<" not in assistant["content"] and "####" not in assistant["content"]
    assert "He keeps 36 - 5 = 31 pens." in assistant["content"]
    assert assistant["content"].endswith("\\boxed{31}.") and follows_format(assistant["content"])


def test_math_conversation_boxes_record_answer():
    assistant = chat.from_math(MATH)[-1]["content"]
    assert follows_format(assistant) and assistant.endswith("\\boxed{\\frac{3}{4}}.")


def test_hub_formats_extract_final_answer_or_drop():
    meta = chat.from_metamathqa({"query": "What is 2+2?", "response": "2 + 2 = 4.\nThe answer is: 4"})
    assert meta[-1]["content"].endswith("\\boxed{4}.") and "The answer is" not in meta[-1]["content"]
    cot = chat.from_mathinstruct({"instruction": "q", "output": "So x = 7. The answer is 7.",
                                  "source": "data/CoT/gsm_rft.json"})
    assert cot[-1]["content"].endswith("\\boxed{7}.")
    pot = {"instruction": "q", "output": "print(2 + 2)", "source": "data/PoT/mathqa.json"}
    assert chat.from_mathinstruct(pot) is None
    assert chat.from_metamathqa({"query": "q", "response": "no final answer here"}) is None


def test_gsm_conversation_boxes_normalised_final_number():
    rec = {"question": "q", "answer": "He pays 1,000 + 234 = <<1000+234=1234>>1,234 dollars.\n#### 1,234"}
    assert chat.from_gsm8k(rec)[-1]["content"].endswith("\\boxed{1234}.")
    with pytest.raises(ValueError):
        chat.from_gsm8k({"question": "q", "answer": "no final line"})


@pytest.fixture(scope="module")
def packed_batch(tiny_tokenizer, tmp_path_factory):
    """The first training batch TRL builds from three conversations, packed padding-free, with its model."""
    tok = tiny_tokenizer
    model = tiny_model(tok)
    convs = [chat.from_gsm8k(r) for r in gsm_records(3)]
    args = SFTConfig(output_dir=str(tmp_path_factory.mktemp("out")), report_to="none", use_cpu=True,
                     assistant_only_loss=True, packing=True, max_length=512, per_device_train_batch_size=1)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"messages": convs}),
                         processing_class=tok)
    return next(iter(trainer.get_train_dataloader())), model, convs


def test_label_only_trainer_loss_equals_trl_and_logs_token_metrics_only_on_logging_steps(packed_batch, tmp_path,
                                                                                          tiny_tokenizer):
    """The stage's trainer projects only labelled positions: the same loss as TRL's on the same batch; entropy and
    token accuracy are computed only for steps that are logged."""
    batch, model, convs = packed_batch
    args = SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, assistant_only_loss=True,
                     packing=True, max_length=512, per_device_train_batch_size=1, logging_steps=3)
    data = Dataset.from_dict({"messages": convs})
    lean = sft.LabelOnlySFTTrainer(model=model, args=args, train_dataset=data, processing_class=tiny_tokenizer)
    reference = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tiny_tokenizer)
    model.train()
    lean.state.global_step = 0  # step 1 is not a logging step
    torch.testing.assert_close(lean.compute_loss(model, dict(batch)), reference.compute_loss(model, dict(batch)))
    assert "entropy" not in lean._metrics["train"]
    lean.state.global_step = 2  # step 3 is
    lean.compute_loss(model, dict(batch))
    assert len(lean._metrics["train"]["entropy"]) == 1 and 0 <= lean._metrics["train"]["mean_token_accuracy"][0] <= 1


def segments(batch) -> list[slice]:
    """The packed sequences of a padding-free row: each starts where position_ids restart at 0."""
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    return [slice(a, b) for a, b in zip(starts, [*starts[1:], batch["position_ids"].shape[1]])]


def test_loss_mask_covers_exactly_assistant_content_and_im_end(packed_batch, tiny_tokenizer):
    batch, _, convs = packed_batch
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch  # padding-free packing
    parts = segments(batch)
    assert len(parts) == len(convs)
    targets = {c[-1]["content"] + specials.IM_END for c in convs}
    for part in parts:
        labels = batch["labels"][0, part]
        trained = labels[labels != -100].tolist()
        assert tiny_tokenizer.decode(trained) in targets
        where = (labels != -100).nonzero().flatten().tolist()
        assert where == list(range(where[0], where[0] + len(where)))  # one contiguous span: the assistant turn
        assert trained[-1] == specials.IM_END_ID


def test_packed_logits_match_unpacked(packed_batch):
    batch, model, _ = packed_batch
    model.eval()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits  # one long sequence: attends across
        for i, part in enumerate(segments(batch)):
            alone = model(input_ids=batch["input_ids"][:, part], use_cache=False).logits
            torch.testing.assert_close(packed[:, part], alone, atol=1e-5, rtol=1e-4)
            if i > 0:
                assert not torch.allclose(leaky[:, part], alone, atol=1e-3)  # the comparison can detect a leak


def test_add_tokens_initialises_rows_at_mean(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)  # the session fixture must keep its vocabulary
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, tie_word_embeddings=False))
    emb_mean = model.get_input_embeddings().weight[:len(tok)].mean(0).clone()
    head_mean = model.get_output_embeddings().weight[:len(tok)].mean(0).clone()
    old = len(tok)
    assert sft.add_tokens(model, tok, [specials.THINK, "<step>", "<check>"]) == ["<step>", "<check>"]
    assert len(tok) == old + 2 and model.get_input_embeddings().weight.shape[0] >= old + 2
    for w, mean in ((model.get_input_embeddings().weight, emb_mean), (model.get_output_embeddings().weight, head_mean)):
        torch.testing.assert_close(w[old:old + 2], mean.expand(2, -1))
    assert sft.add_tokens(model, tok, list(specials.SPECIAL_TOKENS)) == []  # all present: nothing changes


def write_config(tmp_path: Path, trainer: dict) -> Path:
    path = tmp_path / "cpu.yaml"
    path.write_text(json.dumps({"sources": {"g": {"format": "gsm8k", "path": "gsm/train.jsonl"}},
                                "trainer": trainer}))
    return path


def test_unknown_trainer_field_is_user_error(tmp_path):
    with pytest.raises(UserError, match="max_seq_length"):
        load_config(write_config(tmp_path, {"max_seq_length": 4096}), sft.Config)
    with pytest.raises(UserError, match="output_dir"):
        load_config(write_config(tmp_path, {"output_dir": "/elsewhere"}), sft.Config)


def test_invalid_trainer_value_is_user_error(tmp_path):
    cfg = load_config(write_config(tmp_path, {"lr_scheduler_type": "zigzag"}), sft.Config)
    with pytest.raises(UserError, match="trainer"):
        run = runner.Run("sft", "cpu", tmp_path, tmp_path, tmp_path / "cpu.yaml")
        common.trl_args(SFTConfig, cfg, tmp_path / "out", run)


def test_paper_config_names_hub_datasets():
    cfg = load_config(runner.config_path("sft", "paper"), sft.Config)
    hubs = {s.hub: (s.subset, s.split, s.rows) for s in cfg.sources.values()}
    assert hubs == {"meta-math/MetaMathQA": (None, "train", 395000),
                    "TIGER-Lab/MathInstruct": (None, "train", 262039),
                    "openai/gsm8k": ("main", "train", 7473)}
    assert cfg.trainer["learning_rate"] == 2e-5 and cfg.trainer["num_train_epochs"] == 2
    assert cfg.trainer["max_length"] == 4096 and cfg.trainer["lr_scheduler_type"] == "cosine"
    assert cfg.requires.accelerator == "gpu" and sft.needs(cfg) == ["convert"]


@pytest.mark.parametrize("profile, packing", [("smoke", True), ("cpu", False), ("paper", True)])
def test_sft_configs_validate(profile, packing):
    """The paper packs (and smoke runs that path end to end); cpu pads similar lengths: CPU attention is quadratic."""
    cfg = load_config(runner.config_path("sft", profile), sft.Config)
    assert cfg.trainer.get("packing", False) is packing and cfg.trainer["max_grad_norm"] > 0
    if not packing:
        assert cfg.trainer["train_sampling_strategy"] == "group_by_length"


def test_resume_point_discards_other_config_checkpoints(tmp_path):
    out = tmp_path / "checkpoints"
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (out / common.DIGEST_FILE).write_text("a")
    assert common.resume_point(out, "a").endswith("checkpoint-4")
    assert common.resume_point(out, "b") is None and not (out / "checkpoint-4").exists()


def test_sft_stage_writes_model_and_metrics(tmp_path, tiny_tokenizer):
    make_upstream(tmp_path / "smoke", tiny_tokenizer)
    out = runner.run_stage("sft", runner.config_path("sft", "smoke"), runs=tmp_path,
                           overrides=["trainer.max_steps=4", "trainer.bf16=false"])
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "tokenizer.json").is_file()
    assert not list((out / "model").glob("*.bin")) and not (out / "checkpoints").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert set(rows[0]) == {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "entropy", "token_accuracy"}
    curve = [json.loads(line) for line in (out / "dev_curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [2, 4] and all(r["n"] == 4 and 0 <= r["accuracy"] <= 1 for r in curve)
    held_out = json.loads((out / "validation.json").read_text())
    assert held_out["step"] == 4 and held_out["val_loss"] > 0
    assert json.loads((out / "trainer_args.json").read_text())["max_steps"] == 4
    gen = json.loads((out / "model" / "generation_config.json").read_text())
    assert gen["eos_token_id"] == list(specials.STOP_IDS)


def test_sft_stage_resumes_from_last_checkpoint(tmp_path, tiny_tokenizer, monkeypatch, caplog):
    make_upstream(tmp_path / "smoke", tiny_tokenizer)
    overrides = ["trainer.max_steps=4", "trainer.bf16=false", "trainer.save_steps=2"]
    real_save = common.save_model

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after training, before the model is written

    monkeypatch.setattr(common, "save_model", crash)
    with pytest.raises(KeyboardInterrupt):
        runner.run_stage("sft", runner.config_path("sft", "smoke"), runs=tmp_path, overrides=overrides)
    work, out = tmp_path / "smoke" / ".sft.work", tmp_path / "smoke" / "sft"
    assert (work / "checkpoints" / "checkpoint-4").is_dir() and not out.exists()
    monkeypatch.setattr(common, "save_model", real_save)
    with caplog.at_level(logging.INFO, logger="tinymath"):
        runner.run_stage("sft", runner.config_path("sft", "smoke"), runs=tmp_path, overrides=overrides)
    assert "resuming from" in caplog.text and (out / "model" / "model.safetensors").is_file()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # the resumed run repeats no step in metrics.jsonl


def test_dev_curve_points_spread_over_training_and_end_at_the_last_step():
    from tinymath.posttrain.dev_curve import checkpoints

    assert checkpoints(2400, 6) == [400, 800, 1200, 1600, 2000, 2400]
    assert checkpoints(4, 6) == [1, 2, 3, 4]  # fewer steps than points: every step once
    assert checkpoints(100, 3) == [33, 67, 100]

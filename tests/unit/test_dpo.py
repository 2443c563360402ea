"""DPO stage: pair construction on hand-made completions, seeded sampling, the chosen/rejected loss mask through
TRL's own tokenisation and collator, configs, and a tiny real run through the runner."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset
from tiny_runs import gsm_records, make_upstream, tiny_model
from trl import DPOConfig, DPOTrainer

from tinymath import runner, specials
from tinymath.answer import format_response
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.posttrain import chat, dev_curve, dpo

RIGHT_A = format_response("Tom has 2 + 3 = 5 apples.", "5")
RIGHT_B = format_response("2 and 3 more make 5.", "5")
WRONG_A = format_response("Tom has 2 + 3 = 6 apples.", "6")
WRONG_B = "Tom has 5 apples."  # no box: wrong by the answer form


def test_pairs_zip_distinct_correct_with_distinct_incorrect_in_sampling_order():
    texts = [WRONG_A, RIGHT_A, RIGHT_A, WRONG_B, RIGHT_B, WRONG_A]
    verdicts = [False, True, True, False, True, False]
    assert dpo.make_pairs(texts, verdicts, per_prompt=5) == [(RIGHT_A, WRONG_A), (RIGHT_B, WRONG_B)]
    assert dpo.make_pairs(texts, verdicts, per_prompt=1) == [(RIGHT_A, WRONG_A)]


def test_prompts_whose_samples_agree_give_no_pair():
    assert dpo.make_pairs([RIGHT_A, RIGHT_B], [True, True], per_prompt=2) == []
    assert dpo.make_pairs([WRONG_A, WRONG_B], [False, False], per_prompt=2) == []


def test_sampled_pairs_are_scored_by_the_eval_checker_and_counted(monkeypatch):
    records = gsm_records(3)  # golds 5, 7, 9
    canned = {0: [RIGHT_A, WRONG_A, WRONG_B, RIGHT_B], 1: [WRONG_A] * 4,
              2: [format_response("4 + 5 = 9", "9")] * 4}
    monkeypatch.setattr(dpo, "generate", lambda model, tok, questions, *a, **k: [t for i in range(3)
                                                                                 for t in canned[i]])
    cfg = dpo.Config(prompts={"format": "gsm8k", "path": "gsm/train.jsonl"}, trainer={},
                     pairs={"samples": 4, "per_prompt": 2})
    rows, stats = dpo.sample_pairs(cfg, None, None, records)
    assert stats == {"prompts": 3, "samples_per_prompt": 4, "sample_accuracy": round(6 / 12, 4), "pairs": 2,
                     "prompts_paired": 1, "all_correct": 1, "all_wrong": 1, "reference_paired": 0}
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == \
        [(RIGHT_A, WRONG_A), (RIGHT_B, WRONG_B)]
    assert rows[0]["prompt"] == chat.prompt(records[0]["question"]) and rows[0]["answer"] == "5"
    assert set(rows[0]) == set(dpo.PAIR_FIELDS) and rows[0]["index"] == 0


def test_sampling_is_deterministic_for_a_seed(tiny_tokenizer):
    import torch

    model, questions = tiny_model(tiny_tokenizer), [r["question"] for r in gsm_records(2)]

    def draw(seed: int) -> list[str]:
        torch.manual_seed(seed)
        return dev_curve.generate(model, tiny_tokenizer, questions, 8, 2, samples=3, temperature=1.0)

    first = draw(0)
    assert len(first) == 6 and draw(0) == first and draw(1) != first


def test_loss_mask_covers_exactly_the_assistant_turns(tiny_tokenizer, tmp_path):
    """Through TRL's own tokenisation and collator: only the chosen and rejected answers (with their <|im_end|>)
    carry loss; the system prompt, the question and the generation prompt do not."""
    question = gsm_records(1)[0]["question"]
    pair = {"prompt": [chat.prompt(question)], "chosen": [[{"role": "assistant", "content": RIGHT_A}]],
            "rejected": [[{"role": "assistant", "content": WRONG_A}]]}
    args = DPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=1,
                     max_length=256)
    model = tiny_model(tiny_tokenizer)
    trainer = DPOTrainer(model=model, ref_model=dpo.frozen_copy(model), args=args,
                         train_dataset=Dataset.from_dict(pair), processing_class=tiny_tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, mask = batch["input_ids"], batch["completion_mask"]
    prompt_text = tiny_tokenizer.apply_chat_template(chat.prompt(question), tokenize=False, add_generation_prompt=True)
    for row, answer in zip(range(2), (RIGHT_A, WRONG_A)):
        kept = tiny_tokenizer.decode([t for t, m in zip(ids[row].tolist(), mask[row].tolist()) if m])
        assert kept.startswith(answer) and kept[len(answer):].strip() == "<|im_end|>"
        unmasked = tiny_tokenizer.decode([t for t, m, a in zip(ids[row].tolist(), mask[row].tolist(),
                                                               batch["attention_mask"][row].tolist()) if a and not m])
        assert unmasked == prompt_text


def test_paper_config_follows_the_published_recipe():
    cfg = load_config(runner.config_path("dpo", "paper"), dpo.Config)
    t = cfg.trainer
    assert (cfg.prompts.hub, cfg.prompts.rows) == ("openai/gsm8k", 7473) and dpo.needs(cfg) == ["sft"]
    assert (t["beta"], t["learning_rate"], t["num_train_epochs"], t["lr_scheduler_type"]) == (0.5, 1e-6, 3, "cosine")
    assert t["per_device_train_batch_size"] * t["gradient_accumulation_steps"] == 128


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_dpo_configs_validate(profile):
    cfg = load_config(runner.config_path("dpo", profile), dpo.Config)
    assert cfg.pairs.samples >= 2 and cfg.trainer["loss_type"] == ["sigmoid"]


def test_math_prompts_are_a_config_error(tmp_path):
    path = tmp_path / "cpu.yaml"
    path.write_text(json.dumps({"prompts": {"format": "math", "path": "math/train.jsonl"}, "trainer": {}}))
    with pytest.raises(UserError, match="prompts"):
        load_config(path, dpo.Config)


def test_no_pair_at_all_is_a_user_error(tmp_path, tiny_tokenizer):
    """An untrained model answers every prompt wrong: nothing to prefer, said in one line naming the config."""
    make_upstream(tmp_path / "smoke", tiny_tokenizer, model_stage="sft", model_dir="model")
    with pytest.raises(UserError, match=r"dpo/smoke.yaml: no prompt yielded a pair \(0 all correct, 16 all wrong"):
        runner.run_stage("dpo", runner.config_path("dpo", "smoke"), runs=tmp_path,
                         overrides=["pairs.max_new_tokens=4", "pairs.reference_when_all_wrong=false", "dev=null"])
    assert not (tmp_path / "smoke" / "dpo").exists()


def test_dpo_stage_writes_pairs_model_and_metrics(tmp_path, tiny_tokenizer, monkeypatch):
    make_upstream(tmp_path / "smoke", tiny_tokenizer, model_stage="sft", model_dir="model")
    samples = [RIGHT_A, WRONG_A, RIGHT_B, WRONG_B]
    monkeypatch.setattr(dpo, "generate", lambda model, tok, questions, *a, **k: samples * len(questions))
    # every smoke prompt asks for 5 apples or more; relabel the golds so that RIGHT_* are right for all of them
    monkeypatch.setattr(dpo, "gsm_gold", lambda answer: "5")
    out = runner.run_stage("dpo", runner.config_path("dpo", "smoke"), runs=tmp_path, overrides=["dev=null"])
    assert (out / "model" / "model.safetensors").is_file() and not (out / "checkpoints").exists()
    stats = json.loads((out / dpo.STATS_FILE).read_text())
    assert stats["pairs"] == stats["prompts"] == 16 and stats["all_wrong"] == stats["all_correct"] == 0
    pairs = [json.loads(line) for line in (out / dpo.PAIRS_FILE).read_text().splitlines()]
    assert len(pairs) == 16 and pairs[0]["chosen"][0]["content"] == RIGHT_A
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert {"loss", "reward_accuracy", "reward_margin"} <= set(rows[-1])
    gen = json.loads((out / "model" / "generation_config.json").read_text())
    assert gen["eos_token_id"] == list(specials.STOP_IDS)


def test_reference_fallback_pairs_only_prompts_that_are_all_wrong(monkeypatch):
    records = gsm_records(2)  # golds 5, 7
    monkeypatch.setattr(dpo, "generate", lambda *a, **k: [RIGHT_A, WRONG_A, WRONG_A, WRONG_B])
    cfg = dpo.Config(prompts={"format": "gsm8k", "path": "gsm/train.jsonl"}, trainer={},
                     pairs={"samples": 2, "reference_when_all_wrong": True})
    rows, stats = dpo.sample_pairs(cfg, None, None, records)
    assert (stats["prompts_paired"], stats["all_wrong"], stats["reference_paired"], stats["pairs"]) == (1, 1, 1, 2)
    assert rows[1]["chosen"][0]["content"] == chat.from_gsm8k(records[1])[-1]["content"]
    assert rows[1]["rejected"][0]["content"] == WRONG_A

"""GRPO stage: reward functions on hand-made completions, configs, and a tiny real run through the runner."""

from __future__ import annotations

import json

import pytest
from tiny_runs import make_upstream

from tinymath import runner, specials
from tinymath.answer import format_response
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.posttrain import grpo, rewards

RIGHT = format_response("Tom has 3 + 5 = 8 apples.", "8")
WRONG = format_response("Tom has 3 + 5 = 9 apples.", "9")
LOOSE = "Tom has 3 + 5 = 8 apples, so the answer is \\boxed{8}."  # right number, not the answer form
NO_ANSWER = format_response("I am not sure.", "")[:-len("\\boxed{}.")] + "unknown."
LOOP = format_response("add the apples " * 30, "8")


def chat_turn(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_correctness_rewards_right_answer_only():
    texts = [RIGHT, WRONG, LOOSE, NO_ANSWER, "\\boxed{8.0}", "3 + 5 = 8\n#### 8", "The answer is 8."]
    assert rewards.correctness([chat_turn(t) for t in texts], answer=["8"] * 7, kind=["gsm"] * 7) == \
        [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]  # unboxed answers are wrong, as in the chat evaluation


def test_correctness_uses_math_equivalence_for_math_answers():
    texts = ["\\boxed{\\dfrac{1}{2}}", "\\boxed{0.5}", "\\boxed{\\frac{1}{}", "\\boxed{\\frac{1}{3}}"]
    assert rewards.correctness(texts, answer=["\\frac{1}{2}"] * 4, kind=["math"] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_arithmetic_rewards_the_share_of_true_written_calculations():
    half = format_response("He has 3 + 5 = 8 apples. Then 8 x 2 = 15 apples.", "15")
    texts = [RIGHT, WRONG, half, NO_ANSWER]
    assert rewards.arithmetic([chat_turn(t) for t in texts]) == [1.0, 0.0, 0.5, 0.0]  # none written: nothing to reward


def test_strict_format_rewards_only_the_answer_form():
    texts = [RIGHT, WRONG, LOOSE, NO_ANSWER, RIGHT + " Extra text."]
    assert rewards.strict_format([chat_turn(t) for t in texts]) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_repetition_penalises_loops_not_fresh_text():
    right, loop = rewards.repetition([RIGHT, LOOP])  # plain strings work too
    assert right == 0.0 and loop < -0.8
    assert rewards.repetition_fraction("a b c") == 0.0  # shorter than one n-gram


def test_reward_means_collects_per_function_logs():
    logs = {"reward": 0.5, "rewards/correctness/mean": 0.25, "rewards/correctness/std": 0.1,
            "rewards/strict_format/mean": 1.0}
    assert grpo.reward_means(logs) == {"rewards": {"correctness": 0.25, "strict_format": 1.0}}


def test_paper_config_uses_gsm8k_train_and_paper_hyperparameters():
    cfg = load_config(runner.config_path("grpo", "paper"), grpo.Config)
    assert (cfg.prompts.hub, cfg.prompts.subset, cfg.prompts.split, cfg.prompts.rows) == \
        ("openai/gsm8k", "main", "train", 7473)
    t = cfg.trainer
    assert (t["num_generations"], t["beta"], t["learning_rate"], t["lr_scheduler_type"]) == (8, 0.01, 5e-6, "cosine")
    assert len(t["reward_weights"]) == len(cfg.rewards) and grpo.needs(cfg) == ["sft"]


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_grpo_configs_validate(profile):
    cfg = load_config(runner.config_path("grpo", profile), grpo.Config)
    t = cfg.trainer
    steps_per_gen = t.get("steps_per_generation", t.get("gradient_accumulation_steps", 1))
    assert t["per_device_train_batch_size"] * steps_per_gen % t["num_generations"] == 0  # TRL's divisibility rule


def test_unknown_reward_is_user_error(tmp_path):
    path = tmp_path / "cpu.yaml"
    path.write_text(json.dumps({"prompts": {"format": "gsm8k", "path": "gsm/train.jsonl"},
                                "rewards": ["correctness", "length"], "trainer": {}}))
    with pytest.raises(UserError, match="rewards"):
        load_config(path, grpo.Config)


def test_grpo_stage_writes_model_and_metrics(tmp_path, tiny_tokenizer):
    make_upstream(tmp_path / "smoke", tiny_tokenizer, model_stage="sft", model_dir="model")
    out = runner.run_stage("grpo", runner.config_path("grpo", "smoke"), runs=tmp_path,
                           overrides=["trainer.bf16=false", "trainer.max_completion_length=8",
                                      # every reward, and the KL term with its reference model
                                      "rewards=[correctness, strict_format, repetition]",
                                      "trainer.reward_weights=[1.0, 0.2, 0.5]", "trainer.beta=0.01"])
    assert (out / "model" / "model.safetensors").is_file() and not (out / "checkpoints").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert set(rows[-1]) == {"step", "loss", "lr", "grad_norm", "reward_mean", "reward_std", "rewards", "kl",
                             "completion_length", "frac_zero_std"}
    assert set(rows[-1]["rewards"]) == {"correctness", "strict_format", "repetition"}
    gen = json.loads((out / "model" / "generation_config.json").read_text())
    assert gen["eos_token_id"] == list(specials.STOP_IDS)


def test_rewards_score_the_reasoning_delimiters_trl_strips(tiny_tokenizer):
    """TRL decodes completions without special tokens; the wrapped rewards re-decode the ids and keep <think>."""
    from tinymath import answer, specials
    from tinymath.posttrain import rewards

    text = answer.format_response("2 + 2 = 4", "4")
    ids = tiny_tokenizer(text)["input_ids"] + [specials.IM_END_ID, specials.PAD_ID]
    as_trl = [[{"role": "assistant", "content": tiny_tokenizer.decode(ids, skip_special_tokens=True)}]]
    assert rewards.strict_format(as_trl) == [0.0]
    scored = rewards.with_special_tokens(rewards.strict_format, tiny_tokenizer)
    assert scored(as_trl, completion_ids=[ids]) == [1.0]
    assert scored.__name__ == "strict_format"
    correct = rewards.with_special_tokens(rewards.correctness, tiny_tokenizer)
    assert correct(as_trl, completion_ids=[ids], answer=["4"], kind=["gsm"]) == [1.0]


def test_groups_with_constant_correctness_have_zero_advantage(tmp_path, tiny_tokenizer):
    """An untrained model answers every prompt wrong: each group's correctness is constant, so every advantage is
    zero and, with the cpu profile's loss settings and no KL term, the policy gets no gradient at all."""
    make_upstream(tmp_path / "smoke", tiny_tokenizer, model_stage="sft", model_dir="model")
    out = runner.run_stage("grpo", runner.config_path("grpo", "smoke"), runs=tmp_path,
                           overrides=["rewards=[correctness]", "trainer.reward_weights=[1.0]", "trainer.beta=0.0",
                                      "trainer.max_completion_length=8", "dev=null"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(r["frac_zero_std"] == 1.0 and r["reward_mean"] == 0.0 for r in rows)
    assert all(r["loss"] == 0.0 and r["grad_norm"] == 0.0 for r in rows)

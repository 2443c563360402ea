"""The tokenizer stage: digit splitting, fixed special ids, transformers round trip, chat-template masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tinymath import specials, tokenizer
from tinymath.runner import Run


def write_synth(root: Path) -> None:
    """A miniature synth run: corpus documents plus GSM/MATH-format training records."""
    (root / "corpus").mkdir(parents=True)
    (root / "gsm").mkdir()
    (root / "math").mkdir()
    docs = [{"id": f"d{i}", "source": "edu_english",
             "text": f"Lesson {i}: a farmer plants {i * 7} trees in {i + 3} rows and counts 1234567 seeds."}
            for i in range(300)]
    (root / "corpus" / "documents.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    gsm = [{"question": f"Ann has {i} pens. She buys {i + 4} more. How many?",
            "answer": f"{i}+{i + 4}=\n#### {2 * i + 4}"} for i in range(50)]
    (root / "gsm" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gsm))
    math = [{"problem": f"Compute ${i}^2$.", "solution": f"$\\boxed{{{i * i}}}$"} for i in range(50)]
    (root / "math" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in math))


def run_stage(tmp_path: Path, name: str) -> Path:
    cfg = tokenizer.Config(vocab_size=320, heldout_fraction=0.1)  # what this small corpus supports
    run = Run(stage="tokenizer", profile="test", dir=tmp_path / name / "tokenizer", root=tmp_path / name,
              config_path=tmp_path / "test.yaml")
    write_synth(run.root / "synth")
    run.dir.mkdir(parents=True)
    tokenizer.main(cfg, run)
    return run.dir


@pytest.mark.parametrize("number", ["2024", "1234567", " 2024", "x=1234567."])
def test_tokenizer_splits_every_digit(tiny_tokenizer, number):
    pieces = tiny_tokenizer.convert_ids_to_tokens(tiny_tokenizer(number, add_special_tokens=False)["input_ids"])
    digit_pieces = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digit_pieces == [c for c in number if c.isdigit()]


def test_tokenizer_special_tokens_are_single_fixed_ids(tiny_tokenizer):
    for token, expected in specials.ID.items():
        assert tiny_tokenizer(token, add_special_tokens=False)["input_ids"] == [expected]
        assert tiny_tokenizer.convert_tokens_to_ids(token) == expected


def test_tokenizer_reloads_with_special_ids(tiny_tokenizer, tmp_path):
    tiny_tokenizer.save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.eos_token_id == specials.EOS_ID == specials.IM_END_ID
    assert tok.pad_token_id == specials.PAD_ID
    assert tok.bos_token_id is None
    assert {n for n in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")} <= {
        p.name for p in tmp_path.iterdir()}


def test_tokenizer_chat_template_masks_assistant_content_and_end(tiny_tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"},
                {"role": "assistant", "content": "2+3=5. The answer is 5."}]
    out = tiny_tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    marked = [i for i, m in zip(ids, mask) if m]
    expected = tiny_tokenizer("2+3=5. The answer is 5.", add_special_tokens=False)["input_ids"] + [specials.IM_END_ID]
    assert marked == expected
    assert mask.index(1) + len(expected) == len(mask) - 1  # contiguous, and the trailing "\n" is not marked


def test_tokenizer_stage_is_deterministic_and_reports_fertility(tmp_path):
    first, second = run_stage(tmp_path, "a"), run_stage(tmp_path, "b")
    tokenizer_json = [d / "tokenizer" / "tokenizer.json" for d in (first, second)]
    assert tokenizer_json[0].read_bytes() == tokenizer_json[1].read_bytes()
    stats = json.loads((first / "fertility.json").read_text())
    assert stats["documents"] > 0 and stats["tokens_per_word"] > 1
    assert stats["tokens_per_number"] >= 1  # at least one token per digit
    tok = AutoTokenizer.from_pretrained(first / "tokenizer")
    assert tok.convert_tokens_to_ids(list(specials.SPECIAL_TOKENS)) == list(range(len(specials.SPECIAL_TOKENS)))
    assert len(tok(" 1234567", add_special_tokens=False)["input_ids"]) >= 7

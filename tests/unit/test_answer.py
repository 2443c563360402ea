"""The answer checker on every real GSM8K test and MATH-500 gold answer: stated right it passes, changed it fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tinymath.answer import format_response, gsm_gold, is_correct, normalize_number


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("text, expected", [
    ("#### 72", "72"), ("$1,234.", "1234"), ("\\$18", "18"), ("-3", "-3"), ("0.50", "0.5"), ("72.0", "72"),
    ("3/4", "3/4"), ("6/8", "3/4"), ("0.00001", "0.00001"), (" 1,000,000 ", "1000000"), ("5 apples", None),
    ("", None), ("1.2.3", None), ("1/0", None), ("2/00", None)])
def test_normalize_number_strips_formatting_only(text, expected):
    assert normalize_number(text) == expected


def test_is_correct_gsm_accepts_every_real_gold_in_model_forms(shared_data):
    rows = _rows(shared_data / "gsm8k" / "test.jsonl")
    assert len(rows) == 1319
    for row in rows:
        raw = row["answer"].rsplit("####", 1)[-1].strip()  # as written, commas included
        for pred in (format_response("work", raw), f"so\n#### {raw}", f"The answer is \\boxed{{${raw}}}."):
            assert is_correct(pred, row["answer"], "gsm"), (pred, row["answer"])


def test_is_correct_gsm_rejects_every_perturbed_real_gold(shared_data):
    for row in _rows(shared_data / "gsm8k" / "test.jsonl"):
        gold = int(gsm_gold(row["answer"]))
        for wrong in (gold + 1, gold * 10, -gold - 1, f"{gold}.5"):
            assert not is_correct(format_response("work", str(wrong)), row["answer"], "gsm"), (wrong, gold)
        assert not is_correct("no answer here", row["answer"], "gsm")


def test_is_correct_math_accepts_every_real_gold(shared_data):
    rows = _rows(shared_data / "math" / "test500.jsonl")
    assert len(rows) == 500
    failed = [r["answer"] for r in rows if not is_correct(format_response("work", r["answer"]), r["answer"], "math")]
    assert failed == []


def _perturb(answer: str) -> str:
    """A different answer: the first digit run incremented, or (no digit) a new symbol appended."""
    m = re.search(r"\d+", answer)
    if m is None:
        return answer + "+1"
    return answer[:m.start()] + str(int(m.group()) + 1) + answer[m.end():]


def test_is_correct_math_rejects_every_perturbed_real_gold(shared_data):
    rows = _rows(shared_data / "math" / "test500.jsonl")
    passed = [r["answer"] for r in rows if is_correct(format_response("w", _perturb(r["answer"])), r["answer"], "math")]
    assert passed == []


def test_is_correct_math_equivalent_forms_pass():
    assert is_correct("\\boxed{0.5}", "\\frac{1}{2}", "math")
    assert is_correct("\\boxed{(x+1)^2}", "x^2+2x+1", "math")
    assert is_correct("\\boxed{\\dfrac{3}{4}}", "\\frac34", "math")
    assert not is_correct("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", "math")
    assert not is_correct("\\boxed{52_9}", "52_8", "math")  # same digits, other base


def test_is_correct_gsm_accepts_bare_number_gold():
    assert is_correct("\\boxed{1,234}", "1234", "gsm") and not is_correct("\\boxed{}", "1234", "gsm")


def test_is_correct_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        is_correct("1", "1", "chem")


def test_is_correct_math_works_off_the_main_thread():
    import threading

    out = []
    worker = threading.Thread(target=lambda: out.append(is_correct("\\boxed{\\frac{2}{4}}", "\\frac{1}{2}", "math")))
    worker.start()
    worker.join()
    assert out == [True]


@pytest.mark.parametrize("pred", [
    "#### 18 dollars", "\\boxed{18 \\text{ dollars}}", "\\boxed{18\\text{ dollars}}", "\\boxed{18 dollars}",
    "\\boxed{\\text{18 dollars}}", "\\boxed{\\$18}", "\\boxed{\\text{\\$}18}", "#### $18", "$18$ dollars",
    "\\boxed{18.00}", "\\boxed{\\frac{36}{2}}", "\\boxed{18\\%}", "#### 18%", "\\boxed{18 km/h}", "#### 18.",
    "I first got 17, then rechecked.\n#### 18", "#### 18\n\nQuestion: Tom has 5 apples."])
def test_is_correct_gsm_accepts_units_currency_and_forms(pred):
    assert is_correct(pred, "Work.\n#### 18", "gsm") and is_correct(pred, "18", "gsm")


@pytest.mark.parametrize("pred", ["\\boxed{70{,}000}", "\\boxed{70\\,000}", "\\boxed{70\\thinspace 000}",
                                  "\\boxed{70\\thinspace000}", "\\boxed{70\u2009000}", "\\boxed{70\u202f000}",
                                  "#### 70,000 dollars", "\\boxed{\\$70,\\!000}", "\\boxed{70 thousand}"])
def test_is_correct_gsm_accepts_thousands_separators(pred):
    assert is_correct(pred, "#### 70,000", "gsm")


@pytest.mark.parametrize("pred", [
    "\\boxed{19}", "#### 18 or 19", "\\boxed{18 + 2}", "\\boxed{18, 19}", "\\boxed{}", "#### ", "", "\\boxed{18x}",
    "\\boxed{18 x}", "\\boxed{18\\pi}", "\\boxed{18 and a half}", "\\boxed{18 dollars and 50 cents}", "#### 1,8",
    "I first got 18, then rechecked.\n#### 19", "\\boxed{18} and so \\boxed{19}", "\\boxed{x = 18}",
    "\\boxed{18 \\times 2}", "\\boxed{18 dozen}", "\\boxed{18^2}", "\\boxed{" + "1" * 5000 + "}", "\\boxed{18/0}"])
def test_is_correct_gsm_rejects_other_numbers_and_non_answers(pred):
    assert not is_correct(pred, "#### 18", "gsm")


def test_is_correct_gsm_value_equality():
    assert is_correct("\\boxed{\\frac{1}{2}}", "0.5", "gsm") and is_correct("\\boxed{0.50}", "1/2", "gsm")
    assert is_correct("\\boxed{-\\$5}", "#### -5", "gsm") and is_correct("\\boxed{\\frac{-10}{2}}", "-5", "gsm")
    assert not is_correct("\\boxed{5}", "#### -5", "gsm") and not is_correct("\\boxed{0.51}", "0.5", "gsm")


def test_is_correct_math_numbers_with_units_and_separators():
    assert is_correct("\\boxed{32\\,348 \\text{ dollars}}", "\\$32,\\!348", "math")
    assert is_correct("\\boxed{70\\thinspace 000}", "70000", "math") and is_correct("\\boxed{90}", "90^\\circ", "math")
    assert not is_correct("\\boxed{5x}", "5", "math") and not is_correct("\\boxed{5i}", "5", "math")

"""The final-answer form: one definition used by SFT formatting, the GRPO format reward and evaluation.

An assistant turn is
    <think>
    {reasoning}
    </think>
    The final answer is \\boxed{{answer}}.
Evaluation extracts the last `\\boxed{...}`; the strict format reward requires the whole turn to match RESPONSE_RE.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from fractions import Fraction

from tinymath.specials import END_THINK, THINK

# Short on purpose: every training conversation carries it (at cpu scale, a sixth of a conversation's tokens).
SYSTEM_PROMPT = "Reason step by step in <think> </think>, then give the final answer in \\boxed{}."
ANSWER_PREFIX = "The final answer is "
RESPONSE_RE = re.compile(
    r"\A<think>\n(?P<reasoning>.+?)\n</think>\nThe final answer is \\boxed\{(?P<answer>.+)\}\.\Z", re.DOTALL)


def format_response(reasoning: str, answer: str) -> str:
    """The assistant turn for a worked solution and its final answer."""
    return f"{THINK}\n{reasoning.strip()}\n{END_THINK}\n{ANSWER_PREFIX}\\boxed{{{answer}}}."


def follows_format(text: str) -> bool:
    """True when `text` is exactly one well-formed assistant turn (the strict format reward)."""
    m = RESPONSE_RE.match(text.strip())
    return bool(m) and extract_boxed(text) == m.group("answer") and THINK not in m.group("reasoning")


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces matched; None when absent or unbalanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        m = re.search(r"\\boxed ([^\s$]+)", text)  # `\boxed 2`, as in a few MATH solutions
        return m.group(1) if m else None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


# --- Answer checking: one checker for evaluation and the GRPO correctness reward. ---

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_BASE_RE = re.compile(r"\d_\{?(\d+)\}?")  # number-base subscripts, as in 52_8
_MV_TIMEOUT_S = 5  # math-verify's own alarm-based timeout, usable only on the main thread


def normalize_number(text: str) -> str | None:
    """Canonical form of a GSM-style number ('$1,234.50.' -> '1234.5', '#### 72' -> '72', '3/4' -> '3/4').

    Commas, currency signs, a `#### ` prefix, surrounding `$...$`/spaces and a trailing period are dropped, so a
    correct answer never fails on formatting; anything that is not then one number is None.
    """
    s = text.strip().rsplit("####", 1)[-1]
    s = s.replace(",", "").replace("\\$", "").replace("$", "").replace("\\!", "").strip().rstrip(".").strip()
    if not _NUMBER_RE.fullmatch(s) or re.search(r"/0+\Z", s):  # no number, or a zero denominator
        return None
    value = Fraction(s)
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}" if "/" in s else format(Decimal(s).normalize(), "f")


def gsm_gold(answer_text: str) -> str:
    """The normalised final answer of a GSM8K `answer` field (the text after its last `####`)."""
    if "####" not in answer_text:
        raise ValueError(f"GSM8K answer without '####': {answer_text[-60:]!r}")
    gold = normalize_number(answer_text.rsplit("####", 1)[-1])
    if gold is None:
        raise ValueError(f"GSM8K answer is not a number: {answer_text.rsplit('####', 1)[-1]!r}")
    return gold


def final_answer(text: str) -> str:
    """The answer a model states: the last `\\boxed{}` if any, else the text after `####`, else the whole text."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    return text.rsplit("####", 1)[-1] if "####" in text else text


def is_correct(pred: str, gold: str, kind: str) -> bool:
    """Whether a model's output `pred` states the reference answer `gold`.

    kind 'gsm': `gold` is a GSM8K answer field or a bare number; numbers compare by exact value after normalisation.
    kind 'math': `gold` is a MATH `answer` (LaTeX); math-verify decides (gold first), and a normalised string compare
    catches what it cannot parse. Never raises on model output: unparseable means incorrect.
    """
    if kind == "gsm":
        want = gsm_gold(gold) if "####" in gold else normalize_number(gold)
        got = normalize_number(final_answer(pred))
        return want is not None and got is not None and Fraction(got) == Fraction(want)
    if kind == "math":
        answer = final_answer(pred)
        if _BASE_RE.findall(answer) != _BASE_RE.findall(gold):  # math-verify drops subscripts: 52_8 == 52_9
            return False
        return _math_verify(gold, answer) or normalize_latex(answer) == normalize_latex(gold)
    raise ValueError(f"answer kind {kind!r}: expected 'gsm' or 'math'")


def normalize_latex(text: str) -> str:
    """A LaTeX answer with presentation-only markup removed, for the string-compare fallback."""
    s = text.strip().strip("$").rstrip(".")
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""), ("dfrac", "frac"),
                     ("tfrac", "frac"), ("^\\circ", ""), ("^{\\circ}", ""), ("\\%", ""), ("\\$", "")):
        s = s.replace(old, new)
    s = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", s)
    return re.sub(r"\s+", "", s)


def _math_verify(gold: str, answer: str) -> bool:
    """math-verify on two bare LaTeX answers, gold first; its alarm-based timeouts work only on the main thread."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    timeout = _MV_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    try:
        g = parse(f"\\boxed{{{gold}}}", extraction_config=config, parsing_timeout=timeout)
        p = parse(f"\\boxed{{{answer}}}", extraction_config=config, parsing_timeout=timeout)
        return bool(g) and bool(p) and verify(g, p, timeout_seconds=timeout)
    except Exception:  # math-verify's timeouts and sympy failures on malformed output mean "not verified"
        return False

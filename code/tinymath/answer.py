"""The final-answer form and the answer rule: one definition used by SFT formatting, the GRPO rewards and evaluation.

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

_BASE_RE = re.compile(r"\d_\{?(\d+)\}?")  # number-base subscripts, as in 52_8
_MV_TIMEOUT_S = 5  # math-verify's own alarm-based timeout, usable only on the main thread

# A stated number: one number, then at most its unit, once the markup that only wraps or spaces them is gone.
_WRAP_RE = re.compile(r"\\(?:text|textrm|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SEP = r"(?:,\\!|\{,\}|,|\\,|\\thinspace\s*|[\u2009\u202f])"  # thousands separators: plain, LaTeX, unicode thin
_GROUPED_RE = re.compile(rf"(?<![\d.])\d{{1,3}}(?:{_SEP}\d{{3}})+(?!\d)")
_MARKUP = (("\\$", ""), ("$", ""), ("\u20ac", ""), ("\u00a3", ""), ("\\%", "%"), ("\u2212", "-"),
           ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("^\\circ", " degrees"), ("^{\\circ}", " degrees"))
_SPACES = ("\\!", "\\,", "\\;", "\\:", "\\ ", "\\qquad", "\\quad", "\\thinspace", "~", "\u00a0", "\u2009", "\u202f")
_STATED_RE = re.compile(r"(?P<num>-?(?:\d+(?:\.\d+)?|\.\d+)(?:/\d+)?|-?\\frac\{-?\d+\}\{\d+\})(?P<tail>.*)",
                        re.DOTALL)
_NOT_UNIT_RE = re.compile(r"[^\w\s%.,;:!?'\"()/-]|[\d_]")  # digits, operators, LaTeX commands: more than a unit
_SCALE = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# Words after a number that state another value: "18 and a half", "3 dozen", "2 pi", "18 or nineteen".
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety half halves quarter quarters dozen dozens "
    "point pi sqrt squared cubed hundreds thousands millions billions".split() + list(_SCALE))


def _clean(text: str) -> str:
    """`text` without presentation: \\text{}-like wrappers opened; thousands separators, currency, spacing gone."""
    s, prev = text, None
    while s != prev:  # nested wrappers, as in \textbf{\text{18}}
        prev, s = s, _WRAP_RE.sub(r" \1 ", s)
    s = _GROUPED_RE.sub(lambda m: re.sub(_SEP, "", m.group()), s)  # 70{,}000 -> 70000, before `\,` becomes a space
    for old, new in _MARKUP:
        s = s.replace(old, new)
    for space in _SPACES:
        s = s.replace(space, " ")
    return s.strip()


def _split_number(text: str) -> tuple[Fraction, str, str] | None:
    """(value, the number as written, what follows it) when the cleaned `text` starts with a number, else None."""
    m = _STATED_RE.fullmatch(_clean(text))
    if m is None:
        return None
    num = m.group("num")
    frac = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", num)
    try:  # a zero denominator, or more digits than int() accepts, is no number
        value = Fraction(int(frac[2]), int(frac[3])) * (-1 if frac[1] else 1) if frac else Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None
    return value, num, m.group("tail")


def stated_number(text: str) -> Fraction | None:
    """The value an answer states: one number, optionally followed by its unit ('18 dollars', '18\\text{ cm}',
    '25\\%'), currency and thousands separators in any usual form. None when it is not one number: empty, more
    numbers after it ('18 or 19', '18 + 2'), or a variable or LaTeX command after it ('5x', '2\\pi')."""
    parsed = _split_number(text)
    if parsed is None or _NOT_UNIT_RE.search(parsed[2]):
        return None
    value, _, tail = parsed
    words = re.findall(r"[^\W\d_]+", tail.lower())
    if words and words[0] in _SCALE:  # "1.5 million" is 1500000
        value, words = value * _SCALE[words[0]], words[1:]
    # A lone letter right after a number reads as a variable or a multiplier (5x, 5i, 70k), not as a unit.
    if words and (len(words[0]) < 2 or _NUMBER_WORDS.intersection(words)):
        return None
    return value


def normalize_number(text: str) -> str | None:
    """Canonical form of a GSM-style number ('$1,234.50.' -> '1234.5', '#### 72' -> '72', '3/4' -> '3/4').

    Formatting only: thousands separators (plain or LaTeX), currency signs, a `#### ` prefix, surrounding
    `$...$`/spaces and a trailing period are dropped; anything that is not then one number (a unit too) is None.
    """
    parsed = _split_number(text.rsplit("####", 1)[-1])
    if parsed is None or parsed[2].strip(" ."):
        return None
    value, num, _ = parsed
    if value.denominator == 1:
        return str(value.numerator)
    if "/" in num or "frac" in num:
        return f"{value.numerator}/{value.denominator}"
    return format(Decimal(num).normalize(), "f")


def gsm_gold(answer_text: str) -> str:
    """The normalised final answer of a GSM8K `answer` field (the text after its last `####`)."""
    if "####" not in answer_text:
        raise ValueError(f"GSM8K answer without '####': {answer_text[-60:]!r}")
    gold = normalize_number(answer_text.rsplit("####", 1)[-1])
    if gold is None:
        raise ValueError(f"GSM8K answer is not a number: {answer_text.rsplit('####', 1)[-1]!r}")
    return gold


def final_answer(text: str) -> str:
    """The answer a model states: the last `\\boxed{}` if any, else the rest of the line after the last `####`
    (a continuation on later lines is not part of the answer), else the whole text."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    return text.rsplit("####", 1)[-1].split("\n", 1)[0] if "####" in text else text


def is_correct(pred: str, gold: str, kind: str) -> bool:
    """Whether a model's output `pred` states the reference answer `gold`.

    kind 'gsm': `gold` is a GSM8K answer field or a bare number; the answer must state one number of the same exact
    value (`stated_number`: a unit, currency and thousands separators in any usual form may go with it).
    kind 'math': `gold` is a MATH `answer` (LaTeX); two stated numbers of equal value pass as for 'gsm', otherwise
    math-verify decides (gold first), and a normalised string compare catches what it cannot parse.
    Never raises on model output: unparseable means incorrect.
    """
    if kind == "gsm":
        want = Fraction(gsm_gold(gold)) if "####" in gold else stated_number(gold)
        return want is not None and stated_number(final_answer(pred)) == want
    if kind == "math":
        answer = final_answer(pred)
        if _BASE_RE.findall(answer) != _BASE_RE.findall(gold):  # math-verify drops subscripts: 52_8 == 52_9
            return False
        if (want := stated_number(gold)) is not None and stated_number(answer) == want:
            return True  # math-verify misreads units and separators: 32\,348 dollars, 70\thinspace 000
        return _math_verify(gold, answer) or normalize_latex(answer) == normalize_latex(gold)
    raise ValueError(f"answer kind {kind!r}: expected 'gsm' or 'math'")


def chat_correct(generation: str, gold: str, kind: str) -> bool:
    """Whether a chat model's generation answers correctly: its last `\\boxed{}` states `gold` (`is_correct`).

    The chat answer form requires the box, so an unboxed generation is wrong, whatever number it ends with. Chat
    evaluation, the GRPO correctness reward and the DPO pair labels all score by this one rule.
    """
    answer = extract_boxed(generation)
    return answer is not None and is_correct(answer, gold, kind)


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


NUMBER = r"\$?\d+(?:\.\d+)?"
STEP = re.compile(rf"(?<![\d.$])({NUMBER}(?: [-+*/x] {NUMBER})+) = ({NUMBER})(?![\d])")


def arithmetic_steps(text: str) -> tuple[int, int]:
    """(steps, false steps): every calculation a solution writes out as `a op b [op c ...] = r` (op one of
    + - * x /, amounts optionally in $), evaluated exactly with the usual precedence. Synthetic GSM solutions state
    each calculation this way, so a false step is an arithmetic slip rather than a wrong plan."""
    steps = [(expr, Fraction(result.lstrip("$"))) for expr, result in STEP.findall(text)]
    return len(steps), sum(_evaluate(expr) != result for expr, result in steps)


def _evaluate(expr: str) -> Fraction | None:
    """The exact value of `expr` ("a op b op c ...", single spaces, the numbers as written even with leading zeros),
    multiplication and division first; None where it divides by zero."""
    tokens = expr.replace("$", "").split(" ")
    terms, signs = [Fraction(tokens[0])], []  # the products so far, and the + / - between them
    for op, number in zip(tokens[1::2], tokens[2::2], strict=True):
        value = Fraction(number)
        if op in "+-":
            terms.append(value)
            signs.append(op)
        elif op == "/":
            if value == 0:
                return None
            terms[-1] /= value
        else:  # * or x
            terms[-1] *= value
    return terms[0] + sum((t if sign == "+" else -t for sign, t in zip(signs, terms[1:], strict=True)), Fraction())

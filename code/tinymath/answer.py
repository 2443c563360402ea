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

from tinymath.specials import END_THINK, THINK

SYSTEM_PROMPT = ("You are a careful mathematician. Reason step by step between <think> and </think>, "
                 "then state the final answer as \\boxed{...}.")
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

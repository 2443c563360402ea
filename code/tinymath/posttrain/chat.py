"""Math records -> ChatML conversations in the project's answer form, shared by SFT (targets) and GRPO (prompts).

Every conversation is system = `answer.SYSTEM_PROMPT`, user = the problem, assistant = `answer.format_response`.
GSM8K calculator annotations (`<<48/2=24>>`) are removed from the reasoning: they were written for a calculator tool
that this model never calls, they restate every result a second time (about a third more tokens per solution for a
tiny model to imitate), and the visible text `48/2 = 24` already carries the calculation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tinymath.answer import SYSTEM_PROMPT, extract_boxed, format_response, gsm_gold

Messages = list[dict[str, str]]
ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
GSM_FINAL_RE = re.compile(r"\n?####\s*(?P<final>[^\n]+?)\s*\Z")
ANSWER_IS_RE = re.compile(r"The answer is:?\s*(?P<final>.+?)\s*\.?\s*\Z", re.DOTALL)


def prompt(question: str) -> Messages:
    """The system and user turns: what GRPO samples from and evaluation asks."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question.strip()}]


def conversation(question: str, reasoning: str, final: str) -> Messages:
    """A full training conversation ending in the assistant's answer-form turn."""
    return [*prompt(question), {"role": "assistant", "content": format_response(reasoning, final)}]


def gsm_reasoning(answer: str) -> str:
    """A GSM8K answer without its `#### N` line and calculator annotations."""
    body = GSM_FINAL_RE.sub("", answer.strip())
    return ANNOTATION_RE.sub("", body).strip()


def from_gsm8k(rec: dict[str, Any]) -> Messages:
    return conversation(rec["question"], gsm_reasoning(rec["answer"]), gsm_gold(rec["answer"]))


def from_math(rec: dict[str, Any]) -> Messages:
    """MATH records carry the final answer separately; the solution (with its own \\boxed{}) is the reasoning."""
    return conversation(rec["problem"], rec["solution"], rec["answer"])


def _answer_is(text: str) -> tuple[str, str] | None:
    """Split a solution ending in `The answer is: X` (MetaMathQA, MathInstruct CoT) into reasoning and X."""
    start = text.rfind("The answer is")
    m = ANSWER_IS_RE.match(text, start) if start >= 0 else None
    if m is None:
        return None
    reasoning = text[:start].strip()
    return (reasoning, m.group("final")) if reasoning and m.group("final") else None


def from_metamathqa(rec: dict[str, Any]) -> Messages | None:
    parts = _answer_is(rec["response"])
    return conversation(rec["query"], *parts) if parts else None


def from_mathinstruct(rec: dict[str, Any]) -> Messages | None:
    """Chain-of-thought rows only: PoT rows are Python programs with no stated final answer to box."""
    if "/PoT/" in rec["source"]:
        return None
    text = rec["output"].strip()
    parts = _answer_is(text)
    if parts is None and (boxed := extract_boxed(text)):
        parts = (text, boxed)
    return conversation(rec["instruction"], *parts) if parts else None


# Record format name (as written in configs) -> converter; None means the record is dropped (and counted).
FORMATS: dict[str, Callable[[dict[str, Any]], Messages | None]] = {
    "gsm8k": from_gsm8k,
    "math": from_math,
    "metamathqa": from_metamathqa,
    "mathinstruct": from_mathinstruct,
}
# The fields each format's converter reads: a record without them is a malformed input, not a dropped record.
FIELDS: dict[str, tuple[str, ...]] = {
    "gsm8k": ("question", "answer"),
    "math": ("problem", "solution", "answer"),
    "metamathqa": ("query", "response"),
    "mathinstruct": ("instruction", "output", "source"),
}

"""Scores: the chat-suite metric lm-eval calls, per-sample records, bootstrap intervals, subsets and arithmetic.

Few-shot suites are scored by lm-eval itself (its filters and metrics); chat suites by `tinymath.answer.is_correct`,
which lm-eval calls through `process_results` so that its logged samples carry our per-sample verdicts too. Either
way the numbers in `eval_<model>.json` are recomputed here from lm-eval's logged samples and must equal its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinymath.answer import arithmetic_steps, chat_correct, extract_boxed, gsm_gold
from tinymath.stats import bootstrap_ci


def process_gsm(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval `process_results` of chat GSM tasks: the boxed answer against the `#### N` line."""
    return {"accuracy": chat_score(results[0], doc["answer"], "gsm")}


def process_math(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval `process_results` of chat MATH tasks: the boxed answer against the solution's last \\boxed{}."""
    return {"accuracy": chat_score(results[0], math_gold(doc), "math")}


def chat_score(generation: str, gold: str, kind: str) -> float:
    """1.0 when the generation's last \\boxed{} states the gold answer (`answer.chat_correct`), else 0.0.

    An unboxed generation never reaches math-verify, which can take seconds on free text.
    """
    return float(chat_correct(generation, gold, kind))


def math_gold(doc: dict[str, Any]) -> str:
    """The reference answer of a MATH row: its solution's last \\boxed{} (equals MATH-500's `answer` field)."""
    return extract_boxed(doc["solution"]) or doc["answer"]


def chat_gold(doc: dict[str, Any], kind: str) -> str:
    return gsm_gold(doc["answer"]) if kind == "gsm" else math_gold(doc)


def stderr(scores: list[float]) -> float | None:
    """Standard error of the mean (sample std / sqrt(n)), lm-eval's `mean_stderr`; None for a single sample."""
    n = len(scores)
    return float(np.std(scores, ddof=1) / math.sqrt(n)) if n > 1 else None


def subset_keys(doc: dict[str, Any], meta: dict[str, Any] | None) -> list[str]:
    """Which reported subsets a problem belongs to: its difficulty level, and novel arithmetic (synthetic only)."""
    info = {**doc, **(meta or {})}
    keys = [f"level_{info['level']}"] if info.get("level") is not None else []
    return keys + (["novel_arithmetic"] if info.get("novel_arithmetic") else [])


def subsets(scores: list[float], keys: list[list[str]], samples: int, seed: int) -> dict[str, dict[str, Any]]:
    """Accuracy and interval of every subset named in `keys` (one list of names per problem)."""
    out = {}
    for name in sorted({k for ks in keys for k in ks}):
        part = [s for s, ks in zip(scores, keys, strict=True) if name in ks]
        out[name] = {"n": len(part), "value": float(np.mean(part)), "ci95": bootstrap_ci(part, samples, seed)}
    return out


def arithmetic(generations: list[str], scores: list[float]) -> dict[str, int]:
    """How often the written calculations are false, overall and in the solutions whose answer is wrong."""
    counts = [arithmetic_steps(g) for g in generations]
    wrong = [c for c, s in zip(counts, scores, strict=True) if s == 0]
    return {"steps": sum(n for n, _ in counts), "false_steps": sum(f for _, f in counts),
            "wrong_answers": len(wrong), "wrong_with_false_step": sum(f > 0 for _, f in wrong)}

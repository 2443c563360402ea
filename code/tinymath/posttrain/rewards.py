"""GRPO reward functions: verifiable correctness, true written arithmetic, the strict answer format, and a penalty for
repetition.

Each has TRL's reward signature `f(completions, answer, **kwargs) -> list[float]`; TRL logs the mean of each under
its `__name__`. Completions are chat turns (`[{"role": "assistant", "content": ...}]`) or plain strings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tinymath import specials
from tinymath.answer import arithmetic_steps, chat_correct, follows_format

NGRAM = 4  # repetition is measured over word 4-grams, the shortest span that a copied phrase reliably shows


def _text(completion: Any) -> str:
    return completion[-1]["content"] if isinstance(completion, list) else str(completion)


def correctness(completions: list[Any], answer: list[str], kind: list[str], **_: Any) -> list[float]:
    """1 when the completion's boxed answer equals the gold one by the evaluation's own rule, else 0.

    `answer.chat_correct` is the single definition (the last box; math-verify, gold first, timeouts and parse
    failures = wrong), so the reward optimises exactly what evaluation measures; `kind` is 'gsm' or 'math' per prompt.
    """
    return [float(chat_correct(_text(c), gold, k)) for c, gold, k in zip(completions, answer, kind, strict=True)]


def arithmetic(completions: list[Any], **_: Any) -> list[float]:
    """The share of the calculations a completion writes out (`a op b = r`) that are true; 0 when it writes none.

    Verifiable per step where correctness is per answer: most wrong answers of a small model hold one slip among
    true steps, so this reward separates completions that correctness scores alike.
    """
    scores = []
    for c in completions:
        steps, false = arithmetic_steps(_text(c))
        scores.append((steps - false) / steps if steps else 0.0)
    return scores


def strict_format(completions: list[Any], **_: Any) -> list[float]:
    """1 when the completion is exactly one well-formed answer turn (answer.follows_format), else 0."""
    return [float(follows_format(_text(c))) for c in completions]


def repetition_fraction(text: str, n: int = NGRAM) -> float:
    """Share of word n-grams that repeat an earlier one: 0 for fresh text, near 1 for a loop."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def repetition(completions: list[Any], **_: Any) -> list[float]:
    """Minus the repeated-n-gram share: small models fall into loops that run to the length limit."""
    return [-repetition_fraction(_text(c)) for c in completions]


def with_special_tokens(reward: Callable[..., list[float]], tokenizer: Any) -> Callable[..., list[float]]:
    """`reward` scored on completions decoded with <think> and </think> kept.

    TRL decodes completions with `skip_special_tokens=True`, which deletes the reasoning delimiters (special tokens
    of this tokenizer), so the strict format could never be met. Re-decode `completion_ids` keeping them, dropping
    only the stop and padding tokens.
    """
    drop = set(specials.STOP_IDS) | {specials.PAD_ID}

    @functools.wraps(reward)
    def scored(completions: list[Any], completion_ids: list[list[int]], **kwargs: Any) -> list[float]:
        texts = [tokenizer.decode([t for t in ids if t not in drop]) for ids in completion_ids]
        turns = [[{"role": "assistant", "content": t}] if isinstance(c, list) else t
                 for c, t in zip(completions, texts, strict=True)]
        return reward(turns, completion_ids=completion_ids, **kwargs)

    return scored


REWARDS = {f.__name__: f for f in (correctness, arithmetic, strict_format, repetition)}

"""Shared fixtures. Tests run offline on CPU; nothing here downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real GSM8K / MATH files beside the project; tests using them skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real evaluation data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small digit-split BPE tokenizer with the project's special tokens and chat template."""
    from tinymath.tokenizer import train_tokenizer

    texts = [f"Tom has {i} apples and buys {i * 3 + 7} more. How many apples does he have now?" for i in range(200)]
    texts += ["The quick brown fox jumps over the lazy dog. Algebra, geometry and number theory.",
              "Solve for x: 2x + 3 = 11. \\boxed{4} \\frac{1}{2} The final answer is"] * 20
    return train_tokenizer(texts, vocab_size=512)

"""The schema of `configs/synth/<profile>.yaml`: sizes, difficulty mix and number ranges of the generators."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from tinymath.config import Requirements, Section

GSM_LEVELS = (1, 2, 3, 4)  # number of reasoning steps
MATH_LEVELS = (1, 2, 3, 4, 5)
MATH_SUBJECTS = ("Prealgebra", "Algebra", "Number Theory", "Counting & Probability")
CORPUS_SOURCES = ("worked_examples", "math_tables", "math_prose", "edu_english")


def _weights(value: dict, allowed: tuple, what: str) -> dict:
    """Mixture weights: keys from `allowed`, non-negative, not all zero."""
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise ValueError(f"{what} keys from {list(allowed)}")
    if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
        raise ValueError(f"non-negative {what} weights with a positive sum")
    return value


class GsmConfig(Section):
    """GSM8K-format word problems. `test` includes `novel_test` records built only from held-out calculations."""

    train: int = Field(1000, gt=0)
    validation: int = Field(100, ge=0)
    test: int = Field(100, gt=0)
    novel_test: int = Field(20, ge=0)
    levels: dict[int, float] = {1: 0.3, 2: 0.3, 3: 0.2, 4: 0.2}
    min_number: int = Field(2, ge=1)  # smallest base quantity in a story
    max_number: int = Field(100, ge=10)  # largest base quantity in a story
    max_factor: int = Field(12, ge=2)  # largest multiplier, divisor or group size
    holdout_fraction: float = Field(0.03, gt=0, lt=0.5)  # calculations kept out of train/validation/corpus

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: dict[int, float]) -> dict[int, float]:
        return _weights(v, GSM_LEVELS, "level")

    @model_validator(mode="after")
    def _sizes(self) -> GsmConfig:
        if self.novel_test > self.test:
            raise ValueError(f"novel_test <= test ({self.test}), got novel_test={self.novel_test}")
        if self.min_number * 5 > self.max_number:
            raise ValueError(f"max_number >= 5 * min_number, got {self.min_number}..{self.max_number}")
        return self


class MathConfig(Section):
    """MATH-format problems (Prealgebra, Algebra, Number Theory, Counting & Probability; levels 1-5)."""

    train: int = Field(1000, gt=0)
    validation: int = Field(100, ge=0)
    test: int = Field(100, gt=0)
    levels: dict[int, float] = {1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2, 5: 0.2}
    subjects: dict[str, float] = {s: 1.0 for s in MATH_SUBJECTS}

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: dict[int, float]) -> dict[int, float]:
        return _weights(v, MATH_LEVELS, "level")

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, v: dict[str, float]) -> dict[str, float]:
        return _weights(v, MATH_SUBJECTS, "subject")


class CorpusConfig(Section):
    """Pretraining documents; `sources` weights the generator families."""

    documents: int = Field(1000, gt=0)
    sources: dict[str, float] = {"worked_examples": 0.4, "math_tables": 0.1, "math_prose": 0.2, "edu_english": 0.3}
    duplicate_fraction: float = Field(0.02, ge=0, lt=0.5)  # verbatim reposts of an earlier document
    near_duplicate_fraction: float = Field(0.03, ge=0, lt=0.5)  # lightly edited reposts
    max_parts: int = Field(8, gt=0)  # most examples/paragraphs in one document (a sentence to about a page)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: dict[str, float]) -> dict[str, float]:
        return _weights(v, CORPUS_SOURCES, "source")


class Config(Section):
    seed: int = 0
    requires: Requirements = Requirements()
    gsm: GsmConfig = GsmConfig()
    math: MathConfig = MathConfig()
    corpus: CorpusConfig = CorpusConfig()

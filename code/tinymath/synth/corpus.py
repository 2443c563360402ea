"""The pretraining corpus: `{"id", "source", "text"}` documents from four generator families.

    worked_examples  GSM8K-style and MATH-style solved problems (training split only), in a few layouts
    math_tables      operation tables, powers, divisors, primes, conversions, fractions, rounding (`tables.py`)
    math_prose       short explanations of arithmetic concepts with worked numbers (`prose.py`)
    edu_english      plain-English paragraphs: school topics (`english.TOPICS`) and facts (`encyclopedia.py`)

Every arithmetic fact written here passes the GSM hold-out rule, and every problem is one the split rule sends to
training, so nothing in the corpus can reveal a test problem or a novel-arithmetic calculation. A small share of
documents are verbatim or lightly edited reposts of earlier ones, as in web text, for the dedup stage to find.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from tinymath.synth import competition, encyclopedia, english, gsm, prose, tables, words
from tinymath.synth.arith import written_facts
from tinymath.synth.config import Config
from tinymath.synth.splits import TRAIN

_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
_FINAL_RE = re.compile(r"\n#### (-?\d+)\Z")
PRONOUN = {name: she for name, she, _ in words.PEOPLE}  # a swapped name keeps the story's pronouns right


# draw weights of the kinds of `edu_english` paragraph: topic paragraphs have the fewest distinct texts
ENGLISH_KINDS = {"topic": 0.08, "animal": 0.44, "country": 0.22, "invention": 0.05, "planet": 0.04, "element": 0.13,
                 "capitals": 0.04}


def _english(rng: random.Random) -> str:
    """A topic paragraph (`english.TOPICS`) or a fact-built one (`encyclopedia.PROFILES`)."""
    kinds = sorted(ENGLISH_KINDS)
    kind = rng.choices(kinds, [ENGLISH_KINDS[k] for k in kinds])[0]
    return _topic(rng) if kind == "topic" else encyclopedia.PROFILES[kind](rng)


def _topic(rng: random.Random) -> str:
    """An ordered selection of one topic's sentences, sometimes under its title."""
    title = rng.choice(sorted(english.TOPICS))
    sentences = english.TOPICS[title]
    keep = sorted(rng.sample(range(len(sentences)), rng.randint(2, len(sentences))))
    body = " ".join(sentences[i] for i in keep)
    return f"{title}\n{body}" if len(keep) > 2 and rng.random() < 0.6 else body


class Corpus:
    """Draws documents; problems come from the GSM/MATH generators, filtered to the training split."""

    def __init__(self, cfg: Config, seed: int):
        self.cfg = cfg.corpus
        self.rng = random.Random(f"corpus:{seed}")
        self.gsm_split = gsm.splitter_of(cfg.gsm, seed)
        self.math_split = competition.splitter_of(cfg.math, seed)
        self.facts = tables.Facts(self.gsm_split)
        self.gsm = self._gsm_train(gsm.stream(cfg.gsm, random.Random(f"corpus-gsm:{seed}")))
        self.math = cfg.math

    def _gsm_train(self, problems: Iterator[gsm.GsmProblem]) -> Iterator[gsm.GsmProblem]:
        for p in problems:
            if self.gsm_split.split(p.key) == TRAIN and not any(self.gsm_split.held(c) for c in p.calcs):
                yield p

    def _math_train(self) -> competition.MathProblem:
        subjects, levels = sorted(self.math.subjects), sorted(self.math.levels)
        while True:
            subject = self.rng.choices(subjects, [self.math.subjects[s] for s in subjects])[0]
            level = self.rng.choices(levels, [self.math.levels[lv] for lv in levels])[0]
            p = competition.draw(self.rng, subject, level)
            if self.math_split.split(p.key) == TRAIN and not any(map(self.gsm_split.held, written_facts(p.solution))):
                return p

    def worked(self) -> str:
        """A GSM8K-format pair (the few-shot layout evaluation uses), a plain-prose one, or a MATH problem."""
        u = self.rng.random()
        if u < 0.2:
            p = self._math_train()
            return f"Problem: {p.problem}\nSolution: {p.solution}"
        p = next(self.gsm)
        if u < 0.75:
            return f"Question: {p.question}\nAnswer: {p.answer}"
        plain = _FINAL_RE.sub(r"\nThe answer is \1.", _ANNOTATION_RE.sub("", p.answer))
        return f"Example: {p.question}\nSolution: {plain}"

    def part(self, source: str) -> str:
        if source == "worked_examples":
            return self.worked()
        if source == "math_tables":
            return tables.table(self.rng, self.facts)
        if source == "math_prose":
            return prose.explanation(self.rng, self.facts)
        return _english(self.rng)

    def document(self, source: str) -> str:
        """One to `max_parts` parts: from a single sentence or table up to about a page."""
        parts = min(self.cfg.max_parts, 1 + int(self.rng.expovariate(0.7)))
        return "\n\n".join(self.part(source) for _ in range(parts))

    def near_copy(self, text: str) -> str:
        """A light edit of `text`: a footer added, the last paragraph dropped, or a name swapped."""
        edit = self.rng.randrange(3)
        paras = text.split("\n\n")
        if edit == 0 or (edit == 1 and len(paras) == 1):
            return f"{text}\n{self.rng.choice(english.BOILERPLATE)}"
        if edit == 1:
            return "\n\n".join(paras[:-1])
        names = [n for n, _, _ in words.PEOPLE if re.search(rf"\b{n}\b", text)]
        if not names:
            return f"{self.rng.choice(english.BOILERPLATE)}\n{text}"
        old = self.rng.choice(names)
        new = self.rng.choice([n for n, she in PRONOUN.items() if she == PRONOUN[old] and n not in names])
        return re.sub(rf"\b{old}\b", new, text)

    def generate(self) -> list[dict[str, str]]:
        sources = sorted(self.cfg.sources)
        weights = [self.cfg.sources[s] for s in sources]
        docs: list[dict[str, str]] = []
        for i in range(self.cfg.documents):
            u = self.rng.random()
            if docs and u < self.cfg.duplicate_fraction:
                src = self.rng.choice(docs)
                source, text = src["source"], src["text"]
            elif docs and u < self.cfg.duplicate_fraction + self.cfg.near_duplicate_fraction:
                src = self.rng.choice(docs)
                source, text = src["source"], self.near_copy(src["text"])
            else:
                source = self.rng.choices(sources, weights)[0]
                text = self.document(source)
            docs.append({"id": f"doc-{i:07d}", "source": source, "text": text})
        return docs

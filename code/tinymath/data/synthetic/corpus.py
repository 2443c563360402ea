"""The pretraining corpus: `{"id", "source", "text"}` documents from four generator families.

    worked_examples  GSM8K-style and MATH-style solved problems (training split only), in a few layouts
    math_tables      multiplication/addition tables, squares, divisors, primes, unit conversions
    math_prose       short explanations of arithmetic concepts with worked numbers
    edu_english      plain-English educational paragraphs (`english.TOPICS`)

Every arithmetic fact written here passes the GSM hold-out rule, and every problem is one the split rule sends to
training, so nothing in the corpus can reveal a test problem or a novel-arithmetic calculation. A small share of
documents are verbatim or lightly edited reposts of earlier ones, as in web text, for the dedup stage to find.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

from tinymath.data.synthetic import competition, english, gsm, words
from tinymath.data.synthetic.arith import canonical, written_facts
from tinymath.data.synthetic.config import SynthConfig
from tinymath.data.synthetic.splits import TRAIN, Splitter

_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
_FINAL_RE = re.compile(r"\n#### (-?\d+)\Z")
SHOWN = {"+": "+", "-": "-", "*": "x", "/": "/"}
UNITS = (("foot", "feet", "inches", 12), ("hour", "hours", "minutes", 60), ("yard", "yards", "feet", 3),
         ("dollar", "dollars", "cents", 100), ("week", "weeks", "days", 7), ("dozen", "dozen", "items", 12))
PRONOUN = {name: she for name, she, _ in words.PEOPLE}  # a swapped name keeps the story's pronouns right


class Facts:
    """Arithmetic facts that respect the hold-out rule: `fact` raises `ArithmeticError` for a held-out one."""

    def __init__(self, splitter: Splitter):
        self.splitter = splitter

    def allowed(self, a: int, op: str, b: int) -> int | None:
        """`a op b` when it is exact, non-negative and not held out; else None."""
        if op == "/" and (b == 0 or a % b):
            return None
        r = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]
        if r < 0 or self.splitter.held(canonical(f"{a}{op}{b}", r)):
            return None
        return r

    def fact(self, a: int, op: str, b: int) -> int:
        r = self.allowed(a, op, b)
        if r is None:
            raise ArithmeticError(f"{a}{op}{b} is held out or not exact")
        return r


def _table(rng: random.Random, facts: Facts) -> str:
    kind = rng.choice(("times", "plus", "squares", "divisors", "primes", "units"))
    n = rng.randint(2, 12)
    if kind in ("times", "plus"):
        op = "*" if kind == "times" else "+"
        title = f"{'Multiplication' if op == '*' else 'Addition'} table of {n}"
        rows = [f"{n} {SHOWN[op]} {k} = {r}" for k in range(1, 13) if (r := facts.allowed(n, op, k)) is not None]
        return "\n".join([title, *rows])
    if kind == "squares":
        top = rng.choice((10, 12, 15, 20))
        rows = [f"{k} x {k} = {r}" for k in range(1, top + 1) if (r := facts.allowed(k, "*", k)) is not None]
        return "\n".join([f"Square numbers from 1 to {top}", *rows])
    if kind == "divisors":
        m = rng.randint(12, 120)
        divs = [d for d in range(1, m + 1) if m % d == 0]
        listed = ", ".join(map(str, divs[:-1])) + f" and {divs[-1]}"
        return f"The divisors of {m} are {listed}. So {m} has {len(divs)} divisors."
    if kind == "primes":
        top = rng.choice((20, 30, 50, 100))
        primes = [p for p in range(2, top) if all(p % q for q in range(2, int(p ** 0.5) + 1))]
        return f"The prime numbers less than {top} are {', '.join(map(str, primes))}."
    one, many, small, per = rng.choice(UNITS)
    rows = [f"{k} {one if k == 1 else many} = {r} {small}"
            for k in range(1, rng.randint(5, 12)) if (r := facts.allowed(k, "*", per)) is not None]
    return "\n".join([f"Converting {many} to {small}", *rows])


def _prose(rng: random.Random, facts: Facts) -> str:
    """One short explanation of a concept with its worked numbers (redrawn while a fact is held out)."""
    concept = rng.choice(sorted(PROSE))
    while True:
        try:
            return PROSE[concept](rng, facts)
        except ArithmeticError:
            continue


def _adding(rng: random.Random, f: Facts) -> str:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    r = f.fact(a, "+", b)
    return (f"Adding means putting amounts together. To add {a} and {b}, add the ones and then the tens. "
            f"So {a} + {b} = {r}. Addition can be done in any order, so {b} + {a} is also {r}.")


def _subtracting(rng: random.Random, f: Facts) -> str:
    a = rng.randint(20, 150)
    b = rng.randint(1, a - 1)
    r = f.fact(a, "-", b)
    back = f.fact(r, "+", b)
    return (f"Subtraction finds how much is left or how far apart two numbers are. If you have {a} and take away "
            f"{b}, you have {a} - {b} = {r} left. You can check a subtraction by adding back: {r} + {b} = {back}.")


def _multiplying(rng: random.Random, f: Facts) -> str:
    a, b = rng.randint(2, 9), rng.randint(2, 12)
    r = f.fact(a, "*", b)
    adds = " + ".join([str(b)] * a)
    return (f"Multiplication is repeated addition. {a} x {b} means {a} groups of {b}, that is {adds}, which is {r}. "
            f"So {a} x {b} = {r}.")


def _dividing(rng: random.Random, f: Facts) -> str:
    k, each = rng.randint(2, 12), rng.randint(2, 15)
    n = f.fact(k, "*", each)
    r = f.fact(n, "/", k)
    return (f"Division shares a number into equal groups. Sharing {n} sweets equally among {k} children gives each "
            f"child {n} / {k} = {r} sweets. Division undoes multiplication: {k} x {r} = {n}.")


def _percent(rng: random.Random, f: Facts) -> str:
    p = rng.choice((10, 20, 25, 50))
    n = (100 // p) * rng.randint(1, 20)
    r = n * p // 100
    if f.splitter.held(canonical(f"{n}*{p}/100", r)):
        raise ArithmeticError("held out")
    return (f"Percent means 'out of one hundred'. To find {p}% of {n}, multiply {n} by {p} and divide by 100: "
            f"{n} * {p} / 100 = {r}. So {p}% of {n} is {r}.")


def _average(rng: random.Random, f: Facts) -> str:
    k = rng.randint(2, 5)
    mean = rng.randint(5, 40)
    values = [rng.randint(1, 2 * mean) for _ in range(k - 1)]
    last = k * mean - sum(values)
    if last < 1:
        raise ArithmeticError("negative value")
    values.append(last)
    total = values[0]
    for v in values[1:]:
        total = f.fact(total, "+", v)
    f.fact(total, "/", k)
    return (f"The average, or mean, of a list of numbers is their sum divided by how many there are. For "
            f"{', '.join(map(str, values))}, the sum is {total} and there are {k} numbers, so the average is "
            f"{total} / {k} = {mean}.")


def _rectangle(rng: random.Random, f: Facts) -> str:
    w, h = rng.randint(2, 20), rng.randint(2, 20)
    area = f.fact(w, "*", h)
    half = f.fact(w, "+", h)
    perim = f.fact(half, "*", 2)
    return (f"A rectangle that is {w} units long and {h} units wide has an area of {w} x {h} = {area} square units. "
            f"Its perimeter is the distance around it: {w} + {h} = {half}, and {half} x 2 = {perim} units.")


def _unit_rate(rng: random.Random, f: Facts) -> str:
    k, price = rng.randint(2, 10), rng.randint(2, 15)
    total = f.fact(k, "*", price)
    f.fact(total, "/", k)
    name, she, _ = rng.choice(words.PEOPLE)
    good = rng.choice(words.GOODS)
    return (f"A unit price is the cost of one item. If {k} {good[1]} cost ${total}, then one {good[0]} costs "
            f"{total} / {k} = ${price}. {name} can use the unit price to compare shops before {she} buys.")


def _even_odd(rng: random.Random, f: Facts) -> str:
    n = rng.randint(10, 999)
    kind = "even" if n % 2 == 0 else "odd"
    return (f"A whole number is even if it can be split into two equal halves and odd otherwise. You only need to "
            f"look at the last digit: {n} ends in {n % 10}, so {n} is {kind}.")


PROSE: dict[str, Callable[[random.Random, Facts], str]] = {
    "adding": _adding, "subtracting": _subtracting, "multiplying": _multiplying, "dividing": _dividing,
    "percent": _percent, "average": _average, "rectangle": _rectangle, "unit_rate": _unit_rate,
    "even_odd": _even_odd,
}


def _english(rng: random.Random) -> str:
    title = rng.choice(sorted(english.TOPICS))
    sentences = english.TOPICS[title]
    keep = sorted(rng.sample(range(len(sentences)), rng.randint(1, len(sentences))))
    body = " ".join(sentences[i] for i in keep)
    return f"{title}\n{body}" if len(keep) > 2 and rng.random() < 0.6 else body


class Corpus:
    """Draws documents; problems come from the GSM/MATH generators, filtered to the training split."""

    def __init__(self, cfg: SynthConfig, seed: int):
        self.cfg = cfg.corpus
        self.rng = random.Random(f"corpus:{seed}")
        self.gsm_split = gsm.splitter_of(cfg.gsm, seed)
        self.math_split = competition.splitter_of(cfg.math, seed)
        self.facts = Facts(self.gsm_split)
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
            return _table(self.rng, self.facts)
        if source == "math_prose":
            return _prose(self.rng, self.facts)
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

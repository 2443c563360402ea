"""GSM8K-format word problems: `{"question", "answer"}` with `<<a*b=c>>c` annotations and a final `#### N` line.

Each template tells a short story whose solution takes exactly `level` calculations (levels 1-4). Numbers are drawn
so every step is exact integer arithmetic with a non-negative result; every answer is re-checked by
`arith.check_solution` before it is kept.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tinymath.synth import words
from tinymath.synth.arith import Work, check_solution
from tinymath.synth.config import GsmConfig
from tinymath.synth.splits import TEST, TRAIN, VALIDATION, Splitter, fill_quotas, shares, unit_hash

FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 6: "a sixth", 8: "an eighth", 10: "a tenth"}
MULTIPLES = {2: "doubles", 3: "triples", 4: "quadruples"}
BILLS = (5, 10, 20, 50, 100, 200, 500, 1000)
PERCENTS = (10, 20, 25, 30, 40, 50, 60, 75, 80, 90)
_NUM_RE = re.compile(r"\d+")
NOVEL = "novel"  # test records whose every calculation is held out of training
STALE_LIMIT = 100_000  # draws without a new kept problem before the requested counts are declared impossible


@dataclass(frozen=True)
class Ranges:
    lo: int
    hi: int
    factor: int

    def num(self, rng: random.Random) -> int:
        return rng.randint(self.lo, self.hi)

    def k(self, rng: random.Random) -> int:
        return rng.randint(2, self.factor)


@dataclass(frozen=True)
class GsmProblem:
    question: str
    answer: str
    level: int
    template: str
    calcs: tuple[str, ...]  # canonical calculations, in order
    key: str  # canonical problem: template, level, the question's numbers and the calculations

    def record(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _person(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice(words.PEOPLE)


def _total(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    name, she, _ = _person(rng)
    thing = rng.choice(words.THINGS)[0]
    verb, base = rng.choice((("collected", "collect"), ("sold", "sell"), ("bought", "buy"), ("packed", "pack")))
    start = rng.randrange(len(words.DAYS) - level)
    days = words.DAYS[start:start + level + 1]
    counts = [r.num(rng) for _ in days]
    question = (f"{name} {verb} {_join([f'{c} {thing} on {d}' for c, d in zip(counts, days)])}. "
                + rng.choice((f"How many {thing} did {she} {base} in total?",
                              f"How many {thing} is that altogether?")))
    total = counts[0]
    for i, (c, d) in enumerate(zip(counts[1:], days[1:]), start=1):
        total, text = w.calc(total, "+", c)
        w.line(f"In total {she} {verb} {text} {thing}." if i == level
               else f"By the end of {d}, {she} had {verb} {text} {thing}.")
    return question, total


def _more(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    (a_name, _, _), (b_name, _, _), (c_name, _, _) = rng.sample(words.PEOPLE, 3)
    thing = rng.choice(words.THINGS)[0]
    a = r.num(rng)
    if level == 1:
        b = a + r.num(rng)
        w.line(f"{b_name} has {w.calc(b, '-', a)[1]} more {thing} than {a_name}.")
        return (f"{a_name} has {a} {thing}. {b_name} has {b} {thing}. "
                f"How many more {thing} does {b_name} have than {a_name}?"), b - a
    k = r.k(rng)
    b, text = w.calc(a, "*", k)
    w.line(f"{b_name} has {text} {thing}.")
    story = f"{a_name} has {a} {thing}. {b_name} has {k} times as many {thing} as {a_name}. "
    if level == 2:
        diff, text = w.calc(b, "-", a)
        w.line(f"So {b_name} has {text} more {thing} than {a_name}.")
        return story + f"How many more {thing} does {b_name} have than {a_name}?", diff
    c_more = r.num(rng)
    c, text = w.calc(b, "+", c_more)
    w.line(f"{c_name} has {text} {thing}.")
    diff, text = w.calc(c, "-", a)
    w.line(f"So {c_name} has {text} more {thing} than {a_name}.")
    return (story + f"{c_name} has {c_more} more {thing} than {b_name}. "
            f"How many more {thing} does {c_name} have than {a_name}?"), diff


def _rate(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    name, she, _ = _person(rng)
    job = rng.choice(words.JOBS)
    rate = rng.randint(max(2, r.lo), max(10, r.hi // 2))
    hours = r.k(rng)
    story = f"{name} earns ${rate} an hour for {job}. "
    if level == 1:
        pay, text = w.calc(rate, "*", hours, money=True)
        w.line(f"{she.capitalize()} earned {text}.")
        return story + f"Yesterday {she} worked {hours} hours. How much did {she} earn?", pay
    days = r.k(rng)
    daily, text = w.calc(rate, "*", hours, money=True)
    w.line(f"Each day {she} earns {text}.")
    total, text = w.calc(daily, "*", days, money=True)
    w.line(f"In {days} days {she} earns {text}.")
    story += f"{she.capitalize()} works {hours} hours a day for {days} days. "
    if level == 2:
        return story + f"How much does {she} earn in total?", total
    bonus = r.num(rng)
    total, text = w.calc(total, "+", bonus, money=True)
    w.line(f"With the bonus {she} has {text}.")
    story += f"At the end {she} also gets a bonus of ${bonus}. "
    if level == 3:
        return story + f"How much money does {she} get altogether?", total
    good = rng.choice(words.GOODS)
    spent = rng.randint(1, total - 1)
    left, text = w.calc(total, "-", spent, money=True)
    w.line(f"After buying the {good[0]}, {she} has {text} left.")
    return story + f"Then {she} spends ${spent} on a {good[0]}. How much money does {she} have left?", left


def _price(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    name, she, _ = _person(rng)
    g1, g2 = rng.sample(words.GOODS, 2)
    n, p = r.k(rng), rng.randint(g1[2], g1[3])
    cost, text = w.calc(n, "*", p, money=True)
    w.line(f"The {g1[1]} cost {text}.")
    story = f"{name} buys {n} {g1[1]} for ${p} each"
    if level >= 3:
        m, q = r.k(rng), rng.randint(g2[2], g2[3])
        cost2, text = w.calc(m, "*", q, money=True)
        w.line(f"The {g2[1]} cost {text}.")
        cost, text = w.calc(cost, "+", cost2, money=True)
        w.line(f"So {she} spends {text} in total.")
        story += f" and {m} {g2[1]} for ${q} each"
    if level in (1, 3):
        return story + f". How much does {she} spend in total?", cost
    bill = next((b for b in BILLS if b > cost), None)
    if bill is None:
        raise ArithmeticError(f"cost {cost} is larger than any bill")
    change, text = w.calc(bill, "-", cost, money=True)
    w.line(f"{she.capitalize()} gets {text} in change.")
    return story + f". {she.capitalize()} pays with a ${bill} bill. How much change does {she} get?", change


def _share(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    name, she, _ = _person(rng)
    thing = rng.choice(words.THINGS)[0]
    k = r.k(rng)
    each = rng.randint(2, max(3, r.hi // 2))
    total = k * each
    if level == 1:
        story = f"{name} has {total} {thing} and shares them equally among {k} friends. "
    else:
        have = rng.randint(1, total - 1)
        total, text = w.calc(have, "+", total - have)
        w.line(f"{name} has {text} {thing}.")
        story = (f"{name} has {have} {thing} and buys {total - have} more. "
                 f"{she.capitalize()} shares them equally among {k} friends. ")
    each, text = w.calc(total, "/", k)
    w.line(f"Each friend gets {text} {thing}.")
    if level <= 2:
        return story + f"How many {thing} does each friend get?", each
    eaten = rng.randint(1, each - 1)
    left, text = w.calc(each, "-", eaten)
    w.line(f"Each friend has {text} {thing} left.")
    story += f"Each friend then gives away {eaten} of them. "
    if level == 3:
        return story + f"How many {thing} does each friend have left?", left
    all_left, text = w.calc(left, "*", k)
    w.line(f"Together the friends have {text} {thing} left.")
    return story + f"How many {thing} do the {k} friends have left altogether?", all_left


def _percent(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    group, trait = rng.choice(words.GROUPS), rng.choice(words.TRAITS)
    p = rng.choice(PERCENTS)
    step = 100 // math.gcd(p, 100)
    n = step * rng.randint(1, max(r.hi, 100) // 2)
    some, text = w.percent(n, p)
    w.line(f"{text} {group} {trait}.")
    story = f"There are {n} {group}. {p}% of them {trait}. "
    if level == 1:
        return story + f"How many of the {group} {trait}?", some
    rest, text = w.calc(n, "-", some)
    w.line(f"So {text} {group} do not {trait}.")
    if level == 2:
        return story + f"How many of the {group} do not {trait}?", rest
    teams = r.k(rng)
    each, text = w.calc(rest, "/", teams)
    w.line(f"Each group has {text} {group}.")
    return (story + f"Those who do not {trait} are split equally into {teams} groups. "
            f"How many are in each group?"), each


def _chain(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    name, she, her = _person(rng)
    thing, container = rng.choice(words.THINGS)
    have = r.num(rng)
    story = [f"{name} has {have} {thing}."]
    for _ in range(level):
        op = rng.choice("+-*/")
        if op == "+":
            more = r.num(rng)
            have, text = w.calc(have, "+", more)
            story.append(f"{she.capitalize()} {rng.choice(('buys', 'finds', 'is given'))} {more} more.")
            w.line(f"After that {she} has {text} {thing}.")
        elif op == "-" and have > 1:
            less = rng.randint(1, have - 1)
            have, text = w.calc(have, "-", less)
            story.append(f"{she.capitalize()} gives {less} to {her} {rng.choice(words.RELATIVES)}.")
            w.line(f"Then {she} has {text} {thing}.")
        elif op == "/" and any(have % k == 0 for k in range(2, r.factor + 1)):
            k = rng.choice([k for k in range(2, r.factor + 1) if have % k == 0])
            have, text = w.calc(have, "/", k)
            story.append(f"{she.capitalize()} puts them equally into {k} {container} and keeps one of them.")
            w.line(f"One of the {container} holds {text} {thing}.")
        else:
            k = rng.choice(sorted(MULTIPLES))
            have, text = w.calc(have, "*", k)
            story.append(f"Then {she} {MULTIPLES[k]} {her} collection.")
            w.line(f"Now {she} has {text} {thing}.")
    return " ".join(story) + f" How many {thing} does {name} have now?", have


def _speed(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    vehicle, moves = rng.choice(words.VEHICLES)
    speed, hours = rng.randint(max(5, r.lo), max(20, r.hi)), r.k(rng)
    dist, text = w.calc(speed, "*", hours)
    w.line(f"Each day it covers {text} miles." if level > 1 else f"It covers {text} miles.")
    story = f"A {vehicle} {moves} at {speed} miles per hour for {hours} hours"
    if level == 1:
        return story + ". How many miles does it cover?", dist
    days = r.k(rng)
    dist, text = w.calc(dist, "*", days)
    w.line(f"In {days} days it covers {text} miles.")
    story += f" every day for {days} days"
    if level == 2:
        return story + ". How many miles does it cover in total?", dist
    extra = r.num(rng)
    dist, text = w.calc(dist, "+", extra)
    w.line(f"With the extra trip the total is {text} miles.")
    return story + f", and then {moves} {extra} more miles. How many miles does it cover in total?", dist


def _groups(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    thing, container = rng.choice(words.THINGS)
    boxes, each = r.k(rng), rng.randint(2, r.hi)
    total, text = w.calc(boxes, "*", each)
    w.line(f"There are {text} {thing}.")
    story = f"There are {boxes} {container} with {each} {thing} in each. "
    if level == 1:
        return story + f"How many {thing} are there in all?", total
    lost = rng.randint(1, total - 1)
    left, text = w.calc(total, "-", lost)
    w.line(f"{text} {thing} are left.")
    story += f"{lost} of the {thing} are given away. "
    if level == 2:
        return story + f"How many {thing} are left?", left
    friends = rng.choice([k for k in range(2, r.factor + 1) if left % k == 0] or [1])
    if friends == 1:
        raise ArithmeticError(f"{left} has no divisor up to {r.factor}")
    each_friend, text = w.calc(left, "/", friends)
    w.line(f"Each friend gets {text} {thing}.")
    return story + f"The rest are shared equally among {friends} friends. How many does each friend get?", each_friend


def _fraction(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    name, she, her = _person(rng)
    thing = rng.choice(words.THINGS)[0]
    k = rng.choice(sorted(FRACTIONS))
    n = k * rng.randint(1, max(2, r.hi // 2))
    given, text = w.calc(n, "/", k)
    who = f"{her} {rng.choice(words.RELATIVES)}"
    w.line(f"{name} gave {text} {thing} to {who}.")
    story = f"{name} had {n} {thing}. {she.capitalize()} gave {FRACTIONS[k]} of them to {who}. "
    if level == 1:
        return story + f"How many {thing} did {she} give away?", given
    left, text = w.calc(n, "-", given)
    w.line(f"{she.capitalize()} had {text} {thing} left.")
    if level == 2:
        return story + f"How many {thing} does {she} have left?", left
    more = r.num(rng)
    now, text = w.calc(left, "+", more)
    w.line(f"After buying more, {she} has {text} {thing}.")
    return story + f"Then {she} bought {more} more. How many {thing} does {she} have now?", now


def _age(rng: random.Random, level: int, r: Ranges, w: Work) -> tuple[str, int]:
    (a_name, _, _), (b_name, _, _) = rng.sample(words.PEOPLE, 2)
    a, d = rng.randint(r.lo, max(r.lo + 1, min(r.hi, 60))), rng.randint(1, max(2, min(r.hi, 30)))
    b, text = w.calc(a, "+", d)
    w.line(f"{b_name} is {text} years old.")
    story = f"{a_name} is {a} years old. {b_name} is {d} years older than {a_name}. "
    if level == 1:
        return story + f"How old is {b_name}?", b
    total, text = w.calc(a, "+", b)
    w.line(f"Together they are {text} years old.")
    return story + "What is the sum of their ages?", total


Template = Callable[[random.Random, int, Ranges, Work], tuple[str, int]]
TEMPLATES: dict[str, tuple[Template, tuple[int, ...]]] = {
    "total": (_total, (1, 2, 3, 4)),
    "how_many_more": (_more, (1, 2, 3)),
    "hourly_rate": (_rate, (1, 2, 3, 4)),
    "unit_price": (_price, (1, 2, 3, 4)),
    "share_equally": (_share, (1, 2, 3, 4)),
    "percent_of": (_percent, (1, 2, 3)),
    "chain": (_chain, (1, 2, 3, 4)),
    "speed": (_speed, (1, 2, 3)),
    "groups": (_groups, (1, 2, 3)),
    "fraction_of": (_fraction, (1, 2, 3)),
    "ages": (_age, (1, 2)),
}
BY_LEVEL = {lv: tuple(n for n, (_, levels) in TEMPLATES.items() if lv in levels) for lv in (1, 2, 3, 4)}


def draw(rng: random.Random, level: int, ranges: Ranges, weights: list[float] | None = None) -> GsmProblem:
    """One verified problem of `level` steps (template weights follow BY_LEVEL[level]); failed draws are redrawn."""
    while True:
        name = rng.choices(BY_LEVEL[level], weights)[0]
        work = Work(times=rng.choice("*x"))
        try:
            question, final = TEMPLATES[name][0](rng, level, ranges, work)
        except ArithmeticError:
            continue
        answer = work.answer(final)
        checked, calcs = check_solution(answer)
        if checked != final or calcs != work.calcs or len(calcs) != level:
            raise AssertionError(f"template {name} level {level} wrote an inconsistent solution:\n{answer}")
        key = f"{name}|{level}|{','.join(_NUM_RE.findall(question))}|{';'.join(calcs)}"
        return GsmProblem(question, answer, level, name, tuple(calcs), key)


def ranges_of(cfg: GsmConfig) -> Ranges:
    return Ranges(cfg.min_number, cfg.max_number, cfg.max_factor)


def splitter_of(cfg: GsmConfig, seed: int) -> Splitter:
    """The split and hold-out rule of a config; the corpus uses the same one to stay clear of test arithmetic."""
    return Splitter(seed, *shares(cfg.train, cfg.validation, cfg.test - cfg.novel_test), cfg.holdout_fraction)


def stream(cfg: GsmConfig, rng: random.Random) -> Iterator[GsmProblem]:
    """Endless verified problems with levels drawn from the configured weights."""
    levels = sorted(cfg.levels)
    weights = [cfg.levels[lv] for lv in levels]
    ranges = ranges_of(cfg)
    while True:
        yield draw(rng, rng.choices(levels, weights)[0], ranges)


def draws(cfg: GsmConfig, seed: int) -> Iterator[tuple[str, GsmProblem]]:
    """(key, problem) without end, levels drawn by the configured weights; templates whose small number space is
    used up (mostly duplicates) are drawn less often."""
    rng, ranges = random.Random(f"gsm:{seed}"), ranges_of(cfg)
    levels = sorted(cfg.levels)
    seen: set[str] = set()
    fresh = {(lv, t): 1.0 for lv in levels for t in BY_LEVEL[lv]}  # recent share of new keys per template
    while True:
        level = rng.choices(levels, [cfg.levels[lv] for lv in levels])[0]
        p = draw(rng, level, ranges, [max(fresh[level, t], 0.02) for t in BY_LEVEL[level]])
        fresh[level, p.template] = 0.9 * fresh[level, p.template] + 0.1 * (p.key not in seen)
        seen.add(p.key)
        yield p.key, p


def generate(cfg: GsmConfig, seed: int) -> tuple[dict[str, list[GsmProblem]], list[dict]]:
    """Train/validation/test problems and the test sidecar.

    A problem whose calculations are all held out is a novel-arithmetic test candidate; one with only some held out
    is dropped; any other goes where the hash of its canonical key sends it. Duplicated canonical problems are
    dropped, so no problem appears twice in any split.
    """
    splitter = splitter_of(cfg, seed)
    want = {TRAIN: cfg.train, VALIDATION: cfg.validation, TEST: cfg.test - cfg.novel_test, NOVEL: cfg.novel_test}

    def bucket_of(p: GsmProblem) -> str | None:
        held = [splitter.held(c) for c in p.calcs]
        return (NOVEL if all(held) else None) if any(held) else splitter.split(p.key)

    out = fill_quotas(want, draws(cfg, seed), bucket_of, STALE_LIMIT,
                      "gsm: number ranges too small for the requested counts (filled {filled}): "
                      "raise max_number/max_factor or lower train/validation/test/novel_test")
    novel = {p.key for p in out[NOVEL]}
    test = sorted(out[TEST] + out[NOVEL], key=lambda p: unit_hash(seed, "order", p.key))
    splits = {TRAIN: out[TRAIN], VALIDATION: out[VALIDATION], TEST: test}
    return splits, meta_rows(test, novel, out[TRAIN])


def meta_rows(test: list[GsmProblem], novel: set[str], train: list[GsmProblem]) -> list[dict]:
    """Sidecar rows for test.jsonl: level, template, and whether each calculation occurs in a training answer."""
    trained = {c for p in train for c in p.calcs}
    rows = []
    for i, p in enumerate(test):
        calcs = [{"calc": c, "seen_in_train": c in trained} for c in p.calcs]
        rows.append({"id": i, "level": p.level, "template": p.template, "calculations": calcs,
                     "novel_arithmetic": p.key in novel, "calcs_seen_in_train": all(c["seen_in_train"] for c in calcs)})
    return rows

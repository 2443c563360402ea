"""Reference tables for the `math_tables` corpus source, and the hold-out-aware arithmetic they are written with.

Real reference pages repeat the same small tables endlessly; here every kind of table draws its range, its numbers
and its layout, so two tables agree on a few rows at most, while the most common ones (the times table of 7 from 1
to 12) still recur now and then, as they do on the web.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tinymath.synth.arith import canonical, prime_powers
from tinymath.synth.splits import Splitter

UNITS = (("foot", "feet", "inches", 12), ("hour", "hours", "minutes", 60), ("yard", "yards", "feet", 3),
         ("dollar", "dollars", "cents", 100), ("week", "weeks", "days", 7), ("dozen", "dozen", "items", 12),
         ("metre", "metres", "centimetres", 100), ("kilometre", "kilometres", "metres", 1000),
         ("kilogram", "kilograms", "grams", 1000), ("litre", "litres", "millilitres", 1000),
         ("minute", "minutes", "seconds", 60), ("day", "days", "hours", 24), ("year", "years", "months", 12),
         ("gallon", "gallons", "quarts", 4), ("pound", "pounds", "ounces", 16), ("century", "centuries", "years", 100))
# how a row `a op b = r` is laid out; `{s}` is the operator sign
ROW_FORMS = ("{a} {s} {b} = {r}", "{a} {s} {b} = {r}", "{a}{s}{b}={r}", "{a} {s} {b} = {r};", "{a} {s} {b} is {r}")
# `- n =` or `/ n =` on every row of a subtraction or division table would be the page's most repeated phrase
CLOSE_FORMS = ("{a}{s}{b}={r}", "{a}{s}{b} = {r}")
SIGNS = {"+": ("+",), "-": ("-",), "*": ("x", "*"), "/": ("/",)}
OP_NAMES = {"+": "Addition", "-": "Subtraction", "*": "Multiplication", "/": "Division"}
ROMAN = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
         (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))


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


def _span(rng: random.Random) -> range:
    """The multipliers of a table: usually 1-10 or 1-12, otherwise a random stretch of 6 to 15 values."""
    if rng.random() < 0.25:
        return range(1, rng.choice((11, 13)))
    start = rng.randint(1, 30)
    return range(start, start + rng.randint(6, 15))


def operation(rng: random.Random, facts: Facts) -> str:
    """A table of one operation with a fixed number: `n x k`, `n + k`, `m - n` or `m / n` for a stretch of k."""
    op = rng.choice("+-**/")
    n = rng.randint(2, 12) if rng.random() < 0.5 else rng.randint(13, 99)
    form, sign = rng.choice(ROW_FORMS if op in "+*" else CLOSE_FORMS), rng.choice(SIGNS[op])
    rows = []
    for k in _span(rng):
        a, b = {"+": (n, k), "*": (n, k), "-": (n + k, n), "/": (n * k, n)}[op]
        if (r := facts.allowed(a, op, b)) is not None:
            rows.append(form.format(a=a, s=sign, b=b, r=r))
    title = rng.choice((f"{OP_NAMES[op]} table of {n}", f"{OP_NAMES[op]} facts for {n}",
                        f"The {n} {OP_NAMES[op].lower()} table", f"{OP_NAMES[op]} with {n}"))
    return "\n".join([title, *rows])


def powers(rng: random.Random, facts: Facts) -> str:
    """Squares or cubes of a random run of numbers (squares skip held-out `k x k` facts)."""
    start, cube = rng.randint(1, 40), rng.random() < 0.3
    stop = start + rng.randint(5, 15)
    rows = []
    for k in range(start, stop):
        if cube:
            rows.append(rng.choice((f"{k}^3 = {k ** 3}", f"{k} cubed is {k ** 3}")))
        elif (r := facts.allowed(k, "*", k)) is not None:
            rows.append(rng.choice((f"{k} x {k} = {r}", f"{k}^2 = {r}", f"{k} squared is {r}")))
    what = "Cube" if cube else "Square"
    return "\n".join([f"{what} numbers from {start} to {stop - 1}", *rows]) if rows else ""


def divisors(rng: random.Random, facts: Facts) -> str:
    """The divisors of one number, or a short list of numbers with their divisor counts."""
    if rng.random() < 0.5:
        m = rng.randint(12, 999)
        divs = [d for d in range(1, m + 1) if m % d == 0]
        listed = ", ".join(map(str, divs[:-1])) + f" and {divs[-1]}"
        return rng.choice((f"The divisors of {m} are {listed}. So {m} has {len(divs)} divisors.",
                           f"Factors of {m}: {', '.join(map(str, divs))} ({len(divs)} in all)."))
    start = rng.randint(2, 400)
    rows = [f"{m}: {sum(1 for d in range(1, m + 1) if m % d == 0)} divisors" for m in range(start, start + 8)]
    return "\n".join([f"Number of divisors, {start} to {start + 7}", *rows])


def primes(rng: random.Random, facts: Facts) -> str:
    """The primes in a random interval, or prime factorizations of a few numbers."""
    lo = rng.choice((2, 2, rng.randint(2, 500)))
    hi = lo + rng.choice((20, 30, 50, 100))
    found = [p for p in range(lo, hi) if p > 1 and all(p % q for q in range(2, int(p ** 0.5) + 1))]
    if rng.random() < 0.5 and found:
        return f"The prime numbers from {lo} to {hi - 1} are {', '.join(map(str, found))}."
    numbers = sorted(rng.sample(range(12, 1000), rng.randint(4, 10)))
    rows = [f"{m} = {' * '.join(prime_powers(m))}" for m in numbers]
    return "\n".join([rng.choice(("Prime factorizations", "Writing numbers as products of primes")), *rows])


def units(rng: random.Random, facts: Facts) -> str:
    """A unit conversion table for a random stretch of amounts."""
    one, many, small, per = rng.choice(UNITS)
    start = rng.choice((1, 1, rng.randint(2, 40)))
    rows = [rng.choice((f"{k} {one if k == 1 else many} = {r} {small}", f"{k} {one if k == 1 else many}: {r}"))
            for k in range(start, start + rng.randint(4, 12)) if (r := facts.allowed(k, "*", per)) is not None]
    return "\n".join([rng.choice((f"Converting {many} to {small}", f"{many.capitalize()} to {small}")), *rows])


def fractions(rng: random.Random, facts: Facts) -> str:
    """Fractions with one denominator as decimals and percents (exact ones only)."""
    den = rng.choice((2, 4, 5, 8, 10, 20, 25, 40, 50))
    rows = []
    for num in range(1, den)[: rng.randint(4, 12)]:
        dec = f"{num / den:.4f}".rstrip("0").rstrip(".")
        pct = f"{100 * num / den:.2f}".rstrip("0").rstrip(".")
        rows.append(rng.choice((f"{num}/{den} = {dec} = {pct}%", f"{num} over {den} is {dec}, or {pct} percent")))
    return "\n".join([f"Fractions with denominator {den}", *rows])


def rounding(rng: random.Random, facts: Facts) -> str:
    """Random numbers rounded to the nearest ten, hundred or thousand (halves round up)."""
    place = rng.choice((10, 100, 1000))
    nums = sorted(rng.sample(range(place, place * 100), rng.randint(4, 10)))
    rows = [f"{n} rounds to {(n + place // 2) // place * place}" for n in nums]
    return "\n".join([f"Rounding to the nearest {({10: 'ten', 100: 'hundred', 1000: 'thousand'})[place]}", *rows])


def roman(rng: random.Random, facts: Facts) -> str:
    """Roman numerals for a random run of numbers."""
    start = rng.randint(1, 2000)
    rows = [f"{n} = {_roman(n)}" for n in range(start, start + rng.randint(5, 12))]
    return "\n".join([rng.choice(("Roman numerals", "Numbers in Roman numerals")), *rows])


def _roman(n: int) -> str:
    out = []
    for value, letters in ROMAN:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


KINDS: dict[str, tuple[Callable[[random.Random, Facts], str], float]] = {
    "operation": (operation, 0.35), "powers": (powers, 0.1), "divisors": (divisors, 0.1), "primes": (primes, 0.1),
    "units": (units, 0.15), "fractions": (fractions, 0.07), "rounding": (rounding, 0.07), "roman": (roman, 0.06),
}


def table(rng: random.Random, facts: Facts) -> str:
    """One table of a kind drawn by KINDS' weights (a kind that came out empty is redrawn)."""
    names = sorted(KINDS)
    while True:
        text = KINDS[rng.choices(names, [KINDS[k][1] for k in names])[0]][0](rng, facts)
        if text:
            return text

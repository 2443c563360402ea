"""MATH-format problems: `{"problem", "solution", "answer", "subject", "level", "unique_id"}`, as in MATH-500.

Statements and solutions are LaTeX; the solution ends its work in `\\boxed{...}` and `answer` is that box's content.
Each template computes its answer with Python integers/fractions while writing the solution, and independently with
sympy; `check` parses the LaTeX answer back and requires both to agree.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import sympy

from tinymath.answer import extract_boxed
from tinymath.synth.arith import prime_powers, written_facts
from tinymath.synth.config import MATH_SUBJECTS, MathConfig
from tinymath.synth.splits import TEST, TRAIN, VALIDATION, Splitter, fill_quotas, shares

SUBJECT_DIRS = {s: s.lower().replace(" & ", "_and_").replace(" ", "_") for s in MATH_SUBJECTS}
WORDS = ("BALLOON", "PEPPER", "TATTOO", "COFFEE", "RADAR", "CANNON", "GAMMA", "PIZZA", "BUBBLE", "SUCCESS",
         "LETTER", "BOOKKEEPER", "APPLE", "BANANA", "KAYAK", "REFERRED", "DEEDED", "CHEESE")
_ANSWER_RE = re.compile(r"\A(-?)(?:(\d+)|\\frac\{(\d+)\}\{(\d+)\})\Z")
_x = sympy.Symbol("x")
STALE_LIMIT = 20_000  # draws without a new kept problem before the requested counts are declared impossible


@dataclass(frozen=True)
class MathProblem:
    problem: str
    solution: str
    answer: str
    subject: str
    level: int
    template: str
    key: str

    def record(self, unique_id: str) -> dict:
        return {"problem": self.problem, "solution": self.solution, "answer": self.answer, "subject": self.subject,
                "level": self.level, "unique_id": unique_id}


def tex(value: Fraction | int) -> str:
    """An exact number in MATH's answer style: `7`, `-7`, `\\frac{3}{4}`, `-\\frac{3}{4}`."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def ratio(num: int, den: int, cmd: str = "frac") -> str:
    """`\\frac{num}{den}`, followed by `= simplified` only when simplifying changes it."""
    shown, value = f"\\{cmd}{{{num}}}{{{den}}}", tex(Fraction(num, den))
    return shown if shown.replace("dfrac", "frac") == value else f"{shown} = {value}"


def parse_answer(text: str) -> sympy.Rational:
    m = _ANSWER_RE.match(text)
    if m is None:
        raise ValueError(f"answer {text!r} is not an integer or \\frac{{p}}{{q}}")
    sign, whole, num, den = m.groups()
    value = sympy.Integer(whole) if whole else sympy.Rational(int(num), int(den))
    return -value if sign else value


# Each template: (rng, level) -> (problem, solution without the box, answer value, sympy value, numbers).
Result = tuple[str, str, Fraction, sympy.Expr]


def _order_of_operations(rng: random.Random, level: int) -> Result:
    hi = (9, 12, 15, 20, 25)[level - 1]
    a, b, c, d, e = (rng.randint(2, hi) for _ in range(5))
    Int = sympy.Integer
    if level == 1:
        v = a + b * c
        return (f"What is $\\displaystyle {a} + {b} \\times {c}$?",
                f"Multiplication comes first: ${b} \\times {c} = {b * c}$, so the value is ${a} + {b * c} = {v}$.",
                Fraction(v), Int(a) + Int(b) * Int(c))
    if level == 2:
        v = a * b - e
        return (f"Compute ${a} \\times {b} - {c * e} \\div {c}$.",
                f"We have ${a} \\times {b} = {a * b}$ and ${c * e} \\div {c} = {e}$, so the result is "
                f"${a * b} - {e} = {v}$.", Fraction(v), Int(a) * Int(b) - Int(c * e) / Int(c))
    if level == 3:
        v = (a + b) * c - d ** 2
        return (f"Evaluate $({a} + {b}) \\cdot {c} - {d}^2$.",
                f"Inside the parentheses, ${a} + {b} = {a + b}$. Then $({a + b}) \\cdot {c} = {(a + b) * c}$ and "
                f"${d}^2 = {d * d}$, so the value is ${(a + b) * c} - {d * d} = {v}$.",
                Fraction(v), (Int(a) + Int(b)) * Int(c) - Int(d) ** 2)
    if level == 4:
        v = a - b * (c - d) + e ** 2
        return (f"What is the value of ${a} - {b}({c} - {d}) + {e}^2$?",
                f"First ${c} - {d} = {c - d}$, so ${b}({c - d}) = {b * (c - d)}$. Also ${e}^2 = {e * e}$. "
                f"Therefore ${a}{_signed(-b * (c - d))} + {e * e} = {v}$.",
                Fraction(v), Int(a) - Int(b) * (Int(c) - Int(d)) + Int(e) ** 2)
    top = a * b + c
    if top % d:
        raise ArithmeticError("not exact")
    v = top // d - e * a
    return (f"Simplify $\\dfrac{{{a} \\cdot {b} + {c}}}{{{d}}} - {e} \\cdot {a}$.",
            f"The numerator is ${a} \\cdot {b} + {c} = {top}$, and $\\dfrac{{{top}}}{{{d}}} = {top // d}$. "
            f"Since ${e} \\cdot {a} = {e * a}$, the value is ${top // d} - {e * a} = {v}$.",
            Fraction(v), (Int(a) * Int(b) + Int(c)) / Int(d) - Int(e) * Int(a))


def _fractions(rng: random.Random, level: int) -> Result:
    hi = (9, 12, 15, 20, 24)[level - 1]
    p, q = rng.randint(2, hi), rng.randint(2, hi)
    if level == 1:
        q = p
    elif level == 2:
        q = p * rng.randint(2, 4)
    a, b = rng.randint(1, p - 1), rng.randint(1, q - 1)
    sign = "-" if level >= 4 else "+"
    v = Fraction(a, p) + (-1 if sign == "-" else 1) * Fraction(b, q)
    lcd = p * q // math.gcd(p, q)
    statement = f"\\frac{{{a}}}{{{p}}} {sign} \\frac{{{b}}}{{{q}}}"
    s = sympy.Rational(a, p) + (-1 if sign == "-" else 1) * sympy.Rational(b, q)
    if level == 5:
        c, r = rng.randint(1, 9), rng.randint(2, 9)
        v *= Fraction(c, r)
        s *= sympy.Rational(c, r)
        statement = f"\\left({statement}\\right) \\cdot \\frac{{{c}}}{{{r}}}"
    num = a * (lcd // p) + (-1 if sign == "-" else 1) * b * (lcd // q)
    work = ("The fractions have the same denominator, so " if p == q else
            f"The least common denominator of ${p}$ and ${q}$ is ${lcd}$, so ")
    work += (f"$\\frac{{{a}}}{{{p}}} {sign} \\frac{{{b}}}{{{q}}} = \\frac{{{num}}}{{{lcd}}}$" if p == q else
            f"$\\frac{{{a}}}{{{p}}} {sign} \\frac{{{b}}}{{{q}}} = \\frac{{{a * (lcd // p)}}}{{{lcd}}} {sign} "
            f"\\frac{{{b * (lcd // q)}}}{{{lcd}}} = \\frac{{{num}}}{{{lcd}}}$")
    if level == 5:
        work += f". Multiplying by $\\frac{{{c}}}{{{r}}}$ and simplifying gives ${tex(v)}$."
    elif math.gcd(num, lcd) == 1 and lcd > 1:
        work += "."
    else:
        work += f", which simplifies to ${tex(v)}$."
    return (f"Find ${statement}$. Express your answer as a common fraction in simplest form.", work, v, s)


def _percent(rng: random.Random, level: int) -> Result:
    p = rng.choice((10, 20, 25, 40, 50, 75) if level <= 2 else (5, 12, 15, 30, 35, 60, 80, 120, 150))
    step = 100 // math.gcd(p, 100)
    n = step * rng.randint(1, (10, 20, 40, 60, 80)[level - 1])
    part = n * p // 100
    s = sympy.Rational(p, 100) * n
    if level <= 2:
        return (f"What is ${p}\\%$ of ${n}$?",
                f"Since ${p}\\% = \\frac{{{p}}}{{100}}$, we compute $\\frac{{{p}}}{{100}} \\cdot {n} = {part}$.",
                Fraction(part), s)
    if level == 3:
        return (f"The number ${part}$ is ${p}\\%$ of what number?",
                f"If $\\frac{{{p}}}{{100}} \\cdot x = {part}$, then $x = {part} \\cdot \\frac{{100}}{{{p}}} = {n}$.",
                Fraction(n), sympy.Rational(part) * 100 / p)
    new = n + part
    if level == 4:
        return (f"A price of $\\${n}$ is increased by ${p}\\%$. What is the new price, in dollars?",
                f"The increase is $\\frac{{{p}}}{{100}} \\cdot {n} = {part}$ dollars, so the new price is "
                f"${n} + {part} = {new}$ dollars.", Fraction(new), n + s)
    if new % 5:
        raise ArithmeticError("final price not whole")
    v = Fraction(new * 80, 100)
    return (f"A price of $\\${n}$ is increased by ${p}\\%$, and then the new price is decreased by $20\\%$. "
            f"What is the final price, in dollars?",
            f"After the increase the price is ${n} + \\frac{{{p}}}{{100}} \\cdot {n} = {new}$. Taking off "
            f"$20\\%$ leaves $\\frac{{80}}{{100}} \\cdot {new} = {tex(v)}$ dollars.",
            v, (n + s) * sympy.Rational(80, 100))


def _coef(n: int) -> str:
    """`3x`, `x`, `-x`: a coefficient as written in front of x."""
    return {1: "", -1: "-"}.get(n, str(n)) + "x"


def _linear(rng: random.Random, level: int) -> Result:
    hi = (10, 12, 15, 20, 25)[level - 1]
    if level <= 3:
        a, c = (1 if level == 1 else rng.randint(2, 9)), 0
    else:
        a, c = rng.sample(range(1, 10), 2)
    m = a - c  # a x + b = c x + d  <=>  m x = d - b
    if level == 5:
        x = Fraction(rng.randint(-hi, hi), abs(m))
        if x.denominator == 1:
            raise ArithmeticError("integer solution at level 5")
    else:
        x = Fraction(rng.randint(1 if level <= 2 else -hi, hi))
    b = rng.choice([n for n in range(-hi, hi + 1) if n])
    d = int(m * x + b)
    left = f"{_coef(a)}{_signed(b)}"
    right = f"{_coef(c)}{_signed(d)}" if c else str(d)
    steps = f"Subtracting ${_coef(c)}$ from both sides gives ${_coef(m)}{_signed(b)} = {d}$. " if c else ""
    steps += f"{'Subtracting' if b > 0 else 'Adding'} ${abs(b)}$ {'from' if b > 0 else 'to'} both sides gives " \
             f"${_coef(m)} = {d - b}$."
    if m != 1:
        steps += f" Dividing both sides by ${m}$ gives $x = {tex(x)}$."
    s = sympy.Rational(x.numerator, x.denominator)
    if sympy.Integer(a) * s + b != sympy.Integer(c) * s + d:
        raise AssertionError(f"linear equation {left} = {right} is not solved by {x}")
    note = " Express your answer as a common fraction." if x.denominator != 1 else ""
    return f"Solve for $x$: ${left} = {right}$.{note}", steps, x, s


def _signed(n: int) -> str:
    """` + 5` or ` - 5`: a term written after another."""
    return f" {'+' if n >= 0 else '-'} {abs(n)}"


def _evaluate(rng: random.Random, level: int) -> Result:
    a, b, c = rng.randint(2, 6), rng.choice([n for n in range(-9, 10) if n]), rng.randint(-12, 12)
    k = rng.randint(1, 6) if level <= 2 else rng.randint(-6, 6)
    if level == 1:
        v = a * k + b
        return (f"The function $f$ is defined by $f(x) = {a}x{_signed(b)}$. Find $f({k})$.",
                f"Substituting $x = {k}$ gives $f({k}) = {a}({k}){_signed(b)} = {a * k}{_signed(b)} = {v}$.",
                Fraction(v), (a * _x + b).subs(_x, k))
    if level <= 3:
        v = (a - 1) * k * k + b * k + c
        lead = f"{a - 1}" if a > 2 else ""
        return (f"The function $f$ is defined by $f(x) = {lead}x^2{_signed(b)}x{_signed(c)}$. Find $f({k})$.",
                f"Substituting $x = {k}$ gives $f({k}) = {lead}({k})^2{_signed(b)}({k}){_signed(c)} = "
                f"{(a - 1) * k * k}{_signed(b * k)}{_signed(c)} = {v}$.",
                Fraction(v), ((a - 1) * _x ** 2 + b * _x + c).subs(_x, k))
    if level == 4:
        inner = k * k - abs(c)
        v = a * inner + b
        return (f"The functions $f$ and $g$ are defined by $f(x) = {a}x{_signed(b)}$ and $g(x) = x^2 - {abs(c)}$. "
                f"Find $f(g({k}))$.",
                f"First $g({k}) = ({k})^2 - {abs(c)} = {inner}$. Then $f({inner}) = {a}({inner}){_signed(b)} = {v}$.",
                Fraction(v), (a * _x + b).subs(_x, (_x ** 2 - abs(c)).subs(_x, k)))
    if k + a == 0:
        raise ArithmeticError("division by zero")
    v = Fraction(b * k + c, k + a)
    return (f"The function $f$ is defined by $f(x) = \\dfrac{{{b}x{_signed(c)}}}{{x + {a}}}$. Find $f({k})$. "
            "Express your answer as a common fraction.",
            f"Substituting $x = {k}$ gives $f({k}) = \\dfrac{{{b}({k}){_signed(c)}}}{{{k} + {a}}} = "
            f"{ratio(b * k + c, k + a, 'dfrac')}$.",
            v, ((b * _x + c) / (_x + a)).subs(_x, k))


def _gcd_lcm(rng: random.Random, level: int, lcm: bool) -> Result:
    hi = (30, 60, 120, 240, 400)[level - 1]
    count = 3 if level >= 4 else 2
    base = rng.randint(2, 12)
    nums = sorted({base * rng.randint(1, hi // base) for _ in range(count)})
    if len(nums) < count or nums[0] == 1:
        raise ArithmeticError("numbers not distinct")
    value = math.lcm(*nums) if lcm else math.gcd(*nums)
    check = sympy.ilcm(*nums) if lcm else sympy.igcd(*nums)
    listed = "$, $".join(map(str, nums[:-1])) + f"${',' if count > 2 else ''} and ${nums[-1]}"
    what = "least common multiple" if lcm else "greatest common divisor"
    factored = ", ".join(f"${n} = " + " \\cdot ".join(prime_powers(n)) + "$" for n in nums)
    rule = ("the highest power of each prime that appears" if lcm
            else "the lowest power of each prime common to all of them")
    return (f"What is the {what} of ${listed}$?",
            f"The prime factorizations are {factored}. Taking {rule} gives ${value}$.",
            Fraction(value), check)


def _remainder(rng: random.Random, level: int) -> Result:
    d = rng.randint(3, (9, 12, 13, 17, 19)[level - 1])
    if level <= 2:
        n = rng.randint(d + 1, (100, 10_000)[level - 1])
        q, r = divmod(n, d)
        return (f"What is the remainder when ${n}$ is divided by ${d}$?",
                f"Since ${n} = {d} \\cdot {q} + {r}$, the remainder is ${r}$.",
                Fraction(r), sympy.Integer(n) % d)
    if level == 3:
        terms = [rng.randint(100, 999) for _ in range(3)]
        rs = [t % d for t in terms]
        r = sum(terms) % d
        return (f"Find the remainder when ${' + '.join(map(str, terms))}$ is divided by ${d}$.",
                f"Modulo ${d}$ the terms leave remainders ${', '.join(map(str, rs))}$, which add to ${sum(rs)}$, "
                f"and ${sum(rs)}$ leaves remainder ${r}$ when divided by ${d}$.",
                Fraction(r), sympy.Integer(sum(terms)) % d)
    base, k = rng.randint(2, 9), rng.randint(10, (30, 100)[level - 4])
    if math.gcd(base, d) != 1:
        raise ArithmeticError("base and modulus share a factor")
    cycle = [pow(base, i, d) for i in range(1, d)]
    period = cycle.index(1) + 1  # the order of base modulo d: powers repeat from base^1 on
    e = (k - 1) % period + 1
    r = pow(base, k, d)
    return (f"What is the remainder when ${base}^{{{k}}}$ is divided by ${d}$?",
            f"The powers ${base}^1, {base}^2, \\ldots$ modulo ${d}$ are ${', '.join(map(str, cycle[:period]))}$, "
            f"repeating with period ${period}$. Since ${k} = {period} \\cdot {(k - e) // period} + {e}$, we get "
            f"${base}^{{{k}}} \\equiv {base}^{{{e}}} \\equiv {r} \\pmod{{{d}}}$.",
            Fraction(r), sympy.Integer(base) ** k % d)


def _counting(rng: random.Random, level: int) -> Result:
    B = sympy.binomial
    if level == 1:
        s, p, h = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
        return (f"A closet holds ${s}$ shirts, ${p}$ pairs of pants and ${h}$ hats. An outfit is one shirt, one "
                "pair of pants and one hat. How many different outfits are possible?",
                f"There are ${s} \\times {p} \\times {h} = {s * p * h}$ outfits.",
                Fraction(s * p * h), sympy.Integer(s) * p * h)
    if level == 2:
        n = rng.randint(4, 60)
        return (f"At a meeting, each of ${n}$ people shakes hands exactly once with each of the others. How many "
                "handshakes take place?",
                f"Each handshake is a pair of people, so there are $\\binom{{{n}}}{{2}} = \\frac{{{n} \\cdot {n - 1}}}"
                f"{{2}} = {math.comb(n, 2)}$ handshakes.", Fraction(math.comb(n, 2)), B(n, 2))
    if level == 3:
        n = rng.randint(6, 25)
        k = rng.randint(3, min(5, n - 2))
        if rng.random() < 0.5:
            v = math.perm(n, k)
            product = " \\times ".join(str(n - i) for i in range(k))
            return (f"A club of ${n}$ members must fill ${k}$ different offices, and no member may hold more than "
                    "one office. In how many ways can the offices be filled?",
                    f"The first office can go to any of ${n}$ members, the next to any of the remaining ${n - 1}$, "
                    f"and so on, for ${product} = {v}$ ways.",
                    Fraction(v), sympy.ff(n, k))
        return (f"In how many ways can a committee of ${k}$ be chosen from a group of ${n}$ people?",
                f"The order does not matter, so the count is $\\binom{{{n}}}{{{k}}} = {math.comb(n, k)}$.",
                Fraction(math.comb(n, k)), B(n, k))
    if level == 4:
        n, m = rng.randint(5, 10), rng.randint(5, 10)
        k, j = rng.randint(2, n - 2), rng.randint(2, m - 2)
        v = math.comb(n, k) * math.comb(m, j)
        return (f"A club has ${n}$ seniors and ${m}$ juniors. In how many ways can a team of ${k}$ seniors and "
                f"${j}$ juniors be chosen?",
                f"There are $\\binom{{{n}}}{{{k}}} = {math.comb(n, k)}$ ways to choose the seniors and "
                f"$\\binom{{{m}}}{{{j}}} = {math.comb(m, j)}$ ways to choose the juniors, for a total of "
                f"${math.comb(n, k)} \\cdot {math.comb(m, j)} = {v}$.", Fraction(v), B(n, k) * B(m, j))
    word = rng.choice(WORDS)
    counts = sorted(((word.count(ch), ch) for ch in sorted(set(word))), reverse=True)
    repeats = [(c, ch) for c, ch in counts if c > 1]
    v = math.factorial(len(word))
    for c, _ in repeats:
        v //= math.factorial(c)
    below = " \\times ".join(f"{c}!" for c, _ in repeats) or "1"
    check = sympy.factorial(len(word)) / sympy.Mul(*[sympy.factorial(c) for c, _ in repeats])
    said = ", ".join(f"{c} {ch}'s" for c, ch in repeats)
    return (f"How many different strings can be made by rearranging all the letters of {word}?",
            f"There are ${len(word)}$ letters, with {said}, so the count is $\\dfrac{{{len(word)}!}}{{{below}}} = "
            f"{v}$.", Fraction(v), check)


def _probability(rng: random.Random, level: int) -> Result:
    red, blue = rng.randint(2, 9), rng.randint(2, 9)
    if level == 1:
        v = Fraction(red, red + blue)
        return (f"A bag has ${red}$ red marbles and ${blue}$ blue marbles. One marble is drawn at random. What is "
                "the probability that it is red? Express your answer as a common fraction.",
                f"There are ${red + blue}$ marbles and ${red}$ of them are red, so the probability is "
                f"${ratio(red, red + blue)}$.", v, sympy.Rational(red, red + blue))
    if level == 2:
        sides = rng.choice((4, 6, 8, 10, 12, 20))
        k = rng.randint(2, sides)
        v = Fraction(sides + 1 - k, sides)
        return (f"A fair {sides}-sided die with faces numbered $1$ through ${sides}$ is rolled. What is the "
                f"probability of rolling a number greater than or equal to ${k}$? Express your answer as a common "
                "fraction.",
                f"The outcomes ${k}$ through ${sides}$ work, which is ${sides + 1 - k}$ of the ${sides}$ equally "
                f"likely outcomes, so the probability is ${tex(v)}$.", v, sympy.Rational(sides + 1 - k, sides))
    if level == 3:
        sides = rng.choice((4, 6, 8))
        total = rng.randint(3, 2 * sides - 1)
        ways = sum(1 for i in range(1, sides + 1) if 1 <= total - i <= sides)
        v = Fraction(ways, sides * sides)
        faces = sympy.Poly(sum(_x ** i for i in range(1, sides + 1)), _x)
        check = sympy.Rational(int((faces ** 2).coeff_monomial(_x ** total)), sides * sides)
        return (f"Two fair {sides}-sided dice, each with faces numbered $1$ through ${sides}$, are rolled. What is "
                f"the probability that the sum of the numbers rolled is ${total}$? Express your answer as a common "
                "fraction.",
                f"Of the ${sides * sides}$ equally likely outcomes, ${ways}$ have sum ${total}$, so the probability "
                f"is ${ratio(ways, sides * sides)}$.", v, check)
    pair = Fraction(math.comb(red, 2), math.comb(red + blue, 2))
    check = sympy.binomial(red, 2) / sympy.binomial(red + blue, 2)
    if level == 4:
        return (f"A bag has ${red}$ red marbles and ${blue}$ blue marbles. Two marbles are drawn at random without "
                "replacement. What is the probability that both are red? Express your answer as a common fraction.",
                f"There are $\\binom{{{red + blue}}}{{2}} = {math.comb(red + blue, 2)}$ pairs, and "
                f"$\\binom{{{red}}}{{2}} = {math.comb(red, 2)}$ of them are both red, so the probability is "
                f"${tex(pair)}$.", pair, check)
    none = Fraction(math.comb(blue, 2), math.comb(red + blue, 2))
    v = 1 - none
    return (f"A bag has ${red}$ red marbles and ${blue}$ blue marbles. Two marbles are drawn at random without "
            "replacement. What is the probability that at least one of them is red? Express your answer as a common "
            "fraction.",
            f"The complement is that both are blue: $\\binom{{{blue}}}{{2}} \\big/ \\binom{{{red + blue}}}{{2}} = "
            f"{tex(none)}$. So the probability is $1 - {tex(none)} = {tex(v)}$.",
            v, 1 - sympy.binomial(blue, 2) / sympy.binomial(red + blue, 2))


Template = Callable[[random.Random, int], Result]
TEMPLATES: dict[str, dict[str, Template]] = {
    "Prealgebra": {"order_of_operations": _order_of_operations, "fractions": _fractions, "percent": _percent},
    "Algebra": {"linear_equation": _linear, "evaluate_function": _evaluate},
    "Number Theory": {"gcd": lambda rng, lv: _gcd_lcm(rng, lv, lcm=False),
                      "lcm": lambda rng, lv: _gcd_lcm(rng, lv, lcm=True), "remainder": _remainder},
    "Counting & Probability": {"combinations": _counting, "probability": _probability},
}


def check(problem: MathProblem, expected: sympy.Expr) -> None:
    """The boxed answer equals `answer` and, read back as a number, the sympy value."""
    if extract_boxed(problem.solution) != problem.answer:
        raise AssertionError(f"{problem.key}: boxed content differs from answer {problem.answer!r}")
    if parse_answer(problem.answer) != expected:
        raise AssertionError(f"{problem.key}: answer {problem.answer} but sympy gives {expected}")


def draw(rng: random.Random, subject: str, level: int) -> MathProblem:
    """One verified problem of `subject` and `level`; draws whose numbers do not work out are redrawn."""
    names = sorted(TEMPLATES[subject])
    while True:
        name = rng.choice(names)
        try:
            statement, work, value, expected = TEMPLATES[subject][name](rng, level)
        except ArithmeticError:
            continue
        answer = tex(value)
        solution = f"{work}\n\nTherefore, the answer is $\\boxed{{{answer}}}$."
        # the statement itself: one text, one split (levels and number tuples can repeat a statement)
        key = f"{name}|{statement}"
        problem = MathProblem(statement, solution, answer, subject, level, name, key)
        check(problem, expected)
        return problem


def splitter_of(cfg: MathConfig, seed: int) -> Splitter:
    """The split rule of a config; the corpus uses it to take only training problems."""
    return Splitter(seed, *shares(cfg.train, cfg.validation, cfg.test))


def draws(cfg: MathConfig, seed: int) -> Iterator[tuple[str, MathProblem]]:
    """(key, problem) without end, subjects and levels drawn by the configured weights."""
    rng = random.Random(f"math:{seed}")
    subjects, levels = sorted(cfg.subjects), sorted(cfg.levels)
    while True:
        subject = rng.choices(subjects, [cfg.subjects[s] for s in subjects])[0]
        p = draw(rng, subject, rng.choices(levels, [cfg.levels[lv] for lv in levels])[0])
        yield p.key, p


def generate(cfg: MathConfig, seed: int, held: Callable[[str], bool]
             ) -> tuple[dict[str, list[MathProblem]], dict[str, list[dict]], list[dict]]:
    """Problems and records per split (split by the hash of each canonical problem), and the test sidecar.

    Training and validation solutions never state an arithmetic fact for which `held` (the GSM hold-out rule) is true.
    """
    splitter = splitter_of(cfg, seed)
    want = {TRAIN: cfg.train, VALIDATION: cfg.validation, TEST: cfg.test}

    def bucket_of(p: MathProblem) -> str | None:
        bucket = splitter.split(p.key)
        return None if bucket != TEST and any(map(held, written_facts(p.solution))) else bucket

    out = fill_quotas(want, draws(cfg, seed), bucket_of, STALE_LIMIT,
                      "math: too few distinct problems for the requested counts (filled {filled}): "
                      "lower train/validation/test or widen the level and subject mix")
    records = {split: _numbered(split, problems) for split, problems in out.items()}
    return out, records, meta_rows(out[TEST], records[TEST], out[TRAIN])


def _numbered(split: str, problems: list[MathProblem]) -> list[dict]:
    """Records with MATH's `unique_id` form, `<split>/<subject_dir>/<n>.json`, numbered per subject."""
    counters: dict[str, int] = {}
    records = []
    for p in problems:
        n = counters[p.subject] = counters.get(p.subject, -1) + 1
        records.append(p.record(f"{split}/{SUBJECT_DIRS[p.subject]}/{n}.json"))
    return records


def meta_rows(test: list[MathProblem], records: list[dict], train: list[MathProblem]) -> list[dict]:
    """Sidecar rows: subject, level, template, and whether a training problem of the template has the same answer."""
    trained = {(p.template, p.answer) for p in train}
    return [{"id": i, "unique_id": r["unique_id"], "level": p.level, "subject": p.subject, "template": p.template,
             "answer_seen_in_train": (p.template, p.answer) in trained}
            for i, (p, r) in enumerate(zip(test, records))]

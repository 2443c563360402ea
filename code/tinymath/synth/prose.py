"""Short explanations of arithmetic concepts with worked numbers, for the `math_prose` corpus source.

Each concept is written as a definition, a worked example set in a small story (a person, a thing, a price) and a
remark, and each of these has several wordings, so two explanations of one concept read like two different
textbooks rather than one page with new numbers. Every fact written goes through `Facts`, so none is held out.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tinymath.synth import words
from tinymath.synth.arith import canonical
from tinymath.synth.tables import Facts


def _say(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def _who(rng: random.Random) -> tuple[str, str, str, str]:
    """A person and a countable thing for a worked example: (name, pronoun, possessive, things)."""
    name, she, her = rng.choice(words.PEOPLE)
    return name, she, her, rng.choice(words.THINGS)[0]


def adding(rng: random.Random, f: Facts) -> str:
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    r = f.fact(a, "+", b)
    name, she, _, thing = _who(rng)
    return " ".join((
        _say(rng, "Adding means putting amounts together.", "Addition combines two amounts into one total.",
             "To find a total, we add."),
        _say(rng, f"To add {a} and {b}, add the ones, then the tens, then the hundreds, carrying when a column "
                  f"passes nine. So {a} + {b} = {r}.",
             f"If {name} has {a} {thing} and gets {b} more, {she} has {a} + {b} = {r} {thing}.",
             f"For example, {a} + {b} = {r}."),
        _say(rng, f"Addition can be done in any order, so {b} + {a} is also {r}.",
             f"The order does not matter: {b} + {a} gives the same {r}.", "A quick estimate helps to check it."),
    ))


def subtracting(rng: random.Random, f: Facts) -> str:
    a = rng.randint(20, 999)
    b = rng.randint(1, a - 1)
    r = f.fact(a, "-", b)
    back = f.fact(r, "+", b)
    name, she, _, thing = _who(rng)
    return " ".join((
        _say(rng, "Subtraction finds how much is left or how far apart two numbers are.",
             "Taking one amount away from another is called subtraction.",
             "The difference between two numbers is found by subtracting."),
        _say(rng, f"If you have {a} and take away {b}, you have {a} - {b} = {r} left.",
             f"{name} had {a} {thing} and gave away {b}, so {she} kept {a} - {b} = {r}.",
             f"The difference between {a} and {b} is {a} - {b} = {r}."),
        _say(rng, f"You can check a subtraction by adding back: {r} + {b} = {back}.",
             f"Adding back checks it: {r} + {b} = {back}.", "Subtraction undoes addition."),
    ))


def multiplying(rng: random.Random, f: Facts) -> str:
    a, b = rng.randint(2, 9), rng.randint(2, 25)
    r = f.fact(a, "*", b)
    name, _, her, thing = _who(rng)
    adds = " + ".join([str(b)] * a)
    return " ".join((
        _say(rng, "Multiplication is repeated addition.", "Multiplying counts equal groups quickly.",
             "When every group has the same size, multiply instead of adding again and again."),
        _say(rng, f"{a} x {b} means {a} groups of {b}, that is {adds}, which is {r}.",
             f"{name} fills {a} bags with {b} {thing} each, so there are {a} x {b} = {r} {thing}.",
             f"For instance, {a} rows of {b} make {a} x {b} = {r}."),
        _say(rng, f"In the same way, {b} x {a} = {r}.", f"Swapping the numbers gives the same product, {r}.",
             f"Knowing {her} times tables helps {name} do this in one step."),
    ))


def dividing(rng: random.Random, f: Facts) -> str:
    k, each = rng.randint(2, 12), rng.randint(2, 40)
    n = f.fact(k, "*", each)
    r = f.fact(n, "/", k)
    name, _, _, thing = _who(rng)
    return " ".join((
        _say(rng, "Division shares a number into equal groups.", "Dividing splits an amount into equal parts.",
             "Division answers the question: how many in each group?"),
        _say(rng, f"Sharing {n} sweets equally among {k} children gives each child {n} / {k} = {r} sweets.",
             f"{name} puts {n} {thing} into {k} equal piles, so each pile has {n} / {k} = {r}.",
             f"For example, {n} / {k} = {r}."),
        _say(rng, f"Division undoes multiplication: {k} x {r} = {n}.", f"To check, multiply back: {r} x {k} = {n}.",
             "A division that leaves nothing over is called exact."),
    ))


def percent(rng: random.Random, f: Facts) -> str:
    p = rng.choice((5, 10, 20, 25, 50, 75))
    n = (100 // p) * rng.randint(1, 60)
    r = n * p // 100
    if f.splitter.held(canonical(f"{n}*{p}/100", r)):
        raise ArithmeticError("held out")
    name, she, _, thing = _who(rng)
    return " ".join((
        _say(rng, "Percent means 'out of one hundred'.", "A percentage is a number of parts per hundred.",
             f"{p}% is the fraction {p}/100."),
        _say(rng, f"To find {p}% of {n}, multiply {n} by {p} and divide by 100: {n} * {p} / 100 = {r}.",
             f"{name} has {n} {thing} and uses {p}% of them, which is {n} * {p} / 100 = {r} {thing}.",
             f"{p}% of {n} is {n} * {p} / 100 = {r}."),
        _say(rng, f"So {p}% of {n} is {r}.", f"That leaves {n - r} {thing} for {she} to keep.",
             "Percentages make it easy to compare parts of different wholes."),
    ))


def average(rng: random.Random, f: Facts) -> str:
    k, mean = rng.randint(2, 6), rng.randint(5, 90)
    values = [rng.randint(1, 2 * mean) for _ in range(k - 1)]
    last = k * mean - sum(values)
    if last < 1:
        raise ArithmeticError("negative value")
    values.append(last)
    total = values[0]
    for v in values[1:]:
        total = f.fact(total, "+", v)
    f.fact(total, "/", k)
    name, _, her, _ = _who(rng)
    listed = ", ".join(map(str, values))
    return " ".join((
        _say(rng, "The average, or mean, of a list of numbers is their sum divided by how many there are.",
             "To find a mean, add the values and divide by the number of values.",
             "An average gives one number that represents a whole list."),
        _say(rng, f"For {listed}, the sum is {total} and there are {k} numbers, so the average is "
                  f"{total} / {k} = {mean}.",
             f"{name} scored {listed} in {her} last {k} games. The total is {total}, so {her} mean score is "
             f"{total} / {k} = {mean}."),
    ))


def rectangle(rng: random.Random, f: Facts) -> str:
    w, h = rng.randint(2, 40), rng.randint(2, 40)
    area = f.fact(w, "*", h)
    half = f.fact(w, "+", h)
    perim = f.fact(half, "*", 2)
    thing = rng.choice(("rectangle", "garden", "room", "field", "poster", "table top"))
    return " ".join((
        _say(rng, f"A {thing} that is {w} units long and {h} units wide has an area of {w} x {h} = {area} square "
                  "units.",
             f"The area of a {thing} is its length times its width; for {w} by {h} that is {w} x {h} = {area}."),
        _say(rng, f"Its perimeter is the distance around it: {w} + {h} = {half}, and {half} x 2 = {perim} units.",
             f"Walking all the way round it covers {w} + {h} = {half}, twice, so {half} x 2 = {perim}.",
             "Area is measured in square units, but perimeter is a length."),
    ))


def unit_rate(rng: random.Random, f: Facts) -> str:
    k, price = rng.randint(2, 12), rng.randint(2, 40)
    total = f.fact(k, "*", price)
    f.fact(total, "/", k)
    name, she, _ = rng.choice(words.PEOPLE)
    good = rng.choice(words.GOODS)
    return " ".join((
        _say(rng, "A unit price is the cost of one item.", "Shops often show the price of one unit.",
             "Comparing prices is easier per item."),
        _say(rng, f"If {k} {good[1]} cost ${total}, then one {good[0]} costs {total} / {k} = ${price}.",
             f"{name} sees {k} {good[1]} for ${total}; each costs {total} / {k} = ${price}."),
        _say(rng, f"{name} can use the unit price to compare shops before {she} buys.",
             f"With that, {she} can work out the cost of any number of {good[1]}.", ""),
    )).strip()


def even_odd(rng: random.Random, f: Facts) -> str:
    n = rng.randint(10, 9999)
    kind = "even" if n % 2 == 0 else "odd"
    return " ".join((
        _say(rng, "A whole number is even if it can be split into two equal halves and odd otherwise.",
             "Even numbers end in 0, 2, 4, 6 or 8; odd numbers end in 1, 3, 5, 7 or 9."),
        _say(rng, f"You only need to look at the last digit: {n} ends in {n % 10}, so {n} is {kind}.",
             f"The number {n} has last digit {n % 10}, which makes it {kind}."),
    ))


def rounding(rng: random.Random, f: Facts) -> str:
    place, word = rng.choice(((10, "ten"), (100, "hundred"), (1000, "thousand")))
    n = rng.randint(place, place * 50)
    down, up = n // place * place, n // place * place + place
    near = up if n - down >= place // 2 else down
    return " ".join((
        _say(rng, "Rounding replaces a number with a simpler one that is close to it.",
             "We round numbers to make them easier to work with and to estimate."),
        f"{n} lies between {down} and {up}. It is nearer to {near}, so {n} rounded to the nearest {word} is {near}.",
        _say(rng, "When a number is exactly halfway, it is rounded up.", "Rounded numbers are handy for estimates.",
             ""),
    )).strip()


def place_value(rng: random.Random, f: Facts) -> str:
    n = rng.randint(1000, 99999)
    digits = str(n)
    names = ("ones", "tens", "hundreds", "thousands", "ten thousands")
    parts = [f"{d} {names[len(digits) - 1 - i]}" for i, d in enumerate(digits) if d != "0"]
    return " ".join((
        _say(rng, "The value of a digit depends on its place in the number.",
             "Each place in a number is worth ten times the place to its right."),
        f"In {n} there are {', '.join(parts[:-1])} and {parts[-1]}." if len(parts) > 1 else
        f"{n} is {parts[0]}.",
        _say(rng, f"The digit {digits[0]} on the left is worth the most.", "Zeros hold a place when it is empty.",
             ""),
    )).strip()


def factors(rng: random.Random, f: Facts) -> str:
    n = rng.randint(6, 200)
    divs = [d for d in range(1, n + 1) if n % d == 0]
    kind = "a prime number" if len(divs) == 2 else "a composite number"
    return " ".join((
        _say(rng, "A factor of a number divides it exactly, with nothing left over.",
             "Factors come in pairs that multiply to the number."),
        f"The factors of {n} are {', '.join(map(str, divs))}, so {n} is {kind}.",
    ))


def elapsed_time(rng: random.Random, f: Facts) -> str:
    start, length = rng.randint(6, 15), rng.randint(15, 300)
    end_h, end_m = divmod(start * 60 + length, 60)
    name, she, _ = rng.choice(words.PEOPLE)
    activity = rng.choice(("a film", "a train journey", "a football match", "a piano lesson", "a long walk"))
    hours, minutes = divmod(length, 60)
    span = "" if not hours else (f", which is {hours} hour{'s' if hours != 1 else ''}"
                                 + (f" and {minutes} minutes" if minutes else ""))
    return " ".join((
        _say(rng, "Elapsed time is how much time passes between a start and an end.",
             "To find when something ends, add its length to the start time."),
        f"{name} starts {activity} at {start}:00 and it lasts {length} minutes{span}. "
        f"{she.capitalize()} finishes at {end_h}:{end_m:02d}.",
    ))


PROSE: dict[str, Callable[[random.Random, Facts], str]] = {
    "adding": adding, "subtracting": subtracting, "multiplying": multiplying, "dividing": dividing,
    "percent": percent, "average": average, "rectangle": rectangle, "unit_rate": unit_rate, "even_odd": even_odd,
    "rounding": rounding, "place_value": place_value, "factors": factors, "elapsed_time": elapsed_time,
}


def explanation(rng: random.Random, facts: Facts) -> str:
    """One short explanation of a concept with its worked numbers (redrawn while a fact is held out)."""
    concept = rng.choice(sorted(PROSE))
    while True:
        try:
            return PROSE[concept](rng, facts)
        except ArithmeticError:
            continue

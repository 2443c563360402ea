"""Exact arithmetic for GSM8K-style solutions: writing calculator annotations and re-checking them.

A calculation is the text inside `<<...>>`, e.g. `48/2=24`. Its canonical form orders the operands of a single
commutative operation (`7*8` and `8*7` are the same fact), so held-out facts stay held out in either order.
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

CALC_RE = re.compile(r"<<([^<>=]+)=([^<>]+)>>([^\s,.;!?]*)")
FINAL_RE = re.compile(r"\n#### (-?\d+)\Z")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: Fraction.__truediv__}
_BINARY_RE = re.compile(r"\A(\d+)([+*])(\d+)\Z")
_SIMPLE_RE = re.compile(r"\A(\d+)([-+*/])(\d+)\Z")
# `a op b = r` written out in prose, tables or LaTeX; a leading `n op` means it is part of a longer expression
_OP = r"(?:[-+*/x]|\\times|\\cdot|\\div)"
_WRITTEN_RE = re.compile(rf"(\d+ ?{_OP} ?)?(?<![\d.])(\d+) ?({_OP}) ?(\d+) ?= ?\$?(\d+)(?![\d.])")
_OP_NAME = {"x": "*", "\\times": "*", "\\cdot": "*", "\\div": "/"}


def canonical(expr: str, result: int | str) -> str:
    """`8*7`, 56 -> `7*8=56`: one spelling per arithmetic fact."""
    m = _BINARY_RE.match(expr)
    if m:
        a, op, b = m.groups()
        a, b = sorted((a, b), key=int)
        expr = f"{a}{op}{b}"
    return f"{expr}={result}"


def written_facts(text: str) -> list[str]:
    """Canonical binary facts `a op b = r` stated in `text` (`7 x 8 = 56`, `$9 \\times 12 = 108$`, `<<3+4=7>>`)."""
    facts = [canonical(f"{a}{_OP_NAME.get(op, op)}{b}", r)
             for longer, a, op, b, r in _WRITTEN_RE.findall(text) if not longer]
    return facts + [canonical(expr, r) for expr, r, _ in CALC_RE.findall(text)]


def evaluate(expr: str) -> Fraction | int:
    """Exact value of an annotation expression (integers, + - * /, parentheses); anything else is an error."""
    m = _SIMPLE_RE.match(expr)
    if m is None:
        return _eval(ast.parse(expr, mode="eval").body)
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))  # fast path for the common `a op b`
    if op == "/":
        return a // b if a % b == 0 else Fraction(a, b)
    return a + b if op == "+" else a - b if op == "-" else a * b


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    raise ValueError(f"unsupported expression {ast.unparse(node)!r}")


def check_solution(answer: str) -> tuple[int, list[str]]:
    """Re-verify a GSM8K-format answer; return its final number and canonical calculations.

    Every `<<expr=r>>r` must evaluate exactly to the integer r, the text after the annotation must repeat r, and the
    final line `#### N` must equal the last calculation's result.
    """
    calcs, last = [], None
    for expr, stated, shown in CALC_RE.findall(answer):
        value = evaluate(expr)
        if Fraction(value).denominator != 1 or str(int(value)) != stated or shown != stated:
            raise ValueError(f"calculation <<{expr}={stated}>>{shown} is wrong: {expr} = {value}")
        calcs.append(canonical(expr, stated))
        last = int(value)
    m = FINAL_RE.search(answer)
    if m is None or last is None or int(m.group(1)) != last:
        raise ValueError(f"final line does not state the last result {last}: {answer[-40:]!r}")
    return last, calcs


class Work:
    """Builds the lines of a worked solution, computing each calculation exactly as it is written."""

    def __init__(self, times: str = "*"):
        self.lines: list[str] = []
        self.calcs: list[str] = []
        self.times = times  # how the prose spells multiplication: `*` or `x`, as GSM8K writers vary

    def calc(self, a: int, op: str, b: int, money: bool = False) -> tuple[int, str]:
        """Compute `a op b` (exact, non-negative); return the result and its `a op b = <<a op b=r>>r` text."""
        if op == "/" and (b == 0 or a % b):
            raise ArithmeticError(f"{a}/{b} is not exact")
        r = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]
        if r < 0:
            raise ArithmeticError(f"{a}{op}{b} is negative")
        self.calcs.append(canonical(f"{a}{op}{b}", r))
        shown = self.times if op == "*" else op
        return r, f"{a} {shown} {b} = {'$' if money else ''}<<{a}{op}{b}={r}>>{r}"

    def percent(self, n: int, p: int) -> tuple[int, str]:
        """`p` percent of `n`, written as GSM8K does: `n * p / 100 = <<n*p/100=r>>r`."""
        if (n * p) % 100:
            raise ArithmeticError(f"{p}% of {n} is not whole")
        r = n * p // 100
        self.calcs.append(canonical(f"{n}*{p}/100", r))
        return r, f"{n} {self.times} {p} / 100 = <<{n}*{p}/100={r}>>{r}"

    def line(self, text: str) -> None:
        self.lines.append(text)

    def answer(self, final: int) -> str:
        return "\n".join(self.lines) + f"\n#### {final}"


def prime_powers(n: int) -> list[str]:
    """Prime factors of `n` as `p^e` terms in increasing order: ['2^3', '3^2'] for 72 (trial division)."""
    parts, p = [], 2
    while p * p <= n:
        e = 0
        while n % p == 0:
            n, e = n // p, e + 1
        if e:
            parts.append(f"{p}^{e}" if e > 1 else str(p))
        p += 1
    if n > 1:
        parts.append(str(n))
    return parts

"""Checker audit: answer checkers on perturbed real gold answers, family by family, against the intended verdict.

    python benchmarks/checker_audit.py                       # GSM8K test (1,319) and MATH-500 (500), every tool
    python benchmarks/checker_audit.py --tools project       # the project's checker only (seconds)
    python benchmarks/checker_audit.py --examples 3          # also print disagreeing outputs per family and tool

Every family turns each gold answer it applies to into model outputs whose verdict is known (a correct answer in
another form, or a wrong one), in both answer forms a model is asked for: `#### N` (GSM8K's own) and the project's
`\\boxed{}` turn (`tinymath.answer.format_response`); MATH outputs are boxed only. The tools, used by import:

- project:  `tinymath.answer.is_correct` (kind 'gsm' / 'math'), the rule of evaluation and of the GRPO reward.
- strict-match, flexible-extract:  lm-eval's gsm8k filters and `exact_match` settings, read from its installed
  `tasks/gsm8k/gsm8k.yaml` and run through lm-eval's filter registry and `exact_match_hf_evaluate`, against the GSM8K
  answer field as lm-eval's target. GSM8K only: MATH answers are LaTeX, not `#### N`.
- minerva:  lm-eval minerva_math's `normalize_final_answer` and `is_equiv`. Gold: its `process_docs` rule (MATH: the
  solution's last box; GSM8K: the number after `####`). Output: the last box by its own `last_boxed_only_string` /
  `remove_boxed`, else the `####` line; its few-shot "Final Answer: ..." extraction is not applied, since neither
  answer form here writes one. Both datasets.
- math-verify:  `parse(gold)` first, then `parse(output)` and `verify(gold, output)`, with math-verify's defaults on the
  whole output. Gold: MATH `answer` in a box; GSM8K the normalised number. Both datasets.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from tinymath.answer import format_response, gsm_gold, is_correct

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = "../shared/data"
UNITS = ("apples", "miles", "hours", "cookies", "students", "pounds", "minutes", "cm", "eggs", "feet")
WORK = "Add the amounts."
SLIP = "At first I got {}, but that was a slip."
TOOLS = ("project", "strict-match", "flexible-extract", "minerva", "math-verify")


@dataclass(frozen=True)
class Case:
    family: str
    output: str
    gold: str  # GSM8K: the answer field (worked solution ending in `#### N`); MATH: the `answer` field
    correct: bool  # the intended verdict
    solution: str = ""  # MATH: the reference solution (minerva's gold comes from it)


@dataclass(frozen=True)
class Family:
    name: str
    correct: bool
    outputs: Callable[[dict], list[str]]  # one gold's outputs; [] where the family does not apply
    about: str


# --- answer forms --------------------------------------------------------------------------------------------------

def hashes(x: str, work: str = WORK) -> str:
    return f"{work}\n#### {x}"


def boxed(x: str, work: str = WORK) -> str:
    return format_response(work, x)


def both(x: str) -> list[str]:
    return [hashes(x), boxed(x)]


def separators(v: int) -> list[str]:
    """`v` with LaTeX and unicode thousands separators instead of commas ([] below 1,000)."""
    grouped = f"{v:,}"
    if "," not in grouped:
        return []
    return [grouped.replace(",", sep) for sep in ("{,}", "\\,", "\\thinspace ", "\u2009", "\u202f")]


def perturb(answer: str) -> str | None:
    """A different answer: the first digit run incremented (None without a digit)."""
    m = re.search(r"\d+", answer)
    return None if m is None else answer[:m.start()] + str(int(m.group()) + 1) + answer[m.end():]


# --- GSM8K families --------------------------------------------------------------------------------------------------

def gsm_context(row: dict, i: int) -> dict:
    raw = row["answer"].rsplit("####", 1)[-1].strip()
    v = int(gsm_gold(row["answer"]))
    asks_percent = bool(re.search(r"\bwhat percent(age)?\b", row["question"], re.I))
    return {"raw": raw, "v": v, "unit": UNITS[i % len(UNITS)], "percent": asks_percent}


GSM_FAMILIES = (
    Family("identity", True, lambda c: both(c["raw"]), "the gold as written"),
    Family("off by one", False, lambda c: [hashes(str(c["v"] + 1)), boxed(str(c["v"] - 1))], "gold +1 / -1"),
    Family("commas", True, lambda c: both(f"{c['v']:,}") if abs(c["v"]) >= 1000 else [], "1,234 (golds >= 1,000)"),
    Family("currency", True, lambda c: [hashes(f"${c['raw']}"), boxed(f"\\${c['raw']}"),
                                        boxed(f"\\text{{\\$}}{c['raw']}"), hashes(f"{c['raw']} dollars")],
           "$N, \\$N, \\text{\\$}N, N dollars"),
    Family("units", True, lambda c: [hashes(f"{c['raw']} {c['unit']}"), boxed(f"{c['raw']} \\text{{ {c['unit']}}}"),
                                     boxed(f"{c['raw']} {c['unit']}")], "N apples, N \\text{ apples}"),
    Family("percent", True, lambda c: [hashes(f"{c['raw']}%"), boxed(f"{c['raw']}\\%")] if c["percent"] else [],
           "N% / N\\% (questions asking 'what percent')"),
    Family("latex separators", True, lambda c: [boxed(s) for s in separators(c["v"])],
           "70{,}000, 70\\,000, 70\\thinspace 000, U+2009, U+202F (golds >= 1,000)"),
    Family("decimals", True, lambda c: [hashes(f"{c['raw']}.00"), boxed(f"{c['v']}.0")], "N.00, N.0"),
    Family("fractions", True, lambda c: [boxed(f"\\frac{{{2 * c['v']}}}{{2}}"), hashes(f"{2 * c['v']}/2")],
           "\\frac{2N}{2}, 2N/2"),
    Family("extra numbers", False, lambda c: [hashes(f"{c['raw']} or {c['v'] + 1}"), boxed(f"{c['raw']} + 2")],
           "N or N+1, N + 2"),
    Family("empty", False, lambda c: [hashes(""), boxed(""), ""], "#### with nothing, \\boxed{}, empty output"),
    Family("earlier correct, final wrong", False,
           lambda c: [hashes(str(c["v"] + 1), SLIP.format(c["raw"])), boxed(str(c["v"] + 1), SLIP.format(c["raw"]))],
           "gold mentioned, then N+1 as the answer"),
    Family("earlier wrong, final correct", True,
           lambda c: [hashes(c["raw"], SLIP.format(c["v"] + 1)), boxed(c["raw"], SLIP.format(c["v"] + 1))],
           "N+1 mentioned, then the gold as the answer"),
)


# --- MATH families ---------------------------------------------------------------------------------------------------

def decimal_of(answer: str) -> str | None:
    """The exact decimal of a `\\frac{p}{q}` gold whose decimal terminates (\\frac{3}{8} -> 0.375), else None."""
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{([1-9]\d*)\}", answer)
    value = Fraction(int(m[2]), int(m[3])) if m else None
    if value is None or value.denominator == 1:
        return None
    for places in range(1, 64):
        if (value * 10**places).denominator == 1:
            digits = str((value * 10**places).numerator).rjust(places + 1, "0")
            return f"{m[1]}{digits[:-places]}.{digits[-places:]}"
    return None  # it does not terminate


def fraction_of(answer: str) -> str | None:
    """`\\frac{p}{q}` of a decimal gold (.35625, 1.25), else None."""
    if not re.fullmatch(r"-?\d*\.\d+", answer):
        return None
    value = Fraction(answer)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def math_context(row: dict, i: int) -> dict:
    a = row["answer"]
    v = int(a) if re.fullmatch(r"-?\d+", a) else None
    return {"a": a, "v": v, "wrong": perturb(a), "unit": UNITS[i % len(UNITS)],
            "other": decimal_of(a) or fraction_of(a)}


def for_int(c: dict, make: Callable[[int], list[str]]) -> list[str]:
    return make(c["v"]) if c["v"] is not None else []


MATH_FAMILIES = (
    Family("identity", True, lambda c: [boxed(c["a"])], "the gold as written"),
    Family("off by one", False, lambda c: [boxed(c["wrong"])] if c["wrong"] else [],
           "first digit run +1 (golds with a digit)"),
    Family("commas", True, lambda c: for_int(c, lambda v: [boxed(f"{v:,}")] if abs(v) >= 1000 else []),
           "1,234 (integer golds >= 1,000)"),
    Family("currency", True, lambda c: for_int(c, lambda v: [boxed(f"\\${v}"), boxed(f"\\text{{\\$}}{v}"),
                                                             boxed(f"{v} \\text{{ dollars}}")]),
           "\\$N, \\text{\\$}N, N \\text{ dollars} (integer golds)"),
    Family("units", True, lambda c: for_int(c, lambda v: [boxed(f"{v} \\text{{ {c['unit']}}}"),
                                                          boxed(f"{v}\\text{{ {c['unit']}}}"),
                                                          boxed(f"{v} {c['unit']}")]),
           "N \\text{ apples}, N apples (integer golds)"),
    Family("latex separators", True, lambda c: for_int(c, lambda v: [boxed(s) for s in separators(v)]),
           "as for GSM8K (integer golds >= 1,000)"),
    Family("decimals", True, lambda c: for_int(c, lambda v: [boxed(f"{v}.00")]), "N.00 (integer golds)"),
    Family("fractions", True, lambda c: [boxed(c["other"])] if c["other"] else [],
           "terminating \\frac{p}{q} golds as decimals, decimal golds as \\frac{p}{q}"),
    Family("extra numbers", False, lambda c: for_int(c, lambda v: [boxed(f"{v} \\text{{ or }} {v + 1}"),
                                                                   boxed(f"{v} + 2")]), "N or N+1, N + 2"),
    Family("empty", False, lambda c: [boxed(""), ""], "\\boxed{}, empty output"),
    Family("earlier correct, final wrong", False,
           lambda c: [boxed(c["wrong"], SLIP.format(f"${c['a']}$"))] if c["wrong"] else [],
           "gold mentioned, then the off-by-one answer"),
    Family("earlier wrong, final correct", True,
           lambda c: [boxed(c["a"], SLIP.format(f"${c['wrong']}$"))] if c["wrong"] else [],
           "off-by-one mentioned, then the gold"),
)


# --- cases -----------------------------------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def gsm_cases(rows: list[dict]) -> list[Case]:
    out = []
    for i, row in enumerate(rows):
        ctx = gsm_context(row, i)
        out += [Case(f.name, o, row["answer"], f.correct) for f in GSM_FAMILIES for o in f.outputs(ctx)]
    return out


def math_cases(rows: list[dict]) -> list[Case]:
    out = []
    for i, row in enumerate(rows):
        ctx = math_context(row, i)
        out += [Case(f.name, o, row["answer"], f.correct, row["solution"]) for f in MATH_FAMILIES
                for o in f.outputs(ctx)]
    return out


def load_cases(data_dir: Path) -> dict[str, list[Case]]:
    """Both datasets' cases from the real files under `data_dir` (gsm8k/test.jsonl, math/test500.jsonl)."""
    return {"gsm8k": gsm_cases(read_jsonl(data_dir / "gsm8k" / "test.jsonl")),
            "math500": math_cases(read_jsonl(data_dir / "math" / "test500.jsonl"))}


# --- tools: each maps (cases, dataset) to verdicts, or None where it does not apply ---------------------------------

def project(cases: list[Case], dataset: str) -> list[bool]:
    kind = "gsm" if dataset == "gsm8k" else "math"
    return [is_correct(c.output, c.gold, kind) for c in cases]


def gsm8k_yaml() -> dict:
    import lm_eval
    import yaml

    return yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml").read_text())


def lm_eval_gsm8k(filter_name: str) -> Callable[[list[Case], str], list[bool] | None]:
    """lm-eval's gsm8k filter pipeline `filter_name` and its exact_match settings, as configured in gsm8k.yaml."""
    def run(cases: list[Case], dataset: str) -> list[bool] | None:
        if dataset != "gsm8k":
            return None
        from lm_eval.api.metrics import exact_match_hf_evaluate
        from lm_eval.filters import get_filter  # importing lm_eval.filters registers "regex", "take_first"

        conf = gsm8k_yaml()
        steps = next(f["filter"] for f in conf["filter_list"] if f["name"] == filter_name)
        metric = {k: v for k, v in conf["metric_list"][0].items()
                  if k in ("ignore_case", "ignore_punctuation", "regexes_to_ignore")}
        resps: Iterable = [[c.output] for c in cases]
        for step in steps:
            kwargs = {k: v for k, v in step.items() if k != "function"}
            resps = get_filter(step["function"])(**kwargs).apply(resps, [{}] * len(cases))
        return [exact_match_hf_evaluate(predictions=[p], references=[c.gold], **metric)["exact_match"] == 1.0
                for p, c in zip(list(resps), cases, strict=True)]
    return run


def minerva(cases: list[Case], dataset: str) -> list[bool]:
    from lm_eval.tasks.minerva_math import utils as mu

    def answer_of(text: str) -> str:
        box = mu.last_boxed_only_string(text)
        if box is not None:
            try:
                return mu.remove_boxed(box)
            except AssertionError:
                return "[invalidanswer]"
        return text.rsplit("####", 1)[-1].split("\n", 1)[0].strip() if "####" in text else "[invalidanswer]"

    def gold_of(c: Case) -> str:
        if dataset == "gsm8k":
            return c.gold.rsplit("####", 1)[-1].strip()
        return mu.remove_boxed(mu.last_boxed_only_string(c.solution))

    golds: dict[str, str] = {}
    out = []
    for c in cases:
        key = c.solution or c.gold
        if key not in golds:
            golds[key] = mu.normalize_final_answer(gold_of(c))
        out.append(bool(mu.is_equiv(mu.normalize_final_answer(answer_of(c.output)), golds[key])))
    return out


def math_verify(cases: list[Case], dataset: str) -> list[bool]:
    from math_verify import parse, verify

    golds: dict[str, list] = {}
    out = []
    for c in cases:
        if c.gold not in golds:
            golds[c.gold] = parse(f"${gsm_gold(c.gold)}$" if dataset == "gsm8k" else f"\\boxed{{{c.gold}}}")
        try:
            out.append(bool(verify(golds[c.gold], parse(c.output))))
        except Exception:  # a tool failure on a case counts as "not verified"
            out.append(False)
    return out


TOOL_FNS = {"project": project, "strict-match": lm_eval_gsm8k("strict-match"),
            "flexible-extract": lm_eval_gsm8k("flexible-extract"), "minerva": minerva, "math-verify": math_verify}


# --- audit -----------------------------------------------------------------------------------------------------------

def form(output: str) -> str:
    """The answer form of an output: '####', 'boxed' or 'plain' (neither: an empty output)."""
    return "####" if "####" in output else "boxed" if "\\boxed" in output else "plain"


def audit(cases: list[Case], dataset: str, tools: Iterable[str] = TOOLS, by_form: bool = False) -> dict[str, dict]:
    """Per family (and answer form, with `by_form`): n, the intended verdict, and per tool the count agreeing with it
    (None: tool not applied), plus the disagreeing outputs."""
    order = [f.name for f in GSM_FAMILIES + MATH_FAMILIES]
    key = [f"{c.family} [{form(c.output)}]" if by_form else c.family for c in cases]
    families = sorted(set(key), key=lambda k: (order.index(k.split(" [")[0]), k))
    report = {f: {"n": 0, "correct": None, "agree": {}, "disagree": {}} for f in families}
    for c, k in zip(cases, key, strict=True):
        report[k]["n"] += 1
        report[k]["correct"] = c.correct
    for tool in tools:
        verdicts = TOOL_FNS[tool](cases, dataset)
        for f in families:
            report[f]["agree"][tool] = None if verdicts is None else 0
            report[f]["disagree"][tool] = []
        if verdicts is None:
            continue
        for c, k, v in zip(cases, key, verdicts, strict=True):
            if v == c.correct:
                report[k]["agree"][tool] += 1
            else:
                report[k]["disagree"][tool].append(c.output)
    return report


def errors(report: dict[str, dict], tool: str) -> dict[str, int]:
    """Per family, how many cases `tool` judges against the intended verdict."""
    return {f: r["n"] - r["agree"][tool] for f, r in report.items() if r["agree"].get(tool) is not None}


def table(dataset: str, report: dict[str, dict], tools: Iterable[str]) -> str:
    """Markdown: per family, the outputs it makes, n, the intended verdict and each tool's agreeing count."""
    tools = list(tools)
    about = {f.name: f.about for f in (GSM_FAMILIES if dataset == "gsm8k" else MATH_FAMILIES)}
    rows = [f"| {dataset} family | outputs | n | intended | " + " | ".join(tools) + " |",
            "|" + "---|" * (4 + len(tools))]
    for f, r in report.items():
        cells = ["-" if r["agree"][t] is None else str(r["agree"][t]) for t in tools]
        verdict = "correct" if r["correct"] else "wrong"
        rows.append(f"| {f} | {about[f.split(' [')[0]]} | {r['n']} | {verdict} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA, help="relative to the project root unless absolute")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--datasets", nargs="+", choices=["gsm8k", "math500"], default=["gsm8k", "math500"])
    parser.add_argument("--examples", type=int, default=0, help="disagreeing outputs to print per family and tool")
    parser.add_argument("--by-form", action="store_true", help="one row per family and answer form (#### / boxed)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir) if Path(args.data_dir).is_absolute() else REPO / args.data_dir
    for dataset, cases in load_cases(data_dir).items():
        if dataset not in args.datasets:
            continue
        report = audit(cases, dataset, args.tools, args.by_form)
        print(f"\n{dataset}: {len(cases)} cases; cells count outputs whose verdict agrees with the intended one "
              "('-': tool not applied)\n")
        print(table(dataset, report, args.tools))
        for f, r in report.items():
            for tool, outs in r["disagree"].items():
                for out in outs[:args.examples]:
                    print(f"  {dataset} / {f} / {tool} disagrees: {out!r}")


if __name__ == "__main__":
    main()

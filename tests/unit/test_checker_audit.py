"""The checker audit (benchmarks/checker_audit.py), project checker only: no error in any family on the real data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

AUDIT_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "checker_audit.py"


@pytest.fixture(scope="module")
def audit():
    spec = importlib.util.spec_from_file_location("checker_audit", AUDIT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cases(audit, shared_data):
    return audit.load_cases(shared_data)


def test_audit_covers_every_family_and_row(audit, cases):
    gsm, math = cases["gsm8k"], cases["math500"]
    assert {c.family for c in gsm} == {f.name for f in audit.GSM_FAMILIES}
    assert {c.family for c in math} == {f.name for f in audit.MATH_FAMILIES}
    assert sum(c.family == "identity" for c in gsm) == 2 * 1319  # every row, in the #### and the boxed form
    assert sum(c.family == "identity" for c in math) == 500


@pytest.mark.parametrize("dataset", ["gsm8k", "math500"])
def test_project_checker_has_no_error_in_any_family(audit, cases, dataset):
    report = audit.audit(cases[dataset], dataset, tools=["project"])
    assert audit.errors(report, "project") == dict.fromkeys(report, 0), {
        f: r["disagree"]["project"][:3] for f, r in report.items() if r["disagree"]["project"]}


def test_audit_intended_verdicts_cover_both(audit, cases):
    for dataset in ("gsm8k", "math500"):
        assert {c.correct for c in cases[dataset]} == {True, False}

"""The paper: generated numbers, no hand-typed digits, every macro defined, and a real LaTeX build."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from synthetic_runs import collect_synthetic, write_dry_run

from tinymath import paths
from tinymath.report import figures, paper_numbers

MAIN = paths.PAPER / "main.tex"
GENERATED = paths.PAPER / "generated"
# Names that contain digits but are not numbers of this work.
ALLOWED_NAMES = ("TinyMathReason-1B", "TPU v4-32", "GSM8K", "MATH-500", "A100", "SHA-256")
# Commands whose arguments are labels, keys, paths or figure stems, not prose.
NON_PROSE_ARGS = ("cite", "citep", "citet", "ref", "label", "input", "file", "bibliography", "bibliographystyle",
                  "begin", "end", "resultfigure")
GENERATED_PREFIXES = ("Repro", "Paper", "Reported", "CILevel", "Gain", "Verdict", "Variance")


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    """results/{cpu,reported} as the report would publish them, from synthetic runs."""
    tmp = tmp_path_factory.mktemp("paper")
    report = collect_synthetic(tmp, draw=False)
    root = tmp / "results"
    shutil.copytree(report / "results", root / "cpu")
    write_dry_run(root / "cpu")
    shutil.copytree(paths.RESULTS / "reported", root / "reported")
    return root


def body() -> str:
    """The document body without comments: what a reader sees."""
    text = MAIN.read_text()
    text = text[text.index(r"\begin{document}"):]
    return re.sub(r"(?<!\\)%.*", "", text)


def prose(text: str) -> str:
    for name in NON_PROSE_ARGS:
        text = re.sub(rf"\\{name}\*?(\[[^\]]*\])?\{{[^}}]*\}}", " ", text)
    for name in ALLOWED_NAMES:
        text = text.replace(name, " ")
    return text


def used_macros() -> set[str]:
    return {m for m in re.findall(r"\\([A-Za-z]+)", body()) if m.startswith(GENERATED_PREFIXES)}


def defined_macros(numbers_tex: str) -> set[str]:
    return set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", numbers_tex))


def test_report_paper_has_no_hand_typed_digits():
    lines = [(i, line) for i, line in enumerate(prose(body()).splitlines(), 1) if re.search(r"\d", line)]
    assert not lines, f"digits typed in main.tex (use a generated macro): {lines[:5]}"


def test_report_paper_digit_scan_catches_a_typed_number():
    assert re.search(r"\d", prose(r"the loss fell to 2.31 nats \cite{x} \ref{fig:a}"))


def test_report_paper_macros_defined_for_full_results(synthetic_root):
    numbers = paper_numbers.build(synthetic_root, "cpu")["numbers.tex"]
    assert used_macros() and used_macros() <= defined_macros(numbers)
    assert r"\newcommand{\ReproPretrainSteps}{400}" in numbers
    assert r"\newcommand{\ReportedGsmEightkGrpo}{2.2}" in numbers
    assert r"\newcommand{\PaperModelLayers}{22}" in numbers and r"\newcommand{\PaperParams}{1.12}" in numbers
    assert r"\newcommand{\PaperMFUSerial}{18.7}" in numbers and r"\newcommand{\PaperDaysSerial}{36.1}" in numbers
    assert r"\newcommand{\PaperChipHoursSerial}{13{,}882}" in numbers


def test_report_paper_macros_defined_without_results(tmp_path):
    files = paper_numbers.build(tmp_path / "results", "cpu")
    assert used_macros() <= defined_macros(files["numbers.tex"])
    assert "has not been trained or evaluated with this artifact" in files["numbers.tex"]
    assert "not drawn: pretrain.json absent" in files["figures.tex"]


def test_small_counts_are_written_as_words():
    assert [paper_numbers.fmt_words(v) for v in (0, 3.0, 9, 12)] == ["zero", "three", "nine", "twelve"]
    assert paper_numbers.fmt_words(25) == "25" and paper_numbers.fmt_words(2.5) == "2.500"
    assert paper_numbers.fmt_words(None) == paper_numbers.NA


def test_arithmetic_numbers_are_shares_of_the_eval_counts():
    counts = {"steps": 200, "false_steps": 50, "wrong_answers": 40, "wrong_with_false_step": 30}
    task = {paper_numbers.GAIN_TASK: {"arithmetic": counts}}
    doc = {"profile": "cpu", "name": "eval_sft", "provenance": {"command": "tinymath eval"},
           "data": {"tasks": task}}
    numbers = paper_numbers.Numbers(Path("results"))
    paper_numbers.arithmetic_numbers(numbers, {"eval_sft": doc})
    text = numbers.tex()
    assert r"\newcommand{\ReproSftFalseSteps}{25.0}" in text
    assert r"\newcommand{\ReproSftWrongWithFalseStep}{75.0}" in text
    assert r"\newcommand{\ReproGrpoFalseSteps}{\textit{n/a}}" in text  # no GRPO evaluation in these results


def test_verdict_and_variance_sentences_say_what_was_measured():
    numbers = paper_numbers.Numbers(Path("results"))
    paper_numbers.verdict_numbers(numbers, None, None)
    text = numbers.tex()
    assert "no rerun verdict has been committed" in text and "no seed-to-seed spread is measured yet" in text
    verdict = {"profile": "cpu", "name": "verdict", "provenance": {"command": "tinymath compare"},
               "data": {"counts": {"identical": 90, "within measured variance": 8, "outside": 2}}}
    variance = {"profile": "cpu", "name": "variance", "provenance": {"command": "tinymath variance"},
                "data": {"seeds": [0, 1, 2]}}
    numbers = paper_numbers.Numbers(Path("results"))
    paper_numbers.verdict_numbers(numbers, verdict, variance)
    text = numbers.tex()
    assert "the committed rerun reproduced 98 of 100 metrics, 90 of them bit for bit" in text
    assert "within the seed-to-seed spread measured over 3 seeds" in text and "under 3 seeds" in text


def test_report_paper_generated_files_are_fresh():
    if not GENERATED.is_dir():
        pytest.skip("paper/generated not generated yet")
    expected = paper_numbers.build(paths.RESULTS, "cpu")
    stale = [name for name, text in expected.items() if (GENERATED / name).read_text() != text]
    assert not stale, f"stale {stale}: run tinymath report paper --results results --out paper/generated"


MAX_MAIN_PAGES = 9  # the main body, up to the references


def build_pdf(results_root: Path, figures_dir: Path | None, tmp_path: Path) -> tuple[str, str]:
    """latexmk on a copy of the paper with numbers from `results_root`; (main.log, main.aux)."""
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed (install TeX Live to build the paper)")
    paper = tmp_path / "paper"
    paper.mkdir()
    shutil.copy(MAIN, paper)
    shutil.copy(paths.PAPER / "references.bib", paper)
    paper_numbers.write_all(results_root, paper / "generated", "cpu")
    if figures_dir is None:
        figures.render_all(results_root / "cpu", tmp_path / "figures")
    else:
        shutil.copytree(figures_dir, tmp_path / "figures")
    done = subprocess.run(["nice", "latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
                          cwd=paper, capture_output=True, text=True, timeout=180)
    log = (paper / "main.log").read_text(errors="replace")
    assert done.returncode == 0, log[-2000:]
    assert (paper / "main.pdf").stat().st_size > 50_000
    return log, (paper / "main.aux").read_text(errors="replace")


def layout_problems(log: str, aux: str) -> list[str]:
    """What a reviewer would see as broken: wide boxes, floats too large, undefined references, too many pages."""
    problems = [f"overfull box {w}pt" for w in re.findall(r"Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)", log)
                if float(w) > 1.0]
    problems += re.findall(r"Float too large[^\n]*", log)
    problems += re.findall(r"(?:Citation|Reference) `[^']+' [^\n]*undefined", log)
    end = re.search(r"\\newlabel\{mainbody:end\}\{\{[^}]*\}\{(\d+)\}", aux)
    if end is None or int(end.group(1)) > MAX_MAIN_PAGES:
        problems.append(f"main body ends on page {end.group(1) if end else '?'} (at most {MAX_MAIN_PAGES})")
    return problems


def test_report_paper_pdf_builds_from_any_results(synthetic_root, tmp_path):
    log, aux = build_pdf(synthetic_root, None, tmp_path)
    assert not re.search(r"(Citation|Reference) `[^']+' .*undefined", log)


def test_report_paper_layout_of_the_committed_paper(tmp_path):
    """The paper as `bash reproduce.sh figures` builds it: from results/ and figures/."""
    log, aux = build_pdf(paths.RESULTS, paths.FIGURES, tmp_path)
    assert layout_problems(log, aux) == []


def test_layout_check_catches_problems():
    log = ("Overfull \\hbox (25.3pt too wide) in paragraph\nLaTeX Warning: Float too large for page by 9pt\n"
           "Overfull \\vbox (4.2pt too high) has occurred while \\output is active\n")
    aux = "\\newlabel{mainbody:end}{{10}{12}{x}{y}{}}"
    assert len(layout_problems(log, aux)) == 4
    assert layout_problems("Overfull \\hbox (0.5pt too wide)", "\\newlabel{mainbody:end}{{10}{8}{x}{y}{}}") == []

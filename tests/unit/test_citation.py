"""Citation metadata: CITATION.cff is valid CFF 1.2.0 and agrees with the paper's BibTeX entry."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TITLE = "TinyMathReason-1B: A 1 Billion Parameter Mathematical Reasoning LLM Built from Scratch on TPU v4-32"


def bib_entry(key: str) -> dict[str, str]:
    text = (REPO / "paper" / "references.bib").read_text()
    start = text.index(f"{{{key},")
    body = text[start:text.index("\n}", start)]
    return {k.lower(): re.sub(r"[{}]", "", v).strip() for k, v in re.findall(r"(\w+)\s*=\s*(.+?),?\s*$", body, re.M)}


def test_citation_cff_validates():
    exe = shutil.which("cffconvert", path=str(Path(sys.executable).parent))
    assert exe is not None, f"cffconvert is not installed beside {sys.executable} (it is pinned in requirements.lock)"
    result = subprocess.run([exe, "--validate", "-i", str(REPO / "CITATION.cff")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_citation_preferred_citation_matches_bibtex():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())["preferred-citation"]
    bib = bib_entry("tinymathreason2026")
    assert cff["title"] == TITLE == bib["title"]
    author = cff["authors"][0]
    assert bib["author"] == f"{author['family-names']}, {author['given-names']}"
    assert str(cff["year"]) == bib["year"] == "2026"
    url = bib.get("url") or bib["howpublished"].removeprefix("\\url")
    assert cff["url"] == url and cff["publisher"]["name"] == bib["publisher"] == "GitHub"

"""The pinned environment: pyproject, requirements.lock and environment.yml agree, and the installed set matches."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>]", req, maxsplit=1)[0]).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==")
            out[_name(name)] = version.strip()
    return out


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all("==" in d for d in deps), "every direct dependency is pinned exactly"
    return _pins(deps)


def test_environment_lock_pins_every_direct_dependency_identically():
    lock = _pins((REPO / "requirements.lock").read_text().splitlines())
    for name, version in pyproject_pins().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip) == pyproject_pins()


def test_environment_installed_versions_match_lock():
    lock = _pins((REPO / "requirements.lock").read_text().splitlines())
    for name in pyproject_pins():
        installed = importlib.metadata.version(name).split("+")[0]
        assert installed == lock[name], f"{name}: installed {installed}, lock {lock[name]}"


def test_environment_accelerator_extras_are_optional():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert {"tpu", "gpu"} <= project["optional-dependencies"].keys()
    assert not any("tpu" in d or "vllm" in d for d in project["dependencies"])

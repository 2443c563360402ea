"""The tasks `tinymath eval` knows, and the lm-eval task YAMLs it generates for them at run time.

Every generated YAML `include:`s lm-eval's own definition (found in the installed package) and overrides only what
this project must: the dataset (local JSONL instead of the hub), stop strings (the model's special tokens) and
`max_gen_toks`. Few-shot suites keep lm-eval's prompts, filters and metrics untouched. Chat suites additionally replace
the prompt with the bare problem (the chat template adds the system prompt) and the scoring with
`tinymath.answer.is_correct`, through `!function chat_utils.*` in a generated one-line module beside the YAMLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tinymath import specials
from tinymath.errors import UserError
from tinymath.io import iter_jsonl
from tinymath.paths import resolve

STOP_STRINGS = [specials.IM_END, specials.ENDOFTEXT]  # decoded forms of specials.STOP_IDS
CHAT_UTILS = "chat_utils"
_MINERVA = "minerva_math/minerva_math_algebra.yaml"
_GSM8K = "gsm8k/gsm8k.yaml"
_SPLIT_KEYS = {"training_split": "train", "validation_split": "validation", "test_split": "test",
               "fewshot_split": "train"}


@dataclass(frozen=True)
class TaskDef:
    """Where a task's definition and data come from."""

    builtin: str | None  # lm-eval YAML below lm_eval/tasks; None: a built-in group used by name (mmlu)
    source: Literal["real", "synth", "hub"]  # real: config data_dir; synth: the synth stage; hub: lm-eval's dataset
    answer: Literal["gsm", "math"] | None = None  # the final-answer kind a chat suite checks
    files: dict[str, str] = field(default_factory=dict)  # split -> file below data_dir / the synth run dir
    meta: str | None = None  # synth sidecar with per-problem level / novel_arithmetic
    hub: dict[str, Any] = field(default_factory=dict)  # YAML keys for the hub copy when no local file exists
    hub_name: str | None = None  # built-in task name when builtin is None


TASKS = {
    "gsm8k": TaskDef(_GSM8K, "real", "gsm", {"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"}),
    "math500": TaskDef(_MINERVA, "real", "math", {"test": "math/test500.jsonl"},
                       hub={"dataset_path": "HuggingFaceH4/MATH-500", "dataset_name": "default",
                            "training_split": None, "test_split": "test"}),
    "synth_gsm": TaskDef(_GSM8K, "synth", "gsm", {"test": "gsm/test.jsonl", "train": "gsm/train.jsonl"},
                         meta="gsm/test_meta.jsonl"),
    "synth_math": TaskDef(_MINERVA, "synth", "math", {"test": "math/test.jsonl"}, meta="math/test_meta.jsonl"),
    "arc_easy": TaskDef("arc/arc_easy.yaml", "hub"),
    "arc_challenge": TaskDef("arc/arc_challenge.yaml", "hub"),
    "hellaswag": TaskDef("hellaswag/hellaswag.yaml", "hub"),
    "mmlu": TaskDef(None, "hub", hub_name="mmlu"),
}
REQUIRED_KEYS = {"gsm": ("question", "answer"), "math": ("problem", "solution")}


@dataclass(frozen=True)
class Planned:
    """One task of one suite, ready to run: its lm-eval name and where its data is."""

    suite: str
    task: str
    name: str  # ours, `<suite>_<task>`: the key prefix in eval_<model>.json and the samples directory
    harness_name: str  # the lm-eval task name (= name for generated YAMLs; the built-in name of a hub group)
    num_fewshot: int
    chat: bool
    data: dict[str, str]  # split -> local file (absolute), or {"hub": dataset} when read from the hub
    meta: Path | None  # per-problem sidecar (synth tasks)
    limit: int | None  # the first problems evaluated; None: every one


def lm_eval_tasks_dir() -> Path:
    """The installed lm-eval's task definitions: generated YAMLs include them by absolute path."""
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


class _IgnoreTags(yaml.SafeLoader):
    """Reads lm-eval YAMLs for plain values; `!function` tags are lm-eval's business and load as None."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def builtin_config(rel: str) -> dict[str, Any]:
    """A built-in task's YAML with its `include:` chain merged (plain values only)."""
    path = lm_eval_tasks_dir() / rel
    data = yaml.load(path.read_text(), Loader=_IgnoreTags) or {}
    parent = data.pop("include", None)
    if parent is None:
        return data
    return {**builtin_config(str((path.parent / parent).relative_to(lm_eval_tasks_dir()))), **data}


def harness_name(suite: str, task: str) -> str:
    return f"{suite}_{task}"


def task_yaml(item: Planned, max_gen_toks: int) -> str:
    """The lm-eval YAML of a planned task: the built-in definition with only data, stops and length replaced."""
    spec = TASKS[item.task]
    builtin = builtin_config(spec.builtin)
    doc: dict[str, Any] = {"include": str(lm_eval_tasks_dir() / spec.builtin), "task": item.harness_name, "tag": []}
    if "hub" in item.data:
        doc.update(spec.hub)
    else:
        doc.update({"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": item.data}})
        doc.update({k: (split if split in item.data else None) for k, split in _SPLIT_KEYS.items()
                    if k in builtin or k == "fewshot_split"})
    functions = {}
    if builtin.get("output_type") == "generate_until":
        until = STOP_STRINGS if item.chat else _dedup(builtin["generation_kwargs"]["until"] + STOP_STRINGS)
        doc["generation_kwargs"] = {**builtin["generation_kwargs"], "until": until, "max_gen_toks": max_gen_toks}
    if item.chat:
        text = "question" if spec.answer == "gsm" else "problem"
        doc.update({"doc_to_text": f"{{{{{text} | trim}}}}", "filter_list": [
            {"name": "none", "filter": [{"function": "take_first"}]}],
            "metric_list": [{"metric": "accuracy", "aggregation": "mean", "higher_is_better": True}]})
        functions["process_results"] = f"{CHAT_UTILS}.process_{spec.answer}"
    body = yaml.safe_dump(doc, sort_keys=False)
    return body + "".join(f"{key}: !function {fn}\n" for key, fn in functions.items())


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def write_task_dir(plan: list[Planned], out: Path, max_gen_toks: int) -> Path:
    """Write one YAML per generated task, and the chat scoring shim, into `out` (lm-eval's include_path)."""
    out.mkdir(parents=True, exist_ok=True)
    for item in plan:
        if TASKS[item.task].builtin is not None:
            (out / f"{item.harness_name}.yaml").write_text(task_yaml(item, max_gen_toks))
    (out / f"{CHAT_UTILS}.py").write_text(
        '"""Generated by tinymath eval: lm-eval resolves `!function chat_utils.*` here."""\n\n'
        "from tinymath.eval.scoring import process_gsm, process_math  # noqa: F401\n")
    return out


def check_jsonl(path: Path, keys: tuple[str, ...]) -> None:
    """Every line of a data file is a JSON object with `keys`; a UserError names the first bad line."""
    for _ in iter_jsonl(path, keys):
        pass


def plan(cfg: Any, synth_dir: Path, hub: bool) -> tuple[list[Planned], dict[str, dict[str, str]]]:
    """Every (suite, task) with its data located, and the tasks skipped: {name: {"suite", "reason"}}."""
    planned, skipped = [], {}
    for suite_name, suite in cfg.suites.items():
        for task, settings in suite.tasks.items():
            name = harness_name(suite_name, task)
            data = _locate(TASKS[task], settings, Path(cfg.data_dir), synth_dir, hub)
            if isinstance(data, str):
                skipped[name] = {"suite": suite_name, "reason": data}
                continue
            meta = synth_dir / TASKS[task].meta if TASKS[task].meta else None
            limit = None if settings.limit == "all" else (settings.limit or cfg.limit)
            planned.append(Planned(suite_name, task, name, TASKS[task].hub_name or name, settings.num_fewshot,
                                   suite.chat, data, meta if meta and meta.is_file() else None, limit))
    return planned, skipped


def _locate(spec: TaskDef, settings: Any, data_dir: Path, synth_dir: Path, hub: bool) -> dict[str, str] | str:
    """A task's data: local files (checked), the hub, or a string saying why it is skipped."""
    if spec.source == "synth":
        files = {split: (synth_dir / rel).resolve() for split, rel in spec.files.items()}
    elif spec.source == "real":
        files = {split: (resolve(data_dir) / rel).resolve() for split, rel in spec.files.items()}
    else:
        files = {split: resolve(p).resolve() for split, p in (settings.data_files or {}).items()}
    if files and all(p.is_file() for p in files.values()):
        for path in files.values():
            check_jsonl(path, REQUIRED_KEYS.get(spec.answer, ()))
        return {split: str(p) for split, p in files.items()}
    if spec.source == "synth" or settings.data_files:
        missing = next(p for p in files.values() if not p.is_file())
        raise UserError(f"data file {missing} not found")
    where = f"no local copy ({', '.join(str(p) for p in files.values() if not p.is_file())}) and " if files else ""
    if hub:
        dataset = spec.hub.get("dataset_path") or (builtin_config(spec.builtin)["dataset_path"] if spec.builtin
                                                    else spec.hub_name)
        return {"hub": dataset}
    return f"skipped: {where}the Hugging Face hub is unreachable"


def external_files(cfg: Any) -> list[Path]:
    """The real-data files the config's tasks would read that exist here (hashed into the manifest)."""
    out = []
    for suite in cfg.suites.values():
        for task, settings in suite.tasks.items():
            spec = TASKS[task]
            if spec.source == "real":
                out += [resolve(cfg.data_dir) / rel for rel in spec.files.values()]
            elif settings.data_files:
                out += [resolve(p) for p in settings.data_files.values()]
    return [p for p in dict.fromkeys(out) if p.is_file()]

"""The files stages hand each other, read and written in one place (formats: docs/pipeline.md).

- JSONL: one JSON object per line; a reader names the file and line of anything malformed, and an empty file is an
  error, never an empty dataset.
- The metrics log (`metrics.jsonl` of pretrain, sft, grpo, dpo): one object per logged step, with the keys of
  `METRIC_KEYS`, which its writers and the report's reader share.
- Tokenizer files and safetensors weights, read with one-line errors when missing or damaged.
- The models the pipeline's stages produce (`STAGE_MODELS`) and the grid of their evaluation results that the
  README, the paper and the model cards render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinymath.errors import UserError

# The keys of metrics.jsonl lines that the report keeps, per stage (a line holds a subset of them).
METRIC_KEYS = {
    "pretrain": ("step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "val_loss"),
    "sft": ("step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "entropy", "token_accuracy"),
    "grpo": ("step", "loss", "reward_mean", "reward_std", "rewards", "kl", "completion_length", "frac_zero_std"),
    "dpo": ("step", "epoch", "loss", "lr", "grad_norm", "reward_accuracy", "reward_margin", "reward_chosen",
            "reward_rejected"),
}
# Model name -> (stage, directory below its run directory): the Hugging Face models the pipeline produces.
STAGE_MODELS = {"base": ("convert", "hf"), "sft": ("sft", "model"), "grpo": ("grpo", "model"),
                "dpo": ("dpo", "model")}
MODEL_NAMES = {"base": "base", "sft": "SFT", "grpo": "GRPO", "dpo": "DPO"}


def iter_jsonl(path: Path, required: tuple[str, ...] = (), shard: tuple[int, int] = (0, 1)
               ) -> Iterator[dict[str, Any]]:
    """The objects of a JSONL file, streamed; a UserError names the first bad line (and an empty file).

    shard (k, n): only the objects k, k + n, k + 2n, ... (counting non-empty lines), the others left unparsed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    count = 0
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    if count % shard[1] == shard[0]:
                        yield _parse(line, path, number, required)
                    count += 1
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if count == 0:
        raise UserError(f"{path}: empty file, expected at least one JSON line")


def _parse(line: str, path: Path, number: int, required: tuple[str, ...]) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{number}: invalid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise UserError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in required if k not in row]
    if missing:
        raise UserError(f"{path}:{number}: missing key(s) {', '.join(missing)}")
    return row


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """One JSON object from a file, with `required` keys; a UserError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}")
    return obj


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, required))


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]], ascii: bool = True) -> None:
    """One object per line. `ascii=True` escapes as `json.dumps` does by default, as the real GSM8K/MATH files are."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=ascii, default=str) + "\n" for row in rows)


def read_tokenizer(path: Path) -> Any:
    """A `tokenizers` tokenizer.json; a missing or damaged file is a UserError naming it."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: tokenizer file not found (the tokenizer stage writes it)")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
        raise UserError(f"{path}: not a valid tokenizer file ({str(e).splitlines()[0][:160]})") from None


def read_safetensors(path: Path) -> dict[str, Any]:
    """The arrays of a safetensors file as numpy; a missing, truncated or malformed file is a UserError naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: damaged safetensors file ({str(e).splitlines()[0][:160]})") from None


def safetensors_damage(path: Path) -> str | None:
    """Why a safetensors file cannot be loaded, read from its header alone; None when it is intact."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "np") as f:  # the header's offsets must fit the file
            for key in f.keys():
                f.get_slice(key)
    except (SafetensorError, OSError, ValueError) as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return None


def check_model_dir(path: Path) -> None:
    """A loadable HF model directory: config, safetensors weights and a tokenizer, or a one-line UserError.

    Pickled weights (`pytorch_model.bin`, `*.pt`) are never loaded: unpickling can run arbitrary code.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model directory {path} not found")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: no config.json (not a Hugging Face model directory)")
    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in [*path.glob("*.bin"), *path.glob("*.pt"), *path.glob("*.pth")])
        found = f" (found pickled {', '.join(pickles)}: never loaded)" if pickles else ""
        raise UserError(f"{path}: no *.safetensors weights{found}")
    for weights in sorted(path.glob("*.safetensors")):
        if (damage := safetensors_damage(weights)) is not None:
            raise UserError(f"{weights}: damaged safetensors file ({damage})")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise UserError(f"{path}: no tokenizer (tokenizer.json / tokenizer_config.json)")


class MetricsLog:
    """A stage's metrics.jsonl: appended one line per logged step; a resumed run first drops the lines it repeats."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def keep_until(self, step: int) -> None:
        """Drop lines after `step` (a resumed run repeats the steps after its checkpoint) and any torn last line."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line torn by a crash: it and anything after it are rewritten by the resumed run
            if row["step"] <= step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def read(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path, ("step",))


@dataclass(frozen=True)
class EvalGrid:
    """Evaluation results of several models: `evals[model]` is the `data` of that model's eval results file."""

    evals: dict[str, dict[str, Any]]

    @property
    def models(self) -> list[str]:
        known = [m for m in STAGE_MODELS if m in self.evals]
        return known + sorted(m for m in self.evals if m not in STAGE_MODELS)

    def tasks(self) -> list[str]:
        return sorted({t for e in self.evals.values() for t in e["tasks"]})

    def entry(self, model: str, task: str, subset: str | None = None) -> dict[str, Any] | None:
        entry = self.evals.get(model, {}).get("tasks", {}).get(task)
        if entry is None or subset is None:
            return entry
        return entry.get("subsets", {}).get(subset)

    def subsets(self, task: str) -> list[str]:
        return sorted({s for m in self.models for s in (self.entry(m, task) or {}).get("subsets", {})})

    def n(self, task: str, subset: str | None = None) -> int | None:
        return next((e["n"] for m in self.models if (e := self.entry(m, task, subset))), None)

    def label(self, task: str) -> str:
        return task_label(task, next((e for m in self.models if (e := self.entry(m, task))), None))

    def skipped(self) -> dict[str, str]:
        return {t: r for m in self.models for t, r in self.evals[m].get("skipped", {}).items()}


# Display names of the eval tasks and metrics, for every table a reader sees (README, paper, model card).
DATASET_NAMES = {"gsm8k": "GSM8K", "math500": "MATH-500", "synth_gsm": "Synthetic GSM", "synth_math": "Synthetic MATH",
                 "arc_easy": "ARC-Easy", "arc_challenge": "ARC-Challenge", "hellaswag": "HellaSwag", "mmlu": "MMLU"}
METRIC_NAMES = {"strict-match": "strict", "flexible-extract": "flexible", "exact_match": "exact match",
                "math_verify": "math-verify", "acc": "accuracy", "acc_norm": "normalised accuracy", "accuracy": None}


def task_label(key: str, entry: dict[str, Any] | None = None) -> str:
    """`paper_gsm8k/flexible-extract` -> `GSM8K (8-shot, flexible)`; `chat_synth_gsm/accuracy` -> `Synthetic GSM
    (0-shot chat)`; the shot count comes from the entry's settings when given."""
    name, _, metric = key.partition("/")
    suite, _, task = name.partition("_")
    shots = (entry or {}).get("settings", {}).get("num_fewshot")
    setting = "0-shot chat" if suite == "chat" else (f"{shots}-shot" if shots is not None else suite)
    detail = METRIC_NAMES.get(metric, metric)
    return f"{DATASET_NAMES.get(task, task)} ({setting}{f', {detail}' if detail else ''})"


def eval_grid(results: dict[str, dict[str, Any]]) -> EvalGrid:
    """The grid of every `eval_<model>` document in a results directory (as loaded by `report.results.load_dir`)."""
    return EvalGrid({name.removeprefix("eval_"): doc["data"] for name, doc in results.items()
                     if doc.get("kind") == "eval"})


def pct_ci(entry: dict[str, Any] | None, missing: str = "-") -> str:
    """`12.3 [8.0, 16.5]`: an accuracy and its 95% interval in percent."""
    if not entry:
        return missing
    lo, hi = entry["ci95"]
    return f"{100 * entry['value']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"

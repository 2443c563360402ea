"""Stage `eval`: every stage's model through lm-evaluation-harness, with one config and per-sample logs.

    tinymath eval --profile cpu
    tinymath eval --profile smoke --set limit=4
    tinymath eval --model PATH_OR_HUB_ID[@REVISION] --name NAME --profile paper   # any model: tinymath.eval.external

Suites (configs/eval/<profile>.yaml): few-shot text prompts with lm-eval's own tasks and scoring (the paper's
GSM8K 8-shot strict/flexible, Minerva MATH 4-shot, ARC, HellaSwag, MMLU), and `chat` (zero-shot through the chat
template, scored by `tinymath.answer.is_correct`). Tasks read the synthetic test splits, the real GSM8K test and
MATH-500 from `data_dir`, or the hub when it is reachable; otherwise a task is skipped, logged and listed under
`skipped` in `eval_<model>.json`. Writes `<model>/<suite>_<task>/samples.jsonl`, `eval_<model>.json` and the
generated task YAMLs (`tasks/`).

Scoring: lm-eval scores every task. Chat tasks get our checker as their `process_results` (`!function` into a
generated one-line module), so lm-eval's aggregate and its logged samples carry the same verdicts; every reported
value is recomputed from the logged samples and must equal lm-eval's. One samples.jsonl line per problem:
{"task", "doc_id", "prompt", "generation", "choices", "gold", "extracted": {filter: answer},
"correct": {"metric,filter": 0/1}, "subsets"}.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinymath import runner
from tinymath.eval.config import Config
from tinymath.eval.tasks import TASKS, Planned, external_files, plan, write_task_dir
from tinymath.io import STAGE_MODELS, check_model_dir, write_jsonl
from tinymath.log import logger
from tinymath.manifest import write_json_atomic

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

__all__ = ["Config", "main", "needs", "external_inputs"]


def needs(cfg: Config) -> list[str]:
    """The stages of the evaluated models, and synth when a synthetic test set is evaluated."""
    stages = [STAGE_MODELS[m][0] for m in cfg.models()]
    synth = any(TASKS[t].source == "synth" for s in cfg.suites.values() for t in s.tasks)
    return stages + (["synth"] if synth else [])


def external_inputs(cfg: Config, root: Path) -> list[Path]:
    """The real GSM8K / MATH-500 (and local hub-task copy) files present here; absent ones mean hub or skip."""
    return external_files(cfg)


def model_dir(run: runner.Run, model: str) -> Path:
    stage, sub = STAGE_MODELS[model]
    return run.input(stage) / sub


def main(cfg: Config, run: runner.Run) -> None:
    planned, skipped = plan(cfg, run.input("synth"), hub=runner.hub_reachable())
    for name, why in skipped.items():
        logger.warning("eval: %s %s", name, why["reason"])
    for model in cfg.models():
        check_model_dir(model_dir(run, model))
    manager = task_manager(cfg, planned, run.dir / "tasks")
    with torch_threads(cfg.threads):
        for model in cfg.models():
            items = [p for p in planned if model in cfg.suites[p.suite].models]
            evaluate_model(cfg, run, model, items, manager, skipped)


def task_manager(cfg: Config, planned: list[Planned], tasks_dir: Path) -> TaskManager:
    """lm-eval's task index over the generated YAMLs."""
    from lm_eval.tasks import TaskManager

    # Indexing lm-eval's ~13,000 built-in YAMLs takes tens of seconds; only tasks used by name (mmlu) need it.
    return TaskManager(include_path=str(write_task_dir(planned, tasks_dir, cfg.max_gen_toks)),
                       include_defaults=any(TASKS[p.task].builtin is None for p in planned))


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `threads` (None: left as they are), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluate_model(cfg: Config, run: runner.Run, model: str, items: list[Planned], manager: TaskManager,
                   skipped: dict[str, dict[str, str]]) -> None:
    """Run a model's tasks (the model loaded once), write their samples, then `eval_<model>.json`."""
    from tinymath.eval import harness

    lm = harness.load_model(cfg, model_dir(run, model))
    tasks = run_tasks(cfg, lm, model, items, manager, run.dir / model, run.root)
    own = {k: v["reason"] for k, v in skipped.items() if model in cfg.suites[v["suite"]].models}
    write_json_atomic(run.dir / f"eval_{model}.json", {
        "model": model, "model_dir": model_dir(run, model).relative_to(run.root).as_posix(), "tasks": tasks,
        "skipped": own})


def run_tasks(cfg: Config, lm: Any, model: str, items: list[Planned], manager: TaskManager, samples_dir: Path,
              run_root: Path) -> dict[str, dict[str, Any]]:
    """Every planned task on one loaded model: samples written below `samples_dir`, the task entries returned."""
    from tinymath.eval import harness, results

    template = harness.chat_template_sha256(lm)
    tasks = {}
    for item in items:
        logger.info("eval: %s on %s (%d-shot%s)", model, item.name, item.num_fewshot,
                    ", chat" if item.chat else "")
        result = harness.run_task(lm, item, cfg, manager)
        records = results.sample_records(result, item, results.read_meta(item.meta))
        write_jsonl(samples_dir / item.name / "samples.jsonl", records, ascii=False)
        settings = results.harness_settings(result, item, cfg, template, run_root)
        for key, entry in results.task_entries(result, item, records, settings, cfg).items():
            tasks[key] = entry
            logger.info("eval: %s %s = %.4f (n=%d, 95%% CI %.4f-%.4f)", model, key, entry["value"], entry["n"],
                        *entry["ci95"])
    return tasks

"""The eval config: which models, which suites of tasks, and the one set of harness settings they all share.

One config evaluates every stage, so that no stage's number comes from another metric or subset: the base, SFT,
GRPO and DPO models see the same tasks, subset (`limit`), generation length and scoring; suites differ only in how a
model is prompted (few-shot text vs. chat template).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from tinymath.config import Requirements, Section
from tinymath.eval.tasks import TASKS
from tinymath.io import STAGE_MODELS

Model = Literal["base", "sft", "grpo", "dpo"]  # the keys of tinymath.io.STAGE_MODELS


class TaskSettings(Section):
    """One task of a suite."""

    num_fewshot: int = Field(0, ge=0)  # in-context examples (the paper: gsm8k 8, math500 4, arc_challenge 25, ...)
    # the first `limit` problems of this task ("all": every one); null: the config's `limit`
    limit: Annotated[int, Field(ge=1)] | Literal["all"] | None = None
    data_files: dict[str, str] | None = None  # split -> local JSONL copy of a hub task (project-relative or absolute)


class Suite(Section):
    """Tasks evaluated the same way for each listed model."""

    models: list[Model] = Field(min_length=1)
    chat: bool = False  # zero-shot through the chat template, answer form of tinymath.answer, scored by is_correct
    tasks: dict[str, TaskSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_tasks(self) -> Suite:
        for name, task in self.tasks.items():
            if name not in TASKS:
                raise ValueError(f"a task in {', '.join(sorted(TASKS))} (unknown task {name!r})")
            spec = TASKS[name]
            if self.chat and spec.answer is None:
                raise ValueError(f"a math task in a chat suite ({name!r} has no final answer to check)")
            if self.chat and task.num_fewshot:
                raise ValueError(f"num_fewshot 0 in a chat suite ({name!r} asks for {task.num_fewshot})")
            if task.data_files is not None and (spec.source != "hub" or spec.builtin is None):
                raise ValueError(f"data_files only for single hub tasks ({name!r} reads {spec.source} data)")
        return self


class HubModel(Section):
    """A Hugging Face model the paper re-measures with `tinymath eval --model <hub_id>@<revision> --name <key>`."""

    hub_id: str  # owner/name on the hub
    revision: str  # the commit (or tag) evaluated; the eval json records the commit it resolved to
    reported: Model | None = None  # the results/reported model-card column quoted beside it (released checkpoints)


class Config(Section):
    seed: int = 0  # lm-eval's seeds and the bootstrap resampling
    requires: Requirements | None = None
    backend: Literal["hf", "vllm"] = "hf"  # vllm: GPU only, needs the vllm package
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(16, ge=1)  # batched greedy generation with KV cache
    # torch intra-op threads on CPU (null: torch's default). Small models' matmuls are too small to split, and on a
    # busy 2-core host spinning OpenMP workers made generation 10x slower than one thread.
    threads: int | None = Field(None, ge=1)
    max_gen_toks: int = Field(256, ge=1)
    limit: int | None = Field(None, ge=1)  # the first `limit` problems of every test set; null = all
    bootstrap_samples: int = Field(1000, ge=100)  # resamples for the 95% interval
    data_dir: str = "../shared/data"  # real GSM8K / MATH-500 files: gsm8k/{test,train}.jsonl, math/test500.jsonl
    suites: dict[str, Suite] = Field(min_length=1)
    # Models outside the pipeline the report tabulates. Excluded from the stage's fingerprint: listing one changes
    # how no stage model is evaluated.
    hub_models: dict[str, HubModel] = Field(default_factory=dict, exclude=True)

    def models(self) -> list[str]:
        """Every model some suite evaluates, in pipeline order."""
        wanted = {m for suite in self.suites.values() for m in suite.models}
        return [m for m in STAGE_MODELS if m in wanted]

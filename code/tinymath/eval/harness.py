"""Running lm-evaluation-harness on one model: load it once, run each planned task, keep every logged sample."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from tinymath.answer import SYSTEM_PROMPT
from tinymath.errors import UserError
from tinymath.eval.tasks import Planned
from tinymath.io import check_model_dir


class SpecialTokenHFLM(HFLM):
    """lm-eval's HF model, decoding generations with special tokens kept.

    HFLM drops special tokens when decoding, so `<think>`/`</think>` vanish from logged generations and, in a batch,
    whatever a finished row generated after its `<|im_end|>` is glued onto its answer; kept, the stop strings cut
    each generation exactly where the model ended it.
    """

    def tok_decode(self, tokens: Any, skip_special_tokens: bool = False) -> str:
        return super().tok_decode(tokens, skip_special_tokens=skip_special_tokens)


def load_model(cfg: Any, path: Path) -> Any:
    """The lm-eval model for `path` on the configured backend."""
    check_model_dir(path)
    if cfg.backend == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise UserError("backend 'vllm' needs the vllm package (pip install vllm, CUDA hosts only); "
                            "or set backend: hf")
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(pretrained=str(path), dtype=cfg.dtype, batch_size="auto", max_gen_toks=cfg.max_gen_toks,
                    seed=cfg.seed)
    return SpecialTokenHFLM(pretrained=str(path), dtype=cfg.dtype, device=cfg.device, batch_size=cfg.batch_size,
                            use_safetensors=True)


def chat_template_sha256(lm: Any) -> str | None:
    template = getattr(lm.tokenizer, "chat_template", None)
    return hashlib.sha256(template.encode()).hexdigest() if template else None


def run_task(lm: Any, item: Planned, cfg: Any, manager: TaskManager) -> dict[str, Any]:
    """lm-eval's full result for one task, with every sample logged; greedy and seeded."""
    return simple_evaluate(
        model=lm, tasks=[item.harness_name], num_fewshot=item.num_fewshot, limit=item.limit, task_manager=manager,
        log_samples=True, apply_chat_template=item.chat, fewshot_as_multiturn=item.chat,
        system_instruction=SYSTEM_PROMPT if item.chat else None, bootstrap_iters=0, random_seed=cfg.seed,
        numpy_random_seed=cfg.seed, torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed)


def leaf_tasks(result: dict[str, Any], name: str) -> list[str]:
    """The tasks holding samples: `name` itself, or every task below a group (mmlu)."""
    children = result.get("group_subtasks", {}).get(name, [])
    return [leaf for child in children for leaf in leaf_tasks(result, child)] if children else [name]


def metric_keys(result: dict[str, Any], name: str) -> list[str]:
    """lm-eval's `metric,filter` keys of a task's aggregate results (stderr and labels left out)."""
    return [k for k, v in result["results"][name].items()
            if "," in k and "_stderr" not in k and isinstance(v, int | float)]

"""The base model's card (README.md with hub metadata), written by the report stage from the results alone.

Its numbers come from the profile's collected results: the architecture from the pretraining curve, the conversion
check from `parity`, and the evaluation from `eval_base`; so the card always describes the model the same run made.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from tinymath import specials
from tinymath.config import Section
from tinymath.io import eval_grid
from tinymath.model import ModelConfig, num_params


class CardConfig(Section):
    """YAML metadata of the model card."""

    name: str = "TinyMathReason-1B"
    license: str = "apache-2.0"
    language: list[str] = ["en"]
    datasets: list[str] = []  # hub ids of the training data; empty for the offline (synthetic-data) profiles
    tags: list[str] = ["math", "reasoning", "llama", "jax"]


CARD_BODY = """
# {name}

A {params:,}-parameter Llama-style decoder ({layers} layers, hidden {hidden}, {heads} query / {kv_heads} key-value \
heads of dimension {head_dim}, SwiGLU width {ffn}, context {context}, vocabulary {vocab:,}) pretrained from scratch in \
JAX by the TinyMathReason-1B pipeline (profile `{profile}`) and converted to transformers' `LlamaForCausalLM`. \
Training data: {data}.

## Usage

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("path/to/this/directory")
model = AutoModelForCausalLM.from_pretrained("path/to/this/directory")
ids = tok("Question: Tom has 3 apples and buys 5 more. How many apples does he have?\\nAnswer:",
          return_tensors="pt").input_ids
print(tok.decode(model.generate(ids, max_new_tokens=64)[0]))
```

Generation is greedy by default and stops on `{im_end}` (id {im_end_id}) or `{eot}` (id {eot_id}); padding is \
`{pad}` (id {pad_id}); there is no BOS token. Digits are always single tokens. The tokenizer carries a ChatML chat \
template (`chat_template.jinja`).

## Conversion check

{padding} The converted model was reloaded and run \
against the JAX model in {dtype} on random prompts (batch {batch}) of {prompt_len} tokens plus {greedy} greedy tokens: \
max |logit difference| {max_diff:.2e} (tolerance {tol:g}), mean KL divergence {kl:.2e} nats, greedy agreement \
{agree:.1%} (JAX greedy loop vs `generate`).

## Evaluation

{evaluation}

Chat-format answers are scored by one rule, shared with the GRPO correctness reward (`tinymath.answer.chat_correct`): \
the final answer is the last `\\boxed{{}}`, and a generation without one is wrong. A GSM8K answer is correct when it \
states one number of the reference's value; a unit (`18 dollars`, `18\\text{{ cm}}`), currency signs, a percent sign, \
thousands separators (`,` `{{,}}` `\\,` thin spaces) and forms such as `18.00` or `\\frac{{36}}{{2}}` may go with \
it. Another number, more numbers after it (`18 or 19`), or an empty answer is wrong, whatever the text said before. \
MATH answers are compared by math-verify (gold first), numeric ones also by the same number rule.
"""


def padding_note(mcfg: ModelConfig) -> str:
    if mcfg.padded_vocab_size == mcfg.vocab_size:
        return "The JAX checkpoint has no padded vocabulary rows."
    return (f"The JAX checkpoint stores {mcfg.padded_vocab_size:,} vocabulary rows (padding for hardware-friendly "
            f"shapes, zero and masked); only the {mcfg.vocab_size:,} real rows are exported, so no padded row can be "
            "predicted.")


def eval_results(evals: dict[str, Any]) -> list[EvalResult]:
    """The eval file's tasks in the hub's model-index form."""
    out = []
    for task, r in evals["tasks"].items():
        shots = r.get("settings", {}).get("num_fewshot")
        out.append(EvalResult(task_type="text-generation", task_name="Text Generation", dataset_type=task,
                              dataset_name=task, dataset_split="test", metric_type=r["metric"],
                              metric_value=r["value"], metric_name=r["metric"],
                              dataset_args={"num_few_shot": shots} if shots is not None else None))
    return out


def eval_table(evals: dict[str, Any]) -> str:
    grid = eval_grid({"eval_base": {"kind": "eval", "data": evals}})
    rows = [f"| {grid.label(task)} | {e['n']} | {e['value']:.4g} | {e['ci95'][0]:.4g} - {e['ci95'][1]:.4g} |"
            for task in grid.tasks() if (e := grid.entry("base", task))]
    return "\n".join(["Base model, lm-evaluation-harness (from `eval_base.json`):", "",
                      "| task | n | value | 95% CI |", "|---|---|---|---|", *rows])


def model_card(mcfg: ModelConfig, parity: dict[str, Any], card: CardConfig, profile: str,
               evals: dict[str, Any] | None) -> ModelCard:
    """README.md with hub YAML metadata (model-index from `evals` when given)."""
    data = ModelCardData(license=card.license, language=card.language, datasets=card.datasets or None,
                         tags=card.tags, pipeline_tag="text-generation", library_name="transformers",
                         model_name=card.name, eval_results=eval_results(evals) if evals else None)
    body = CARD_BODY.format(
        name=card.name, params=num_params(mcfg), layers=mcfg.num_layers, hidden=mcfg.hidden_size,
        heads=mcfg.num_heads, kv_heads=mcfg.num_kv_heads, head_dim=mcfg.head_dim, ffn=mcfg.intermediate_size,
        context=mcfg.max_seq_len, vocab=mcfg.vocab_size, padding=padding_note(mcfg), profile=profile,
        data=", ".join(card.datasets) or "the pipeline's embedded synthetic GSM8K/MATH-style corpus (offline profile)",
        im_end=specials.IM_END, im_end_id=specials.IM_END_ID, eot=specials.ENDOFTEXT, eot_id=specials.ENDOFTEXT_ID,
        pad=specials.PAD, pad_id=specials.PAD_ID, dtype=parity["dtype"], batch=parity["batch_size"],
        prompt_len=parity["prompt_len"], greedy=parity["greedy_tokens"], max_diff=parity["max_abs_logit_diff"],
        tol=parity["tolerance"], kl=parity["kl_divergence"], agree=parity["greedy_agreement"],
        evaluation=eval_table(evals) if evals else "The base model was not evaluated in this run.")
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def from_results(res: dict[str, dict[str, Any]], card: CardConfig, profile: str) -> ModelCard | None:
    """The card of a results directory's base model; None when its pretraining or parity results are absent."""
    if "pretrain" not in res or "parity" not in res or res["pretrain"]["data"]["summary"].get("model") is None:
        return None
    mcfg = ModelConfig.model_validate(res["pretrain"]["data"]["summary"]["model"])
    evals = res["eval_base"]["data"] if "eval_base" in res else None
    return model_card(mcfg, res["parity"]["data"], card, profile, evals)

"""Stage `convert`: the JAX checkpoint as a transformers `LlamaForCausalLM` directory, with proven logit parity.

    tinymath convert --profile cpu

Reads `pretrain/final/` and `tokenizer/tokenizer/`; writes `hf/` (config.json, generation_config.json,
model.safetensors or shards with an index above `max_shard_size`, tokenizer files, chat template, model card
README.md) and `parity.json`. The converted directory is reloaded from disk and run against the JAX model on the same
tokens; a max |logit diff| above the tolerance or any differing greedy token raises, so no manifest is written and
later stages cannot use a broken conversion (the original converter only compared shapes).

The JAX vocabulary padding is not exported: see `tinymath.hf_keys`. `hf_to_jax` is the way back, for continuing or
evaluating a released HF checkpoint in JAX; JAX -> HF -> JAX is bit-exact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx
from huggingface_hub import EvalResult, ModelCard, ModelCardData, save_torch_state_dict
from pydantic import Field
from safetensors import safe_open
from safetensors.numpy import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig

from tinymath import hf_keys, paths, specials
from tinymath.config import Section
from tinymath.errors import UserError
from tinymath.log import logger
from tinymath.manifest import write_json_atomic
from tinymath.model import CONFIG_FILE, PARAMS_FILE, Llama, ModelConfig, from_flat, num_params, round_up
from tinymath.runner import Run

HF_DIR = "hf"
PARITY_FILE = "parity.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class ParityConfig(Section):
    """The JAX-vs-HF check run on every conversion."""

    batch_size: int = Field(default=2, gt=0)
    prompt_len: int = Field(default=32, gt=0)  # random prompt tokens; logits compared over prompt + continuation
    greedy_tokens: int = Field(default=64, gt=0)  # JAX greedy loop vs HF generate, must agree on every token
    tolerance: float = Field(default=1e-4, gt=0)  # max |logit diff| allowed
    dtype: Literal["float32"] = "float32"  # both sides compute in float32; the tolerance is meant for it


class CardConfig(Section):
    """YAML metadata of the model card (README.md in hf/)."""

    name: str = "TinyMathReason-1B"
    license: str = "apache-2.0"
    language: list[str] = ["en"]
    datasets: list[str] = []  # hub ids of the training data; empty for the offline (synthetic-data) profiles
    tags: list[str] = ["math", "reasoning", "llama", "jax"]


class Config(Section):
    seed: int = 0  # draws the parity prompts
    max_shard_size: str = "2GB"  # model.safetensors is split into shards with an index above this size
    parity: ParityConfig = ParityConfig()
    card: CardConfig = CardConfig()


class ParityError(UserError):
    """The converted model does not compute what the JAX model computes."""


def needs(cfg: Config) -> list[str]:
    return ["pretrain", "tokenizer"]


def main(cfg: Config, run: Run) -> None:
    src = run.input("pretrain") / "final"
    mcfg = ModelConfig.model_validate_json((src / CONFIG_FILE).read_text())
    if cfg.parity.prompt_len + cfg.parity.greedy_tokens > mcfg.max_seq_len:
        raise UserError(f"{run.config_path}: parity.prompt_len + parity.greedy_tokens must be <= max_seq_len "
                        f"{mcfg.max_seq_len}, got {cfg.parity.prompt_len + cfg.parity.greedy_tokens}")
    out = run.dir / HF_DIR
    shutil.rmtree(out, ignore_errors=True)
    flat = load_file(str(src / PARAMS_FILE))
    export_hf(flat, mcfg, out, cfg.max_shard_size)
    copy_tokenizer(run.input("tokenizer") / "tokenizer", out, mcfg.max_seq_len)
    check_special_ids(out, mcfg.vocab_size)
    model = from_flat(mcfg.model_copy(update={"compute_dtype": cfg.parity.dtype}), flat)
    del flat  # the paper model is 4.5 GB per copy
    report = parity(model, load_hf(out), cfg.parity, cfg.seed)
    write_json_atomic(run.dir / PARITY_FILE, report)
    check_parity(report, run.dir / PARITY_FILE)
    evals = read_eval(paths.RESULTS / run.profile / "eval_base.json")
    model_card(mcfg, report, cfg.card, run.profile, evals).save(out / "README.md")
    logger.info("convert: %s, max |logit diff| %.2e, greedy agreement %.3f", out, report["max_abs_logit_diff"],
                report["greedy_agreement"])


# --- JAX -> HF ------------------------------------------------------------------------------------------------------

def hf_config(mcfg: ModelConfig) -> LlamaConfig:
    """The transformers config of the JAX model; special ids come from `tinymath.specials` only."""
    return LlamaConfig(
        vocab_size=mcfg.vocab_size, hidden_size=mcfg.hidden_size, intermediate_size=mcfg.intermediate_size,
        num_hidden_layers=mcfg.num_layers, num_attention_heads=mcfg.num_heads, num_key_value_heads=mcfg.num_kv_heads,
        head_dim=mcfg.head_dim, max_position_embeddings=mcfg.max_seq_len, rms_norm_eps=mcfg.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": mcfg.rope_theta}, hidden_act="silu",
        attention_bias=False, mlp_bias=False, tie_word_embeddings=False, bos_token_id=specials.BOS_ID,
        eos_token_id=specials.EOS_ID, pad_token_id=specials.PAD_ID, architectures=["LlamaForCausalLM"],
        dtype="float32")


def generation_config() -> GenerationConfig:
    """Greedy by default; stops on either stop token (end of a chat turn or of a document)."""
    return GenerationConfig(bos_token_id=specials.BOS_ID, eos_token_id=list(specials.STOP_IDS),
                            pad_token_id=specials.PAD_ID, do_sample=False)


def export_hf(flat: dict[str, np.ndarray], mcfg: ModelConfig, out: Path, max_shard_size: str) -> None:
    """Write config, generation config and float32 safetensors (sharded with an index above `max_shard_size`)."""
    try:
        state = hf_keys.to_hf(flat, mcfg.vocab_size)
    except (KeyError, ValueError) as e:
        raise UserError(f"pretrain checkpoint cannot be converted: {e}") from None
    out.mkdir(parents=True, exist_ok=True)
    save_torch_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, out, max_shard_size=max_shard_size)
    for path in out.glob("*.safetensors"):
        path.chmod(0o644)  # written through a private temp file; a release is world-readable
    hf_config(mcfg).save_pretrained(out)
    generation_config().save_pretrained(out)


def copy_tokenizer(src: Path, out: Path, context: int) -> None:
    """Copy the tokenizer stage's files (tokenizer.json, tokenizer_config.json, chat_template.jinja, ...), with
    `model_max_length` set to the model's context: the tokenizer stage does not know it, and tools read it."""
    for path in sorted(src.iterdir()):
        if path.is_file():
            shutil.copy2(path, out / path.name)
    conf = out / "tokenizer_config.json"
    settings = {**json.loads(conf.read_text()), "model_max_length": context}
    conf.write_text(json.dumps(settings, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def check_special_ids(hf_dir: Path, vocab_size: int) -> None:
    """Tokenizer, config.json and generation_config.json must agree with `tinymath.specials` (the original's
    config said bos 1 / eos 2 while its tokenizer said 0 / 1, so generate() stopped on the wrong token)."""
    tok = AutoTokenizer.from_pretrained(hf_dir)
    conf = AutoConfig.from_pretrained(hf_dir)
    gen = GenerationConfig.from_pretrained(hf_dir)
    ids = (specials.BOS_ID, specials.EOS_ID, specials.PAD_ID)
    checks = {"tokenizer": ((tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), ids),
              "config.json": ((conf.bos_token_id, conf.eos_token_id, conf.pad_token_id), ids),
              "generation_config.json": ((gen.bos_token_id, gen.eos_token_id, gen.pad_token_id),
                                         (specials.BOS_ID, list(specials.STOP_IDS), specials.PAD_ID))}
    wrong = {name: f"{got} != {want}" for name, (got, want) in checks.items() if got != want}
    if wrong:
        raise UserError(f"special ids (bos, eos, pad) disagree with tinymath.specials: {wrong}")
    if len(tok) > vocab_size:
        raise UserError(f"tokenizer has {len(tok)} tokens but the model only {vocab_size} embedding rows")


def load_hf(hf_dir: Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()


# --- HF -> JAX ------------------------------------------------------------------------------------------------------

def hf_to_jax(hf_dir: Path, padded_vocab_size: int | None = None,
              compute_dtype: Literal["bfloat16", "float32"] = "bfloat16") -> tuple[ModelConfig, Llama]:
    """Load a transformers Llama directory (ours or any released one of this shape family) as a JAX model.

    Weights become float32 (bfloat16 checkpoints upcast exactly). The HF checkpoint does not record the JAX padding,
    so `padded_vocab_size` defaults to the paper's rule (next multiple of 1024); pass the original value for a
    bit-exact round trip.
    """
    mcfg = model_config_from_hf(Path(hf_dir), padded_vocab_size, compute_dtype)
    try:
        flat = hf_keys.from_hf(read_hf_state(Path(hf_dir)), mcfg.padded_vocab_size)
    except KeyError as e:
        raise UserError(f"{hf_dir}: unexpected parameter {e} for a Llama without biases") from None
    return mcfg, from_flat(mcfg, flat)


def model_config_from_hf(hf_dir: Path, padded_vocab_size: int | None, compute_dtype: str) -> ModelConfig:
    """ModelConfig of an HF Llama config; refuses features the JAX model does not implement."""
    conf = AutoConfig.from_pretrained(hf_dir)
    rope = getattr(conf, "rope_parameters", None) or {}
    need = {"model_type": "llama", "hidden_act": "silu", "tie_word_embeddings": False, "attention_bias": False,
            "mlp_bias": False}
    bad = {k: getattr(conf, k, None) for k, want in need.items() if getattr(conf, k, None) != want}
    if rope.get("rope_type") != "default":
        bad["rope_type"] = rope.get("rope_type")
    if bad:
        raise UserError(f"{hf_dir}/config.json: not convertible to tinymath.model.Llama: {bad}")
    return ModelConfig(
        vocab_size=conf.vocab_size, padded_vocab_size=padded_vocab_size or round_up(conf.vocab_size, 1024),
        hidden_size=conf.hidden_size, intermediate_size=conf.intermediate_size, num_layers=conf.num_hidden_layers,
        num_heads=conf.num_attention_heads, num_kv_heads=conf.num_key_value_heads, head_dim=conf.head_dim,
        max_seq_len=conf.max_position_embeddings, rope_theta=rope["rope_theta"], rms_norm_eps=conf.rms_norm_eps,
        compute_dtype=compute_dtype)


def read_hf_state(hf_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor of model.safetensors or of the shards its index names, as float32 numpy."""
    index = hf_dir / INDEX_FILE
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else [SINGLE_FILE]
    state = {}
    for name in files:
        with safe_open(hf_dir / name, framework="pt") as f:
            state.update({key: f.get_tensor(key).float().numpy() for key in f.keys()})
    return state


# --- parity ---------------------------------------------------------------------------------------------------------

@nnx.jit
def jax_logits(model: Llama, tokens: jax.Array) -> jax.Array:
    """[B, T] one unpacked sequence per row -> [B, T, Vp] float32 logits."""
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)  # [B, T]
    return model(tokens, positions, jnp.ones_like(tokens))


def jax_greedy(model: Llama, prompt: np.ndarray, new_tokens: int) -> np.ndarray:
    """[B, T] -> [B, T + new_tokens]: greedy decoding without a cache, re-running one fixed-size buffer each step
    (compiled once; causal attention keeps the unwritten zeros from reaching earlier positions)."""
    b, t = prompt.shape
    seq = np.zeros((b, t + new_tokens), np.int32)  # [B, T+N]
    seq[:, :t] = prompt
    for i in range(t, t + new_tokens):
        seq[:, i] = np.asarray(jnp.argmax(jax_logits(model, jnp.asarray(seq))[:, i - 1], axis=-1))
    return seq


def hf_logits(hf: torch.nn.Module, tokens: np.ndarray) -> np.ndarray:
    """[B, T] -> [B, T, V] float32 logits of the torch model."""
    with torch.no_grad():
        return hf(input_ids=torch.from_numpy(tokens).long(), use_cache=False).logits.float().numpy()


def hf_greedy(hf: torch.nn.Module, prompt: np.ndarray, new_tokens: int) -> np.ndarray:
    """[B, T] -> [B, T + new_tokens] with `generate` (KV cache, so RoPE at offset positions is exercised too);
    stop tokens are disabled so both sides decode the same number of tokens."""
    ids = torch.from_numpy(prompt).long()
    out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                      do_sample=False, eos_token_id=None)
    return out.numpy()


def kl_divergence(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean over positions of KL(p || q) in nats, computed in float64."""
    lp = torch.log_softmax(torch.tensor(p_logits, dtype=torch.float64), dim=-1)  # [..., V]
    lq = torch.log_softmax(torch.tensor(q_logits, dtype=torch.float64), dim=-1)
    return float((lp.exp() * (lp - lq)).sum(-1).mean())


def parity(model: Llama, hf: torch.nn.Module, cfg: ParityConfig, seed: int) -> dict[str, Any]:
    """Run random prompts through both models: greedy continuations, then logits over prompt + JAX continuation."""
    vocab = hf.config.vocab_size
    prompt = np.random.default_rng(seed).integers(0, vocab, (cfg.batch_size, cfg.prompt_len), dtype=np.int32)
    with jax.default_matmul_precision("highest"):  # no TF32 / bf16 passes for float32 matmuls on GPU or TPU
        jax_seq = jax_greedy(model, prompt, cfg.greedy_tokens)  # [B, T+N]
        a = np.asarray(jax_logits(model, jnp.asarray(jax_seq)))[..., :vocab]  # [B, T+N, V]
    hf_seq = hf_greedy(hf, prompt, cfg.greedy_tokens)
    b = hf_logits(hf, jax_seq)  # [B, T+N, V]
    diff = np.abs(a - b)
    same = jax_seq[:, cfg.prompt_len:] == hf_seq[:, cfg.prompt_len:]  # [B, N]
    mismatch = np.flatnonzero(~same.all(axis=0))
    report = {"dtype": cfg.dtype, "batch_size": cfg.batch_size, "prompt_len": cfg.prompt_len,
              "greedy_tokens": cfg.greedy_tokens, "seed": seed, "hf_logit_columns": b.shape[-1],
              "max_abs_logit_diff": float(diff.max()), "mean_abs_logit_diff": float(diff.mean()),
              "kl_divergence": kl_divergence(a, b), "greedy_agreement": float(same.mean()),
              "greedy_first_mismatch": int(mismatch[0]) if mismatch.size else None,
              "tolerance": cfg.tolerance}
    report["passed"] = bool(report["max_abs_logit_diff"] <= cfg.tolerance and same.all())
    return report


def check_parity(report: dict[str, Any], where: Path) -> None:
    if not report["passed"]:
        raise ParityError(f"converted model differs from the JAX model: max |logit diff| "
                          f"{report['max_abs_logit_diff']:.3g} (tolerance {report['tolerance']:g}), greedy agreement "
                          f"{report['greedy_agreement']:.3f}, first mismatch at token {report['greedy_first_mismatch']}"
                          f"; see {where}")


# --- model card -----------------------------------------------------------------------------------------------------

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

Chat-format answers are scored by one rule, shared with the GRPO correctness reward (`tinymath.answer.is_correct`): the final answer is the last `\\boxed{{}}` (else the `####` line). A GSM8K answer is correct when it states one number of the reference's value; a unit (`18 dollars`, `18\\text{{ cm}}`), currency signs, a percent sign, thousands separators (`,` `{{,}}` `\\,` thin spaces) and forms such as `18.00` or `\\frac{{36}}{{2}}` may go with it. Another number, more numbers after it (`18 or 19`), or an empty answer is wrong, whatever the text said before. MATH \
answers are compared by math-verify (gold first), numeric ones also by the same number rule.
"""


def read_eval(path: Path) -> dict[str, Any] | None:
    """The published base-model evaluation (`results/<profile>/eval_base.json`), when there is one."""
    from tinymath.report import results

    return results.load(path)["data"] if path.is_file() else None


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
    rows = [f"| {task} | {r['metric']} | {r['n']} | {r['value']:.4g} | {r['ci95'][0]:.4g} - {r['ci95'][1]:.4g} |"
            for task, r in evals["tasks"].items()]
    return "\n".join(["Base model, lm-evaluation-harness (from `eval_base.json`):", "",
                      "| task | metric | n | value | 95% CI |", "|---|---|---|---|---|", *rows])


def padding_note(mcfg: ModelConfig) -> str:
    if mcfg.padded_vocab_size == mcfg.vocab_size:
        return "The JAX checkpoint has no padded vocabulary rows."
    return (f"The JAX checkpoint stores {mcfg.padded_vocab_size:,} vocabulary rows (padding for hardware-friendly "
            f"shapes, zero and masked); only the {mcfg.vocab_size:,} real rows are exported, so no padded row can be "
            "predicted.")


def model_card(mcfg: ModelConfig, report: dict[str, Any], card: CardConfig, profile: str,
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
        pad=specials.PAD, pad_id=specials.PAD_ID, dtype=report["dtype"], batch=report["batch_size"],
        prompt_len=report["prompt_len"], greedy=report["greedy_tokens"], max_diff=report["max_abs_logit_diff"],
        tol=report["tolerance"], kl=report["kl_divergence"], agree=report["greedy_agreement"],
        evaluation=eval_table(evals) if evals else "No evaluation file was available at conversion time; "
                                                   "evaluation results are reported in the paper.")
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")

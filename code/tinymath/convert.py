"""Stage `convert`: the JAX checkpoint as a transformers `LlamaForCausalLM` directory, with proven logit parity.

    tinymath convert --profile cpu

Reads `pretrain/final/` and `tokenizer/tokenizer/`; writes `hf/` (config.json, generation_config.json,
model.safetensors or shards with an index above `max_shard_size`, tokenizer files, chat template) and `parity.json`;
the model card is written by the report stage, from the results. The converted directory is reloaded from disk and
run against the JAX model on the same tokens; a max |logit diff| above the tolerance or any differing greedy token
raises, so no manifest is written and later stages cannot use a broken conversion (a converter that compares only
shapes passes a model whose q/k projections it scrambled).

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
from huggingface_hub import save_torch_state_dict
from pydantic import Field
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
)

from tinymath import hf_keys, specials
from tinymath.config import Section
from tinymath.errors import UserError
from tinymath.io import read_safetensors
from tinymath.log import logger
from tinymath.manifest import write_json_atomic
from tinymath.model import (
    CONFIG_FILE,
    PARAMS_FILE,
    Llama,
    ModelConfig,
    from_flat,
    round_up,
)
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


class Config(Section):
    seed: int = 0  # draws the parity prompts
    max_shard_size: str = "2GB"  # model.safetensors is split into shards with an index above this size
    parity: ParityConfig = ParityConfig()


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
    flat = read_safetensors(src / PARAMS_FILE)
    export_hf(flat, mcfg, out, cfg.max_shard_size)
    copy_tokenizer(run.input("tokenizer") / "tokenizer", out, mcfg.max_seq_len)
    check_special_ids(out, mcfg.vocab_size)
    model = from_flat(mcfg.model_copy(update={"compute_dtype": cfg.parity.dtype}), flat)
    del flat  # the paper model is 4.5 GB per copy
    report = parity(model, load_hf(out), cfg.parity, cfg.seed)
    write_json_atomic(run.dir / PARITY_FILE, report)
    check_parity(report, run.dir / PARITY_FILE)
    logger.info("convert: %s, max |logit diff| %.2e, greedy agreement %.3f", out, report["max_abs_logit_diff"],
                report["greedy_agreement"])


# --- JAX -> HF ------------------------------------------------------------------------------------------------------

# ModelConfig field -> LlamaConfig field, for both directions of the conversion.
HF_FIELDS = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "intermediate_size": "intermediate_size",
             "num_layers": "num_hidden_layers", "num_heads": "num_attention_heads",
             "num_kv_heads": "num_key_value_heads", "head_dim": "head_dim", "max_seq_len": "max_position_embeddings",
             "rms_norm_eps": "rms_norm_eps"}


def hf_config(mcfg: ModelConfig) -> LlamaConfig:
    """The transformers config of the JAX model; special ids come from `tinymath.specials` only."""
    return LlamaConfig(
        **{theirs: getattr(mcfg, ours) for ours, theirs in HF_FIELDS.items()},
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
    """Tokenizer, config.json and generation_config.json must agree with `tinymath.specials` (a config whose bos/eos
    ids differ from the tokenizer's makes generate() stop on the wrong token)."""
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
    return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, use_safetensors=True).eval()


# --- HF -> JAX ------------------------------------------------------------------------------------------------------

def hf_to_jax(hf_dir: Path, padded_vocab_size: int | None = None,
              compute_dtype: Literal["bfloat16", "float32"] = "bfloat16") -> tuple[ModelConfig, Llama]:
    """Load a transformers Llama directory (ours or any released one of this shape family) as a JAX model.

    Weights become float32 (bfloat16 checkpoints upcast exactly). The HF checkpoint does not record the JAX padding,
    so `padded_vocab_size` defaults to the paper's rule (next multiple of 1024); pass the value the JAX checkpoint had
    for a bit-exact round trip.
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
        **{ours: getattr(conf, theirs) for ours, theirs in HF_FIELDS.items()},
        padded_vocab_size=padded_vocab_size or round_up(conf.vocab_size, 1024), rope_theta=rope["rope_theta"],
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

"""The parameter map between `tinymath.model.Llama` (NNX paths) and transformers' `LlamaForCausalLM` (state-dict keys).

The JAX model uses Hugging Face's names, so the map is a rename plus two layout changes:
- a Linear `kernel` is [in, out] and a torch `weight` is [out, in]: transpose;
- the JAX vocabulary is padded to `padded_vocab_size` rows (zeros, masked logits) for hardware-friendly shapes, while
  the HF checkpoint holds exactly `vocab_size` rows, so HF logits have no padded columns that could win an argmax and
  the embedding matches the tokenizer. The way back re-pads with zeros, which is exact because JAX pad rows are zero
  (export refuses a checkpoint whose pad rows are not).
RoPE needs no permutation: both sides rotate the two halves of each head (transformers' `rotate_half`).
"""

from __future__ import annotations

import re

import numpy as np

# Below `layers.{i}.` (JAX) and `model.layers.{i}.` (HF).
LAYER_KEYS = {
    "input_layernorm.scale": "input_layernorm.weight",
    "self_attn.q_proj.kernel": "self_attn.q_proj.weight",
    "self_attn.k_proj.kernel": "self_attn.k_proj.weight",
    "self_attn.v_proj.kernel": "self_attn.v_proj.weight",
    "self_attn.o_proj.kernel": "self_attn.o_proj.weight",
    "post_attention_layernorm.scale": "post_attention_layernorm.weight",
    "mlp.gate_proj.kernel": "mlp.gate_proj.weight",
    "mlp.up_proj.kernel": "mlp.up_proj.weight",
    "mlp.down_proj.kernel": "mlp.down_proj.weight",
}
GLOBAL_KEYS = {
    "embed_tokens.embedding": "model.embed_tokens.weight",
    "norm.scale": "model.norm.weight",
    "lm_head.kernel": "lm_head.weight",
}
# HF keys whose rows are vocabulary entries (after the transpose of lm_head's kernel).
VOCAB_KEYS = ("model.embed_tokens.weight", "lm_head.weight")
_JAX_LAYER = re.compile(r"layers\.(\d+)\.(.+)")
_HF_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")
_LAYER_BACK = {v: k for k, v in LAYER_KEYS.items()}
_GLOBAL_BACK = {v: k for k, v in GLOBAL_KEYS.items()}


def hf_key(path: str) -> str:
    """'layers.3.mlp.up_proj.kernel' -> 'model.layers.3.mlp.up_proj.weight'; KeyError for an unknown path."""
    m = _JAX_LAYER.fullmatch(path)
    return f"model.layers.{m[1]}.{LAYER_KEYS[m[2]]}" if m else GLOBAL_KEYS[path]


def jax_key(key: str) -> str:
    """The inverse of `hf_key`."""
    m = _HF_LAYER.fullmatch(key)
    return f"layers.{m[1]}.{_LAYER_BACK[m[2]]}" if m else _GLOBAL_BACK[key]


def to_hf(flat: dict[str, np.ndarray], vocab_size: int) -> dict[str, np.ndarray]:
    """JAX flat params -> HF state dict of C-contiguous float arrays, vocabulary rows cut to `vocab_size`.

    Raises ValueError when a padded row is not zero: dropping it would change the model.
    """
    out = {}
    for path, value in flat.items():
        key = hf_key(path)
        array = value.T if path.endswith(".kernel") else value  # [in, out] -> [out, in]
        if key in VOCAB_KEYS:
            if np.any(array[vocab_size:]):
                raise ValueError(f"{path}: padded vocabulary rows >= {vocab_size} are not zero")
            array = array[:vocab_size]  # [Vp, D] -> [V, D]
        out[key] = np.ascontiguousarray(array)
    return out


def from_hf(state: dict[str, np.ndarray], padded_vocab_size: int) -> dict[str, np.ndarray]:
    """HF state dict -> JAX flat params, vocabulary rows re-padded with zeros to `padded_vocab_size`."""
    out = {}
    for key, value in state.items():
        path = jax_key(key)
        if key in VOCAB_KEYS:
            pad = padded_vocab_size - value.shape[0]
            value = np.concatenate([value, np.zeros((pad, value.shape[1]), value.dtype)])  # [V, D] -> [Vp, D]
        out[path] = np.ascontiguousarray(value.T if path.endswith(".kernel") else value)  # [out, in] -> [in, out]
    return out

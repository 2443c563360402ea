"""The Llama decoder in Flax NNX, with Hugging Face parameter names so conversion is a rename table plus transposes.

Shape letters: B batch, T time (S for keys), D model, N query heads, K kv heads, G = N / K query heads per kv head,
H head dim, F MLP width, V vocabulary (Vp padded rows).

Precision: parameters are float32 masters; with `compute_dtype: bfloat16` every matmul takes bfloat16 inputs and
accumulates in float32 (`preferred_element_type`), while norms, RoPE, softmax, logits and the loss stay float32.
Rows >= vocab_size of the embedding and lm_head exist only to make the matrix shape friendly to the hardware: they are
zero-initialised and their logits are masked, so they never win an argmax and get no gradient through the softmax.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from pydantic import Field, model_validator
from safetensors.numpy import save_file

from tinymath.config import Section
from tinymath.io import read_safetensors

PARAMS_FILE = "params.safetensors"
CONFIG_FILE = "model_config.json"
MASKED_LOGIT = -1e9  # logit of padded vocabulary rows: far below any real logit, finite so softmax stays NaN-free
INIT_STD = 0.02  # as transformers' LlamaConfig.initializer_range


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class ModelConfig(Section):
    """Architecture of the Llama decoder; written beside every exported checkpoint as `model_config.json`."""

    vocab_size: int = Field(gt=0)  # tokens the tokenizer can produce
    padded_vocab_size: int = Field(gt=0)  # rows of embed_tokens / columns of lm_head (>= vocab_size)
    hidden_size: int = Field(gt=0)  # D
    intermediate_size: int = Field(gt=0)  # F
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)  # N
    num_kv_heads: int = Field(gt=0)  # K
    head_dim: int = Field(gt=0)  # H
    max_seq_len: int = Field(gt=0)
    rope_theta: float = Field(default=10000.0, gt=0)
    rms_norm_eps: float = Field(default=1e-5, gt=0)
    param_dtype: Literal["float32"] = "float32"
    compute_dtype: Literal["bfloat16", "float32"] = "bfloat16"

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.padded_vocab_size < self.vocab_size:
            raise ValueError(f"padded_vocab_size >= vocab_size ({self.vocab_size}), got {self.padded_vocab_size}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads divisible by num_kv_heads ({self.num_kv_heads}), got {self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"an even head_dim (RoPE rotates pairs), got {self.head_dim}")
        return self

    @classmethod
    def paper(cls, vocab_size: int = 32000, **overrides) -> ModelConfig:
        """The 1.12B TinyLlama-shaped model; the vocabulary is padded to a multiple of 1024 (32,000 -> 32,768)."""
        base = dict(vocab_size=vocab_size, padded_vocab_size=round_up(vocab_size, 1024), hidden_size=2048,
                    intermediate_size=5632, num_layers=22, num_heads=16, num_kv_heads=4, head_dim=128,
                    max_seq_len=4096)
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, vocab_size: int = 2048, **overrides) -> ModelConfig:
        """A ~1-2M parameter model of the same shape family, trainable in minutes on two CPU cores."""
        base = dict(vocab_size=vocab_size, padded_vocab_size=round_up(vocab_size, 64), hidden_size=128,
                    intermediate_size=384, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=32, max_seq_len=256)
        return cls(**{**base, **overrides})

    @classmethod
    def tiny(cls, vocab_size: int = 512, **overrides) -> ModelConfig:
        """A two-layer model for tests and the smoke profile."""
        base = dict(vocab_size=vocab_size, padded_vocab_size=round_up(vocab_size, 64), hidden_size=64,
                    intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, max_seq_len=256)
        return cls(**{**base, **overrides})


PRESETS = {"paper": ModelConfig.paper, "small": ModelConfig.small, "tiny": ModelConfig.tiny}


def num_params(cfg: ModelConfig, padded: bool = False) -> int:
    """Parameter count from the config alone (untied embeddings, no biases).

    padded=False counts `vocab_size` rows (the model's real capacity: 1,123,117,056 for the paper model at 32,000);
    padded=True counts the stored arrays, `padded_vocab_size` rows (1,126,262,784 at 32,768).
    """
    d, f, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    rows = cfg.padded_vocab_size if padded else cfg.vocab_size
    attn = d * cfg.num_heads * hd * 2 + d * cfg.num_kv_heads * hd * 2  # q, o; k, v
    layer = attn + 3 * d * f + 2 * d  # + gate, up, down; two norms
    return cfg.num_layers * layer + d + 2 * rows * d  # + final norm; embed_tokens, lm_head


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6 x matmul parameters + attention scores and values (PaLM, appendix B).

    Matmul parameters exclude the embedding lookup and norms and include lm_head's padded columns (computed anyway);
    attention adds 12 * layers * T * N * H (QK^T and AV, forward and backward, causal half not discounted).
    """
    d, rows = cfg.hidden_size, cfg.padded_vocab_size
    matmul = num_params(cfg, padded=True) - rows * d - (2 * cfg.num_layers + 1) * d
    return 6.0 * matmul + 12.0 * cfg.num_layers * seq_len * cfg.num_heads * cfg.head_dim


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul(x: jax.Array, w: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """x [..., I] @ w [I, O] -> float32 [..., O], inputs cast to `dtype`, float32 accumulation."""
    return jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


def _matmul_fwd(x, w, dtype):
    return matmul(x, w, dtype), (x, w)


def _matmul_bwd(dtype, res, g):
    """Cast the incoming float32 gradient to `dtype` too: otherwise both backward matmuls promote to float32,
    the slow path on CPU and TPU alike."""
    x, w = res
    g = g.astype(dtype)
    dx = jnp.matmul(g, w.astype(dtype).T, preferred_element_type=jnp.float32)
    x2 = x.reshape(-1, x.shape[-1]).astype(dtype)  # [B*T, I]
    dw = jnp.matmul(x2.T, g.reshape(-1, g.shape[-1]), preferred_element_type=jnp.float32)  # [I, B*T] @ [B*T, O]
    return dx.astype(x.dtype), dw.astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def normal_init(key: jax.Array, shape: tuple[int, ...], axis: int = 0, valid: int | None = None) -> jax.Array:
    """N(0, 0.02) weights; entries at index >= `valid` along `axis` are zero (the padded vocabulary)."""
    w = INIT_STD * jax.random.normal(key, shape, jnp.float32)
    if valid is None:
        return w
    index = jax.lax.broadcasted_iota(jnp.int32, shape, axis)
    return jnp.where(index < valid, w, 0.0)


class Linear(nnx.Module):
    """Bias-free projection; `kernel` is [in, out] (the transpose of torch's `weight`)."""

    def __init__(self, d_in: int, d_out: int, dtype: jnp.dtype, rngs: nnx.Rngs, valid_out: int | None = None):
        self.kernel = nnx.Param(normal_init(rngs.params(), (d_in, d_out), axis=1, valid=valid_out))
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        return matmul(x, self.kernel[...], self.dtype)


class RMSNorm(nnx.Module):
    def __init__(self, dim: int, eps: float):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps) * self.scale[...]


def rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotary embedding in transformers' Llama layout: the two halves of each head are the rotated pairs.

    x [B, T, heads, H], positions [B, T] -> [B, T, heads, H], float32.
    """
    h = x.shape[-1]
    inv_freq = 1.0 / theta ** (jnp.arange(0, h, 2, dtype=jnp.float32) / h)  # [H/2]
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, H/2]
    angles = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]  # [B, T, 1, H]
    x1, x2 = x[..., : h // 2], x[..., h // 2:]
    rotated = jnp.concatenate([-x2, x1], axis=-1)  # rotate_half
    return x.astype(jnp.float32) * jnp.cos(angles) + rotated * jnp.sin(angles)


def attention_mask(segment_ids: jax.Array) -> jax.Array:
    """[B, T] segment ids -> [B, 1, 1, T, S] bool: causal and within one packed document.

    Padding (segment 0) attends only to padding, which keeps its rows finite; the loss ignores them.
    """
    t = segment_ids.shape[1]
    causal = jnp.tril(jnp.ones((t, t), bool))  # [T, S]
    same = segment_ids[:, :, None] == segment_ids[:, None, :]  # [B, T, S]
    return (causal & same)[:, None, None]  # [B, 1, 1, T, S]


class Attention(nnx.Module):
    """Grouped-query self-attention: N query heads share K key/value heads in groups of G."""

    def __init__(self, cfg: ModelConfig, dtype: jnp.dtype, rngs: nnx.Rngs):
        d, hd = cfg.hidden_size, cfg.head_dim
        self.q_proj = Linear(d, cfg.num_heads * hd, dtype, rngs)
        self.k_proj = Linear(d, cfg.num_kv_heads * hd, dtype, rngs)
        self.v_proj = Linear(d, cfg.num_kv_heads * hd, dtype, rngs)
        self.o_proj = Linear(cfg.num_heads * hd, d, dtype, rngs)
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, hd
        self.theta, self.dtype = cfg.rope_theta, dtype

    def __call__(self, x: jax.Array, positions: jax.Array, mask: jax.Array) -> jax.Array:
        b, t, _ = x.shape
        n, k, hd = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.q_proj(x).reshape(b, t, n, hd)  # [B, T, N, H]
        key = self.k_proj(x).reshape(b, t, k, hd)  # [B, S, K, H]
        value = self.v_proj(x).reshape(b, t, k, hd)  # [B, S, K, H]
        q = rope(q, positions, self.theta).reshape(b, t, k, n // k, hd)  # [B, T, K, G, H]
        key = rope(key, positions, self.theta)
        scores = jnp.einsum("btkgh,bskh->bkgts", q.astype(self.dtype), key.astype(self.dtype),
                            preferred_element_type=jnp.float32) / math.sqrt(hd)  # [B, K, G, T, S]
        probs = jax.nn.softmax(jnp.where(mask, scores, MASKED_LOGIT), axis=-1)
        out = jnp.einsum("bkgts,bskh->btkgh", probs.astype(self.dtype), value.astype(self.dtype),
                         preferred_element_type=jnp.float32)  # [B, T, K, G, H]
        return self.o_proj(out.reshape(b, t, n * hd))  # [B, T, N*H] -> [B, T, D]


class MLP(nnx.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig, dtype: jnp.dtype, rngs: nnx.Rngs):
        self.gate_proj = Linear(cfg.hidden_size, cfg.intermediate_size, dtype, rngs)
        self.up_proj = Linear(cfg.hidden_size, cfg.intermediate_size, dtype, rngs)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size, dtype, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype: jnp.dtype, rngs: nnx.Rngs):
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, dtype, rngs)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg, dtype, rngs)

    def __call__(self, x: jax.Array, positions: jax.Array, mask: jax.Array) -> jax.Array:
        x = x + self.self_attn(self.input_layernorm(x), positions, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Embed(nnx.Module):
    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        shape = (cfg.padded_vocab_size, cfg.hidden_size)
        self.embedding = nnx.Param(normal_init(rngs.params(), shape, axis=0, valid=cfg.vocab_size))

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return jnp.take(self.embedding[...], tokens, axis=0)  # [B, T] -> [B, T, D]


class Llama(nnx.Module):
    """tokens, positions, segment_ids [B, T] int32 -> logits [B, T, Vp] float32.

    remat=True recomputes each layer in the backward pass, keeping only layer inputs alive (a training choice, not
    part of the architecture: the parameters are the same).
    """

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, remat: bool = False):
        dtype = jnp.dtype(cfg.compute_dtype)
        self.vocab_size, self.remat = cfg.vocab_size, remat
        self.embed_tokens = Embed(cfg, rngs)
        self.layers = nnx.List([Block(cfg, dtype, rngs) for _ in range(cfg.num_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = Linear(cfg.hidden_size, cfg.padded_vocab_size, dtype, rngs, valid_out=cfg.vocab_size)

    def __call__(self, tokens: jax.Array, positions: jax.Array, segment_ids: jax.Array) -> jax.Array:
        x = self.embed_tokens(tokens)  # [B, T, D]
        mask = attention_mask(segment_ids)
        block = nnx.remat(Block.__call__) if self.remat else Block.__call__
        for layer in self.layers:
            x = block(layer, x, positions, mask)
        logits = self.lm_head(self.norm(x))  # [B, T, Vp]
        real = jnp.arange(logits.shape[-1]) < self.vocab_size
        return jnp.where(real, logits, MASKED_LOGIT)


def flat_params(model: Llama) -> dict[str, np.ndarray]:
    """Dotted NNX path -> float32 numpy array, e.g. 'layers.0.self_attn.q_proj.kernel'."""
    state = nnx.state(model, nnx.Param)
    return {".".join(str(p) for p in path): np.array(var.get_value(), np.float32)
            for path, var in nnx.to_flat_state(state)}


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Dotted path -> shape, from an abstract model (no memory allocated)."""
    abstract = nnx.eval_shape(lambda: Llama(cfg, nnx.Rngs(0)))
    state = nnx.state(abstract, nnx.Param)
    return {".".join(str(p) for p in path): tuple(var.get_value().shape) for path, var in nnx.to_flat_state(state)}


def from_flat(cfg: ModelConfig, flat: dict[str, np.ndarray]) -> Llama:
    """Build a Llama holding exactly `flat`'s values; names and shapes must match the config's model."""
    expected = param_shapes(cfg)
    missing, unexpected = sorted(expected.keys() - flat.keys()), sorted(flat.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(f"parameters do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    wrong = [f"{k} {np.shape(flat[k])} != {s}" for k, s in expected.items() if tuple(np.shape(flat[k])) != s]
    if wrong:
        raise ValueError(f"parameter shapes do not match the config: {wrong[:5]}")
    abstract = nnx.eval_shape(lambda: Llama(cfg, nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    leaves = nnx.to_flat_state(state)
    for path, var in leaves:
        var.set_value(jnp.asarray(flat[".".join(str(p) for p in path)], jnp.float32))
    return nnx.merge(graphdef, nnx.from_flat_state(leaves))


def save_safetensors(model: Llama, cfg: ModelConfig, directory: Path) -> None:
    """Write `params.safetensors` (float32, dotted paths) and `model_config.json` into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(flat_params(model), str(directory / PARAMS_FILE), metadata={"format": "np"})
    (directory / CONFIG_FILE).write_text(cfg.model_dump_json(indent=1) + "\n")


def load_safetensors(directory: Path) -> tuple[ModelConfig, Llama]:
    directory = Path(directory)
    cfg = ModelConfig.model_validate_json((directory / CONFIG_FILE).read_text())
    return cfg, from_flat(cfg, read_safetensors(directory / PARAMS_FILE))

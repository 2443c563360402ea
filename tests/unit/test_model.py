"""The JAX Llama: parameter counts, packed-document masking, padded vocabulary, export round trip, HF parity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tinymath.model import (
    Llama,
    ModelConfig,
    flat_params,
    flops_per_token,
    from_flat,
    load_safetensors,
    matmul,
    num_params,
    param_shapes,
    save_safetensors,
)


def _inputs(tokens: list[list[int]], segments: list[list[int]]) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Token and segment rows -> (tokens, positions restarting per segment, segment ids), each [B, T] int32."""
    seg = np.asarray(segments, np.int32)
    pos = np.zeros_like(seg)
    for b in range(seg.shape[0]):
        for t in range(1, seg.shape[1]):
            pos[b, t] = pos[b, t - 1] + 1 if seg[b, t] == seg[b, t - 1] else 0
    return jnp.asarray(tokens, jnp.int32), jnp.asarray(pos), jnp.asarray(seg)


@pytest.fixture(scope="module")
def padded_model() -> tuple[ModelConfig, Llama]:
    cfg = ModelConfig.tiny(vocab_size=100, compute_dtype="float32")  # 100 real rows padded to 128
    return cfg, Llama(cfg, nnx.Rngs(0))


def test_num_params_paper_exact():
    cfg = ModelConfig.paper()
    assert (cfg.vocab_size, cfg.padded_vocab_size) == (32000, 32768)
    assert num_params(cfg) == 1_123_117_056
    assert num_params(cfg, padded=True) == 1_126_262_784


def test_num_params_matches_arrays():
    cfg = ModelConfig.tiny(vocab_size=100)
    shapes = param_shapes(cfg)
    assert sum(int(np.prod(s)) for s in shapes.values()) == num_params(cfg, padded=True)
    assert len([k for k in shapes if k.endswith("q_proj.kernel")]) == cfg.num_layers


def test_param_shapes_contract():
    cfg = ModelConfig.tiny(vocab_size=100, num_kv_heads=1)
    d, f, v, hd = cfg.hidden_size, cfg.intermediate_size, cfg.padded_vocab_size, cfg.head_dim
    shapes = param_shapes(cfg)
    assert shapes["embed_tokens.embedding"] == (v, d)
    assert shapes["lm_head.kernel"] == (d, v)
    assert shapes["norm.scale"] == (d,)
    assert shapes["layers.1.self_attn.q_proj.kernel"] == (d, cfg.num_heads * hd)
    assert shapes["layers.1.self_attn.k_proj.kernel"] == (d, hd)
    assert shapes["layers.1.self_attn.o_proj.kernel"] == (cfg.num_heads * hd, d)
    assert shapes["layers.1.mlp.down_proj.kernel"] == (f, d)
    assert shapes["layers.1.post_attention_layernorm.scale"] == (d,)


def test_config_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig.tiny(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="padded_vocab_size"):
        ModelConfig.tiny(vocab_size=600, padded_vocab_size=512)


def test_flops_per_token_dominated_by_6n():
    cfg = ModelConfig.paper()
    fpt = flops_per_token(cfg, 2048)
    assert 6 * 1.0e9 < fpt < 6 * 1.3e9
    assert flops_per_token(cfg, 4096) > fpt  # attention grows with context


def test_llama_packed_document_unaffected_by_neighbour(padded_model):
    cfg, model = padded_model
    doc = [5, 17, 42, 9, 3, 77]
    alone = _inputs([doc + [1, 1]], [[1] * 6 + [0, 0]])
    packed = _inputs([[60, 61] + doc], [[1, 1] + [2] * 6])
    a = np.asarray(model(*alone))[0, :6]
    b = np.asarray(model(*packed))[0, 2:]
    np.testing.assert_allclose(a, b, atol=1e-5)
    # Without segment ids the neighbour would leak in: the test can tell the difference.
    leaky = np.asarray(model(packed[0], jnp.arange(8)[None] - 2, jnp.ones_like(packed[2])))[0, 2:]
    assert np.abs(leaky - a).max() > 1e-3


def test_llama_causal(padded_model):
    cfg, model = padded_model
    x = _inputs([[4, 8, 15, 16, 23, 42]], [[1] * 6])
    y = _inputs([[4, 8, 15, 99, 98, 97]], [[1] * 6])
    np.testing.assert_allclose(np.asarray(model(*x))[0, :3], np.asarray(model(*y))[0, :3], atol=1e-6)


def test_llama_padded_rows_never_win(padded_model):
    cfg, model = padded_model
    flat = flat_params(model)
    assert not flat["embed_tokens.embedding"][cfg.vocab_size:].any()
    assert not flat["lm_head.kernel"][:, cfg.vocab_size:].any()
    # Even with large weights in the padded columns, their logits stay masked.
    flat["lm_head.kernel"][:, cfg.vocab_size:] = 10.0
    hostile = from_flat(cfg, flat)
    logits = np.asarray(hostile(*_inputs([[1, 2, 3, 4]], [[1] * 4])))
    assert logits.shape[-1] == cfg.padded_vocab_size
    assert (logits.argmax(-1) < cfg.vocab_size).all()
    assert (logits[..., cfg.vocab_size:] <= -1e8).all()


def test_flat_params_round_trip_exact(padded_model, tmp_path):
    cfg, model = padded_model
    save_safetensors(model, cfg, tmp_path)
    cfg2, model2 = load_safetensors(tmp_path)
    assert cfg2 == cfg
    a, b = flat_params(model), flat_params(model2)
    assert a.keys() == b.keys()
    assert all(a[k].dtype == np.float32 and np.array_equal(a[k], b[k]) for k in a)


def test_from_flat_rejects_missing_layer(padded_model):
    cfg, model = padded_model
    flat = {k: v for k, v in flat_params(model).items() if not k.startswith("layers.1.")}
    with pytest.raises(ValueError, match="missing"):
        from_flat(cfg, flat)


def test_matmul_bf16_gradients_close_to_f32():
    x = jax.random.normal(jax.random.key(0), (4, 8, 32))
    w = jax.random.normal(jax.random.key(1), (32, 16))

    def loss(x, w, dtype):
        return jnp.sum(jnp.sin(matmul(x, w, dtype)))

    g32 = jax.grad(loss, argnums=(0, 1))(x, w, jnp.float32)
    g16 = jax.grad(loss, argnums=(0, 1))(x, w, jnp.bfloat16)
    for a, b in zip(g32, g16):
        assert b.dtype == jnp.float32
        assert np.abs(np.asarray(a) - np.asarray(b)).max() < 0.1 * np.abs(np.asarray(a)).max()
        assert not np.array_equal(np.asarray(a), np.asarray(b))  # bf16 really ran


def test_llama_matches_transformers(padded_model):
    """Same weights in transformers' LlamaForCausalLM give the same logits: RoPE layout, GQA, norms all agree."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg, model = padded_model
    hf = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.padded_vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim, max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.rms_norm_eps,
        rope_theta=cfg.rope_theta, tie_word_embeddings=False, attention_bias=False, mlp_bias=False))
    flat = flat_params(model)
    state = {}
    for key, value in flat.items():
        name = key.replace("embed_tokens.embedding", "embed_tokens.weight").replace(".scale", ".weight")
        is_kernel = name.endswith(".kernel")
        name = name.replace(".kernel", ".weight")
        state[name if name.startswith("lm_head") else "model." + name] = torch.from_numpy(
            value.T.copy() if is_kernel else value)
    hf.load_state_dict(state, strict=True)
    tokens = [[3, 14, 15, 92, 65, 35, 89, 79]]
    ours = np.asarray(model(*_inputs(tokens, [[1] * 8])))[..., :cfg.vocab_size]
    with torch.no_grad():
        theirs = hf(torch.tensor(tokens)).logits.numpy()[..., :cfg.vocab_size]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)

"""Train-step throughput: this project's JAX step vs transformers' LlamaForCausalLM in PyTorch, same shapes, same run.

    python benchmarks/pretrain_step.py                       # the cpu profile's model, batch 8 x 256
    python benchmarks/pretrain_step.py --preset tiny --batch 4 --seq 128 --steps 3
    python benchmarks/pretrain_step.py --set hidden_size=512 --set intermediate_size=1408 --set num_heads=8 \
        --set num_kv_heads=4 --set head_dim=64       # a wider model: larger matmuls

Both sides: forward, next-token cross-entropy, backward, global-norm clip, AdamW, in float32 and in bfloat16 (JAX:
bf16 matmul inputs with float32 accumulation; PyTorch: torch.autocast). The JAX bf16 step is also timed without the
custom VJP of `tinymath.model.matmul` (which casts incoming gradients to bf16), to show what that choice buys.
Target: the JAX step at >= 0.6x PyTorch's tokens/s. MFU uses the peaks given on the command line (defaults: the
2-core CPU's measured matmul rates, float32 0.33 and bf16 1.3 TFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx
from transformers import LlamaConfig, LlamaForCausalLM

from tinymath import model as model_lib
from tinymath.model import PRESETS, Llama, ModelConfig, flops_per_token
from tinymath.packed import loss_mask


def jax_step(cfg: ModelConfig, batch: int, seq: int):
    """A jitted step like pretraining's (loss over same-document targets, clip, AdamW) and its inputs."""
    model = Llama(cfg, nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    params = nnx.to_pure_dict(params)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(3e-4, b1=0.9, b2=0.95, weight_decay=0.1))
    opt_state = tx.init(params)

    def loss_fn(p, tokens, segments, positions):
        logits = nnx.merge(graphdef, p)(tokens[:, :-1], positions[:, :-1], segments[:, :-1])  # [B, T, Vp]
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])  # [B, T]
        mask = loss_mask(segments)
        return jnp.sum(jnp.where(mask, nll, 0.0)) / jnp.sum(mask)

    @jax.jit
    def step(p, o, tokens, segments, positions):
        loss, grads = jax.value_and_grad(loss_fn)(p, tokens, segments, positions)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(6, cfg.vocab_size, (batch, seq + 1)), jnp.int32)
    segments = jnp.ones((batch, seq + 1), jnp.int32)
    positions = jnp.tile(jnp.arange(seq + 1, dtype=jnp.int32), (batch, 1))  # [B, T+1]
    state = [params, opt_state]

    def run() -> float:
        state[0], state[1], loss = step(state[0], state[1], tokens, segments, positions)
        return float(loss)

    return run


def torch_step(cfg: ModelConfig, batch: int, seq: int, bf16: bool):
    hf = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.padded_vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim, max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.rms_norm_eps,
        rope_theta=cfg.rope_theta, tie_word_embeddings=False, attn_implementation="sdpa"))
    opt = torch.optim.AdamW(hf.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    ids = torch.from_numpy(np.random.default_rng(0).integers(6, cfg.vocab_size, (batch, seq + 1)))

    def run() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = hf(input_ids=ids[:, :-1], labels=ids[:, :-1]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return run


def tokens_per_s(run, tokens: int, steps: int, warmup: int) -> float:
    """Median over `steps` timed steps after `warmup` (compilation, allocator warm-up)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return tokens / float(np.median(times))


def plain_matmul(x, w, dtype):
    """The bf16 matmul without the custom VJP: autodiff's backward matmuls see float32 gradients."""
    return jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=INT",
                   help="override a ModelConfig field of the preset, e.g. hidden_size=512")
    p.add_argument("--peak-f32", type=float, default=0.33, help="TFLOP/s")
    p.add_argument("--peak-bf16", type=float, default=1.3, help="TFLOP/s")
    args = p.parse_args()
    tokens = args.batch * args.seq
    results = {}
    for dtype, peak in (("float32", args.peak_f32), ("bfloat16", args.peak_bf16)):
        overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.overrides)}
        cfg = PRESETS[args.preset](vocab_size=args.vocab, compute_dtype=dtype, **overrides)
        fpt = flops_per_token(cfg, args.seq)
        variants = {"jax": jax_step(cfg, args.batch, args.seq),
                    "torch": torch_step(cfg, args.batch, args.seq, bf16=dtype == "bfloat16")}
        for name, run in variants.items():
            tps = tokens_per_s(run, tokens, args.steps, args.warmup)
            results[f"{name}_{dtype}"] = {"tokens_per_s": round(tps, 1), "mfu": round(tps * fpt / (peak * 1e12), 4)}
        if dtype == "bfloat16":
            model_lib.matmul, custom = plain_matmul, model_lib.matmul
            tps = tokens_per_s(jax_step(cfg, args.batch, args.seq), tokens, args.steps, args.warmup)
            model_lib.matmul = custom
            results["jax_bfloat16_no_custom_vjp"] = {"tokens_per_s": round(tps, 1),
                                                     "mfu": round(tps * fpt / (peak * 1e12), 4)}
    ratios = {dtype: round(results[f"jax_{dtype}"]["tokens_per_s"] / results[f"torch_{dtype}"]["tokens_per_s"], 3)
              for dtype in ("float32", "bfloat16")}
    ratios["custom_vjp_speedup"] = round(results["jax_bfloat16"]["tokens_per_s"]
                                         / results["jax_bfloat16_no_custom_vjp"]["tokens_per_s"], 3)
    shapes = {"preset": args.preset, "overrides": args.overrides, "batch": args.batch, "seq": args.seq,
              "vocab": args.vocab}
    print(json.dumps({"shapes": shapes,
                      "results": results, "jax_over_torch": ratios}, indent=1))


if __name__ == "__main__":
    main()

"""Train-step throughput: the pretraining stage's JAX step vs transformers' LlamaForCausalLM in PyTorch, same shapes,
same run, at the cpu profile's shape and at a wider one, in float32 and bfloat16.

    python benchmarks/pretrain_step.py
    python benchmarks/pretrain_step.py --steps 3 --shapes cpu     # quicker

JAX: the stage's own step (`tinymath.pretrain.train.make_train_step`: loss over same-document targets, global-norm
clip, AdamW, donated state) on one device. PyTorch: forward with labels, backward, clip, AdamW; bf16 through
torch.autocast. MFU is model FLOPs (`tinymath.model.flops_per_token`) over this machine's matmul peak of the
precision, measured in the same run as the better of the two frameworks' rates on a large square matmul.
Each side reports the median of its timed steps; rounds alternate the frameworks so noise hits both alike.
Target: JAX at 1.0x PyTorch or better in both precisions at both shapes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from transformers import LlamaForCausalLM

from tinymath.convert import hf_config
from tinymath.model import ModelConfig, flops_per_token
from tinymath.pretrain.config import Config
from tinymath.pretrain.sharding import make_mesh, put_batch
from tinymath.pretrain.train import init_state, make_optimizer, make_train_step

# name -> (ModelConfig.small overrides, batch rows, sequence length)
SHAPES = {
    "cpu": ({}, 8, 256),  # the cpu profile's model and batch
    "wide": ({"hidden_size": 512, "intermediate_size": 1408, "num_layers": 8, "num_heads": 8, "num_kv_heads": 4,
              "head_dim": 64, "max_seq_len": 512}, 4, 512),
}
VOCAB = 2048


def model_config(name: str, dtype: str) -> ModelConfig:
    return ModelConfig.small(vocab_size=VOCAB, compute_dtype=dtype, **SHAPES[name][0])


def jax_step(name: str, dtype: str):
    """The pretraining stage's jitted step on one device, and a closure running it on a fixed batch."""
    overrides, rows, seq = SHAPES[name]
    cfg = Config.model_validate({
        "model": {"preset": "small", "vocab_size": VOCAB, "overrides": {**overrides, "compute_dtype": dtype}},
        "steps": 1000, "global_batch": rows, "seq_len": seq, "tokens": 1000 * rows * seq,
        "optimizer": {"warmup_steps": 1}, "checkpoint": {"every": 1000}, "eval_every": 1000,
        "device_peak_tflops": 1.0})
    mesh = make_mesh(cfg.mesh)
    tx, _ = make_optimizer(cfg.optimizer, cfg.steps)
    graphdef, params, opt_state = init_state(cfg.model.nominal(), cfg, mesh, tx)
    step = make_train_step(graphdef, tx, cfg, mesh, jax.tree.map(lambda x: x.sharding, params),
                           jax.tree.map(lambda x: x.sharding, opt_state))
    rng = np.random.default_rng(0)
    shape = (rows, seq + 1)
    batch = put_batch({"tokens": rng.integers(6, VOCAB, shape).astype(np.int32),
                       "segment_ids": np.ones(shape, np.int32),
                       "positions": np.tile(np.arange(seq + 1, dtype=np.int32), (rows, 1))}, mesh)
    state = [params, opt_state]

    def run() -> None:
        state[0], state[1], metrics = step(state[0], state[1], batch)
        jax.block_until_ready(metrics["loss"])

    return run


def torch_step(name: str, dtype: str):
    cfg = model_config(name, dtype)
    _, rows, seq = SHAPES[name]
    torch.manual_seed(0)
    hf_cfg = hf_config(cfg)  # the converted model's config (vocab_size = padded_vocab_size at these shapes)
    hf_cfg._attn_implementation = "sdpa"
    hf = LlamaForCausalLM(hf_cfg)
    opt = torch.optim.AdamW(hf.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    ids = torch.from_numpy(np.random.default_rng(0).integers(6, VOCAB, (rows, seq)))

    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            loss = hf(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return run


def seconds(run, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def matmul_rates(dtype: str, n: int = 1024, reps: int = 3) -> dict[str, float]:
    """Each framework's matmul rate on this machine in TFLOP/s, on an n x n x n product."""
    a = jnp.ones((n, n), dtype)
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    t_jax = min(seconds(lambda: product(a).block_until_ready(), reps))
    b = torch.ones(n, n, dtype=getattr(torch, dtype))
    b @ b
    t_torch = min(seconds(lambda: b @ b, reps))
    return {"jax": 2 * n**3 / t_jax / 1e12, "torch": 2 * n**3 / t_torch / 1e12}


def measure(name: str, dtype: str, steps: int, rounds: int, warmup: int) -> dict:
    """tokens/s of both frameworks' steps at one shape and precision, rounds interleaved."""
    _, rows, seq = SHAPES[name]
    runs = {"jax": jax_step(name, dtype), "torch": torch_step(name, dtype)}
    for run in runs.values():
        seconds(run, warmup)  # compilation, allocator warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, run in runs.items():
            times[k] += seconds(run, steps)
    return {k: rows * seq / float(np.median(v)) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--steps", type=int, default=4, help="timed steps per framework per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--max-step-s", type=float, default=60.0,
                   help="skip a framework whose step, predicted from its matmul rate, would take longer")
    args = p.parse_args()
    rates = {dtype: matmul_rates(dtype) for dtype in args.dtypes}
    peaks = {dtype: max(r.values()) for dtype, r in rates.items()}
    print(f"matmul rates (TFLOP/s): {rates}", file=sys.stderr, flush=True)
    results = {}
    for name in args.shapes:
        for dtype in args.dtypes:
            fpt = flops_per_token(model_config(name, dtype), SHAPES[name][2])
            step_flops = fpt * SHAPES[name][1] * SHAPES[name][2]
            slow = [k for k, r in rates[dtype].items() if step_flops / (r * 1e12) > args.max_step_s]
            if slow:
                results[f"{name}/{dtype}"] = {"not_timed": {
                    k: f"a step would take about {step_flops / (rates[dtype][k] * 1e12):.0f} s at its matmul rate"
                    for k in slow}}
                print(f"{name}/{dtype}: {results[f'{name}/{dtype}']}", file=sys.stderr, flush=True)
                continue
            tps = measure(name, dtype, args.steps, args.rounds, args.warmup)
            results[f"{name}/{dtype}"] = {
                **{f"{k}_tokens_per_s": round(v, 1) for k, v in tps.items()},
                **{f"{k}_mfu": round(v * fpt / (peaks[dtype] * 1e12), 4) for k, v in tps.items()},
                "jax_over_torch": round(tps["jax"] / tps["torch"], 3)}
            print(f"{name}/{dtype}: {results[f'{name}/{dtype}']}", file=sys.stderr, flush=True)
    print(json.dumps({"shapes": {k: SHAPES[k] for k in args.shapes}, "matmul_tflops": {
        d: {k: round(v, 4) for k, v in r.items()} for d, r in rates.items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()

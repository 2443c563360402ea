"""`tinymath pretrain --dry-run`: compile the full train step for the config's mesh without the hardware.

The step is lowered from abstract shapes (nothing is allocated) and compiled for data x fsdp simulated CPU devices;
XLA's memory analysis of that SPMD program gives the per-device bytes. Its two pieces, one microbatch's gradient
and the optimizer update, are compiled on their own too; their costs bound the step time (`roofline`). The device
count of a process is fixed when JAX first starts, so the compilation always runs in a fresh subprocess with
XLA_FLAGS set. CPU buffer assignment approximates a TPU's (the TPU compiler fuses more), so treat the bytes as an
estimate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tinymath.errors import UserError
from tinymath.log import logger
from tinymath.model import Llama, flops_per_token, num_params
from tinymath.pretrain import roofline
from tinymath.pretrain.config import Config
from tinymath.pretrain.sharding import batch_sharding, make_mesh, tree_shardings
from tinymath.pretrain.train import apply_update, batch_shapes, loss_and_grad, make_optimizer, make_train_step

# The CPU compiler's default scheduler favours parallelism over memory (remat then saves almost nothing); a TPU's
# schedules for memory, so the dry run asks the CPU compiler for the memory-minimising order too.
MEMORY_SCHEDULER = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def dry_run(cfg: Config) -> dict:
    """Run `analyse` in a subprocess with `cfg.devices` CPU devices; print the result as JSON and return it."""
    if cfg.dry_run is None:
        raise UserError("dry_run: the config has no dry_run section: expected the target device's hbm_gib, hbm_gbps "
                        "and collective_gbps")
    flags = " ".join([os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={cfg.devices}",
                      MEMORY_SCHEDULER]).strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    logger.info("dry run: compiling the train step for %d simulated devices", cfg.devices)
    proc = subprocess.run([sys.executable, "-m", "tinymath.pretrain.dryrun"], input=cfg.model_dump_json(), env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"dry run failed to compile the train step: {tail[0]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    return result


def shard_bytes(tree) -> int:
    """Bytes one device holds of a tree of sharded shape structs."""
    return sum(int(np.prod(x.sharding.shard_shape(x.shape))) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def step_pieces(graphdef: nnx.GraphDef, tx, cfg: Config, mesh, params, opt_state) -> tuple[roofline.Piece, ...]:
    """Compile one microbatch's gradient and the optimizer update with the step's shardings; their costs."""
    param_sh = jax.tree.map(lambda x: x.sharding, params)
    opt_sh = jax.tree.map(lambda x: x.sharding, opt_state)
    rows = cfg.global_batch // cfg.microbatches
    micro = {k: jax.ShapeDtypeStruct((rows, cfg.seq_len + 1), jnp.int32, sharding=batch_sharding(mesh))
             for k in ("tokens", "segment_ids", "positions")}
    grad = jax.jit(partial(loss_and_grad, graphdef), out_shardings=(None, param_sh))
    update = jax.jit(partial(apply_update, tx), out_shardings=(param_sh, opt_sh, None))
    count = jax.ShapeDtypeStruct((), jnp.int32)
    return (roofline.Piece.of(grad.lower(params, micro, count).compile()),
            roofline.Piece.of(update.lower(params, opt_state, params).compile()))


def analyse(cfg: Config) -> dict:
    """Abstract init, lower and compile; memory per device, FLOPs per token, the step-time bound and run time."""
    model_cfg = cfg.model.nominal()
    mesh = make_mesh(cfg.mesh)
    tx, _ = make_optimizer(cfg.optimizer, cfg.steps)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Llama(model_cfg, nnx.Rngs(0), remat=cfg.remat)))
    params = nnx.to_pure_dict(state)
    params = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), params,
                          tree_shardings(params, mesh))
    opt_state = jax.eval_shape(tx.init, params)
    opt_sh = tree_shardings(opt_state, mesh)
    opt_state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), opt_state, opt_sh)
    step = make_train_step(graphdef, tx, cfg, mesh, jax.tree.map(lambda x: x.sharding, params), opt_sh)
    t0 = time.perf_counter()
    memory = step.lower(params, opt_state, batch_shapes(cfg, mesh)).compile().memory_analysis()
    compile_s = time.perf_counter() - t0
    param_b, opt_b = shard_bytes(params), shard_bytes(opt_state)
    total = (memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
             + memory.temp_size_in_bytes)
    fpt = flops_per_token(model_cfg, cfg.seq_len)
    micro, update = step_pieces(graphdef, tx, cfg, mesh, params, opt_state)
    hw = cfg.dry_run
    bound = roofline.step_bound(micro, update, cfg.microbatches, cfg.devices,
                                fpt * cfg.global_batch * cfg.seq_len / cfg.devices,
                                cfg.device_peak_tflops, hw.hbm_gbps, hw.collective_gbps)
    return {
        "mesh": {"data": cfg.mesh.data, "fsdp": cfg.mesh.fsdp}, "devices": cfg.devices,
        "n_params": num_params(model_cfg), "n_params_stored": num_params(model_cfg, padded=True),
        "tokens": cfg.tokens, "steps": cfg.steps, "global_batch": cfg.global_batch, "seq_len": cfg.seq_len,
        "microbatches": cfg.microbatches, "remat": cfg.remat, "flops_per_token": fpt,
        "per_device_bytes": {"params": param_b, "optimizer_state": opt_b,
                             "activations": memory.temp_size_in_bytes,  # XLA temporaries: activations, grads
                             "total": total},
        "hbm_bytes": int(hw.hbm_gib * 2**30), "fits": total <= hw.hbm_gib * 2**30,
        "device": {"peak_tflops": cfg.device_peak_tflops, "hbm_gbps": hw.hbm_gbps,
                   "collective_gbps": hw.collective_gbps},
        "roofline": {**bound, **roofline.run_time(bound, cfg.steps, cfg.devices, hw.usd_per_device_hour)},
        "compile_s": round(compile_s, 1),
    }


if __name__ == "__main__":
    print(json.dumps(analyse(Config.model_validate_json(sys.stdin.read()))))

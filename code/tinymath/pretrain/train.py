"""The jitted train step and the training loop.

One step: split the global batch into microbatches (gradient accumulation), sum the token losses of every
microbatch divided by the batch's token count (so the result equals the plain mean over the batch), clip, AdamW.
Nothing in a step is random, so resuming from a checkpoint (parameters, optimizer state, data-iterator state)
reproduces the uninterrupted run bit for bit.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from tinymath import runner
from tinymath.errors import UserError
from tinymath.io import MetricsLog
from tinymath.log import logger, progress
from tinymath.manifest import sha256_json
from tinymath.model import (
    Llama,
    ModelConfig,
    flops_per_token,
    num_params,
    save_safetensors,
)
from tinymath.packed import PackedSplit, loss_mask
from tinymath.pretrain import loader
from tinymath.pretrain.checkpoint import Checkpointer
from tinymath.pretrain.config import Config, OptimizerConfig
from tinymath.pretrain.sharding import (
    BATCH_AXES,
    batch_sharding,
    make_mesh,
    put_batch,
    tree_shardings,
)


def decay_mask(params: dict) -> dict:
    """Weight decay on matrices (projections, embeddings), not on norm scales."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(cfg: OptimizerConfig, steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Clip to `clip_norm`, then AdamW; update i (0-based, step i + 1) uses schedule(i)."""
    warmup_cosine = optax.warmup_cosine_decay_schedule(0.0, cfg.peak_lr, cfg.warmup_steps, steps, cfg.min_lr)

    def schedule(count: jax.Array) -> jax.Array:
        """Shifted by one: step 1 already learns (lr peak/warmup) and the last step ends exactly at min_lr."""
        return warmup_cosine(count + 1)

    adamw = optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay, mask=decay_mask)
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), adamw), schedule


def init_state(model_cfg: ModelConfig, cfg: Config, mesh: Mesh, tx: optax.GradientTransformation):
    """Parameters and optimizer state created directly in their FSDP shards (never whole on one device)."""
    def create() -> dict:
        return nnx.to_pure_dict(nnx.state(Llama(model_cfg, nnx.Rngs(cfg.seed), remat=cfg.remat)))

    abstract = nnx.eval_shape(lambda: Llama(model_cfg, nnx.Rngs(cfg.seed), remat=cfg.remat))
    graphdef, abstract_state = nnx.split(abstract)
    param_sh = tree_shardings(nnx.to_pure_dict(abstract_state), mesh)
    params = jax.jit(create, out_shardings=param_sh)()
    opt_sh = tree_shardings(jax.eval_shape(tx.init, params), mesh)
    opt_state = jax.jit(tx.init, out_shardings=opt_sh)(params)
    return graphdef, params, opt_state


def nll_sum(graphdef: nnx.GraphDef, params: dict, batch: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Summed next-token loss over same-document targets of [B, L+1] rows, and the number of such targets."""
    tokens, segments = batch["tokens"], batch["segment_ids"]
    logits = nnx.merge(graphdef, params)(tokens[:, :-1], batch["positions"][:, :-1], segments[:, :-1])  # [B, L, Vp]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])  # [B, L] float32
    mask = loss_mask(segments)  # [B, L]
    return jnp.sum(jnp.where(mask, nll, 0.0)), jnp.sum(mask)


def loss_and_grad(graphdef: nnx.GraphDef, params: dict, batch: dict, count: jax.Array) -> tuple[jax.Array, dict]:
    """One microbatch's share of the step: its summed token loss over the batch's `count`, and its gradient."""
    return jax.value_and_grad(lambda p: nll_sum(graphdef, p, batch)[0] / count)(params)


def apply_update(tx: optax.GradientTransformation, grads: dict, opt_state: Any, params: dict):
    """Clip and AdamW on the accumulated gradient -> (params, opt_state, grad_norm before clipping)."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, optax.global_norm(grads)


def microbatches(batch: dict[str, jax.Array], m: int, mesh: Mesh) -> dict[str, jax.Array]:
    """[B, L+1] -> [M, B/M, L+1] taking rows j, j+M, j+2M... for microbatch j, so each device keeps its own rows."""
    split = {k: v.reshape(-1, m, v.shape[1]).swapaxes(0, 1) for k, v in batch.items()}  # [B/M, M, L+1] -> [M, B/M, L+1]
    return jax.lax.with_sharding_constraint(split, NamedSharding(mesh, P(None, BATCH_AXES)))


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, cfg: Config, mesh: Mesh,
                    param_sh: Any, opt_sh: Any):
    """(params, opt_state, batch) -> (params, opt_state, {"loss", "grad_norm"}), jitted with FSDP shardings."""
    def step(params: dict, opt_state: Any, batch: dict) -> tuple[dict, Any, dict]:
        count = jnp.maximum(jnp.sum(loss_mask(batch["segment_ids"])), 1)
        if cfg.microbatches == 1:
            loss, grads = loss_and_grad(graphdef, params, batch, count)
        else:
            def accumulate(acc: dict, micro: dict) -> tuple[dict, jax.Array]:
                loss, g = loss_and_grad(graphdef, params, micro, count)
                return jax.tree.map(jnp.add, acc, g), loss

            zeros = jax.tree.map(jnp.zeros_like, params)
            grads, losses = jax.lax.scan(accumulate, zeros, microbatches(batch, cfg.microbatches, mesh))
            loss = jnp.sum(losses)
        params, opt_state, grad_norm = apply_update(tx, grads, opt_state, params)
        return params, opt_state, {"loss": loss, "grad_norm": grad_norm}

    return jax.jit(step, in_shardings=(param_sh, opt_sh, batch_sharding(mesh)),
                   out_shardings=(param_sh, opt_sh, None), donate_argnums=(0, 1))


def make_eval_step(graphdef: nnx.GraphDef, mesh: Mesh, param_sh: Any):
    return jax.jit(lambda params, batch: nll_sum(graphdef, params, batch),
                   in_shardings=(param_sh, batch_sharding(mesh)))


def batch_shapes(cfg: Config, mesh: Mesh) -> dict[str, jax.ShapeDtypeStruct]:
    shape = (cfg.global_batch, cfg.seq_len + 1)
    return {k: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=batch_sharding(mesh))
            for k in ("tokens", "segment_ids", "positions")}


@contextmanager
def stop_signals() -> Iterator[list[int]]:
    """Record SIGTERM/SIGINT instead of dying, so the loop can checkpoint the step it finished and then exit."""
    received: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class Metrics(MetricsLog):
    """metrics.jsonl (`tinymath.io.METRIC_KEYS["pretrain"]`); on resume, lines past the restored step are dropped."""

    def __init__(self, path: Path, start: int):
        super().__init__(path)
        self.keep_until(start)

    def write(self, record: dict[str, Any]) -> None:
        if jax.process_index() == 0:
            self.append(record)


def evaluate(eval_step, params: dict, batches: list[dict[str, np.ndarray]], mesh: Mesh) -> float:
    total, count = 0.0, 0
    for batch in batches:
        s, n = eval_step(params, put_batch(batch, mesh))
        total, count = total + float(s), count + int(n)
    return total / max(count, 1)


@dataclass(frozen=True)
class Setup:
    """What the loop needs besides the training state."""

    cfg: Config
    model_cfg: ModelConfig
    mesh: Mesh
    graphdef: nnx.GraphDef
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    data: grain.DatasetIterator
    val: list[dict[str, np.ndarray]]
    ckpt: Checkpointer
    out: Path


def train(cfg: Config, run) -> None:
    """Pretrain from the profile's packed data, resuming from the newest good checkpoint in run.dir."""
    if cfg.mesh.distributed:
        jax.distributed.initialize()
    model_cfg = loader.model_config(cfg, run.root)
    mesh = make_mesh(cfg.mesh)
    tx, schedule = make_optimizer(cfg.optimizer, cfg.steps)
    graphdef, params, opt_state = init_state(model_cfg, cfg, mesh, tx)
    logger.info("model %s parameters (%s stored); %s x %s x %s = %s tokens", f"{num_params(model_cfg):,}",
                f"{num_params(model_cfg, padded=True):,}", f"{cfg.steps:,}", f"{cfg.global_batch:,}",
                f"{cfg.seq_len:,}", f"{cfg.tokens:,}")
    packed = loader.packed_dir(run.root)
    rows = loader.process_rows(cfg.global_batch)
    data = loader.train_iterator(loader.train_batches(PackedSplit(packed, "train"), cfg.seed, cfg.global_batch, rows))
    val = loader.validation_batches(PackedSplit(packed, "validation"), cfg.eval_rows, cfg.global_batch)
    fingerprint = sha256_json(runner.fingerprint(cfg, run.root, ["prepare", "tokenizer"], []))
    ckpt = Checkpointer(run.dir / "checkpoints", cfg.checkpoint, model_cfg, fingerprint)
    setup = Setup(cfg, model_cfg, mesh, graphdef, tx, schedule, data, val, ckpt, run.dir)
    try:
        start, params, opt_state = resume(ckpt, params, opt_state, data)
        params = loop(setup, params, opt_state, start)
    finally:
        ckpt.close()
    if jax.process_index() == 0:
        host = multihost_utils.process_allgather(params, tiled=True)
        save_safetensors(nnx.merge(graphdef, host), model_cfg, run.dir / "final")


def resume(ckpt: Checkpointer, params: dict, opt_state: Any, data: grain.DatasetIterator) -> tuple[int, dict, Any]:
    restored = ckpt.restore(params, opt_state)
    if restored is None:
        return 0, params, opt_state
    step, params, opt_state, data_state = restored
    data.set_state(data_state)
    logger.info("resumed from checkpoint step %d", step)
    return step, params, opt_state


def loop(s: Setup, params: dict, opt_state: Any, start: int) -> dict:
    """Steps start+1..steps: train, log, validate every eval_every, checkpoint; on a signal checkpoint and exit."""
    cfg = s.cfg
    param_sh, opt_sh = jax.tree.map(lambda x: x.sharding, (params, opt_state))
    t0 = time.perf_counter()
    train_step = make_train_step(s.graphdef, s.tx, cfg, s.mesh, param_sh, opt_sh).lower(
        params, opt_state, batch_shapes(cfg, s.mesh)).compile()
    eval_step = make_eval_step(s.graphdef, s.mesh, param_sh)
    logger.info("train step compiled in %.1f s", time.perf_counter() - t0)
    metrics = Metrics(s.out / "metrics.jsonl", start)
    peak = cfg.device_peak_tflops * 1e12 * cfg.devices
    step_tokens, fpt = cfg.global_batch * cfg.seq_len, flops_per_token(s.model_cfg, cfg.seq_len)
    with stop_signals() as stopped:
        for step in progress(range(start + 1, cfg.steps + 1), total=cfg.steps - start, desc="pretrain"):
            t0 = time.perf_counter()
            params, opt_state, stats = train_step(params, opt_state, put_batch(next(s.data), s.mesh))
            loss, grad_norm = float(stats["loss"]), float(stats["grad_norm"])
            if not math.isfinite(loss):
                raise UserError(f"pretraining loss is {loss} at step {step}: lower optimizer.peak_lr or check data")
            tps = step_tokens / (time.perf_counter() - t0)
            metrics.write({"step": step, "tokens": step * step_tokens, "loss": loss, "lr": float(s.schedule(step - 1)),
                           "grad_norm": grad_norm, "tokens_per_s": tps, "mfu": tps * fpt / peak})
            if step % cfg.eval_every == 0 or step == cfg.steps:
                val_loss = evaluate(eval_step, params, s.val, s.mesh)
                metrics.write({"step": step, "tokens": step * step_tokens, "val_loss": val_loss})
                logger.info("step %d: loss %.4f, val_loss %.4f, %.0f tokens/s", step, loss, val_loss, tps)
            s.ckpt.save(step, params, opt_state, s.data.get_state(), force=step == cfg.steps or bool(stopped))
            if stopped:
                s.ckpt.close()
                logger.warning("signal %d: checkpoint of step %d saved; rerun to resume", stopped[0], step)
                raise SystemExit(128 + stopped[0])
    return params

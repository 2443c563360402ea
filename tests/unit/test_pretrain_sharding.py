"""FSDP sharding and the dry run on simulated CPU devices.

A process's JAX device count is fixed when JAX starts, and the test session has already started it with one device,
so the multi-device parts run in subprocesses with XLA_FLAGS set. They share a compilation cache: the dry run
compiles the same 8-device train step as the sharding test, so it loads it instead of compiling it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinymath.errors import UserError
from tinymath.model import num_params
from tinymath.pretrain import Config, dry_run

TINY = dict(
    model={"preset": "tiny", "vocab_size": 128, "overrides": {
        "hidden_size": 32, "intermediate_size": 64, "num_heads": 4, "num_kv_heads": 2, "head_dim": 8,
        "compute_dtype": "float32"}},
    optimizer={"peak_lr": 1e-2, "warmup_steps": 1}, steps=4, global_batch=16, seq_len=32, tokens=4 * 16 * 32,
    checkpoint={"every": 4}, eval_every=4, device_peak_tflops=1.0,
    dry_run={"hbm_gib": 1, "hbm_gbps": 100, "collective_gbps": 10},
)

STEPS_ON_MESHES = textwrap.dedent("""
    import json, sys
    import jax
    import numpy as np
    from tinymath.pretrain.config import Config
    from tinymath.pretrain.sharding import make_mesh, put_batch
    from tinymath.pretrain.train import init_state, make_optimizer, make_train_step

    def batch(rng):
        tokens = rng.integers(6, 128, (16, 33), dtype=np.int32)
        segments = np.cumsum(rng.random((16, 33)) < 0.1, axis=1).astype(np.int32) + 1
        segments[:, 28:] = 0  # padding tail
        positions = np.zeros_like(segments)
        for t in range(1, 33):
            positions[:, t] = np.where(segments[:, t] == segments[:, t - 1], positions[:, t - 1] + 1, 0)
        return {"tokens": tokens, "segment_ids": segments, "positions": positions}

    def run(cfg, devices):
        mesh = make_mesh(cfg.mesh, devices)
        tx, _ = make_optimizer(cfg.optimizer, cfg.steps)
        graphdef, params, opt_state = init_state(cfg.model.build(128), cfg, mesh, tx)
        shardings = jax.tree.map(lambda x: x.sharding, (params, opt_state))
        step = make_train_step(graphdef, tx, cfg, mesh, *shardings)
        rows, losses = batch(np.random.default_rng(0)), []
        for _ in range(3):  # the same rows every step, so the loss must fall
            params, opt_state, stats = step(params, opt_state, put_batch(rows, mesh))
            losses.append(float(stats["loss"]))
        kernel = params["layers"][0]["mlp"]["up_proj"]["kernel"]
        moment = opt_state[1][0].mu["layers"][0]["mlp"]["up_proj"]["kernel"]
        return {"losses": losses, "spec": str(kernel.sharding.spec), "moment_spec": str(moment.sharding.spec),
                "shard": list(kernel.addressable_shards[0].data.shape)}

    base = json.loads(sys.argv[1])
    one = Config.model_validate({**base, "mesh": {"data": 1, "fsdp": 1}})
    eight = Config.model_validate({**base, "mesh": {"data": 2, "fsdp": 4}, "microbatches": 2, "remat": True})
    print(json.dumps({"one": run(one, jax.devices()[:1]), "eight": run(eight, jax.devices())}))
""")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture
def cache_env(shared_cache, monkeypatch) -> dict[str, str]:
    """Environment of the subprocesses: the shared compilation cache, caching every program."""
    settings = {"JAX_COMPILATION_CACHE_DIR": str(shared_cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def test_train_step_one_vs_eight_devices_same_losses(cache_env):
    """1 device vs data 2 x fsdp 4 with 2 accumulated microbatches and remat: the same losses."""
    env = {**cache_env, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", STEPS_ON_MESHES, json.dumps(TINY)], env=env, capture_output=True,
                          text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    one, eight = result["one"], result["eight"]
    assert max(abs(a - b) for a, b in zip(one["losses"], eight["losses"])) < 1e-5
    assert one["losses"][2] < one["losses"][0]
    # up_proj [32, 64]: its 64 columns split over the 4 fsdp devices, and so are its AdamW moments.
    assert eight["spec"] == eight["moment_spec"] == "P(None, 'fsdp')"
    assert eight["shard"] == [32, 16]


def test_dry_run_reports_memory_and_time(cache_env, capsys):
    cfg = Config.model_validate({**TINY, "mesh": {"data": 2, "fsdp": 4}, "remat": True, "microbatches": 2})
    result = dry_run(cfg)
    assert json.loads(capsys.readouterr().out) == result
    assert result["devices"] == 8
    assert result["n_params"] == num_params(cfg.model.nominal())
    assert result["tokens"] == 4 * 16 * 32
    per_device = result["per_device_bytes"]
    full = 4 * result["n_params_stored"]
    assert full / 4 <= per_device["params"] < full / 2  # sharded over fsdp = 4 (norm scales replicated)
    assert per_device["optimizer_state"] >= 2 * per_device["params"]  # two AdamW moments
    assert per_device["activations"] > 0 and result["fits"]
    roof = result["roofline"]
    micro = roof["pieces"]["microbatch"]
    # every parameter of this model is sharded, so each microbatch gathers all of them (float32), and reduces grads
    assert micro["collective_bytes"]["all-gather"] >= full
    assert micro["collective_bytes"]["all-reduce"] > 0
    step = roof["per_device_step"]
    assert step["flops"] >= step["model_flops"] > 0  # remat recomputes, never saves, arithmetic
    assert roof["bound_s"]["serial"] >= roof["bound_s"]["overlapped"] >= roof["bound_s"]["fused"] > 0
    assert roof["days"]["serial"] == pytest.approx(cfg.steps * roof["bound_s"]["serial"] / 86400)


def test_dry_run_without_target_device_is_a_clear_error():
    cfg = Config.model_validate({k: v for k, v in TINY.items() if k != "dry_run"})
    with pytest.raises(UserError, match="dry_run: the config has no dry_run section"):
        dry_run(cfg)

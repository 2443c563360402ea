"""Pretraining: token arithmetic of the configs, data order, the stage end to end, checkpoints and bitwise resume.

The stage runs on a tiny packed corpus and tokenizer written here as upstream run directories with manifests.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml
from flax import nnx
from jax.experimental.compilation_cache import compilation_cache as cc
from tokenizers import Tokenizer

from tinymath import specials
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.manifest import hash_tree, sha256_json, write_json_atomic
from tinymath.model import Llama, ModelConfig, flat_params, load_safetensors, num_params, param_shapes
from tinymath.packed import PackedSplit, write_index, write_shard
from tinymath.paths import CONFIGS
from tinymath.pretrain import Config, print_batch, train as train_module
from tinymath.pretrain.checkpoint import Checkpointer
from tinymath.pretrain.loader import (
    describe_batch,
    model_config,
    packed_dir,
    tokenizer_file,
    train_batches,
    train_iterator,
)
from tinymath.pretrain.sharding import make_mesh
from tinymath.pretrain.train import init_state, make_optimizer, nll_sum
from tinymath.runner import fingerprint, run_stage

PROFILES = ("smoke", "cpu", "paper")
SEQ_LEN = 32
STEPS = 8  # checkpoints every 4: the resume test kills after step 4
TINY = f"""\
seed: 0
model: {{preset: tiny, overrides: {{hidden_size: 32, intermediate_size: 64, num_heads: 2, num_kv_heads: 1}}}}
optimizer: {{peak_lr: 1.0e-2, min_lr: 1.0e-3, warmup_steps: 2}}
seq_len: {SEQ_LEN}
global_batch: 4
steps: {STEPS}
tokens: {STEPS * 4 * SEQ_LEN}
checkpoint: {{every: 4, keep: 3}}
eval_every: 4
eval_rows: 6
device_peak_tflops: 1.0
"""


def pack(docs: list[list[int]], width: int) -> dict[str, np.ndarray]:
    """Greedy packing into rows of `width` tokens: segment ids 1, 2, ... per row, positions restart per document."""
    rows, row = [], []
    for doc in docs:
        doc = (doc + [specials.ENDOFTEXT_ID])[:width]
        if sum(len(d) for d in row) + len(doc) > width:
            rows.append(row)
            row = []
        row.append(doc)
    rows.append(row)
    out = {k: np.zeros((len(rows), width), np.int32) for k in ("tokens", "segment_ids", "positions")}
    out["tokens"][:] = specials.PAD_ID
    for r, row in enumerate(rows):
        t = 0
        for s, doc in enumerate(row, start=1):
            out["tokens"][r, t:t + len(doc)] = doc
            out["segment_ids"][r, t:t + len(doc)] = s
            out["positions"][r, t:t + len(doc)] = np.arange(len(doc))
            t += len(doc)
    return out


def make_upstream(root: Path, tokenizer, profile: str = "t", vocab_size: int | None = None) -> Path:
    """runs/<profile>/{tokenizer,prepare} as the upstream stages write them, each with a manifest."""
    runs = root / profile
    tokenizer.save_pretrained(runs / "tokenizer" / "tokenizer")
    packed = runs / "prepare" / "packed"
    packed.mkdir(parents=True)
    rng = np.random.default_rng(0)
    texts = [f"Tom has {a} apples and buys {b} more. Now he has {a + b} apples."
             for a, b in rng.integers(0, 100, (120, 2))]
    docs = [tokenizer.encode(t) for t in texts]
    splits = {}
    for split, part in (("train", docs[:100]), ("validation", docs[100:])):
        arrays = pack(part, SEQ_LEN + 1)
        write_shard(packed, f"{split}-00000", arrays)
        splits[split] = [{"name": f"{split}-00000", "rows": len(arrays["tokens"])}]
    write_index(packed, SEQ_LEN, vocab_size or len(tokenizer), splits)
    for stage in ("tokenizer", "prepare"):
        write_json_atomic(runs / stage / "manifest.json", {"outputs": hash_tree(runs / stage)})
    return root


def write_config(directory: Path, text: str = TINY, profile: str = "t") -> Path:
    path = directory / f"{profile}.yaml"
    path.write_text(text)
    return path


def run_fingerprint(run_dir: Path) -> str:
    """The fingerprint the stage stamps into its checkpoints: its config and upstream outputs."""
    cfg = load_config(run_dir / "config.yaml", Config)
    return sha256_json(fingerprint(cfg, run_dir.parent, ["prepare", "tokenizer"], []))


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timing(records: list[dict]) -> list[dict]:
    """Metrics minus the wall-clock ones, which differ between any two runs."""
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "mfu")} for r in records]


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory) -> Path:
    """Runs of one config here share compiled programs (as a rerun with a warm cache would): the killed, resumed and
    interrupted runs then cost seconds, not another compilation each. Subprocesses get it through the environment."""
    path = tmp_path_factory.mktemp("jax_cache")
    settings = {"jax_compilation_cache_dir": str(path), "jax_persistent_cache_min_compile_time_secs": 0,
                "jax_persistent_cache_min_entry_size_bytes": 0}
    old = {k: getattr(jax.config, k) for k in settings}
    cc.reset_cache()
    for key, value in settings.items():
        jax.config.update(key, value)
    yield path
    for key, value in old.items():
        jax.config.update(key, value)
    cc.reset_cache()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_tokenizer) -> Path:
    """One uninterrupted run of the tiny config: runs/t/pretrain."""
    root = make_upstream(tmp_path_factory.mktemp("runs"), tiny_tokenizer)
    return run_stage("pretrain", write_config(root), runs=root)


@pytest.mark.parametrize("profile", PROFILES)
def test_config_token_arithmetic(profile):
    path = CONFIGS / "pretrain" / f"{profile}.yaml"
    cfg = load_config(path, Config)
    assert cfg.tokens == cfg.steps * cfg.global_batch * cfg.seq_len
    # The comment beside `tokens:` spells the same product, so it cannot go stale either.
    line = next(line for line in path.read_text().splitlines() if line.startswith("tokens:"))
    assert f"= {cfg.steps:,} x {cfg.global_batch:,} x {cfg.seq_len:,}" in line
    assert cfg.seq_len == yaml.safe_load((CONFIGS / "prepare" / f"{profile}.yaml").read_text())["seq_len"]
    if profile == "paper":
        assert abs(cfg.tokens - 300e9) < 0.001 * 300e9


def test_config_rejects_batch_change_without_steps():
    with pytest.raises(UserError, match="tokens.*steps x global_batch x seq_len = 74,999,922,688"):
        load_config(CONFIGS / "pretrain" / "paper.yaml", Config, ["global_batch=128"])


def test_model_config_vocab_must_match_tokenizer(tmp_path, tiny_tokenizer):
    root = make_upstream(tmp_path, tiny_tokenizer, vocab_size=len(tiny_tokenizer) + 1)
    cfg = load_config(write_config(tmp_path), Config)
    with pytest.raises(UserError, match="vocab_size"):
        model_config(cfg, root / "t")
    good = make_upstream(tmp_path / "good", tiny_tokenizer)
    stated = load_config(write_config(tmp_path), Config, ["model.vocab_size=100"])
    with pytest.raises(UserError, match="vocab_size 100"):
        model_config(stated, good / "t")
    assert model_config(cfg, good / "t").vocab_size == len(tiny_tokenizer)


def test_print_batch_matches_loader(tmp_path, tiny_tokenizer, capsys):
    root = make_upstream(tmp_path, tiny_tokenizer) / "t"
    cfg = load_config(write_config(tmp_path), Config)
    split = PackedSplit(packed_dir(root), "train")
    it = train_iterator(train_batches(split, cfg.seed, cfg.global_batch))
    seen = [next(it) for _ in range(3)]
    lines = print_batch(cfg, root, 3)
    assert lines == describe_batch(seen[2], Tokenizer.from_file(str(tokenizer_file(root))))
    assert "Tom has" in capsys.readouterr().out
    other = next(iter(train_batches(split, cfg.seed + 1, cfg.global_batch)))
    assert not np.array_equal(other["tokens"], seen[0]["tokens"])  # the seed decides the order


def test_pretrain_metrics_and_export(trained):
    records = read_metrics(trained)
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    assert all(set(r) == {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"} for r in steps)
    assert [(r["step"], set(r)) for r in evals] == [(s, {"step", "tokens", "val_loss"}) for s in (4, 8)]
    assert steps[-1]["tokens"] == STEPS * 4 * SEQ_LEN
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.5
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    cfg, model = load_safetensors(trained / "final")
    assert sum(v.size for v in flat_params(model).values()) == num_params(cfg, padded=True)


def test_every_checkpoint_has_every_layer(trained):
    cfg, _ = load_safetensors(trained / "final")
    stage_cfg = load_config(trained / "config.yaml", Config)
    ckpt = Checkpointer(trained / "checkpoints", stage_cfg.checkpoint, cfg, fingerprint="")
    steps = ckpt.manager.all_steps()
    assert sorted(steps) == [4, 8]
    for step in steps:
        names = ckpt.param_names(step)
        assert names == param_shapes(cfg)
        assert {int(k.split(".")[1]) for k in names if k.startswith("layers.")} == set(range(cfg.num_layers))
        assert sum(int(np.prod(s)) for s in names.values()) == num_params(cfg, padded=True)
    ckpt.close()


def test_checkpoint_corrupt_latest_falls_back(trained, tmp_path, caplog):
    shutil.copytree(trained / "checkpoints", tmp_path / "checkpoints")
    for path in (tmp_path / "checkpoints" / "8" / "params").rglob("*"):
        if path.is_file() and path.stat().st_size > 64:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a half-written file
    model_cfg, _ = load_safetensors(trained / "final")
    cfg = load_config(trained / "config.yaml", Config)
    tx, _ = make_optimizer(cfg.optimizer, cfg.steps)
    _, params, opt_state = init_state(model_cfg, cfg, make_mesh(cfg.mesh), tx)
    ckpt = Checkpointer(tmp_path / "checkpoints", cfg.checkpoint, model_cfg, fingerprint=run_fingerprint(trained))
    with caplog.at_level(logging.WARNING, logger="tinymath"):
        step, *_ = ckpt.restore(params, opt_state)
    assert step == 4
    assert "checkpoint step 8 unusable" in caplog.text
    assert ckpt.manager.all_steps() == [4] and (tmp_path / "checkpoints-quarantine" / "8").is_dir()
    # Another config (or other inputs): the checkpoints are deleted, not resumed.
    other = Checkpointer(tmp_path / "checkpoints", cfg.checkpoint, model_cfg, fingerprint="other")
    assert other.restore(params, opt_state) is None
    assert other.manager.all_steps() == []
    ckpt.close()
    other.close()


def test_pretrain_sigterm_checkpoints_then_exits(tmp_path, tiny_tokenizer, monkeypatch):
    root = make_upstream(tmp_path, tiny_tokenizer)
    original = train_module.Metrics.write

    def write(self, record):
        original(self, record)
        if record.get("step") == 3 and "loss" in record:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(train_module.Metrics, "write", write)
    with pytest.raises(SystemExit) as exit_:
        run_stage("pretrain", write_config(tmp_path), runs=root)
    assert exit_.value.code == 128 + signal.SIGTERM
    saved = (root / "t" / ".pretrain.work" / "checkpoints").iterdir()
    assert sorted(int(p.name) for p in saved if p.name.isdigit()) == [3]
    assert not (root / "t" / "pretrain").exists()


KILLED_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tinymath.pretrain import checkpoint
    from tinymath.runner import fingerprint, run_stage

    original = checkpoint.Checkpointer.save

    def save(self, step, *args, **kwargs):
        saved = original(self, step, *args, **kwargs)
        if step == 4:
            self.manager.wait_until_finished()
            print("SAVED", flush=True)
            time.sleep(600)  # killed here, mid-run, by the test
        return saved

    checkpoint.Checkpointer.save = save
    run_stage("pretrain", Path(sys.argv[1]), runs=Path(sys.argv[2]))
""")


def test_pretrain_resume_after_kill_is_bitwise(trained, tmp_path, tiny_tokenizer, compilation_cache):
    root = make_upstream(tmp_path, tiny_tokenizer)
    config = write_config(tmp_path)
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(compilation_cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(config), str(root)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "SAVED"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    resumed = run_stage("pretrain", config, runs=root)
    assert without_timing(read_metrics(resumed)) == without_timing(read_metrics(trained))
    a = flat_params(load_safetensors(trained / "final")[1])
    b = flat_params(load_safetensors(resumed / "final")[1])
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_pretrain_recovers_from_a_corrupt_latest_checkpoint(trained, tmp_path, tiny_tokenizer, monkeypatch, caplog):
    """Corrupt the only checkpoint of an interrupted run: the rerun quarantines it, trains past that step again and
    ends bitwise equal to an uninterrupted run; a second rerun is up to date."""
    root = make_upstream(tmp_path, tiny_tokenizer)
    original = train_module.Metrics.write

    def stop_at_4(self, record):
        original(self, record)
        if record.get("step") == 4 and "loss" in record:
            os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as mp:
        mp.setattr(train_module.Metrics, "write", stop_at_4)
        with pytest.raises(SystemExit):
            run_stage("pretrain", write_config(tmp_path), runs=root)
    work = root / "t" / ".pretrain.work"
    for path in (work / "checkpoints" / "4" / "params").rglob("*"):
        if path.is_file() and path.stat().st_size > 64:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="tinymath"):
        resumed = run_stage("pretrain", write_config(tmp_path), runs=root)
    assert "checkpoint step 4 unusable" in caplog.text and (resumed / "checkpoints-quarantine" / "4").is_dir()
    outputs = json.loads((resumed / "manifest.json").read_text())["outputs"]
    assert outputs and not any(rel.startswith("checkpoints-quarantine/") for rel in outputs)
    assert without_timing(read_metrics(resumed)) == without_timing(read_metrics(trained))
    a, b = flat_params(load_safetensors(trained / "final")[1]), flat_params(load_safetensors(resumed / "final")[1])
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert run_stage("pretrain", write_config(tmp_path), runs=root) == resumed


def test_nll_sum_ignores_padding_and_cross_document_targets():
    """Only same-document targets count (padding and document joins are never trained on)."""
    graphdef, state = nnx.split(Llama(ModelConfig.tiny(vocab_size=64, compute_dtype="float32"), nnx.Rngs(0)))
    params = nnx.to_pure_dict(state)
    segments = np.array([[1, 1, 1, 2, 2, 0, 0, 0]], np.int32)
    positions = np.array([[0, 1, 2, 0, 1, 0, 0, 0]], np.int32)
    tokens = np.array([[7, 8, 9, 10, 11, 1, 1, 1]], np.int32)
    total, count = nll_sum(graphdef, params, {"tokens": tokens, "segment_ids": segments, "positions": positions})
    assert int(count) == 3  # 7->8, 8->9 and 10->11; not 9->10 (next document) nor 11->pad
    noisy = tokens.copy()
    noisy[0, 5:] = [60, 61, 62]
    total2, _ = nll_sum(graphdef, params, {"tokens": noisy, "segment_ids": segments, "positions": positions})
    assert float(total2) == float(total)

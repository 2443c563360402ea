"""One command for a lent GPU: the paper-sized model's SFT step (TRL), JAX pretraining step and lm-eval GSM8K
generation, measured on the device and written to results/device/<device>.json.

    python benchmarks/device_check.py --data-dir shared/data          # on a GPU: the 1.12B paper model
    python benchmarks/device_check.py --tiny --out /tmp/check.json    # on CPU with a small model (how it is tested)

The model is randomly initialised (speed does not depend on the weights), with a BPE tokenizer trained on the GSM8K
train questions. SFT: TRL's SFTTrainer in bf16 with padding-free packing into rows of the paper's max_length and
activation checkpointing, on pre-tokenised conversations of random length. JAX: the pretraining train step
(`tinymath.pretrain.train.make_train_step`) on one device, microbatched and rematerialised as the paper config.
Generation: lm-eval's gsm8k task, 8-shot greedy, through the project's harness. MFU counts model FLOPs (6N +
attention, `tinymath.model.flops_per_token`) against the device's peak: the datasheet's dense bf16 figure on a
GPU; on CPU, where everything runs in float32, a measured large float32 matmul rate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tinymath import manifest, paths
from tinymath.io import read_jsonl
from tinymath.model import PRESETS, ModelConfig, flops_per_token, num_params

# Dense bf16 tensor-core peaks, TFLOP/s (NVIDIA A100 and H100/H200 datasheets, SXM parts).
GPU_PEAK_TFLOPS = {"A100": 312.0, "H100": 989.0, "H200": 989.0}


GPU = torch.cuda.is_available()
PRECISION = "bfloat16" if GPU else "float32"


def device_name() -> str:
    return torch.cuda.get_device_name(0) if GPU else manifest.host_info()["cpu"]


def peak_tflops() -> tuple[float, str]:
    """The device's peak in PRECISION and where it comes from."""
    for key, value in GPU_PEAK_TFLOPS.items():
        if GPU and key in device_name():
            return value, f"{key} datasheet, dense bf16"
    n = 2048
    a = torch.randn(n, n, dtype=getattr(torch, PRECISION), device="cuda" if GPU else "cpu")
    a @ a
    t0 = time.perf_counter()
    for _ in range(3):
        a @ a
    if GPU:
        torch.cuda.synchronize()
    return 3 * 2 * n**3 / (time.perf_counter() - t0) / 1e12, f"measured {n}x{n} {PRECISION} matmul"


def model_config(tiny: bool, vocab: int) -> ModelConfig:
    return PRESETS["tiny" if tiny else "paper"](vocab_size=vocab, max_seq_len=256 if tiny else 4096,
                                                 compute_dtype=PRECISION)


def write_model(cfg: ModelConfig, questions: list[str], out: Path) -> Path:
    """A random-init LlamaForCausalLM of `cfg` with a tokenizer trained on `questions`, saved as safetensors."""
    from transformers import LlamaForCausalLM

    from tinymath.convert import hf_config
    from tinymath.tokenizer import train_tokenizer

    tok = train_tokenizer(questions, vocab_size=cfg.vocab_size, min_frequency=1)
    tok.model_max_length = cfg.max_seq_len
    torch.manual_seed(0)
    hf = LlamaForCausalLM(hf_config(cfg))  # the shape and special ids `tinymath convert` exports
    hf.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def sft_speed(model_dir: Path, cfg: ModelConfig, steps: int, peak: float, tiny: bool) -> dict:
    """TRL SFT steps in PRECISION, padding-free packing to max_seq_len, one packed row per step."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []

        def on_step_end(self, args, state, control, **_):
            self.marks.append(time.perf_counter())

    rng = np.random.default_rng(0)
    lengths = rng.integers(cfg.max_seq_len // 16, cfg.max_seq_len // 4, size=(steps + 2) * 16)
    rows = [{"input_ids": rng.integers(10, cfg.vocab_size, n).tolist()} for n in lengths]
    args = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=1,
                     max_length=cfg.max_seq_len, packing=True, bf16=GPU, gradient_checkpointing=not tiny,
                     learning_rate=2e-5, lr_scheduler_type="cosine", logging_steps=steps, save_strategy="no",
                     report_to="none", use_cpu=not GPU, seed=0, dataloader_num_workers=0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    clock = Clock()
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=AutoTokenizer.from_pretrained(model_dir), callbacks=[clock])
    if GPU:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed = np.diff(clock.marks[1:])  # the first step compiles and warms the allocator
    tps = cfg.max_seq_len / float(np.median(timed))  # a best-fit packed row: max_seq_len tokens, short of a few
    out = {"steps": steps, "seq_len": cfg.max_seq_len, "tokens_per_s": round(tps, 1),
           "mfu": round(tps * flops_per_token(cfg, cfg.max_seq_len) / (peak * 1e12), 4)}
    if GPU:
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def jax_speed(cfg: ModelConfig, steps: int, peak: float, tiny: bool) -> dict:
    """The pretraining step on one device, 4 microbatches of rows, remat on the paper model."""
    import jax

    from tinymath.pretrain.config import Config
    from tinymath.pretrain.sharding import make_mesh, put_batch
    from tinymath.pretrain.train import init_state, make_optimizer, make_train_step

    rows, micro = (8, 2) if tiny else (8, 4)
    pcfg = Config.model_validate({
        "model": {"preset": "tiny" if tiny else "paper", "vocab_size": cfg.vocab_size,
                  "overrides": {"max_seq_len": cfg.max_seq_len, "compute_dtype": PRECISION}},
        "optimizer": {"warmup_steps": 1}, "steps": 1000, "global_batch": rows, "seq_len": cfg.max_seq_len,
        "tokens": 1000 * rows * cfg.max_seq_len, "microbatches": micro, "remat": not tiny,
        "checkpoint": {"every": 1000}, "eval_every": 1000, "device_peak_tflops": peak})
    mesh = make_mesh(pcfg.mesh)
    tx, _ = make_optimizer(pcfg.optimizer, pcfg.steps)
    graphdef, params, opt_state = init_state(cfg, pcfg, mesh, tx)
    step = make_train_step(graphdef, tx, pcfg, mesh, jax.tree.map(lambda x: x.sharding, params),
                           jax.tree.map(lambda x: x.sharding, opt_state))
    rng = np.random.default_rng(0)
    shape = (rows, cfg.max_seq_len + 1)
    batch = put_batch({"tokens": rng.integers(10, cfg.vocab_size, shape).astype(np.int32),
                       "segment_ids": np.ones(shape, np.int32),
                       "positions": np.tile(np.arange(shape[1], dtype=np.int32), (rows, 1))}, mesh)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        params, opt_state, metrics = step(params, opt_state, batch)
        jax.block_until_ready(metrics["loss"])
        if i:  # step 0 compiles
            times.append(time.perf_counter() - t0)
    tps = rows * cfg.max_seq_len / float(np.median(times))
    return {"platform": jax.devices()[0].platform, "rows": rows, "microbatches": micro, "remat": pcfg.remat,
            "tokens_per_s": round(tps, 1), "mfu": round(tps * flops_per_token(cfg, cfg.max_seq_len) / (peak * 1e12), 4)}


def generation_speed(model_dir: Path, data_dir: Path, problems: int, tiny: bool) -> dict:
    """lm-eval's gsm8k (8-shot, greedy) on the first `problems` test problems, through the project's harness."""
    from tinymath.eval import Config, harness, task_manager
    from tinymath.eval.tasks import plan

    cfg = Config.model_validate({
        "device": "cuda" if GPU else "cpu", "dtype": PRECISION, "batch_size": 32,
        "max_gen_toks": 32 if tiny else 256, "data_dir": str(data_dir),
        "suites": {"paper": {"models": ["base"], "tasks": {"gsm8k": {"num_fewshot": 8, "limit": problems}}}}})
    planned, skipped = plan(cfg, None, hub=False)
    if skipped:
        raise SystemExit(f"device_check: gsm8k cannot run: {next(iter(skipped.values()))['reason']}")
    work = Path(tempfile.mkdtemp())
    manager = task_manager(cfg, planned, work / "tasks")
    lm = harness.load_model(cfg, model_dir)
    t0 = time.perf_counter()
    harness.run_task(lm, planned[0], cfg, manager)
    seconds = time.perf_counter() - t0
    return {"problems": problems, "num_fewshot": 8, "max_gen_toks": cfg.max_gen_toks, "seconds": round(seconds, 1),
            "problems_per_s": round(problems / seconds, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiny", action="store_true", help="a small model on CPU, a few steps (the tested path)")
    p.add_argument("--data-dir", type=Path, default=paths.REPO.parent / "shared" / "data",
                   help="holds gsm8k/test.jsonl and gsm8k/train.jsonl")
    p.add_argument("--out", type=Path, default=None, help="default: results/device/<device>.json")
    p.add_argument("--steps", type=int, default=None, help="timed steps per trainer (default: 3 tiny, 30 GPU)")
    p.add_argument("--problems", type=int, default=None, help="GSM8K problems generated (default: 4 tiny, 100 GPU)")
    a = p.parse_args()
    steps = a.steps or (3 if a.tiny else 30)
    problems = a.problems or (4 if a.tiny else 100)
    questions = [r["question"] for r in read_jsonl(a.data_dir / "gsm8k" / "train.jsonl")]
    cfg = model_config(a.tiny, vocab=512 if a.tiny else 32000)
    peak, peak_source = peak_tflops()
    work = Path(tempfile.mkdtemp(prefix="tinymath-device-"))
    try:
        model_dir = write_model(cfg, questions, work / "model")
        record = {
            "device": device_name(), "date": time.strftime("%Y-%m-%d"), "tiny": a.tiny, "precision": PRECISION,
            "model": {**cfg.model_dump(mode="json"), "n_params": num_params(cfg)},
            "peak_tflops": round(peak, 2), "peak_source": peak_source,
            "sft": sft_speed(model_dir, cfg, steps, peak, a.tiny),
            "jax_pretrain": jax_speed(cfg, steps, peak, a.tiny),
            "generation": generation_speed(model_dir, a.data_dir, problems, a.tiny),
            "versions": manifest.package_versions(), "host": manifest.host_info(),
            "command": "python benchmarks/device_check.py" + (" --tiny" if a.tiny else ""),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = a.out or paths.RESULTS / "device" / f"{record['device'].replace(' ', '_')}.json"
    manifest.write_json_atomic(out, record)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

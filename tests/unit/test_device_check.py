"""benchmarks/device_check.py --tiny: the GPU check's every section, run on CPU with a small model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_device_check_tiny_measures_every_section(tmp_path, shared_data):
    out = tmp_path / "check.json"
    command = [sys.executable, str(REPO / "benchmarks" / "device_check.py"), "--tiny", "--data-dir", str(shared_data),
               "--out", str(out)]
    subprocess.run(command, check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True)
    record = json.loads(out.read_text())
    assert record["tiny"] and record["peak_source"].startswith("measured") and record["peak_tflops"] > 0
    assert record["model"]["num_layers"] == 2 and record["model"]["n_params"] > 0
    for section in ("sft", "jax_pretrain"):
        assert record[section]["tokens_per_s"] > 0 and 0 < record[section]["mfu"] < 1, record[section]
    assert record["jax_pretrain"]["platform"] == "cpu"
    assert record["generation"]["problems"] == 4 and record["generation"]["problems_per_s"] > 0
    assert {"torch", "jax", "trl", "lm-eval"} <= record["versions"].keys()

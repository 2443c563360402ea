"""The roofline model on programs and numbers whose answer is known by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from tinymath.pretrain import roofline

HLO = """
  %all-gather = f32[128,32]{1,0} all-gather(f32[32,32]{1,0} %p), channel_id=1, dimensions={0}
  %all-reduce.2 = (f32[], f32[32,128]{1,0}, /*index=2*/bf16[8]{0}) all-reduce(%a, %b, %c), channel_id=2
  %reduce-scatter = bf16[4,16]{1,0} reduce-scatter(bf16[16,16]{1,0} %g), dimensions={0}
  %fusion = f32[16,32]{1,0} fusion(%param, %all-gather), kind=kCustom
"""


def test_collective_bytes_reads_result_shapes_of_each_kind():
    assert roofline.shape_bytes("(f32[2,3]{1,0}, bf16[4], pred[])") == 24 + 8 + 1
    assert roofline.collective_bytes(HLO) == {"all-gather": 128 * 32 * 4, "all-reduce": 4 + 32 * 128 * 4 + 8 * 2,
                                              "reduce-scatter": 4 * 16 * 2}


def test_piece_of_a_compiled_matmul_counts_its_flops_and_bytes():
    x, w = jax.ShapeDtypeStruct((64, 128), jnp.float32), jax.ShapeDtypeStruct((128, 32), jnp.float32)
    piece = roofline.Piece.of(jax.jit(jnp.matmul).lower(x, w).compile())
    assert piece.flops == 2 * 64 * 128 * 32
    assert piece.bytes_accessed == 4 * (64 * 128 + 128 * 32 + 64 * 32)
    assert piece.collective_bytes == {}


def test_gathered_bytes_count_the_full_array_of_a_reduce_scatter():
    piece = roofline.Piece(0.0, 0.0, {"all-gather": 100, "all-reduce": 40, "reduce-scatter": 10})
    assert piece.gathered_bytes(devices=4) == 100 + 40 + 4 * 10


def test_step_bound_by_hand():
    # per microbatch: 2 TFLOP, 50 GB accessed, a 10 GB all-gather; update: 0.5 TFLOP, 20 GB
    micro = roofline.Piece(2e12, 50e9, {"all-gather": 10 * 10**9})
    update = roofline.Piece(0.5e12, 20e9, {})
    out = roofline.step_bound(micro, update, microbatches=4, devices=8, model_flops=6e12, peak_tflops=100,
                              hbm_gbps=1000, collective_gbps=20)
    # compute 8.5 TFLOP / 100 TFLOP/s; memory 220 GB / 1000 GB/s; collective 40 GB / (2 x 20 GB/s)
    assert out["step_s"] == pytest.approx({"compute": 0.085, "memory": 0.22, "collective": 1.0})
    assert out["bound_s"] == pytest.approx({"overlapped": 1.0, "serial": 1.22, "fused": 1.0})
    assert out["mfu"]["serial"] == pytest.approx(6e12 / (1.22 * 100e12))
    times = roofline.run_time(out, steps=86400, devices=8)
    assert times["days"]["serial"] == pytest.approx(1.22)
    assert times["device_hours"]["serial"] == pytest.approx(1.22 * 24 * 8)
    assert times["cost_usd"] is None
    priced = roofline.run_time(out, steps=86400, devices=8, usd_per_device_hour=2.5)
    assert priced["cost_usd"]["serial"] == pytest.approx(1.22 * 24 * 8 * 2.5)

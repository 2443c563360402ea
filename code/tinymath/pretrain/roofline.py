"""A lower bound on the pretraining step's time, from the compiled program and the device's published peaks.

A step is `microbatches` gradient passes and one optimizer update. XLA's cost analysis counts a loop body once, so
the dry run compiles each piece on its own for the config's mesh (FSDP shardings, remat) and takes, per device, its
FLOPs and bytes accessed (cost analysis) and its collectives (from the partitioned HLO). Each becomes a time at the
device's peak:

    compute    = FLOPs / peak FLOP/s
    memory     = bytes accessed / HBM bandwidth
    collective = full-array bytes of the all-gathers and reduce-scatters / (2 x all-reduce bandwidth)

The bandwidth is published as an all-reduce's (an all-reduce of R bytes takes R / B); an all-gather or a
reduce-scatter moves half an all-reduce's traffic, so one over an array of R bytes takes R / 2B. The CPU compiler
reduces FSDP gradients with an all-reduce whose result each device slices to its shard; a TPU's compiler rewrites
that pair into the reduce-scatter FSDP implies, and it is costed as one.

With communication overlapped, the step takes at least max(compute, memory, collective); without, max(compute,
memory) + collective. Bytes accessed come from the CPU compiler's buffer accounting: a TPU fuses more, so the memory
term overstates its HBM traffic, and `fused` (max(compute, collective)) is the bound were fusion to hide all of it.
Model FLOPs utilisation counts only the model's FLOPs (6N + attention per token, no remat recomputation).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

SECONDS_PER_DAY = 86400
DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
               "f64": 8, "s64": 8, "u64": 8}
COLLECTIVE = re.compile(r"=\s*(.+?)\s+(all-gather|reduce-scatter|all-reduce)(?:-start)?\(")
SHAPE = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")
# bytes of the full (unsharded) array per byte of the op's result over n devices; an all-reduce counts as the
# reduce-scatter it becomes (module docstring)
FULL_ARRAY = {"all-gather": lambda n: 1.0, "all-reduce": lambda n: 1.0, "reduce-scatter": lambda n: float(n)}


@dataclass(frozen=True)
class Piece:
    """One compiled program, per device."""

    flops: float
    bytes_accessed: float
    collective_bytes: dict[str, int]  # op kind -> bytes of its results

    @classmethod
    def of(cls, compiled) -> Piece:
        cost = compiled.cost_analysis()
        return cls(float(cost["flops"]), float(cost["bytes accessed"]), collective_bytes(compiled.as_text()))

    def gathered_bytes(self, devices: int) -> float:
        """Full-array bytes this program's collectives gather or scatter over `devices`."""
        return sum(FULL_ARRAY[kind](devices) * b for kind, b in self.collective_bytes.items())


def shape_bytes(text: str) -> int:
    """Bytes of every array shape in an HLO type, e.g. '(f32[2,3]{1,0}, bf16[4])' -> 32."""
    return sum(DTYPE_BYTES[dtype] * int(np.prod([int(d) for d in dims.split(",") if d], dtype=np.int64))
               for dtype, dims in SHAPE.findall(text) if dtype in DTYPE_BYTES)


def collective_bytes(hlo: str) -> dict[str, int]:
    """Op kind -> total result bytes of the all-gathers, reduce-scatters and all-reduces in an HLO module."""
    out: dict[str, int] = {}
    for line in hlo.splitlines():
        match = COLLECTIVE.search(line)
        if match:
            result_type, kind = match.groups()
            out[kind] = out.get(kind, 0) + shape_bytes(result_type)
    return out


def step_bound(micro: Piece, update: Piece, microbatches: int, devices: int, model_flops: float,
               peak_tflops: float, hbm_gbps: float, collective_gbps: float) -> dict:
    """Seconds per step by term and in total, and the implied model FLOPs utilisation.

    `model_flops` is the model's FLOPs per device per step; `collective_gbps` an all-reduce's bandwidth.
    """
    flops = microbatches * micro.flops + update.flops
    hbm = microbatches * micro.bytes_accessed + update.bytes_accessed
    gathered = microbatches * micro.gathered_bytes(devices) + update.gathered_bytes(devices)
    terms = {"compute": flops / (peak_tflops * 1e12), "memory": hbm / (hbm_gbps * 1e9),
             "collective": gathered / (2 * collective_gbps * 1e9)}
    bound = {"overlapped": max(terms.values()),
             "serial": max(terms["compute"], terms["memory"]) + terms["collective"],
             "fused": max(terms["compute"], terms["collective"])}
    mfu = {k: model_flops / (t * peak_tflops * 1e12) for k, t in bound.items()}
    return {"per_device_step": {"flops": flops, "bytes_accessed": hbm, "collective_full_array_bytes": gathered,
                                "model_flops": model_flops},
            "pieces": {"microbatch": asdict(micro), "update": asdict(update)},
            "step_s": terms, "bound_s": bound, "mfu": mfu}


def run_time(bound: dict, steps: int, devices: int, usd_per_device_hour: float | None = None) -> dict:
    """Days, device-hours and (given a device-hour's price) the cost in USD of `steps` steps at each bound."""
    days = {k: steps * t / SECONDS_PER_DAY for k, t in bound["bound_s"].items()}
    hours = {k: d * 24 * devices for k, d in days.items()}
    cost = {k: h * usd_per_device_hour for k, h in hours.items()} if usd_per_device_hour else None
    return {"days": days, "device_hours": hours, "usd_per_device_hour": usd_per_device_hour, "cost_usd": cost}

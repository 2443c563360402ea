"""The schema of `configs/pretrain/<profile>.yaml`.

The token budget is stated, not implied: `tokens` must equal steps x global_batch x seq_len, so changing the batch
without the steps (which would silently train on a quarter of the stated tokens when the batch is cut by 4) fails at
load time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tinymath.config import Requirements, Section
from tinymath.model import PRESETS, ModelConfig


class ModelSpec(Section):
    """A `ModelConfig` preset plus field overrides; the vocabulary size comes from the tokenizer and packed data."""

    preset: Literal["paper", "small", "tiny"]
    vocab_size: int | None = Field(default=None, gt=0)  # when set, must equal the tokenizer's and the data's
    overrides: dict[str, int | float | str] = {}

    @model_validator(mode="after")
    def _buildable(self) -> ModelSpec:
        self.nominal()
        return self

    def nominal(self) -> ModelConfig:
        """The model at the configured vocab size, or the preset's when none is set (for the dry run)."""
        vocab = {"vocab_size": self.vocab_size} if self.vocab_size else {}
        return PRESETS[self.preset](**vocab, **self.overrides)

    def build(self, vocab_size: int) -> ModelConfig:
        if self.vocab_size is not None and self.vocab_size != vocab_size:
            raise ValueError(f"model.vocab_size {self.vocab_size} but the tokenizer and data have {vocab_size}")
        return PRESETS[self.preset](vocab_size=vocab_size, **self.overrides)


class OptimizerConfig(Section):
    """AdamW with global-norm clipping; linear warmup from 0 to `peak_lr`, then cosine to `min_lr` at the last step."""

    peak_lr: float = Field(default=3e-4, gt=0)
    min_lr: float = Field(default=3e-5, ge=0)
    warmup_steps: int = Field(default=2000, ge=0)
    b1: float = Field(default=0.9, gt=0, lt=1)
    b2: float = Field(default=0.95, gt=0, lt=1)
    eps: float = Field(default=1e-8, gt=0)
    weight_decay: float = Field(default=0.1, ge=0)  # applied to matrices only, not to norm scales
    clip_norm: float = Field(default=1.0, gt=0)


class MeshConfig(Section):
    """Device mesh: the batch is split over data x fsdp devices; parameters and optimizer state over fsdp."""

    data: int = Field(default=1, gt=0)
    fsdp: int = Field(default=1, gt=0)
    distributed: bool = False  # call jax.distributed.initialize() first (multi-host TPU slices)


class CheckpointConfig(Section):
    every: int = Field(gt=0)  # steps between Orbax checkpoints (also written at the end and on SIGTERM/SIGINT)
    keep: int = Field(default=2, gt=0)  # most recent checkpoints kept


class DryRunConfig(Section):
    """The target machine of `--dry-run`, simulated with CPU devices (mesh data x fsdp of them): the published
    per-device figures that bound the step time (`tinymath.pretrain.roofline`), with `device_peak_tflops`."""

    hbm_gib: float = Field(gt=0)  # memory per device
    hbm_gbps: float = Field(gt=0)  # memory bandwidth per device, GB/s
    collective_gbps: float = Field(gt=0)  # per-device bandwidth of an all-reduce over the slice, GB/s
    usd_per_device_hour: float | None = Field(None, gt=0)  # a device-hour's price: the predicted run's cost


class Config(Section):
    seed: int = 0
    requires: Requirements = Requirements()
    model: ModelSpec
    optimizer: OptimizerConfig = OptimizerConfig()
    steps: int = Field(gt=0)
    global_batch: int = Field(gt=0)  # rows per step, over all devices
    seq_len: int = Field(gt=0)  # must equal the packed data's seq_len
    tokens: int = Field(gt=0)  # = steps x global_batch x seq_len, checked
    microbatches: int = Field(default=1, gt=0)  # gradient accumulation: global_batch is split into this many
    remat: bool = False  # recompute each layer's activations in the backward pass (memory for compute)
    mesh: MeshConfig = MeshConfig()
    checkpoint: CheckpointConfig
    eval_every: int = Field(gt=0)  # steps between validation losses (and at the last step)
    eval_rows: int = Field(default=256, gt=0)  # validation rows used (the first ones of the split)
    device_peak_tflops: float = Field(gt=0)  # per-device peak of the compute dtype, the denominator of MFU
    dry_run: DryRunConfig | None = None  # required by `--dry-run` only

    @field_validator("tokens")
    @classmethod
    def _token_arithmetic(cls, tokens: int, info: ValidationInfo) -> int:
        data = info.data
        if {"steps", "global_batch", "seq_len"} <= data.keys():
            product = data["steps"] * data["global_batch"] * data["seq_len"]
            if product != tokens:
                raise ValueError(f"steps x global_batch x seq_len = {product:,}")
        return tokens

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.optimizer.warmup_steps >= self.steps:
            raise ValueError(f"optimizer.warmup_steps below steps ({self.steps}), got {self.optimizer.warmup_steps}")
        shards = self.microbatches * self.devices
        if self.global_batch % shards:
            raise ValueError(f"global_batch divisible by microbatches x devices ({shards}), got {self.global_batch}")
        return self

    @property
    def devices(self) -> int:
        return self.mesh.data * self.mesh.fsdp

"""Orbax checkpoints of everything a bitwise resume needs: parameters, optimizer state, step, data-iterator state.

Saves are asynchronous (training continues while the previous step is written). Orbax commits a step atomically, so
a kill mid-save leaves no half step behind; a step that is damaged afterwards fails to restore or fails the checks
below, and the previous step is used with a warning, the unusable one moved to `checkpoints-quarantine/` beside the
checkpoints (kept for inspection, never hashed as an output, and out of the way of the step that training will save
again). Every restore checks that every layer is present and the parameter count equals the config's (a checkpoint
without its transformer layers still loads, and would otherwise go unnoticed).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from tinymath import manifest
from tinymath.log import logger
from tinymath.model import ModelConfig, num_params, param_shapes
from tinymath.pretrain.config import CheckpointConfig


def _flat_names(tree: Any) -> dict[str, tuple[int, ...]]:
    """Nested dict of arrays (or array metadata) -> {'layers.0.mlp.up_proj.kernel': shape}."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): tuple(leaf.shape)
            for path, leaf in leaves}


def check_params(tree: Any, cfg: ModelConfig) -> None:
    """Raise ValueError unless `tree` holds exactly the config's parameters (every layer) with their shapes."""
    names = _flat_names(tree)
    expected = param_shapes(cfg)
    if names != expected:
        missing = sorted(expected.keys() - names.keys())
        raise ValueError(f"checkpoint parameters differ from the model's: missing {missing[:4]}, "
                         f"unexpected {sorted(names.keys() - expected.keys())[:4]}, or shapes differ")
    count = sum(int(np.prod(s)) for s in names.values())
    if count != num_params(cfg, padded=True):
        raise ValueError(f"checkpoint holds {count:,} parameters, the model has {num_params(cfg, padded=True):,}")


class Checkpointer:
    """Save every `cfg.every` steps (or when forced), keep the last `cfg.keep`, restore the newest good one."""

    def __init__(self, directory: Path, cfg: CheckpointConfig, model_cfg: ModelConfig, fingerprint: str):
        options = ocp.CheckpointManagerOptions(max_to_keep=cfg.keep, create=True, enable_async_checkpointing=True)
        handlers = {"params": ocp.StandardCheckpointHandler(), "opt_state": ocp.StandardCheckpointHandler(),
                    "data": ocp.JsonCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        self.model_cfg, self.every, self.fingerprint = model_cfg, cfg.every, fingerprint

    def save(self, step: int, params: Any, opt_state: Any, data_state: dict, force: bool = False) -> bool:
        """Start an asynchronous save when `step` is a multiple of `every` (or forced); True when one started."""
        if step % self.every and not force:
            return False
        meta = {"step": step, "fingerprint": self.fingerprint}
        args = ocp.args.Composite(params=ocp.args.StandardSave(params), opt_state=ocp.args.StandardSave(opt_state),
                                  data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta))
        return self.manager.save(step, args=args, force=True)

    def restore(self, params: Any, opt_state: Any) -> tuple[int, Any, Any, dict] | None:
        """The newest checkpoint that restores and passes the checks, shaped and sharded like the given trees."""
        target = ocp.args.Composite(
            params=ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, params)),
            opt_state=ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, opt_state)),
            data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore())
        self.drop_stale()
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                restored = self.manager.restore(step, args=target)
                check_params(restored.params, self.model_cfg)
                if restored.meta["step"] != step:
                    raise ValueError(f"metadata says step {restored.meta['step']}")
            except Exception as e:  # whatever failed, this step is unusable: fall back to the previous one
                logger.warning("checkpoint step %d unusable (%s: %s): moved to %s; trying the previous one",
                               step, type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "",
                               self.quarantine(step))
                continue
            return step, restored.params, restored.opt_state, restored.data
        return None

    def quarantine(self, step: int) -> Path:
        """Move an unusable step out of the manager's directory, so that saving that step again succeeds."""
        dest = self.directory.with_name(self.directory.name + manifest.QUARANTINE_SUFFIX) / str(step)
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        (self.directory / str(step)).rename(dest)
        self.manager.reload()
        return dest

    def drop_stale(self) -> None:
        """Delete checkpoints written under another config or other inputs: resuming them would silently mix runs."""
        for step in self.manager.all_steps():
            try:
                meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            except Exception:  # an unreadable step is handled (skipped with a warning) by `restore`
                continue
            if meta.get("fingerprint") != self.fingerprint:
                logger.warning("checkpoint step %d is from another config or inputs: deleted", step)
                self.manager.delete(step)

    def param_names(self, step: int) -> dict[str, tuple[int, ...]]:
        """Dotted name -> shape of the parameters stored at `step`, read from metadata only."""
        meta = self.manager.item_metadata(step)
        return _flat_names(meta["params"])

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()

"""The pretraining data: Grain over the packed rows, in an order fixed by the seed.

Step s (1-based) trains on element s - 1 of `train_batches`: the row indices of the whole split, shuffled per epoch
from the seed and cut into global batches. The training iterator, `print_batch` and the tests all read that one
dataset, so "what did the model see at step N" has a single answer; the iterator's state goes into every checkpoint.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import grain
import jax
import numpy as np
from tokenizers import Tokenizer

from tinymath import specials
from tinymath.errors import UserError
from tinymath.io import read_tokenizer
from tinymath.model import ModelConfig
from tinymath.packed import ARRAYS, PackedSplit
from tinymath.pretrain.config import Config


def packed_dir(root: Path) -> Path:
    return Path(root) / "prepare" / "packed"


def tokenizer_file(root: Path) -> Path:
    return Path(root) / "tokenizer" / "tokenizer" / "tokenizer.json"


def model_config(cfg: Config, root: Path) -> ModelConfig:
    """The model for this data: vocab size from the tokenizer, checked against the packed index and the config."""
    split = PackedSplit(packed_dir(root), "train")
    vocab = read_tokenizer(tokenizer_file(root)).get_vocab_size(with_added_tokens=True)
    if split.vocab_size != vocab:
        raise UserError(f"{packed_dir(root) / 'index.json'}: vocab_size {split.vocab_size} but the tokenizer has "
                        f"{vocab}: rerun 'tinymath prepare' with this tokenizer")
    if split.seq_len != cfg.seq_len:
        raise UserError(f"pretrain seq_len {cfg.seq_len} but the packed data has {split.seq_len}: "
                        f"set seq_len (and steps/tokens) to match {packed_dir(root) / 'index.json'}")
    try:
        return cfg.model.build(vocab)
    except ValueError as e:
        raise UserError(str(e)) from None


def _read(split: PackedSplit, rows: slice, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices of one global batch -> this process's rows, {array: [rows, L+1] int32}."""
    items = [split[int(i)] for i in indices[rows]]
    return {k: np.stack([item[k] for item in items]) for k in ARRAYS}


def train_batches(split: PackedSplit, seed: int, global_batch: int, rows: slice = slice(None)) -> grain.MapDataset:
    """Element i is the global batch of step i + 1 (only `rows` of it are read); reshuffled every epoch."""
    if len(split) < global_batch:
        raise UserError(f"{split.directory}: {len(split)} training rows, fewer than global_batch {global_batch}")
    order = grain.MapDataset.range(len(split)).shuffle(seed=seed).repeat(None)
    return order.batch(global_batch, drop_remainder=True).map(partial(_read, split, rows))


def process_rows(global_batch: int) -> slice:
    """This host's share of each global batch (all of it on one host)."""
    per = global_batch // jax.process_count()
    return slice(jax.process_index() * per, (jax.process_index() + 1) * per)


def train_iterator(dataset: grain.MapDataset) -> grain.DatasetIterator:
    """Reads ahead on two threads; the order, and so the state, does not depend on the prefetching."""
    options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)
    return iter(dataset.to_iter_dataset(options))


def validation_batches(split: PackedSplit, rows: int, batch: int) -> list[dict[str, np.ndarray]]:
    """The first `rows` validation rows in batches of `batch`, the last padded with segment-0 rows (no loss)."""
    n = min(rows, len(split))
    if n == 0:
        raise UserError(f"{split.directory}: the validation split is empty")
    data = _read(split, slice(None), np.arange(n))
    pad = -n % batch
    data = {k: np.concatenate([v, np.zeros((pad, v.shape[1]), np.int32)]) for k, v in data.items()}
    return [{k: v[i:i + batch] for k, v in data.items()} for i in range(0, n + pad, batch)]


def describe_batch(batch: dict[str, np.ndarray], tokenizer: Tokenizer, width: int = 100) -> list[str]:
    """One line per document of each row: row, segment, token count, start of its text."""
    lines = []
    for r, (tokens, segments) in enumerate(zip(batch["tokens"], batch["segment_ids"])):
        for seg in [s for s in np.unique(segments) if s != 0]:
            ids = tokens[segments == seg].tolist()
            text = tokenizer.decode([i for i in ids if i != specials.ENDOFTEXT_ID], skip_special_tokens=False)
            snippet = text.replace("\n", "\\n")[:width]
            lines.append(f"row {r:4d} doc {int(seg):3d} {len(ids):5d} tokens  {snippet}")
    return lines


def print_batch(cfg: Config, root: Path, step: int) -> list[str]:
    """Print (and return) the documents of the global batch that pretraining trains on at `step` (1-based)."""
    if not 1 <= step <= cfg.steps:
        raise UserError(f"--step {step}: expected 1..{cfg.steps} (the config's steps)")
    for path in (packed_dir(root) / "index.json", tokenizer_file(root)):
        if not path.is_file():
            raise UserError(f"{path} not found: run the tokenizer and data stages of this profile first")
    split = PackedSplit(packed_dir(root), "train")
    batch = train_batches(split, cfg.seed, cfg.global_batch)[step - 1]
    lines = describe_batch(batch, read_tokenizer(tokenizer_file(root)))
    print(f"step {step}: {cfg.global_batch} rows x {cfg.seq_len + 1} tokens, {len(lines)} documents")
    print("\n".join(lines))
    return lines

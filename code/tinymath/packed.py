"""The packed-sequence format that `tinymath prepare` writes and pretraining reads.

A packed directory holds, per split (`train`, `validation`), shards named `<split>-NNNNN`, each three `.npy` arrays of
shape [rows, seq_len + 1] and dtype int32:
    <shard>.tokens.npy       token ids; documents end with <|endoftext|>; unused tail is <|pad|>
    <shard>.segment_ids.npy  1, 2, ... for the documents of a row in order; 0 for padding
    <shard>.positions.npy    position within the document, restarting at 0 for each document
and `index.json`: {"format": "tinymath-packed-v1", "seq_len": L, "vocab_size": V,
                   "splits": {split: [{"name": shard, "rows": n, "documents": [[doc_id, ...] per row]?}]}}.
A row of width L + 1 gives L inputs (`[:-1]`) and L next-token targets (`[1:]`); a target counts in the loss only when
it belongs to the same document as its input (`loss_mask`). `.npy` files are memory-mapped: random access for Grain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinymath.errors import UserError

FORMAT = "tinymath-packed-v1"
ARRAYS = ("tokens", "segment_ids", "positions")


def write_shard(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    shapes = {arrays[k].shape for k in ARRAYS}
    if len(shapes) != 1:
        raise ValueError(f"shard {name}: arrays differ in shape {shapes}")
    for key in ARRAYS:
        np.save(Path(directory) / f"{name}.{key}.npy", np.ascontiguousarray(arrays[key], dtype=np.int32))


def write_index(directory: Path, seq_len: int, vocab_size: int, splits: dict[str, list[dict]]) -> None:
    index = {"format": FORMAT, "seq_len": seq_len, "vocab_size": vocab_size, "splits": splits}
    (Path(directory) / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def read_index(directory: Path) -> dict:
    """`index.json` of a packed directory, checked for the fields readers use; a UserError names what is wrong."""
    path = Path(directory) / "index.json"
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (the prepare stage writes it)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        got = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise UserError(f"{path}: format: expected {FORMAT!r}, got {got!r}")
    missing = [k for k in ("seq_len", "vocab_size", "splits") if k not in index]
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}")
    return index


def load_shard(directory: Path, name: str, rows: int, seq_len: int) -> dict[str, np.ndarray]:
    """The three memory-mapped arrays of a shard, each checked to be int32 [rows, seq_len + 1] as the index says."""
    arrays = {}
    for key in ARRAYS:
        path = Path(directory) / f"{name}.{key}.npy"
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:  # missing, truncated or not an .npy file
            raise UserError(f"{path}: unreadable shard array ({type(e).__name__}: {e})") from None
        if array.dtype != np.int32 or array.shape != (rows, seq_len + 1):
            raise UserError(f"{path}: expected int32 [{rows}, {seq_len + 1}] (index.json), "
                            f"got {array.dtype} {list(array.shape)}")
        arrays[key] = array
    return arrays


def loss_mask(segment_ids: np.ndarray) -> np.ndarray:
    """[..., L+1] segment ids -> [..., L] mask of targets in the same (non-padding) document as their input."""
    return (segment_ids[..., 1:] == segment_ids[..., :-1]) & (segment_ids[..., 1:] != 0)


class PackedSplit:
    """Random access over the rows of one split: `split[i]` is a dict of three [L+1] int32 arrays."""

    def __init__(self, directory: Path, split: str):
        self.directory = Path(directory)
        index = read_index(self.directory)
        if split not in index["splits"]:
            raise UserError(f"{self.directory / 'index.json'}: no split {split!r} (has {sorted(index['splits'])})")
        self.seq_len = index["seq_len"]
        self.vocab_size = index["vocab_size"]
        self.shards = [s["name"] for s in index["splits"][split]]
        self._arrays = [load_shard(self.directory, s["name"], s["rows"], self.seq_len) for s in index["splits"][split]]
        self._offsets = np.cumsum([0] + [a["tokens"].shape[0] for a in self._arrays])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        shard = int(np.searchsorted(self._offsets, i, side="right") - 1)
        row = i - self._offsets[shard]
        return {k: np.asarray(v[row]) for k, v in self._arrays[shard].items()}

"""Tokenising documents and packing them into fixed-width rows (format: `tinymath.packed`).

Documents are concatenated, each followed by <|endoftext|>, and cut into rows of seq_len + 1 tokens. Within a row the
documents get segment ids 1, 2, ... and positions restarting at 0 for each document, so attention and the loss never
cross a document boundary. A document that continues into the next row restarts its positions there too (positions
stay below seq_len, whatever the document length). Only the last row of a split is padded (<|pad|>, segment 0), and
padding is never a target (`packed.loss_mask`). `steps.PackShards` packs one output shard at a time: its token
range of the split's stream, the first document possibly a continuation, gives the same rows as the whole stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from tinymath import specials


def encode(tok: Tokenizer, texts: Sequence[str], batch: int) -> list[np.ndarray]:
    """Token ids of each text with <|endoftext|> appended, via the batch encoder (parallel in Rust)."""
    out = []
    for start in range(0, len(texts), batch):
        for enc in tok.encode_batch_fast(list(texts[start:start + batch]), add_special_tokens=False):
            ids = np.empty(len(enc.ids) + 1, dtype=np.int32)  # [n + 1]
            ids[:-1] = enc.ids
            ids[-1] = specials.ENDOFTEXT_ID
            out.append(ids)
    return out


def pack(docs: Sequence[np.ndarray], seq_len: int) -> dict[str, np.ndarray]:
    """Pack `docs` (each already ending in <|endoftext|>) into [rows, seq_len + 1] tokens, segment ids, positions."""
    width = seq_len + 1
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))  # [D]
    n = int(lengths.sum())
    rows = -(-n // width)
    tokens = np.full(rows * width, specials.PAD_ID, dtype=np.int32)  # [R * W]
    tokens[:n] = np.concatenate(docs) if docs else []
    starts = np.zeros(rows * width, dtype=bool)
    starts[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = n > 0  # first token of every document
    valid = (np.arange(rows * width) < n).reshape(rows, width)  # [R, W]
    starts = (starts.reshape(rows, width) | (np.arange(width) == 0)) & valid  # a row also starts a segment
    column = np.broadcast_to(np.arange(width), (rows, width))  # [R, W]
    segment_start = np.maximum.accumulate(np.where(starts, column, 0), axis=1)  # [R, W] column of segment's start
    return {"tokens": tokens.reshape(rows, width),
            "segment_ids": (np.cumsum(starts, axis=1) * valid).astype(np.int32),
            "positions": ((column - segment_start) * valid).astype(np.int32)}


def row_documents(lengths: np.ndarray, doc_ids: Sequence[str], width: int) -> list[list[str]]:
    """The ids of the documents (or document pieces) in each packed row, in order."""
    ends = np.cumsum(lengths)  # [D] exclusive end of each document in the stream
    begins = ends - lengths
    rows = -(-int(ends[-1]) // width) if len(ends) else 0
    first = np.searchsorted(ends, np.arange(rows) * width, side="right")  # [R] first document touching each row
    last = np.searchsorted(begins, (np.arange(rows) + 1) * width, side="left")  # [R] one past the last
    return [list(doc_ids[a:b]) for a, b in zip(first, last)]

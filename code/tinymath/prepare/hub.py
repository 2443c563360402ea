"""Streaming the `paper` profile's pretraining sources from the Hugging Face hub.

Nothing is downloaded in full: `datasets` streams each source and the caller stops reading once it has enough. An
unreachable hub or a source that fails to load is a `UserError` naming the source and hub id, never a logged-and-
swallowed warning (which would train silently without that source).
"""

from __future__ import annotations

from collections.abc import Iterator

from tinymath.errors import UserError
from tinymath.prepare.config import SourceConfig
from tinymath.runner import hub_reachable


def stream_source(name: str, source: SourceConfig) -> Iterator[str]:
    """Yield the non-empty texts of hub source `name` in the dataset's own order."""
    if source.hub_id is None:
        raise UserError(f"sources.{name}: hub_id is required to stream from the hub, got none")
    if not hub_reachable():
        raise UserError(f"sources.{name}: cannot stream {source.hub_id}: huggingface.co is unreachable "
                        "(or HF_HUB_OFFLINE=1); the paper profile needs the hub")
    import datasets

    try:
        stream = datasets.load_dataset(source.hub_id, source.hub_config, split=source.split, streaming=True)
        for record in stream:
            text = record[source.text_field]
            if text:
                yield text
    except (OSError, ValueError, KeyError, datasets.exceptions.DatasetNotFoundError) as e:
        raise UserError(f"sources.{name}: streaming {source.hub_id} ({source.hub_config}, {source.split}, "
                        f"field {source.text_field!r}) failed: {type(e).__name__}: {e}".replace("\n", " ")) from None

"""Stage `tokenizer`: a byte-level BPE tokenizer whose digits are always single tokens.

    tinymath tokenizer --profile cpu

Digits are split before BPE (as in Llama 3 and DeepSeek-Math), so "2024" is "2","0","2","4" and the merges can never
glue digits together; the special tokens of `tinymath.specials` get ids 0..5 in order. Offline profiles train on the
synth stage's corpus plus its GSM/MATH-format training text; `paper` trains on a sample streamed from the hub sources.
A seeded fraction of the documents is held out (never trained on) to measure fertility: tokens per word and per number.

Outputs: `tokenizer/` (save_pretrained: tokenizer.json, tokenizer_config.json, chat_template.jinja), `fertility.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import Field, model_validator
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tinymath import specials
from tinymath.config import Requirements, Section
from tinymath.errors import UserError
from tinymath.io import iter_jsonl
from tinymath.log import logger
from tinymath.prepare.config import SourceConfig
from tinymath.runner import Run

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class Config(Section):
    seed: int = 0
    requires: Requirements = Requirements()
    vocab_size: int = Field(gt=len(specials.SPECIAL_TOKENS) + 256)  # specials + the 256 byte tokens at least
    min_frequency: int = Field(default=2, gt=0)
    heldout_fraction: float = Field(default=0.02, gt=0, lt=1)  # documents kept out of training, for fertility
    # paper: hub sources sampled for training, `share` = fraction of `hub_documents` drawn from each.
    hub_sources: dict[str, SourceConfig] = {}
    hub_documents: int = Field(default=1_000_000, gt=0)

    @model_validator(mode="after")
    def _shares(self) -> Config:
        total = sum(s.share for s in self.hub_sources.values())
        if self.hub_sources and abs(total - 1) > 1e-6:
            raise ValueError(f"hub_sources shares summing to 1, got {total:g}")
        return self


def needs(cfg: Config) -> list[str]:
    return [] if cfg.hub_sources else ["synth"]


def main(cfg: Config, run: Run) -> None:
    texts = list(hub_texts(cfg) if cfg.hub_sources else synth_texts(run.input("synth")))
    train, heldout = split_heldout(texts, cfg.heldout_fraction, cfg.seed)
    logger.info("tokenizer: training BPE (vocab %d) on %d documents, %d held out", cfg.vocab_size, len(train),
                len(heldout))
    tok = train_tokenizer(train, cfg.vocab_size, cfg.min_frequency)
    if len(tok) < cfg.vocab_size:  # too little text to learn the merges: a degenerate tokenizer, not a result
        raise UserError(f"{run.config_path}: vocab_size {cfg.vocab_size}, but {len(train)} training documents "
                        f"yield only {len(tok)} tokens: the input corpus is too small or empty")
    tok.save_pretrained(run.dir / "tokenizer")
    stats = fertility(tok, heldout)
    (run.dir / "fertility.json").write_text(json.dumps(stats, indent=1) + "\n")
    logger.info("tokenizer: %.3f tokens/word, %.3f tokens/number on held-out text", stats["tokens_per_word"],
                stats["tokens_per_number"])


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train the digit-split byte-level BPE on `texts` and wrap it for transformers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(specials.SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    # No model exists yet, so no context limit: `convert` sets model_max_length to the model's when it exports.
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=specials.IM_END,
                                 pad_token=specials.PAD, bos_token=None, unk_token=None,
                                 model_max_length=1_000_000, clean_up_tokenization_spaces=False)
    hf.chat_template = specials.CHAT_TEMPLATE
    return hf


def synth_texts(synth_dir: Path) -> Iterator[str]:
    """The synth corpus documents, then each GSM/MATH training problem with its solution, as one text each."""
    sources = [(synth_dir / "corpus" / "documents.jsonl", ("text",)),
               (synth_dir / "gsm" / "train.jsonl", ("question", "answer")),
               (synth_dir / "math" / "train.jsonl", ("problem", "solution"))]
    for path, fields in sources:
        for record in iter_jsonl(path, fields):
            yield "\n".join(record[f] for f in fields)


def hub_texts(cfg: Config) -> Iterator[str]:
    """paper: `share` x `hub_documents` documents from each hub source, in config order."""
    from tinymath.prepare.hub import stream_source

    for name, source in cfg.hub_sources.items():
        limit = round(source.share * cfg.hub_documents)
        for i, text in enumerate(stream_source(name, source)):
            if i >= limit:
                break
            yield text


def split_heldout(texts: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out documents by a seeded hash of their text, so the split is stable under reordering."""
    train, heldout = [], []
    for text in texts:
        digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
        (heldout if int.from_bytes(digest[:8], "little") < fraction * 2**64 else train).append(text)
    return train, heldout


def fertility(tok: PreTrainedTokenizerFast, texts: list[str]) -> dict[str, float | int]:
    """Fertility on `texts`: tokens of the whole text per whitespace word, and tokens per number (digits with
    `.`/`,` separators) encoded alone; a digit-split tokenizer must give at least one token per digit."""
    words = sum(len(t.split()) for t in texts)
    numbers = [n for t in texts for n in NUMBER.findall(t)]
    tokens = sum(map(len, tok(texts, add_special_tokens=False)["input_ids"])) if texts else 0
    number_tokens = sum(map(len, tok(numbers, add_special_tokens=False)["input_ids"])) if numbers else 0
    return {"documents": len(texts), "words": words, "numbers": len(numbers), "tokens": tokens,
            "tokens_per_word": tokens / max(words, 1), "tokens_per_number": number_tokens / max(len(numbers), 1)}

"""Stage `tokenizer`: a byte-level BPE tokenizer whose digits are always single tokens.

    tinymath tokenizer --profile cpu

Digits are split before BPE (as in Llama 3 and DeepSeek-Math), so "2024" is "2","0","2","4" and the merges can never
glue digits together; the special tokens of `tinymath.specials` get ids 0..5 in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tinymath import specials


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train the digit-split byte-level BPE on `texts` and wrap it for transformers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials.SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=specials.IM_END,
                                 pad_token=specials.PAD, bos_token=None, unk_token=None,
                                 model_max_length=1_000_000, clean_up_tokenization_spaces=False)
    hf.chat_template = specials.CHAT_TEMPLATE
    return hf

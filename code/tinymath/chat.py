"""`tinymath chat`: talk to a model in the terminal through its chat template, tokens streamed as generated.

    tinymath chat --model sft --profile cpu            # runs/cpu/sft/model; base and grpo likewise
    tinymath chat --model path/to/hf_dir --temperature 0.7 --max-new-tokens 256
    tinymath chat --model grpo --prompt "What is 12 * 7?"   # answer once and exit, for scripts

Every turn is sent with the system prompt the models were trained and evaluated with, and the whole history. On a
terminal the reasoning inside <think>...</think> is dimmed, the answer printed plainly; elsewhere the text is
printed unchanged. An empty line or end of input (Ctrl-D) ends the chat. Greedy unless --temperature is above 0.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from typing import Any, TextIO

from tinymath import paths, specials
from tinymath.answer import SYSTEM_PROMPT
from tinymath.errors import UserError
from tinymath.io import STAGE_MODELS, check_model_dir

DIM, RESET = "\033[2m", "\033[0m"
USER_PROMPT = "you> "


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0: greedy

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens {self.max_new_tokens}: expected at least 1")
        if self.temperature < 0:
            raise UserError(f"--temperature {self.temperature}: expected 0 (greedy) or more")


def model_path(model: str, profile: str, runs: Path | None = None) -> Path:
    """A stage name (base, sft, grpo, dpo: that stage's model of the profile) or a model directory."""
    if model in STAGE_MODELS:
        stage, sub = STAGE_MODELS[model]
        path = Path(runs or paths.runs_root()) / profile / stage / sub
    else:
        path = Path(model)
    check_model_dir(path)
    return path


def load(path: Path) -> tuple[Any, Any]:
    """Model (float32, eval mode) and tokenizer; a tokenizer without a chat template is a UserError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise UserError(f"{path}: the tokenizer has no chat template (a base model: use sft or grpo)")
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32", use_safetensors=True).eval()
    return model, tokenizer


def messages(history: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, *history, {"role": "user", "content": text}]


def _generate_kwargs(tokenizer: Any, chat: list[dict[str, str]], s: Sampling) -> dict[str, Any]:
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    sampling = {"do_sample": True, "temperature": s.temperature} if s.temperature > 0 else {"do_sample": False}
    return {**ids, "max_new_tokens": s.max_new_tokens, "pad_token_id": tokenizer.pad_token_id, **sampling}


def stop_strings(tokenizer: Any) -> list[str]:
    """The end-of-turn tokens as text: generation ends on them and they are not shown."""
    eos = [tokenizer.eos_token, specials.IM_END, specials.ENDOFTEXT]
    return [t for t in dict.fromkeys(eos) if t]


def clean(text: str, stops: list[str]) -> str:
    for stop in stops:
        text = text.replace(stop, "")
    return text


def reply(model: Any, tokenizer: Any, chat: list[dict[str, str]], s: Sampling) -> str:
    """The whole reply at once (what streaming must reproduce)."""
    import torch

    kwargs = _generate_kwargs(tokenizer, chat, s)
    with torch.no_grad():
        out = model.generate(**kwargs)
    text = tokenizer.decode(out[0, kwargs["input_ids"].shape[1]:], skip_special_tokens=False)
    return clean(text, stop_strings(tokenizer))


def stream(model: Any, tokenizer: Any, chat: list[dict[str, str]], s: Sampling) -> Iterator[str]:
    """The reply in pieces as the tokens are generated (generation runs in a thread)."""
    import torch
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False)
    kwargs = {**_generate_kwargs(tokenizer, chat, s), "streamer": streamer}
    thread = Thread(target=torch.no_grad()(model.generate), kwargs=kwargs, daemon=True)
    thread.start()
    stops = stop_strings(tokenizer)
    for piece in streamer:
        yield clean(piece, stops)
    thread.join()


class ThinkStyle:
    """Writes streamed text, dimming what lies inside <think>...</think> (tags included) on a terminal."""

    def __init__(self, out: TextIO, styled: bool):
        self.out, self.styled, self.thinking = out, styled, False

    def write(self, text: str) -> None:
        while text:
            tag = specials.END_THINK if self.thinking else specials.THINK
            head, found, text = text.partition(tag)
            if self.thinking:
                self._emit(head + found)
                self.thinking = not found
            else:
                self._emit(head)
                if found:
                    self.thinking = True
                    self._emit(found)
        self.out.flush()

    def _emit(self, text: str) -> None:
        if text:
            self.out.write(f"{DIM}{text}{RESET}" if self.styled and self.thinking else text)


def answer(model: Any, tokenizer: Any, chat: list[dict[str, str]], s: Sampling, out: TextIO) -> str:
    """Stream one reply to `out`; returns its text."""
    style = ThinkStyle(out, styled=out.isatty())
    pieces = []
    for piece in stream(model, tokenizer, chat, s):
        style.write(piece)
        pieces.append(piece)
    out.write("\n")
    out.flush()
    return "".join(pieces)


def main(model: str, profile: str, prompt: str | None, s: Sampling, runs: Path | None = None) -> None:
    lm, tokenizer = load(model_path(model, profile, runs))
    if prompt is not None:
        answer(lm, tokenizer, messages([], prompt), s, sys.stdout)
        return
    history: list[dict[str, str]] = []
    print(f"chatting with {model} (empty line or Ctrl-D to quit)", file=sys.stderr)
    while True:
        try:
            text = input(USER_PROMPT).strip()
        except EOFError:
            break
        if not text:
            break
        said = answer(lm, tokenizer, messages(history, text), s, sys.stdout)
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": said}]

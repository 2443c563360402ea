"""`tinymath chat` on a tiny local model: one-shot mode, the streamed text in a pseudo-terminal, reasoning styling."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import write_tiny_model

from tinymath import cli, paths
from tinymath.chat import DIM, RESET, USER_PROMPT, Sampling, ThinkStyle, load, messages, reply

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TOKENS = 12


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("chat") / "model", tiny_tokenizer)


@pytest.fixture(scope="module")
def greedy(model_dir):
    """The non-streamed greedy reply to a question: what every streamed output must equal."""
    model, tokenizer = load(model_dir)
    return lambda text: reply(model, tokenizer, messages([], text), Sampling(max_new_tokens=TOKENS))


def test_chat_prompt_answers_once_with_the_greedy_reply(model_dir, greedy, capsys):
    assert cli.main(["chat", "--model", str(model_dir), "--prompt", "What is 2 + 3?",
                     "--max-new-tokens", str(TOKENS)]) == 0
    expected = greedy("What is 2 + 3?")
    assert expected.strip() and capsys.readouterr().out == expected + "\n"


def test_chat_streams_in_a_terminal_what_greedy_generation_returns(model_dir, greedy):
    question = "What is 2 + 3?"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real CLI on the pseudo-terminal
        os.environ["PYTHONPATH"] = str(paths.REPO / "code")
        os.execv(sys.executable, [sys.executable, "-m", "tinymath", "chat", "--model", str(model_dir),
                                  "--max-new-tokens", str(TOKENS)])
    output = _read_until(fd, USER_PROMPT, 1)
    os.write(fd, (question + "\n").encode())
    output += _read_until(fd, USER_PROMPT, 1)
    os.write(fd, b"\x04")  # Ctrl-D: end of input
    output += _read_until(fd, None, 0)
    os.waitpid(pid, 0)
    text = ANSI_RE.sub("", output.replace("\r\n", "\n"))
    first = text.split(question + "\n", 1)[1].split(USER_PROMPT, 1)[0]
    assert first == greedy(question) + "\n"


def _read_until(fd: int, marker: str | None, count: int, timeout: float = 120) -> str:
    """Terminal output until `marker` has appeared `count` times (None: until the child closes it)."""
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker is not None and out.decode(errors="replace").count(marker) >= count:
            break
        if select.select([fd], [], [], 1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child exited
                break
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def test_chat_dims_reasoning_on_a_terminal_only():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    style = ThinkStyle(out, styled=True)
    for piece in ["<think>", "\nadd them", "</think>", "\nThe final answer is ", "<think>x"]:
        style.write(piece)
    assert out.getvalue() == (f"{DIM}<think>{RESET}{DIM}\nadd them{RESET}{DIM}</think>{RESET}"
                              f"\nThe final answer is {DIM}<think>{RESET}{DIM}x{RESET}")
    plain = io.StringIO()
    ThinkStyle(plain, styled=False).write("<think>a</think>b")
    assert plain.getvalue() == "<think>a</think>b"


@pytest.mark.parametrize("argv, message", [(["--max-new-tokens", "0"], "--max-new-tokens 0"),
                                           (["--temperature", "-1"], "--temperature -1.0")])
def test_chat_rejects_bad_sampling_in_one_line(model_dir, argv, message, capsys):
    assert cli.main(["chat", "--model", str(model_dir), "--prompt", "hi", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"tinymath: error: {message}")


def test_chat_stage_name_resolves_to_the_profiles_model(tmp_path, capsys):
    assert cli.main(["chat", "--model", "sft", "--profile", "cpu", "--runs", str(tmp_path), "--prompt", "hi"]) == 2
    assert capsys.readouterr().err.strip() == f"tinymath: error: model directory {tmp_path / 'cpu/sft/model'} not found"

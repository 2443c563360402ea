"""Two small stages used to test the runner without the real pipeline's cost."""

from __future__ import annotations

from pydantic import Field

from tinymath.config import Section
from tinymath.errors import UserError


class Config(Section):
    seed: int = 0
    lr: float = Field(default=1e-3, gt=0)
    words: list[str] = ["alpha", "beta"]
    fail: bool = False


def needs(cfg: Config) -> list[str]:
    return []


def main(cfg: Config, run) -> None:
    (run.dir / "words.txt").write_text(" ".join(cfg.words) + "\n")
    if cfg.fail:
        raise UserError("toy stage asked to fail")


class Downstream:
    """A stage reading the first one's output."""

    Config = Config

    @staticmethod
    def needs(cfg: Config) -> list[str]:
        return ["toy"]

    @staticmethod
    def main(cfg: Config, run) -> None:
        words = (run.input("toy") / "words.txt").read_text().split()
        (run.dir / "count.txt").write_text(f"{len(words)}\n")

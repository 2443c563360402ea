"""One run at a time per profile directory: an advisory `flock` on `runs/<profile>/.lock`.

The kernel releases the lock when its holder exits, however it exits, so a lock left by a killed process is simply
taken over; the file's text (PID and start time) only serves the message that a second run prints.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from tinymath.errors import UserError
from tinymath.log import logger

LOCK_FILE = ".lock"
_held: set[Path] = set()  # profile directories this process holds: nested stages do not lock twice


@contextmanager
def profile_lock(root: Path) -> Iterator[None]:
    root = Path(root).resolve()
    if root in _held:
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{root}: another tinymath run holds {path} ({_holder(fd) or 'holder unknown'}); "
                            "wait for it to finish or use another --runs directory") from None
        if left := _holder(fd):
            logger.warning("%s: taking over a lock left by a process that no longer runs (%s)", path, left)
        _write(fd, f"pid {os.getpid()}, started {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
        _held.add(root)
        try:
            yield
        finally:
            _held.discard(root)
            _write(fd, "")
    finally:
        os.close(fd)  # closing releases the flock


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode(errors="replace").strip()


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode())

"""The writer lock: one process at a time builds, updates or repairs an index.

Readers never take it (a search reads the catalog read-only and the derived files as they
are). The lock is a :class:`filelock.FileLock` on ``writer.lock`` that is never waited for:
a second writer stops at once with :class:`IndexLockedError`, naming the holder, which the
holder writes to ``writer.holder`` (a separate file, since a lock file's contents are the
lock library's business).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from models.errors import IndexLockedError

__all__ = ["writer_lock", "LOCK_FILE", "HOLDER_FILE"]

LOCK_FILE = "writer.lock"
HOLDER_FILE = "writer.holder"


def _holder(index_dir: Path) -> str:
    try:
        return (index_dir / HOLDER_FILE).read_text().strip() or "another process"
    except OSError:  # the holder has not written it yet, or has just let go
        return "another process"


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's writer lock, or raise :class:`IndexLockedError` at once."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(index_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLockedError(
            f"{index_dir} is being written by {_holder(index_dir)}; wait for it to finish, then run again"
        ) from None
    holder = index_dir / HOLDER_FILE
    try:
        holder.write_text(f"videoqa index (pid {os.getpid()})")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()

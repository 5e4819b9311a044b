"""How a file that cannot be indexed is reported, shared by the extraction and the writer.

A file fails alone, with a one-line reason, and the batch goes on; an error that every
file would meet (a missing model, a bad setting, an index built with other models) stops
the run. :func:`failure_reason` is the one place that tells the two apart.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from models.errors import MediaError, VideoQAError

__all__ = ["failure_reason", "one_line", "check_unchanged", "fatal_error"]

log = logging.getLogger(__name__)


def one_line(text: str, limit: int = 300) -> str:
    """An error message on one line (library messages can span several), not too long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_reason(exc: Exception, path: str, stage: str) -> str:
    """Why ``path`` failed in ``stage``, on one line; re-raises ``exc`` when it is not about this file.

    A :class:`MediaError` says what is wrong with the file; another
    :class:`VideoQAError` (a missing model, a mismatched index) would fail every file,
    so it is raised again and stops the run; anything else is a bug or a library failure
    on this file, reported with its class (and its traceback in the debug log).
    """
    if isinstance(exc, MediaError):
        return one_line(exc.problem)
    if isinstance(exc, VideoQAError):
        raise exc
    log.debug("%s failed in stage %s", path, stage, exc_info=exc)
    return one_line(f"{stage} failed: {type(exc).__name__}: {exc}")


def check_unchanged(path: Path, before: os.stat_result | tuple[int, int], now: os.stat_result | None = None) -> None:
    """Raise :class:`MediaError` when the file is no longer what was read at the start.

    Size, modification time and inode are compared, as ``make`` and ``rsync`` do: a file
    still being copied or recorded, or replaced meanwhile, must not be stored as a mix of
    its old and new bytes. It is recorded as failed, and the next run reads it again.
    ``before`` is a stat, or (size, mtime_ns) as a job carries them to another machine
    (where inode numbers mean nothing); ``now``: a stat just taken, if any.
    """
    if now is None:
        try:
            now = path.stat()
        except OSError as exc:
            raise MediaError(path, f"the file disappeared while it was being indexed ({exc.strerror or exc})") from exc
    if isinstance(before, os.stat_result):  # (a stat_result is a tuple too: test it first)
        size, mtime_ns = before.st_size, before.st_mtime_ns
        same_file = (now.st_ino, now.st_dev) == (before.st_ino, before.st_dev)
    else:
        size, mtime_ns = before
        same_file = True
    if (now.st_size, now.st_mtime_ns) == (size, mtime_ns) and same_file:
        return
    what = (f"it grew from {size} to {now.st_size} bytes" if now.st_size > size
            else f"its size went from {size} to {now.st_size} bytes" if now.st_size != size
            else "it was replaced" if not same_file else "it was written to")
    raise MediaError(path, f"the file changed while it was being indexed ({what}); index it again once it is complete")


def fatal_error(name: str, message: str) -> VideoQAError:
    """The error a worker reported, as the same class when models.errors has it (the CLI's exit code)."""
    import models.errors as errors

    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, VideoQAError) and cls is not MediaError:
        return cls(message)
    return VideoQAError(message)

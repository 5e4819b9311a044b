"""Reading video files: content ids, probing and audio decoding (PyAV)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from models.errors import MediaError

__all__ = ["VIDEO_EXTENSIONS", "MediaInfo", "display_path", "stat_file", "content_id", "probe", "decode_audio",
           "discover"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .mts .m2ts .3gp .ogv .vob".split()
)
SAMPLE_RATE = 16000


def display_path(path: Path | str) -> str:
    """The path as text that can be printed and stored: bytes that are not UTF-8 become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _os_problem(path: Path, exc: OSError) -> str:
    """An OS error on ``path`` in plain words."""
    if exc.errno == errno.ELOOP:
        return "cannot read the file (it is a symbolic link loop)"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"cannot read the file (broken symbolic link to {display_path(os.readlink(path))})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot read the file (permission denied)"
    return f"cannot read the file ({exc.strerror or exc})"


def stat_file(path: Path) -> os.stat_result:
    """``stat`` of a file that can be indexed: a readable, non-empty regular file (symlinks followed).

    Raises :class:`MediaError` saying in plain words what else it is. Checked before any
    byte is read: opening a named pipe would wait forever for a writer.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise MediaError(path, _os_problem(path, exc)) from exc
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(path, "is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a plain file")
        raise MediaError(path, f"not a video file (it is {kind})")
    if st.st_size == 0:
        raise MediaError(path, "the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise MediaError(path, "cannot read the file (permission denied)")
    return st


def content_id(path: Path, chunk: int = 1 << 20) -> str:
    """A hash of the file's bytes (BLAKE2b, 128 bits), read in chunks."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise MediaError(path, _os_problem(path, exc)) from exc
    return digest.hexdigest()


@dataclass(frozen=True)
class MediaInfo:
    duration: float
    fps: float
    width: int
    height: int
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    rotation: int = 0  # degrees the stored frames are turned to be shown upright (width, height: as shown)


def _iso_boxes(path: Path) -> list[bytes] | None:
    """The top-level box types of an MP4/MOV file (up to the end of the file or a damaged
    box), or None when the file does not start like one."""
    boxes: list[bytes] = []
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                head = fh.read(16)
                length, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if length == 1 and len(head) == 16:
                    length = int.from_bytes(head[8:16], "big")
                elif length == 0:
                    length = size - pos
                if length < 8 or not kind.isascii():
                    break
                boxes.append(kind)
                pos += length
    except OSError:
        return None
    return boxes if boxes and boxes[0] in (b"ftyp", b"wide", b"free", b"mdat", b"moov", b"skip") else None


def _open(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        boxes = _iso_boxes(path)
        if boxes is not None and b"ftyp" in boxes and b"moov" not in boxes:
            # What a recording that was cut off (or a copy that stopped early) looks like:
            # the index of an MP4 is usually written last.
            raise MediaError(path, "the file is truncated or damaged (moov atom not found)") from exc
        if isinstance(exc, av.error.InvalidDataError):
            raise MediaError(path, "not a readable video file (its format is not recognised)") from exc
        raise MediaError(path, f"not a readable video file ({exc.strerror or type(exc).__name__})") from exc
    except OSError as exc:
        raise MediaError(path, _os_problem(path, exc)) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise MediaError(path, f"not a readable video file ({type(exc).__name__})") from exc


def _data_end(container, duration: float) -> float | None:
    """Where the file's packets really end, looking only at its last seconds (None: no packet there).

    A file cut short (an interrupted copy or download of an MP4 whose index comes first)
    still announces its full duration, but the packets of its last seconds are missing.
    A file that cannot seek is taken at its word.
    """
    import av

    span = min(2.0, duration * 0.25)
    end: float | None = None
    try:
        container.seek(int((duration - span) * 1_000_000), backward=True)
    except (av.error.FFmpegError, OSError):
        return duration
    try:
        for packet in container.demux():
            if packet.pts is None or not packet.size or packet.time_base is None:
                continue
            t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            end = t if end is None else max(end, t)
    except av.error.FFmpegError:
        pass  # what was read so far tells
    return end


def _rotation(container, stream) -> int:
    """The display rotation of the first frame (phone videos), in degrees; 0 if none or undecodable."""
    import av

    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation or 0)) % 360
    except (av.error.FFmpegError, AttributeError):
        pass
    return 0


def probe(path: Path) -> MediaInfo:
    """Duration, frame rate, size (as shown) and streams of a file.

    Raises :class:`MediaError`, saying in plain words what is wrong, when it is no video
    or is cut short.
    """
    import av

    stat_file(path)
    with _open(path) as container:
        vs = container.streams.video[0] if container.streams.video else None
        aus = container.streams.audio[0] if container.streams.audio else None
        if vs is None:
            raise MediaError(path, "not a video file (no video stream; it has only audio)" if aus is not None
                             else "not a video file (no video stream)")
        duration = 0.0
        if container.duration:
            duration = container.duration / 1_000_000
        elif vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        duration = max(duration, 0.0)
        if duration > 0:
            end = _data_end(container, duration)
            if end is None or end < duration - min(1.0, duration * 0.25):
                where = "no data near its end" if end is None else f"its data ends at {end:.1f} s"
                raise MediaError(path, f"the file is truncated or damaged ({where}; it says it lasts {duration:.1f} s)")
            with contextlib.suppress(av.error.FFmpegError, OSError):
                container.seek(0)
        rotation = _rotation(container, vs)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(0)
        width, height = vs.codec_context.width, vs.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        return MediaInfo(
            duration=duration,
            fps=float(rate) if rate else 0.0,
            width=width,
            height=height,
            has_audio=aus is not None,
            video_codec=vs.codec_context.name,
            audio_codec=aus.codec_context.name if aus is not None else None,
            rotation=rotation,
        )


def decode_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first audio stream as mono float32 at ``sample_rate``; empty when the file has none.

    A video without audio is normal here, not an error (faster-whisper's own
    ``decode_audio`` raises ``IndexError`` on such a file).
    """
    import av

    with _open(path) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(path, f"the audio stream cannot be decoded ({exc})") from exc
            # A damaged tail: keep what decoded, say so.
            log.warning("%s: audio decoding stopped early: %s", path, exc)
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder (symlinks followed); False when that cannot be told."""
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except (OSError, ValueError):  # a symlink loop, a broken link, no permission: the indexer reports it
        return False


def discover(paths: Iterable[Path], extensions: frozenset[str] = VIDEO_EXTENSIONS) -> Iterator[Path]:
    """Files named on the command line, and video files found recursively in folders.

    A file named explicitly is returned whatever its extension (probing decides);
    folders are walked in sorted order and symlink loops are not followed twice.
    Entries that cannot be examined (a symlink loop, no permission) are returned when
    named like a video, so that the indexer records why they could not be read.
    """
    seen: set[Path] = set()
    for root in paths:
        root = Path(root)
        if _is_dir(root):
            visited: set[tuple[int, int]] = set()
            stack = [root]
            while stack:
                folder = stack.pop()
                try:
                    st = folder.stat()
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in visited:
                    continue
                visited.add((st.st_dev, st.st_ino))
                try:
                    entries = sorted(folder.iterdir())
                except OSError as exc:
                    log.warning("cannot list %s: %s", folder, exc)
                    continue
                subdirs = []
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if _is_dir(entry):
                        if entry.suffix.lower() in extensions:
                            yield entry  # a directory named like a video: probing reports it
                        else:
                            subdirs.append(entry)
                    elif entry.suffix.lower() in extensions:
                        key = entry.absolute()
                        if key not in seen:
                            seen.add(key)
                            yield entry
                stack.extend(reversed(subdirs))
        else:
            key = root.absolute()
            if key not in seen:
                seen.add(key)
                yield root

"""Reading video files: content ids, probing and audio decoding (PyAV)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from models.errors import MediaError

__all__ = ["VIDEO_EXTENSIONS", "MediaInfo", "content_id", "probe", "decode_audio", "discover"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .mts .m2ts .3gp .ogv .vob".split()
)
SAMPLE_RATE = 16000


def content_id(path: Path, chunk: int = 1 << 20) -> str:
    """A hash of the file's bytes (BLAKE2b, 128 bits), read in chunks."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise MediaError(path, f"cannot read the file ({exc.strerror or exc})") from exc
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


def _open(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(path, f"not a readable video file ({type(exc).__name__}: {exc})") from exc


def probe(path: Path) -> MediaInfo:
    """Duration, frame rate, size and streams of a file; raises :class:`MediaError` if it is no video."""
    if path.is_dir():
        raise MediaError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise MediaError(path, "the file is empty (0 bytes)")
    with _open(path) as container:
        vs = container.streams.video[0] if container.streams.video else None
        aus = container.streams.audio[0] if container.streams.audio else None
        if vs is None:
            raise MediaError(path, "has no video stream")
        duration = 0.0
        if container.duration:
            duration = container.duration / 1_000_000
        elif vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(0)
        return MediaInfo(
            duration=max(duration, 0.0),
            fps=float(rate) if rate else 0.0,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            has_audio=aus is not None,
            video_codec=vs.codec_context.name,
            audio_codec=aus.codec_context.name if aus is not None else None,
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


def discover(paths: Iterable[Path], extensions: frozenset[str] = VIDEO_EXTENSIONS) -> Iterator[Path]:
    """Files named on the command line, and video files found recursively in folders.

    A file named explicitly is returned whatever its extension (probing decides);
    folders are walked in sorted order and symlink loops are not followed twice.
    """
    seen: set[Path] = set()
    for root in paths:
        root = Path(root)
        if root.is_dir():
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
                    if entry.is_dir():
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

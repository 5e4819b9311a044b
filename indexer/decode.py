"""One PyAV decode pass per video, feeding every frame consumer at the rate it asks for.

Keyframes, on-screen text and the vision-language model's frames all look at the same
video; decoding it once for all of them (rather than once each, with its own library)
saves most of the cost, since decoding is the expensive part. Each consumer is a
:class:`FrameTap`: a rate, a width, and a function that takes (time, BGR frame).

Two cheap ways to decode less, both handled by FFmpeg's decoder:

* When every tap is content with the stream's key frames (keyframes alone, with key
  frames close together), only key frames are decoded (``skip_frame = NONKEY``). Encoders
  put key frames at scene cuts and at least every GOP, so short GOPs are sampled densely
  enough. Their spacing is read from the packets first (demuxing costs little).
* Otherwise every reference frame is decoded but non-reference frames are skipped
  (``skip_frame = NONREF``): at a rate of a few frames per second, a frame one or two
  frames away serves as well. With x264's default B-frames that is about half the frames.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.errors import MediaError

__all__ = ["FrameTap", "DecodeStats", "decode_pass", "key_frame_times", "decode_passes"]

log = logging.getLogger(__name__)

_PASSES: dict[str, int] = {}  # path -> decode passes in this process (what benchmarks and tests check)
_PASSES_LOCK = threading.Lock()
_ROTATE = {90: "ROTATE_90_COUNTERCLOCKWISE", -90: "ROTATE_90_CLOCKWISE", 270: "ROTATE_90_CLOCKWISE",
           -270: "ROTATE_90_COUNTERCLOCKWISE", 180: "ROTATE_180", -180: "ROTATE_180"}


def decode_passes(path: Path | str) -> int:
    """How many decode passes this process has made over ``path``."""
    with _PASSES_LOCK:
        return _PASSES.get(str(Path(path).resolve()), 0)


@dataclass
class FrameTap:
    """What one frame consumer asks of the decode pass.

    ``consume(t, frame)`` gets upright BGR frames ``width`` pixels wide as shown (None: full
    size), the first decoded frame at or after each multiple of ``1 / fps`` seconds.
    ``key_frames_gap`` > 0: the stream's key frames alone will do when no two are more than
    that many seconds apart (then every key frame is delivered, whatever ``fps``).
    """

    name: str
    fps: float
    consume: Callable[[float, np.ndarray], None]
    width: int | None = None
    key_frames_gap: float = 0.0
    delivered: int = field(default=0, init=False)


@dataclass
class DecodeStats:
    """What a pass did: its mode, how many frames FFmpeg decoded, how many each tap got, seconds."""

    mode: str  # "key frames" | "reference frames" | "every frame"
    decoded: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    duration: float = 0.0


def key_frame_times(path: Path) -> tuple[list[float], float]:
    """(times of the video stream's key packets, duration) from the demuxer alone (nothing decoded)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base or 0)
        times = [float(p.pts * tb) for p in container.demux(stream) if p.is_keyframe and p.pts is not None]
        return sorted(times), _duration(container)


def _open(path: Path):
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(path, f"PyAV cannot open the file ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise MediaError(path, "the file has no video stream")
    return container


def _duration(container) -> float:
    return container.duration / 1_000_000 if container.duration else 0.0


def _keys_close(times: Sequence[float], duration: float, gap: float) -> bool:
    """Key frames at most ``gap`` seconds apart, from the start to the end (a quarter second of slack
    lets a GOP of exactly ``gap`` seconds through)."""
    if not times:
        return False
    limit = gap + 0.25
    edges = [0.0, *times, max(duration, times[-1])]
    return all(b - a <= limit for a, b in itertools.pairwise(edges))


def _shown_size(frame, width: int | None) -> tuple[int, int]:
    """(width, height) to convert a frame to, so that it is ``width`` wide once turned upright."""
    quarter = frame.rotation in (90, -90, 270, -270)
    fw, fh = frame.width, frame.height
    if width is None:
        return fw, fh
    if quarter:  # the stored height is the shown width
        h = min(width, fh)
        return max(2, round(fw * h / fh / 2) * 2), h
    w = min(width, fw)
    return w, max(2, round(fh * w / fw / 2) * 2)


def decode_pass(path: Path, taps: Sequence[FrameTap], *, skip_nonref: bool = True) -> DecodeStats:
    """Decode ``path`` once and hand each tap its frames; raises :class:`MediaError` when no frame decodes.

    A decoding error after some frames (a damaged end) stops the pass with a warning: the
    taps keep what they got.
    """
    import av
    import cv2

    path = Path(path)
    t0 = time.perf_counter()
    key_only = bool(taps) and all(t.key_frames_gap > 0 for t in taps)
    if key_only:
        times, duration = key_frame_times(path)
        key_only = _keys_close(times, duration, min(t.key_frames_gap for t in taps))
    with _PASSES_LOCK:
        key = str(path.resolve())
        _PASSES[key] = _PASSES.get(key, 0) + 1
    due = [0.0] * len(taps)
    stats = DecodeStats("key frames" if key_only else "reference frames" if skip_nonref else "every frame")
    with _open(path) as container:
        stream = container.streams.video[0]
        stats.duration = _duration(container)
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONKEY" if key_only else "NONREF" if skip_nonref else "DEFAULT"
        last_t, last_frame = -1.0, None
        given = [-1.0] * len(taps)  # time of the last frame each tap got

        def give(i: int, t: float, frame, converted: dict[int | None, np.ndarray]) -> None:
            tap = taps[i]
            if tap.width not in converted:
                w, h = _shown_size(frame, tap.width)
                bgr = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
                if frame.rotation in _ROTATE:
                    bgr = cv2.rotate(bgr, getattr(cv2, _ROTATE[frame.rotation]))
                converted[tap.width] = bgr
            tap.consume(t, converted[tap.width])
            tap.delivered += 1
            given[i] = t

        try:
            for frame in container.decode(stream):
                stats.decoded += 1
                t = float(frame.time) if frame.time is not None else last_t + 1e-3
                last_t, last_frame = t, frame
                converted: dict[int | None, np.ndarray] = {}
                for i, tap in enumerate(taps):
                    if not key_only and t + 1e-6 < due[i]:
                        continue
                    # The next due time keeps to the schedule unless this frame came a whole step late.
                    step = 1.0 / tap.fps if tap.fps > 0 else 0.0
                    due[i] = due[i] + step if t < due[i] + step else t + step
                    give(i, t, frame, converted)
        except av.error.FFmpegError as exc:
            if stats.decoded == 0:
                raise MediaError(path, f"no video frame could be decoded ({exc})") from exc
            log.warning("%s: decoding stopped at %.1f s (%s); keeping what was read", path, last_t, exc)
        if last_frame is not None and not key_only:
            # The last frame too, when it is at least half a step after the last one given: a
            # change (a cut, a caption) in the last fraction of a second is not lost.
            converted = {}
            for i, tap in enumerate(taps):
                if tap.fps > 0 and last_t - given[i] >= 0.5 / tap.fps:
                    give(i, last_t, last_frame, converted)
    if stats.decoded == 0:
        raise MediaError(path, "no video frame could be decoded")
    stats.delivered = {tap.name: tap.delivered for tap in taps}
    stats.seconds = time.perf_counter() - t0
    return stats

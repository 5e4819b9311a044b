"""Keyframes by frame differences (OpenCV), with JPEG thumbnails.

The reference method (DESIGN.md section 1.2): sample frames at a low rate, convert
them to small grayscale images, take the mean absolute difference to the previous
sample, and keep the frames where it is above a threshold, at least ``min_gap``
seconds apart, at most ``max_keyframes`` of them (the largest differences win). The
first frame is always kept. Only the kept frames are turned into JPEGs, so memory
stays bounded whatever the length of the video.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.schema import Keyframe
from models.errors import MediaError
from models.frames import iter_frames

__all__ = ["KeyframeOptions", "extract_keyframes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyframeOptions:
    sample_fps: float = 2.0  # frames looked at per second
    threshold: float = 12.0  # mean absolute grayscale difference (0-255) that marks a change
    min_gap: float = 1.0  # seconds between two keyframes
    max_keyframes: int = 48
    diff_width: int = 96  # width of the grayscale image that is differenced
    thumb_width: int = 320
    jpeg_quality: int = 80
    # Fast path: when the stream's key frames are at most this many seconds apart, only key
    # frames are decoded and differenced (0 turns the fast path off). Encoders put key frames
    # at scene cuts and at least every GOP, so short GOPs sample the video densely enough;
    # longer GOPs fall back to decoding every frame.
    max_key_gap: float = 2.0


def _thumbnail(frame: np.ndarray, opts: KeyframeOptions) -> tuple[bytes, int, int]:
    import cv2

    h, w = frame.shape[:2]
    if w > opts.thumb_width:
        nh = max(1, round(h * opts.thumb_width / w))
        frame = cv2.resize(frame, (opts.thumb_width, nh), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, opts.jpeg_quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid BGR image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes(), frame.shape[1], frame.shape[0]


def _prune(kept: list[Keyframe], limit: int) -> list[Keyframe]:
    """Keep the first keyframe and the ``limit - 1`` largest differences, in time order."""
    if len(kept) <= limit:
        return kept
    first, rest = kept[0], sorted(kept[1:], key=lambda k: k.score, reverse=True)[: limit - 1]
    return [first] + sorted(rest, key=lambda k: k.t)


def _key_frames(path: Path, max_gap: float, width: int = 320) -> list[tuple[float, np.ndarray]] | None:
    """(time, upright BGR frame ``width`` pixels wide) of the stream's key frames only, or None
    when they are too sparse.

    Decoding key frames only (``skip_frame = NONKEY``) costs a small fraction of decoding
    every frame. It is used only when no two key frames are more than ``max_gap`` seconds
    apart, the first one included (a long GOP would miss changes); a quarter of a second
    of slack lets a GOP of exactly ``max_gap`` seconds through.
    """
    import av
    import cv2

    rotate = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, -90: cv2.ROTATE_90_CLOCKWISE, 270: cv2.ROTATE_90_CLOCKWISE,
              -270: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, -180: cv2.ROTATE_180}
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    with container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        duration = container.duration / 1_000_000 if container.duration else 0.0
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONKEY"
        frames: list[tuple[float, np.ndarray]] = []
        last, limit = 0.0, max_gap + 0.25
        try:
            for frame in container.decode(stream):
                t = float(frame.time or 0.0)
                if t - last > limit:
                    return None
                # Scaled while converted (swscale): the thumbnail and the difference need no more.
                # ``width`` is the width as shown: the stored height when the frame is turned a quarter.
                if frame.rotation in (90, -90, 270, -270):
                    h = min(width, frame.height)
                    w = max(2, round(frame.width * h / frame.height / 2) * 2)
                else:
                    w = min(width, frame.width)
                    h = max(2, round(frame.height * w / frame.width / 2) * 2)
                bgr = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
                if frame.rotation in rotate:
                    bgr = cv2.rotate(bgr, rotate[frame.rotation])
                frames.append((t, bgr))
                last = t
        except av.error.FFmpegError:
            return None
    if not frames or (duration and duration - last > limit):
        return None
    return frames


def extract_keyframes(
    path: Path,
    opts: KeyframeOptions = KeyframeOptions(),
) -> list[Keyframe]:
    """Keyframes of a video, in time order (key frames only when the GOPs are short)."""
    import cv2

    samples = _key_frames(path, opts.max_key_gap, opts.thumb_width) if opts.max_key_gap > 0 else None
    prev: np.ndarray | None = None
    kept: list[Keyframe] = []
    for t, frame in samples if samples is not None else iter_frames(path, opts.sample_fps):
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (opts.diff_width, max(1, round(h * opts.diff_width / w))),
                           interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if prev is None:
            jpeg, tw, th = _thumbnail(frame, opts)
            kept.append(Keyframe(t=t, score=0.0, jpeg=jpeg, width=tw, height=th))
        elif gray.shape == prev.shape:
            diff = float(cv2.absdiff(gray, prev).mean())
            if diff >= opts.threshold:
                last = kept[-1]
                if t - last.t >= opts.min_gap:
                    jpeg, tw, th = _thumbnail(frame, opts)
                    kept.append(Keyframe(t=t, score=diff, jpeg=jpeg, width=tw, height=th))
                elif len(kept) > 1 and diff > last.score:
                    # Two changes closer than min_gap: the larger one stands for both.
                    jpeg, tw, th = _thumbnail(frame, opts)
                    kept[-1] = Keyframe(t=t, score=diff, jpeg=jpeg, width=tw, height=th)
                if len(kept) > 2 * opts.max_keyframes:
                    kept = _prune(kept, opts.max_keyframes)
        prev = gray
    if not kept:
        raise MediaError(path, "no video frame could be decoded")
    return _prune(kept, opts.max_keyframes)

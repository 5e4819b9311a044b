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


def extract_keyframes(
    path: Path,
    opts: KeyframeOptions = KeyframeOptions(),
) -> list[Keyframe]:
    """Keyframes of a video, in time order."""
    import cv2

    prev: np.ndarray | None = None
    kept: list[Keyframe] = []
    for t, frame in iter_frames(path, opts.sample_fps):
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

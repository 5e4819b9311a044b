"""Keyframes by frame differences (OpenCV) on frames of the shared decode pass, with JPEG thumbnails.

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

from indexer.decode import FrameTap, decode_pass
from indexer.schema import Keyframe
from models.errors import MediaError

__all__ = ["KeyframeOptions", "KeyframeCollector", "extract_keyframes"]

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
    # longer GOPs are decoded frame by frame (non-reference frames skipped).
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


class KeyframeCollector:
    """The keyframe consumer of a decode pass (:func:`indexer.decode.decode_pass`).

    Takes frames at ``sample_fps`` (``thumb_width`` pixels wide), differences them and
    keeps what changed; :meth:`result` gives the keyframes once the pass is over.
    """

    def __init__(self, opts: KeyframeOptions = KeyframeOptions()):
        self.opts = opts
        self._prev: np.ndarray | None = None
        self._kept: list[Keyframe] = []

    def tap(self) -> FrameTap:
        return FrameTap("keyframes", self.opts.sample_fps, self.consume, width=self.opts.thumb_width,
                        key_frames_gap=self.opts.max_key_gap)

    def consume(self, t: float, frame: np.ndarray) -> None:
        import cv2

        opts, kept = self.opts, self._kept
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (opts.diff_width, max(1, round(h * opts.diff_width / w))),
                           interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        prev, self._prev = self._prev, gray
        if prev is None:
            jpeg, tw, th = _thumbnail(frame, opts)
            kept.append(Keyframe(t=t, score=0.0, jpeg=jpeg, width=tw, height=th))
            return
        if gray.shape != prev.shape:
            return
        diff = float(cv2.absdiff(gray, prev).mean())
        if diff < opts.threshold:
            return
        last = kept[-1]
        if t - last.t >= opts.min_gap:
            jpeg, tw, th = _thumbnail(frame, opts)
            kept.append(Keyframe(t=t, score=diff, jpeg=jpeg, width=tw, height=th))
        elif len(kept) > 1 and diff > last.score:
            # Two changes closer than min_gap: the larger one stands for both.
            jpeg, tw, th = _thumbnail(frame, opts)
            kept[-1] = Keyframe(t=t, score=diff, jpeg=jpeg, width=tw, height=th)
        if len(kept) > 2 * opts.max_keyframes:
            self._kept = _prune(kept, opts.max_keyframes)

    def result(self, path: Path) -> list[Keyframe]:
        if not self._kept:
            raise MediaError(path, "no video frame could be decoded")
        return _prune(self._kept, self.opts.max_keyframes)


def extract_keyframes(path: Path, opts: KeyframeOptions = KeyframeOptions()) -> list[Keyframe]:
    """Keyframes of a video, in time order, from a decode pass of their own (key frames only when
    the GOPs are short). Indexing shares one pass between all frame consumers instead."""
    collector = KeyframeCollector(opts)
    decode_pass(path, [collector.tap()])
    return collector.result(path)

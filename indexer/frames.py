"""The frame stage of indexing: one decode pass feeding keyframes, on-screen text and the describer.

:func:`decode_frames` builds the consumers the profile and settings ask for, runs
:func:`indexer.decode.decode_pass` once, and collects what each made.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.decode import DecodeStats, FrameTap, decode_pass
from indexer.keyframes import KeyframeCollector, KeyframeOptions
from indexer.schema import Keyframe, Moment
from indexer.screen import ScreenOptions, ScreenReader
from models.errors import ConfigError, VideoQAError
from models.frames import fit_pixels
from models.hub import ModelHub
from models.types import TextReader

__all__ = ["Frames", "decode_frames", "text_reader"]

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # reader problems already reported (once per process, not once per video)


@dataclass
class Frames:
    """What the decode pass gave: keyframes (screen thumbnails included), screen moments, the describer's
    frames (time, RGB), seconds spent reading text, and the pass's numbers."""

    keyframes: list[Keyframe] = field(default_factory=list)
    screen: list[Moment] = field(default_factory=list)
    vl_frames: list[tuple[float, np.ndarray]] = field(default_factory=list)
    screen_seconds: float = 0.0
    stats: DecodeStats | None = None
    screen_stats: Any = None


def text_reader(hub: ModelHub, opts: ScreenOptions) -> TextReader | None:
    """The hub's text reader, loaded, or None (with one clear warning) when it is off, missing or broken:
    on-screen text is then skipped and indexing goes on."""
    reader = hub.text_reader if opts.enabled else None
    if reader is None:
        return None
    try:
        opts.check(reader)
        reader.load()
    except ConfigError:
        raise  # a bad setting: every video would have it
    except (VideoQAError, ImportError, OSError, RuntimeError) as exc:
        message = f"on-screen text is skipped: the text reader cannot be loaded ({exc})"
        if message not in _WARNED:
            _WARNED.add(message)
            log.warning(message)
        return None
    return reader


class _Timed:
    """Adds the seconds a consumer spends to a counter (its share of the shared pass)."""

    def __init__(self, consume):
        self.consume, self.seconds = consume, 0.0

    def __call__(self, t: float, frame: np.ndarray) -> None:
        t0 = time.perf_counter()
        try:
            self.consume(t, frame)
        finally:
            self.seconds += time.perf_counter() - t0


def decode_frames(path: Path, hub: Any, keyframes: KeyframeOptions | None = None,
                  screen: ScreenOptions | None = None, duration: float = 0.0, *,
                  describe_window: float = 0.0) -> Frames:
    """Decode ``path`` once for every frame consumer the hub and options ask for (default options: None)."""
    keyframes, screen = keyframes or KeyframeOptions(), screen or ScreenOptions()
    collector = KeyframeCollector(keyframes)
    taps: list[FrameTap] = [collector.tap()]
    reader = text_reader(hub, screen)
    screen_reader = timed = None
    if reader is not None:
        screen_reader = ScreenReader(reader, screen, path)
        tap = screen_reader.tap()
        timed = _Timed(tap.consume)
        tap.consume = timed
        taps.append(tap)
    vl_frames: list[tuple[float, np.ndarray]] = []
    describer = hub.describer
    if describer is not None:
        taps.append(_describer_tap(describer, duration, describe_window, vl_frames))
    stats = decode_pass(path, taps)
    out = Frames(collector.result(path), vl_frames=vl_frames, stats=stats)
    if screen_reader is not None:
        out.screen, thumbs = screen_reader.result()
        out.screen_seconds, out.screen_stats = round(timed.seconds, 4), screen_reader.stats
        known = {round(k.t, 3) for k in out.keyframes}
        out.keyframes = sorted(out.keyframes + [k for k in thumbs if round(k.t, 3) not in known], key=lambda k: k.t)
    log.debug("%s: %s pass, %d frames decoded, %s", path, stats.mode, stats.decoded, stats.delivered)
    return out


def _describer_tap(describer: Any, duration: float, window: float,
                   into: list[tuple[float, np.ndarray]]) -> FrameTap:
    """The vision-language model's frames at its rate and size. Describing the whole video only, it sees at
    most ``max_frames`` of them, so only those many are kept (memory stays bounded)."""
    import cv2

    fps = float(getattr(describer, "fps", 1.0))
    max_frames = int(getattr(describer, "max_frames", 64))
    max_pixels = int(getattr(describer, "max_pixels", 360 * 420))
    if window <= 0 and duration > 0:
        fps = min(fps, max_frames / duration)

    def keep(t: float, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        nw, nh = fit_pixels(w, h, max_pixels)
        if (nw, nh) != (w, h):
            frame = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        into.append((t, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))

    return FrameTap("describer", fps, keep)

"""Frames sampled from a video at a fixed rate (OpenCV), shared by keyframes and the vision models."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from models.errors import MediaError

__all__ = ["iter_frames", "sample_frames", "fit_pixels"]


def iter_frames(path: Path, fps: float, start: float = 0.0,
                end: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, BGR frame) about ``fps`` times per second between ``start`` and ``end``.

    Every frame is decoded (``grab``) but only the sampled ones are converted
    (``retrieve``), which is where most of the cost is. OpenCV applies the rotation
    flag of phone videos, so frames come out upright.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MediaError(path, "OpenCV cannot open the video stream")
    try:
        if start > 0:
            cap.set(cv2.CAP_PROP_POS_MSEC, start * 1000.0)
        step = 1.0 / fps
        next_t = start
        first = True
        while cap.grab():
            t = max(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, 0.0)
            if end is not None and t > end:
                break
            if t + 1e-6 < next_t and not first:
                continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                continue
            first = False
            next_t = t + step
            yield t, frame
    finally:
        cap.release()


def fit_pixels(width: int, height: int, max_pixels: int, multiple: int = 1) -> tuple[int, int]:
    """The largest same-aspect size with at most ``max_pixels`` pixels, sides a multiple of ``multiple``."""
    scale = min(1.0, (max_pixels / float(width * height)) ** 0.5)
    w = max(multiple, int(width * scale) // multiple * multiple)
    h = max(multiple, int(height * scale) // multiple * multiple)
    return w, h


def sample_frames(path: Path, fps: float, *, start: float = 0.0, end: float | None = None, max_frames: int = 64,
                  max_pixels: int | None = None) -> tuple[list[float], list[np.ndarray]]:
    """RGB frames at ``fps`` (at most ``max_frames``, spread evenly), shrunk to ``max_pixels``."""
    import cv2

    times, frames = [], []
    for t, frame in iter_frames(path, fps, start, end):
        if max_pixels:
            h, w = frame.shape[:2]
            nw, nh = fit_pixels(w, h, max_pixels)
            if (nw, nh) != (w, h):
                frame = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        times.append(t)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    if len(frames) > max_frames:
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        times, frames = [times[i] for i in keep], [frames[i] for i in keep]
    return times, frames

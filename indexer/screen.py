"""On-screen text: screen moments from frames of the shared decode pass and a text reader (OCR).

Captions, slides, signs and scoreboards often appear while the picture barely changes,
so keyframes are not enough: frames are sampled at a low rate (``sample_fps``) and read
where the text may have changed:

1. a frame that is almost the same as the last one looked at (a small grayscale copy
   differs by less than ``still_threshold``) keeps the text it had: nothing runs;
2. otherwise the detector looks at a small copy (``coarse_side`` pixels): when it finds the
   boxes it found last time and the lines read last time have the same ink (text pixels)
   where they were, the text has not changed and nothing more runs;
3. otherwise the detector finds the text boxes on a larger copy (the reader's own size);
   a box where the last frame had one, with the same ink in it, keeps its text; only new
   or changed boxes are recognized.

The same line seen over consecutive samples (at most ``max_missed`` samples missing, its
text alike) becomes one track with the times it was first and last seen; lines that
appear and go together (a slide, a two-line caption) make one ``screen`` moment, with a
thumbnail of the frame where they were first seen; numbers alone (a counter, a clock) only
join such a moment. A frame the reader fails on is
logged and skipped; the others go on.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from indexer.analysis import CJK
from indexer.decode import FrameTap
from indexer.schema import Keyframe, Moment
from models.errors import ConfigError
from models.types import Box, TextLine, TextReader

__all__ = ["ScreenOptions", "ScreenReader", "SCRIPTS", "line_language"]

log = logging.getLogger(__name__)

# The letters of each language the readers know; a line without letters (a score, a clock) is kept.
SCRIPTS = {"zh": re.compile(f"[{CJK}]"), "en": re.compile(r"[A-Za-z]")}
_LETTER = re.compile(r"[^\W\d_]")
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class ScreenOptions:
    enabled: bool = True
    sample_fps: float = 1.0  # frames looked at per second
    min_confidence: float = 0.75  # lines read with less confidence are dropped
    languages: tuple[str, ...] = ("zh", "en")  # keep lines written in these languages (or without letters)
    still_threshold: float = 1.5  # mean grayscale difference (0-255) of a 160-px copy under which nothing is read
    coarse_side: int = 320  # longest side of the copy on which a first, cheap detection looks for changed text
    box_threshold: float = 0.08  # share of a box's ink pixels that may differ while its text is kept
    max_missed: int = 1  # samples a line may be missing (a misread, a flash) and still be the same line
    similar: float = 0.8  # text similarity (0-1) of two readings of the same line
    thumb_width: int = 320

    def check(self, reader: TextReader) -> None:
        """A clear error for settings no reader can follow."""
        if self.sample_fps <= 0:
            raise ConfigError(f"screen_fps must be above 0, got {self.sample_fps}")
        unknown = [lang for lang in self.languages if lang not in SCRIPTS or lang not in reader.languages]
        if unknown or not self.languages:
            raise ConfigError(f"invalid screen_languages {','.join(self.languages)!r}: the {reader.backend_name} "
                              f"text reader reads {','.join(reader.languages)}")


def line_language(text: str) -> str | None:
    """zh when the line has Chinese characters, en when it has Latin letters, else None."""
    for lang, script in SCRIPTS.items():
        if script.search(text):
            return lang
    return None


def _key(text: str) -> str:
    return _SPACE.sub("", text).casefold()


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _bounds(box: Box) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    return min(xs), min(ys), max(xs), max(ys)


@dataclass
class _Track:
    text: str
    confidence: float
    first: float
    last: float
    top: float
    bounds: tuple[float, float, float, float]
    thumb: Keyframe = field(repr=False)


@dataclass
class ScreenStats:
    sampled: int = 0
    still: int = 0  # frames skipped as unchanged
    coarse: int = 0  # frames the detector looked at in small
    detected: int = 0  # frames the detector ran on in full
    recognized: int = 0  # lines recognized
    reused: int = 0  # lines whose box had not changed
    failed: int = 0  # frames the reader failed on


class ScreenReader:
    """The on-screen text consumer of a decode pass; :meth:`result` gives screen moments and thumbnails."""

    def __init__(self, reader: TextReader, opts: ScreenOptions | None = None, path: Path | str = ""):
        opts = opts or ScreenOptions()
        opts.check(reader)
        self.reader, self.opts, self.path = reader, opts, str(path)
        self.stats = ScreenStats()
        self._small: np.ndarray | None = None  # the last frame looked at, small and gray
        self._lines: list[tuple[TextLine, np.ndarray]] = []  # its lines with their boxes' pixels
        self._open: list[_Track] = []
        self._done: list[_Track] = []
        self._end = 0.0  # the last frame's time
        self._coarse: list[tuple[float, float, float, float]] | None = None  # boxes of the last coarse look

    def tap(self) -> FrameTap:
        return FrameTap("screen", self.opts.sample_fps, self.consume)

    # -- reading -------------------------------------------------------------------------
    def consume(self, t: float, frame: np.ndarray) -> None:
        import cv2

        self.stats.sampled += 1
        self._end = max(self._end, t)
        h, w = frame.shape[:2]
        small = cv2.cvtColor(cv2.resize(frame, (160, max(1, round(h * 160 / w))), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_BGR2GRAY)
        if self._small is not None and small.shape == self._small.shape and \
                float(cv2.absdiff(small, self._small).mean()) < self.opts.still_threshold:
            self.stats.still += 1
            self._seen(t, [line for line, _ in self._lines], frame)
            return
        try:
            self._read(frame)
        except Exception as exc:  # this frame only: the reader may choke on one picture
            self.stats.failed += 1
            log.warning("%s: text reader failed on the frame at %.1f s (%s: %s); the other frames go on",
                        self.path or "video", t, type(exc).__name__, exc)
            self._small, self._lines, self._coarse = None, [], None
            self._close(t)
            return
        self._small = small  # _read set self._lines
        self._seen(t, [line for line, _ in self._lines], frame)

    def _read(self, frame: np.ndarray) -> list[TextLine]:
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self._unchanged(frame, gray):
            return [line for line, _ in self._lines]
        boxes = self.reader.detect(frame)
        self.stats.detected += 1
        kept: list[tuple[TextLine, np.ndarray]] = []
        to_read: list[tuple[Box, np.ndarray]] = []
        for box in boxes:
            pixels = _pixels(gray, box)
            old = self._same_box(box, gray)
            if old is not None:
                kept.append((TextLine(old.text, box, old.confidence), pixels))
                self.stats.reused += 1
            else:
                to_read.append((box, pixels))
        if to_read:
            read = self.reader.read(frame, [b for b, _ in to_read])
            self.stats.recognized += len(to_read)
            pixels_of = {b: p for b, p in to_read}
            kept += [(line, pixels_of.get(line.box, _pixels(gray, line.box))) for line in read]
        self._lines = sorted(kept, key=lambda lp: (lp[0].bounds[1], lp[0].bounds[0]))
        return [line for line, _ in self._lines]

    def _unchanged(self, frame: np.ndarray, gray: np.ndarray) -> bool:
        """The text has not changed: a detection on a copy ``coarse_side`` pixels wide finds the boxes it
        found last time, and the lines read last time still have the same ink. A quarter of the pixels of
        the full detection, so most frames of a moving picture cost only this."""
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, self.opts.coarse_side / float(max(h, w)))
        small = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        coarse = [_bounds(b) for b in self.reader.detect(small)]
        self.stats.coarse += 1
        previous, self._coarse = self._coarse, coarse
        if previous is None or len(coarse) != len(previous):
            return False
        if not all(any(_iou(b, p) >= 0.5 for p in previous) for b in coarse):
            return False
        # Only lines that can make a moment count: a frame counter or a clock ticking alone, or a
        # smudge read with little confidence, changes at every sample and would force a full read.
        if not all(float(np.mean(ink != _pixels(gray, line.box))) < self.opts.box_threshold
                   for line, ink in self._lines if self._wanted(line) and _LETTER.search(line.text)):
            return False
        self.stats.reused += len(self._lines)
        return True

    def _same_box(self, box: Box, gray: np.ndarray) -> TextLine | None:
        """The last frame's line in (nearly) the same box with the same ink in it, if any. The ink is
        compared where the old box was (the detector's boxes move by a pixel or two between frames)."""
        b = _bounds(box)
        for line, old in self._lines:
            if _iou(b, line.bounds) >= 0.7 and \
                    float(np.mean(old != _pixels(gray, line.box))) < self.opts.box_threshold:
                return line
        return None

    # -- tracks and moments --------------------------------------------------------------
    def _wanted(self, line: TextLine) -> bool:
        text = line.text.strip()
        if line.confidence < self.opts.min_confidence or len(_key(text)) < 2:
            return False
        if not _LETTER.search(text):
            return any(c.isdigit() for c in text)  # a score, a time, a price
        return any(SCRIPTS[lang].search(text) for lang in self.opts.languages)

    def _seen(self, t: float, lines: Sequence[TextLine], frame: np.ndarray) -> None:
        gap = (self.opts.max_missed + 1.5) / self.opts.sample_fps
        self._close(t, gap)
        for line in filter(self._wanted, lines):
            track = self._match(line)
            if track is not None:
                track.last = t
                if line.confidence > track.confidence:
                    track.text, track.confidence = line.text.strip(), line.confidence
                track.bounds = line.bounds
                continue
            self._open.append(_Track(line.text.strip(), line.confidence, t, t, line.bounds[1], line.bounds,
                                     self._thumb(t, frame)))

    def _match(self, line: TextLine) -> _Track | None:
        key = _key(line.text)
        for track in self._open:
            if _key(track.text) == key:
                return track
        for track in self._open:
            # A reading that differs by a letter or two is the same line; by a digit it is not
            # (a clock, a score, "Scene 1" then "Scene 2").
            if _iou(track.bounds, line.bounds) >= 0.5 and _DIGITS.findall(track.text) == _DIGITS.findall(key) and \
                    difflib.SequenceMatcher(None, _key(track.text), key).ratio() >= self.opts.similar:
                return track
        return None

    def _close(self, t: float, gap: float = 0.0) -> None:
        """Tracks not seen for ``gap`` seconds are over (all of them with gap 0)."""
        still = [k for k in self._open if gap and t - k.last <= gap]
        self._done += [k for k in self._open if k not in still]
        self._open = still

    def _thumb(self, t: float, frame: np.ndarray) -> Keyframe:
        import cv2

        h, w = frame.shape[:2]
        tw = min(w, self.opts.thumb_width)
        small = cv2.resize(frame, (tw, max(1, round(h * tw / w))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return Keyframe(t=t, score=0.0, jpeg=buf.tobytes(), width=small.shape[1], height=small.shape[0])

    def result(self) -> tuple[list[Moment], list[Keyframe]]:
        """Screen moments (lines that come and go together joined, top to bottom) and the thumbnail of each
        moment's first frame (a keyframe at the moment's start)."""
        self._close(float("inf"))
        step = 1.0 / self.opts.sample_fps
        groups: list[list[_Track]] = []
        for track in sorted(self._done, key=lambda k: (k.first, k.top)):
            for group in groups:
                head = group[0]
                if abs(head.first - track.first) <= step / 2 and abs(head.last - track.last) <= step / 2:
                    group.append(track)
                    break
            else:
                groups.append([track])
        moments, thumbs = [], []
        for group in groups:
            if not any(_LETTER.search(k.text) for k in group):
                # Numbers alone (a frame counter, a clock, a lone score) say nothing a question can
                # match in words, and their text vectors lie near any query: they only join lines
                # with words shown at the same time ("HOME 3 GUEST 1" / "45:00").
                continue
            group.sort(key=lambda k: k.top)
            text = " / ".join(k.text for k in group)
            # Seen from ``first`` to ``last``: on screen until the next sample at most (not past the end).
            start = group[0].first
            end = max(min(k.last + step, self._end) for k in group)
            moments.append(Moment(start, end, "screen", text, line_language(text)))
            thumbs.append(group[0].thumb)
        order = sorted(range(len(moments)), key=lambda i: moments[i].start)
        return [moments[i] for i in order], [thumbs[i] for i in order]


def _pixels(gray: np.ndarray, box: Box) -> np.ndarray:
    """The box's ink: its pixels at a small fixed size, split into text and background (Otsu). What two
    frames' boxes are compared by: the strokes of a caption stay put while the picture behind it moves."""
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in _bounds(box))
    crop = gray[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
    if crop.size == 0:
        return np.zeros((24, 144), bool)
    small = cv2.resize(crop, (144, 24), interpolation=cv2.INTER_AREA)
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return ink > 0

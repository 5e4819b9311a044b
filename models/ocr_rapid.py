"""On-screen text with PaddleOCR PP-OCRv4 mobile (detection, recognition, direction) run by onnxruntime.

The ONNX files ship inside the ``rapidocr-onnxruntime`` wheel (Apache-2.0); RapidOCR
does the pre- and post-processing. The recognizer reads Chinese and English (digits
and Latin letters included).

Detection is the fixed cost of every frame looked at, so it runs on a copy of the frame
shrunk to ``det_max_side`` pixels (captions, slides and scoreboards stay large enough);
recognition reads the boxes from the full-size frame, where the letters are sharpest.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from models.base import LazyModel
from models.packaged import RAPIDOCR_FILES as MODEL_FILES
from models.types import Box, ModelLocation, TextLine

__all__ = ["RapidOcrTextReader"]


class RapidOcrTextReader(LazyModel):
    """Reads text lines (text, box, confidence) off BGR frames.

    Options: ``det_max_side`` (longest side of the image the detector sees), ``threads``
    (onnxruntime threads per model; 0: onnxruntime's choice; 1 by default, since on these
    small images a second thread's hand-offs and spinning cost more CPU than they save
    time, and the indexer keeps the other core busy with decoding) and ``use_angle_cls``
    (turn upside-down lines first; off by default: on-screen text is upright).
    """

    role = "text_reader"
    backend_name = "rapidocr"
    languages = ("zh", "en")

    def __init__(self, model: str | None = None, *, det_max_side: int = 640, threads: int = 1,
                 use_angle_cls: bool = False, **kw):
        super().__init__(model, **kw)
        self.det_max_side = det_max_side
        self.threads = threads
        self.use_angle_cls = use_angle_cls
        self._run_lock = threading.Lock()  # one onnxruntime run at a time per engine
        self._engine: Any = None

    def _load(self, location: ModelLocation, device: str) -> None:
        from rapidocr_onnxruntime import RapidOCR

        threads = self.threads if self.threads > 0 else -1
        self._engine = RapidOCR(
            det_model_path=str(location.path / MODEL_FILES["det"]),
            rec_model_path=str(location.path / MODEL_FILES["rec"]),
            cls_model_path=str(location.path / MODEL_FILES["cls"]),
            # The frame is shrunk here before detection; a small limit keeps RapidOCR from
            # scaling it back up (its default brings the short side to 736 pixels).
            det_limit_type="min", det_limit_side_len=32,
            intra_op_num_threads=threads, inter_op_num_threads=threads if threads > 0 else -1,
            use_cls=self.use_angle_cls, print_verbose=False,
        )

    def detect(self, image: np.ndarray) -> list[Box]:
        import cv2

        self.load()
        _check_image(image)
        h, w = image.shape[:2]
        scale = min(1.0, self.det_max_side / float(max(h, w)))
        small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
        with self._run_lock:
            boxes, _ = self._engine.text_det(np.ascontiguousarray(small))
        if boxes is None or len(boxes) == 0:
            return []
        boxes = self._engine.sorted_boxes(np.asarray(boxes, dtype=np.float32))
        out = []
        for b in boxes:
            pts = np.clip(np.asarray(b, dtype=np.float32) / scale, 0, [w, h])
            out.append(tuple((float(x), float(y)) for x, y in pts))  # type: ignore[misc]
        return out

    def read(self, image: np.ndarray, boxes: Sequence[Box] | None = None) -> list[TextLine]:
        self.load()
        _check_image(image)
        if boxes is None:
            boxes = self.detect(image)
        boxes = [b for b in boxes if _size(b) >= (2.0, 2.0)]
        if not boxes:
            return []
        crops = self._engine.get_crop_img_list(image, [np.asarray(b, dtype=np.float32) for b in boxes])
        with self._run_lock:
            if self.use_angle_cls:
                crops, _, _ = self._engine.text_cls(crops)
            results, _ = self._engine.text_rec(crops)
        lines = []
        for box, (text, score) in zip(boxes, results):
            text = str(text).strip()
            if text:
                lines.append(TextLine(text, box, float(score)))
        return lines


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or min(image.shape[:2]) < 1:
        shape = getattr(image, "shape", None)
        raise ValueError(f"text reader needs a BGR uint8 image (height, width, 3), got {type(image).__name__} "
                         f"{shape} {getattr(image, 'dtype', '')}")


def _size(box: Box) -> tuple[float, float]:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    return max(xs) - min(xs), max(ys) - min(ys)

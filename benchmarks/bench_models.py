"""Per-stage throughput of the full profile's models, with real-size random-weight models (speed only).

No weights can be downloaded here, so each model is built offline at the published size of
its architecture with random weights (which cost the same compute as trained ones: DESIGN.md
section 3), saved to a temporary folder, and loaded and run through the project's own backend
(:mod:`models`), exactly as the real checkpoint would be. The output length is forced where
the backend allows it. The numbers say how fast, never how good.

Stages (``--only``):

* ``clip``: open_clip ViT-B-32: keyframes/s of ``embed_images`` on 320x180 frames (batches
  of 32) and queries/s of ``embed_texts``;
* ``describer``: Qwen2.5-VL-3B-Instruct in bfloat16: describing a 10-s clip of
  sample_media/volcano_lecture.mp4 at fps 1 and max_pixels 360*420, 32 new tokens forced;
* ``embedder``: Qwen3-Embedding-0.6B: texts/s of ``embed_documents`` (64 texts of ~60 words);
* ``reranker``: Qwen3-Reranker-0.6B: pairs/s of ``score`` (16 question-answer pairs);
* ``whisper``: openai-whisper small (beam 5, language given): seconds per 30-s window of real
  speech, and multiples of realtime. openai-whisper can cap the output length (112 tokens, about
  what 30 s of speech takes), not force it; a random model writes up to the cap, and the tokens
  written are reported.

Each measurement is the median of ``--runs`` runs after one warm-up call; model load time is
reported on its own; each model is freed before the next is built.

    python benchmarks/bench_models.py [--runs 3] [--only clip,describer,embedder,reranker,whisper]
                                      [--markdown] [--device auto]

Prints a table and writes benchmarks/results/models.json. Tokenizers are trained offline
(the real ones cannot be downloaded), on text like the benchmark's own, so that texts come
out about as many tokens long as with the real tokenizers; the token counts are reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, proc_status_kib, reset_peak_rss, write_json  # noqa: E402

from models.base import quiet_transformers, resolve_device  # noqa: E402

# Tokens per 30-s window of Whisper: about what 30 s of English speech takes (~80 words, timestamps included).
WHISPER_TOKENS = 112
STAGES = ("clip", "describer", "embedder", "reranker", "whisper")
VIDEO = ROOT / "sample_media" / "volcano_lecture.mp4"
SPEECH = ROOT.parent / "shared" / "media" / "audio" / "en-de_mit-license_multilingual.mp3"

# Layer counts of the published models; ``--scale small`` shrinks them (widths stay real) to try the script fast.
LAYERS = {
    "real": {"vl_text": 36, "vl_vision": 32, "vl_fullatt": [7, 15, 23, 31], "qwen3": 28, "whisper": 12,
             "frames": 64, "queries": 32, "texts": 64, "pairs": 16},
    "small": {"vl_text": 2, "vl_vision": 4, "vl_fullatt": [1, 3], "qwen3": 2, "whisper": 2,
              "frames": 32, "queries": 32, "texts": 16, "pairs": 8},
}

# Transcript-like sentences: the text the embedder and reranker read, and what their tokenizers learn.
SENTENCES = [
    "Deep under every volcano there is a chamber full of hot magma that slowly rises through cracks in the rock.",
    "When the pressure gets too high the gas escapes and the mountain erupts, throwing ash high into the sky.",
    "Red lava flows down the slopes at a few metres per minute and cools into black basalt.",
    "Mix the flour, water, salt and yeast into a soft dough and knead it for about ten minutes.",
    "Let the dough rise in a warm place until it has doubled in size, then shape it into a loaf.",
    "Bake the bread in a hot oven for forty minutes, until the crust is brown and sounds hollow.",
    "To fix a flat tire, first take the wheel off the bicycle frame and let the rest of the air out.",
    "Use two tire levers to lift the edge of the tire over the rim and pull out the inner tube.",
    "Find the hole by pumping some air into the tube and listening, or hold it under water.",
    "Saturn is the planet with the rings, and Jupiter is the largest planet of the solar system.",
    "The inner planets are small and rocky, while the outer planets are giants made mostly of gas.",
    "A day on Venus is longer than its year, because the planet turns very slowly on its axis.",
    "So what we are going to look at today is how the temperature changes as you go deeper.",
    "Okay, let me show you this again, because it is really important for the next part.",
    "You can see here on the map where the plates meet, and that is where most volcanoes are.",
    "Now, if you have any questions, just write them down and we will come back to them at the end.",
]
QUESTIONS = [
    "What makes a volcano erupt?", "How long should the bread bake?", "How do I find the hole in a bicycle tube?",
    "Which planet has rings?", "Where are most volcanoes on the map?", "How long do you knead the dough?",
]
QUERIES = ["red lava flowing down a mountain", "a loaf of bread in the oven", "a bicycle wheel with a flat tire",
           "the planet Saturn and its rings", "a teacher pointing at a map", "ash cloud above a volcano",
           "hands kneading dough on a table", "tire levers and an inner tube"]


def _texts(count: int, words: int, seed: int) -> list[str]:
    """``count`` transcript-like texts of about ``words`` words each, the same every run."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(rng.choice(SENTENCES))
        out.append(" ".join(parts))
    return out


def _qwen3_tokenizer(append_end: bool):
    """A byte-level BPE trained on the benchmark's text, with the Qwen3 special tokens.

    Large enough (4000 tokens) that the benchmark's words are single tokens, as most English
    words are in the real 151k-token vocabulary.
    """
    from models.qwen3 import DEFAULT_INSTRUCTION, Qwen3Reranker
    from models.testing.tiny_qwen3 import QWEN3_SPECIAL_TOKENS
    from models.testing.tokenizer import CORPUS, train_tokenizer

    corpus = [*CORPUS, *SENTENCES, *QUESTIONS, DEFAULT_INSTRUCTION, Qwen3Reranker.SYSTEM]
    tokenizer = train_tokenizer(QWEN3_SPECIAL_TOKENS, vocab_size=4000, eos_token="<|endoftext|>",
                                pad_token="<|endoftext|>", corpus=corpus)
    missing = [w for w in ("yes", "no") if w not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing)
    if append_end:  # like the current Qwen3-Embedding tokenizer: every text ends with <|endoftext|>
        from tokenizers.processors import TemplateProcessing

        end = ("<|endoftext|>", tokenizer.convert_tokens_to_ids("<|endoftext|>"))
        tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
            single="$A <|endoftext|>", pair="$A $B:1 <|endoftext|>:1", special_tokens=[end])
    tokenizer.padding_side = "left"
    return tokenizer


# --- measuring ---------------------------------------------------------------------------------------------------


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], runs: int, after: Callable[[], dict] | None = None) -> tuple[list[float], list]:
    """Seconds of ``runs`` calls of ``fn`` after one warm-up call, and what ``after`` says of each run."""
    fn()
    _sync()
    if after is not None:
        after()
    seconds, details = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync()
        seconds.append(time.perf_counter() - t0)
        if after is not None:
            details.append(after())
    return seconds, details


def _reset_peak() -> None:
    """Start a new peak-memory measurement (Linux: clear_refs 5 resets VmHWM; CUDA: its own counter)."""
    reset_peak_rss()
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict:
    """Peak resident memory (GiB) since :func:`_reset_peak`, and peak CUDA memory when on a GPU."""
    hwm = proc_status_kib("VmHWM")
    rss = hwm / 2**20 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # else: since start
    out = {"rss_gib": round(rss, 2) if rss is not None else None}
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def _free() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _row(stage: str, model: str, work: str, seconds: list[float], rate_unit: str, amount: float,
         notes: str = "", **extra) -> dict:
    med = median(seconds)
    return {"stage": stage, "model": model, "work": work, "seconds": [round(s, 4) for s in seconds],
            "median_seconds": round(med, 4), "rate": round(amount / med, 3) if med > 0 else None,
            "rate_unit": rate_unit, "notes": notes, **extra}


def _load(model: Any) -> float:
    t0 = time.perf_counter()
    model.load()
    _sync()
    return round(time.perf_counter() - t0, 2)


# --- stages ------------------------------------------------------------------------------------------------------


# --- building random-weight models (also used by bench_answer.py) ------------------------------------------------


def build_clip(folder: Path) -> tuple[Path, float]:
    """Save a random open_clip ViT-B-32 to ``folder``; (weights file, seconds)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    torch.manual_seed(0)
    weights = folder / "ViT-B-32-random.safetensors"
    built = open_clip.create_model("ViT-B-32")  # no pretrained weights: random
    save_file({k: v.detach().contiguous() for k, v in built.state_dict().items()}, str(weights))
    del built
    _free()
    return weights, round(time.perf_counter() - t0, 2)


def build_qwen_vl(folder: Path, size: dict, *, corpus: list[str] | None = None, vocab_size: int = 600,
                  words_only: bool = False) -> tuple[Path, int, float]:
    """Save a random Qwen2.5-VL-3B-Instruct (bfloat16) with its processor to ``folder``; (folder, parameters, seconds).

    The tokenizer is trained offline on ``corpus`` (default: the tiny models' corpus). With
    ``words_only`` the embedding rows (tied with the output layer) of every id but the tokenizer's
    whole-word tokens (a space, then letters) are zeroed, so that greedy decoding writes words, as a
    trained model would, instead of ids that the small tokenizer cannot decode or pieces of words
    that a streamer holds back; the compute is the same.
    """
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    from models.testing.tiny_qwen_vl import CHAT_TEMPLATE, SPECIAL
    from models.testing.tokenizer import CORPUS, train_tokenizer

    quiet_transformers()
    t0 = time.perf_counter()
    tokenizer = train_tokenizer(SPECIAL, vocab_size=vocab_size, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                corpus=CORPUS if corpus is None else corpus)
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    # Qwen2.5-VL-3B-Instruct's published sizes; the tokenizer is small, the model's vocabulary real-size.
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008,
            "num_hidden_layers": size["vl_text"], "num_attention_heads": 16, "num_key_value_heads": 2,
            "max_position_embeddings": 128000, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True,
        },
        vision_config={
            "depth": size["vl_vision"], "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
            "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "window_size": 112, "fullatt_block_indexes": size["vl_fullatt"], "in_channels": 3,
            "hidden_act": "silu", "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    built = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16).eval()
    built.generation_config.eos_token_id = ids["<|im_end|>"]
    built.generation_config.pad_token_id = ids["<|endoftext|>"]
    if words_only:
        words = [i for t, i in tokenizer.get_vocab().items() if t.startswith("\u0120") and t[1:].isalpha()]
        keep = torch.zeros(config.text_config.vocab_size, dtype=torch.bool)
        keep[words] = True
        with torch.no_grad():
            built.get_input_embeddings().weight[~keep] = 0
    params = sum(p.numel() for p in built.parameters())
    built.save_pretrained(folder)
    del built
    _free()
    # The default pixel limits of the real processors; the describer passes its own max_pixels.
    Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(),
                        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    return folder, params, round(time.perf_counter() - t0, 2)


def bench_clip(tmp: Path, device: str, runs: int, size: dict) -> tuple[dict, list[dict]]:
    import cv2

    from models.clip_embedder import ClipFrameEmbedder
    from models.frames import iter_frames

    weights, build = build_clip(tmp)

    frames = []
    for video in sorted((ROOT / "sample_media").glob("*.mp4")):
        for _, bgr in iter_frames(video, 1.0):
            frames.append(cv2.cvtColor(cv2.resize(bgr, (320, 180), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    frames = [frames[i % len(frames)] for i in range(size["frames"])]
    queries = [QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}") for i in range(size["queries"])]

    # As the model would be found for ViT-B-32/laion2b_s34b_b79k: that tag's preprocessing, these weights.
    embedder = ClipFrameEmbedder("ViT-B-32/laion2b_s34b_b79k", path=str(weights), device=device, batch_size=32)
    load = _load(embedder)
    name = "open_clip ViT-B-32"
    img_s, _ = _timed(lambda: embedder.embed_images(frames), runs)
    txt_s, _ = _timed(lambda: embedder.embed_texts(queries), runs)
    dtype = str(embedder._input_dtype).replace("torch.", "")
    rows = [
        _row("clip", name, f"{len(frames)} frames 320x180, batches of 32", img_s, "keyframes/s", len(frames),
             dtype=dtype),
        _row("clip", name, f"{len(queries)} queries, batches of 32", txt_s, "queries/s", len(queries),
             notes="77 token positions each", dtype=dtype),
    ]
    return {"model": name, "build_seconds": build, "load_seconds": load}, rows


def bench_describer(tmp: Path, device: str, runs: int, size: dict) -> tuple[dict, list[dict]]:
    from models import qwen_vl

    folder, params, build = build_qwen_vl(tmp / "qwen2.5-vl-3b-random", size)

    new_tokens = 32
    describer = qwen_vl.QwenVLDescriber(path=str(folder), device=device, fps=1.0, max_pixels=360 * 420,
                                        max_frames=64, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                        dtype="bfloat16")
    load = _load(describer)
    # The loaded model, watched (not changed) with hooks, to split the time into frames and processor, vision
    # encoder (which transformers may run before the first forward pass), prefill and decoding.
    model = describer._model
    visual = next(m for n, m in model.named_modules() if n.split(".")[-1] == "visual")
    calls: list[dict] = []
    vision: dict[str, float] = {}

    def vision_before(_module, _args):
        _sync()
        vision["start"] = time.perf_counter()

    def vision_after(_module, _args, _output):
        _sync()
        vision["end"] = time.perf_counter()

    def before(_module, _args, kwargs):
        _sync()
        entry: dict[str, Any] = {"start": time.perf_counter()}
        input_ids = kwargs.get("input_ids")
        if not calls and input_ids is not None:
            entry["prompt_tokens"] = int(input_ids.shape[1])
            entry["visual_tokens"] = int((input_ids == model.config.video_token_id).sum())
        calls.append(entry)

    def after(_module, _args, _output):
        _sync()
        calls[-1]["end"] = time.perf_counter()

    hooks = [model.register_forward_pre_hook(before, with_kwargs=True), model.register_forward_hook(after),
             visual.register_forward_pre_hook(vision_before), visual.register_forward_hook(vision_after)]
    marks: dict[str, float] = {}

    def describe():
        calls.clear()
        vision.clear()
        marks["start"] = time.perf_counter()
        describer.describe(VIDEO, 0.0, 10.0)

    def split() -> dict:
        first, last = calls[0], calls[-1]
        encoder = vision["end"] - vision["start"]
        nested = vision["start"] >= first["start"]  # the vision encoder ran inside the first forward pass
        decode = last["end"] - first["end"]
        return {"generated_tokens": len(calls), "prompt_tokens": first.get("prompt_tokens"),
                "visual_tokens": first.get("visual_tokens"),
                "preprocess_seconds": min(first["start"], vision["start"]) - marks["start"],
                "vision_encoder_seconds": encoder,
                "prefill_seconds": first["end"] - first["start"] - (encoder if nested else 0.0),
                "decode_seconds": decode, "decode_tokens_per_s": (len(calls) - 1) / decode if decode > 0 else None}

    try:
        seconds, details = _timed(describe, runs, split)
    finally:
        for hook in hooks:
            hook.remove()
    summary = {k: median(d[k] for d in details) for k in details[0]} if details else {}
    generated = int(summary.get("generated_tokens", new_tokens))
    name = "Qwen2.5-VL-3B-Instruct" + ("" if size is LAYERS["real"] else " (fewer layers)")
    notes = (f"{summary.get('visual_tokens', 0):.0f} visual tokens of {summary.get('prompt_tokens', 0):.0f}; "
             f"frames+processor {summary.get('preprocess_seconds', 0):.1f} s, vision encoder "
             f"{summary.get('vision_encoder_seconds', 0):.1f} s, LM prefill {summary.get('prefill_seconds', 0):.1f} s, "
             f"decoding {summary.get('decode_tokens_per_s') or 0:.2f} tokens/s")
    row = _row("describer", name, f"10-s clip at fps 1, max_pixels 360*420, {generated} new tokens", seconds,
               "tokens/s", generated, notes=notes, dtype="bfloat16", parameters=params,
               **{k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()})
    qwen_vl.unload_all()  # the describer and answerer share one loaded model through a cache
    return {"model": name, "build_seconds": build, "load_seconds": load, "parameters": params}, [row]


def _qwen3_config(size: dict, tokenizer):
    from transformers import Qwen3Config

    # Qwen3-Embedding-0.6B and Qwen3-Reranker-0.6B (Qwen3-0.6B's sizes).
    return Qwen3Config(
        vocab_size=151669, hidden_size=1024, num_hidden_layers=size["qwen3"], num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, intermediate_size=3072, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def _save_random_qwen3(folder: Path, model_class: Any, size: dict, *, append_end: bool) -> tuple[Path, float]:
    """Build a random Qwen3 of ``model_class`` with its tokenizer, save both to ``folder``; (folder, seconds)."""
    import torch

    quiet_transformers()
    t0 = time.perf_counter()
    tokenizer = _qwen3_tokenizer(append_end=append_end)
    torch.manual_seed(0)
    built = model_class(_qwen3_config(size, tokenizer)).eval()
    built.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del built
    _free()
    return folder, round(time.perf_counter() - t0, 2)


def build_qwen3_embedding(folder: Path, size: dict) -> tuple[Path, float]:
    """Save a random Qwen3-Embedding-0.6B with its tokenizer to ``folder``; (folder, seconds)."""
    from transformers import Qwen3Model

    return _save_random_qwen3(folder, Qwen3Model, size, append_end=True)


def build_qwen3_reranker(folder: Path, size: dict) -> tuple[Path, float]:
    """Save a random Qwen3-Reranker-0.6B with its tokenizer to ``folder``; (folder, seconds)."""
    from transformers import Qwen3ForCausalLM

    return _save_random_qwen3(folder, Qwen3ForCausalLM, size, append_end=False)


def bench_embedder(tmp: Path, device: str, runs: int, size: dict) -> tuple[dict, list[dict]]:
    from models.qwen3 import Qwen3TextEmbedder

    folder, build = build_qwen3_embedding(tmp / "qwen3-embedding-0.6b-random", size)

    texts = _texts(size["texts"], 60, seed=1)
    embedder = Qwen3TextEmbedder(path=str(folder), device=device, batch_size=16, max_length=1024)
    load = _load(embedder)
    tokens = median(embedder._inputs(texts)["attention_mask"].sum(dim=1).tolist())
    seconds, _ = _timed(lambda: embedder.embed_documents(texts), runs)
    name = "Qwen3-Embedding-0.6B" + ("" if size is LAYERS["real"] else " (fewer layers)")
    dtype = str(embedder._model.dtype).replace("torch.", "")
    row = _row("embedder", name, f"{len(texts)} texts of ~60 words, batches of 16", seconds, "texts/s", len(texts),
               notes=f"~{tokens:.0f} tokens per text", dtype=dtype, tokens_per_text=tokens)
    return {"model": name, "build_seconds": build, "load_seconds": load}, [row]


def bench_reranker(tmp: Path, device: str, runs: int, size: dict) -> tuple[dict, list[dict]]:
    from models.qwen3 import Qwen3Reranker

    folder, build = build_qwen3_reranker(tmp / "qwen3-reranker-0.6b-random", size)

    # Candidate answers of about three sentences, as the answerer writes them.
    answers = _texts(size["pairs"], 45, seed=2)
    question = QUESTIONS[0]
    reranker = Qwen3Reranker(path=str(folder), device=device, batch_size=8, max_length=1024)
    load = _load(reranker)
    tokens = median(reranker._inputs(question, answers)["attention_mask"].sum(dim=1).tolist())
    seconds, _ = _timed(lambda: reranker.score(question, answers), runs)
    name = "Qwen3-Reranker-0.6B" + ("" if size is LAYERS["real"] else " (fewer layers)")
    dtype = str(reranker._model.dtype).replace("torch.", "")
    row = _row("reranker", name, f"{len(answers)} (question, answer) pairs, batches of 8", seconds, "pairs/s",
               len(answers), notes=f"~{tokens:.0f} tokens per pair, template included", dtype=dtype,
               tokens_per_pair=tokens)
    return {"model": name, "build_seconds": build, "load_seconds": load}, [row]


def bench_whisper(tmp: Path, device: str, runs: int, size: dict) -> tuple[dict, list[dict]]:
    from dataclasses import asdict

    import torch
    from whisper.model import ModelDimensions, Whisper

    from indexer.media import decode_audio
    from models.whisper_openai import OpenAIWhisperTranscriber

    t0 = time.perf_counter()
    # Whisper small's dimensions (multilingual).
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=768, n_audio_head=12,
                           n_audio_layer=size["whisper"], n_vocab=51865, n_text_ctx=448, n_text_state=768,
                           n_text_head=12, n_text_layer=size["whisper"])
    torch.manual_seed(0)
    built = Whisper(dims)
    checkpoint = tmp / "small.pt"  # named as openai-whisper names the checkpoint of "small"
    torch.save({"dims": asdict(dims), "model_state_dict": built.state_dict()}, checkpoint)
    del built
    _free()
    build = round(time.perf_counter() - t0, 2)

    audio = decode_audio(SPEECH)[: 30 * 16000]
    duration = audio.size / 16000
    # A random model never ends a window on its own: the cap (openai-whisper's sample_len) is the output length.
    transcriber = OpenAIWhisperTranscriber("small" if size is LAYERS["real"] else str(checkpoint),
                                           path=str(checkpoint), device=device, max_new_tokens=WHISPER_TOKENS)
    load = _load(transcriber)
    model = transcriber._model
    decoded: list[int] = []
    plain_decode = model.decode

    def counting_decode(mel, options=None, **kw):  # counts the tokens written; decoding itself is untouched
        result = plain_decode(mel, options, **kw) if options is not None else plain_decode(mel, **kw)
        for r in result if isinstance(result, list) else [result]:
            decoded.append(len(r.tokens))
        return result

    model.decode = counting_decode

    def transcribe():
        decoded.clear()
        transcriber.transcribe(audio, language="en")

    def count() -> dict:
        return {"tokens": sum(decoded), "decode_calls": len(decoded)}

    seconds, details = _timed(transcribe, runs, count)
    del model.decode
    tokens = median(d["tokens"] for d in details)
    calls = median(d["decode_calls"] for d in details)
    name = "Whisper small (openai-whisper)" + ("" if size is LAYERS["real"] else " (fewer layers)")
    med = median(seconds)
    row = _row("whisper", name, f"{duration:.0f} s of speech, beam 5, language given", seconds, "x realtime",
               duration, notes=f"{tokens:.0f} tokens written in {calls:.0f} decoding pass(es); "
               f"{med / (duration / 30):.2f} s per 30-s window", audio_seconds=duration,
               seconds_per_30s_window=round(med / (duration / 30), 3), tokens=tokens, decode_calls=calls,
               dtype="float16" if transcriber._fp16 else "float32")
    return {"model": name, "build_seconds": build, "load_seconds": load}, [row]


BENCHES = {"clip": bench_clip, "describer": bench_describer, "embedder": bench_embedder,
           "reranker": bench_reranker, "whisper": bench_whisper}


def _stages(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stage {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="Measured runs per stage (after one warm-up); median.")
    parser.add_argument("--only", type=_stages, default=list(STAGES), metavar="NAME[,NAME]",
                        help=f"Stages to run, of: {', '.join(STAGES)} (default: all).")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    parser.add_argument("--scale", choices=tuple(LAYERS), default="real", help=argparse.SUPPRESS)  # to try it fast
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    device = resolve_device(args.device)
    size = LAYERS[args.scale]
    order = [s for s in STAGES if s in args.only]
    models: dict[str, dict] = {}
    rows: list[dict] = []
    for stage in order:
        print(f"{stage}: building a random-weight model and measuring ...", file=sys.stderr, flush=True)
        _free()
        _reset_peak()
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"bench-{stage}-") as tmp:
            info, stage_rows = BENCHES[stage](Path(tmp), device, args.runs, size)
        _free()
        info["peak_memory"] = _peak()
        info["stage_seconds"] = round(time.perf_counter() - t0, 1)
        models[stage] = info
        rows.extend(stage_rows)
        print(f"{stage}: done in {info['stage_seconds']} s (built in {info['build_seconds']} s, loaded in "
              f"{info['load_seconds']} s, peak {json.dumps(info['peak_memory'])})", file=sys.stderr, flush=True)

    def fmt(rate: float | None) -> str:
        return "-" if rate is None else f"{rate:.3g}" if rate < 100 else f"{rate:.0f}"

    cols = ("stage", "model (random weights)", "load s", "work", "median s", "throughput", "notes")
    lines = [(r["stage"], r["model"], f"{models[r['stage']]['load_seconds']:.1f}", r["work"],
              f"{r['median_seconds']:.3f}", f"{fmt(r['rate'])} {r['rate_unit']}", r["notes"]) for r in rows]
    print(f"\nmachine: {machine()}")
    print(f"device: {device}; scale: {args.scale}; median of {args.runs} run(s) after one warm-up; "
          "real-size architectures with random weights: speed only, never quality\n")
    if args.markdown:
        print("| " + " | ".join(cols) + " |\n|---|---|---:|---|---:|---:|---|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(c), *(len(line[i]) for line in lines)) if lines else len(c) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        for line in lines:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths)))
    print("\npeak memory per stage (model build, save, load and runs): " + ", ".join(
        f"{s} {m['peak_memory']['rss_gib']} GiB" + (f" (CUDA {m['peak_memory']['cuda_gib']} GiB)"
                                                   if "cuda_gib" in m["peak_memory"] else "")
        for s, m in models.items()))
    if args.scale != "real":
        print("\n(scale small: fewer layers, nothing written)")
        return
    path = write_json("models", {"machine": machine(), "device": device, "scale": args.scale, "runs": args.runs,
                                 "speed_only": "real-size architectures with random weights: speed, never quality",
                                 "models": models, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

"""Answer latency of the full profile, with real-size random-weight models (speed only).

Asks questions through the product's own path, ``VideoQA.ask_stream`` (retrieval, then for
each of the top videos Qwen2.5-VL-3B-Instruct writing a candidate from the question, the
transcript excerpts and the clip around the best moments, then the Qwen3 reranker choosing),
and measures per question:

* ``retrieval``: until the hits are known (keyword, Qwen3-Embedding and CLIP text channels);
* ``first token``: until the answerer has generated its first token (the end of its first
  forward pass: vision encoder and prefill), and ``first text``, until the first piece of text
  is streamed to the caller (the streamer holds back incomplete words);
* ``answer``: until the final answer, the reranking included; the tokens generated, the
  decoding rate and the reranking time; the clip's visual tokens and the prompt's length.

Each ``--top-k`` value (default 1 and 3: one candidate, or three reranked) is measured over
``--runs`` questions after one warm-up of every model (a short clip through the answerer, a
search and a reranking); model load times are reported on their own. On CUDA the times are
synchronised and the peak GPU memory is reported.

No weights can be downloaded, so bench_models.py's builders write the models at their
published sizes with random weights (which cost the compute of trained ones): Qwen2.5-VL-3B
(bfloat16, also on CPU), Qwen3-Embedding-0.6B, Qwen3-Reranker-0.6B and open_clip ViT-B-32,
loaded through videoqa's backends. The output length is forced as in bench_models.py: the
answerer gets ``min_new_tokens`` = ``max_new_tokens`` (``--max-new-tokens``, default 32), through
its role options in the model configuration the app builds, so exactly that many tokens are
generated. The answerer's embedding rows of every token but the whole words of its small trained
tokenizer are zeroed (same compute), so that the candidates are words (random ones) that are
streamed and reranked as real answers would be, not ids the tokenizer cannot decode.

Questions rotate over three (one per video), so each run's clip is that of another video; the
top video's clip spans about the whole ~21-s video (its moments plus 5 s each side): about 20
frames at fps 1 and max_pixels 360*420, about 2,000 visual tokens. On a 2-core CPU one
candidate takes about two minutes: ``--quick`` takes about 5 minutes once the models are built
(about 3 minutes, once), the default about half an hour.

The index holds three sample videos (``--videos``) indexed with the full-profile embedders
and the real packaged Whisper tiny.en (so that the transcripts, the excerpts the answerer
reads and the keyword channel mean something), but without descriptions: there is no setting
to turn the describer off, so the indexing pass uses a model hub without one (the 3B describer
would take minutes per video on a CPU). Models and the index are kept in ``--work`` (default
``benchmarks/results/answer-work``, about 13 GB) and reused by later runs.

    python benchmarks/bench_answer.py [--runs 3] [--top-k 1,3] [--max-new-tokens 32] [--device cpu[,cuda]]
                                      [--quick] [--tiny] [--work DIR] [--markdown]

``--quick``: one run, top_k 1 only. ``--tiny``: the tiny random models of
``models.testing.tiny`` instead, to check the script in a minute (nothing written).
Prints a table and writes benchmarks/results/answer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, median, write_json  # noqa: E402
from bench_models import (  # noqa: E402
    LAYERS,
    QUESTIONS,
    SENTENCES,
    _free,
    _peak,
    _reset_peak,
    _sync,
    build_clip,
    build_qwen3_embedding,
    build_qwen3_reranker,
    build_qwen_vl,
)

MEDIA = ROOT / "sample_media"
VIDEOS = ("volcano_lecture.mp4", "bread_baking.mp4", "bicycle_repair.mp4")
# Asked in turn, one per run; each has its answer in one of VIDEOS.
ASK = ("What makes a volcano erupt?", "How long should the dough rise and bake?",
       "How do I find the hole in a bicycle tube?")
# Bump a version when what is built changes, so that the work folder's old copy is rebuilt.
VERSIONS = {"clip": 1, "qwen2.5-vl-3b": 2, "qwen3-embedding-0.6b": 1, "qwen3-reranker-0.6b": 1, "index": 1, "tiny": 1}


# --- models and index --------------------------------------------------------------------------------------------


def _done(folder: Path, what: str) -> dict | None:
    """What the finished build of ``what`` in ``folder`` recorded; None when it is missing, unfinished or old."""
    marker = folder / "DONE.json"
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    return info if info.get("version") == VERSIONS[what] else None


def _mark(folder: Path, what: str, **info: Any) -> dict:
    info = {"version": VERSIONS[what], **info}
    (folder / "DONE.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _vl_corpus() -> list[str]:
    """Text like the answerer's prompts, so that they come out about as many tokens long as with the real tokenizer."""
    from models.qwen_vl import answer_prompt
    from models.testing.tokenizer import CORPUS

    truth = json.loads((MEDIA / "ground_truth.json").read_text())
    spoken = [s["text"] for video in truth["videos"] for s in video["narration"]]
    return [*CORPUS, *SENTENCES, *QUESTIONS, *ASK, *spoken, answer_prompt("", "")]


def build_models(work: Path) -> dict[str, dict]:
    """The real-size random-weight models of the answer path, built once into ``work/models``."""
    size = LAYERS["real"]
    out = {}
    for name in ("clip", "qwen2.5-vl-3b", "qwen3-embedding-0.6b", "qwen3-reranker-0.6b"):
        folder = work / "models" / name
        info = _done(folder, name)
        if info is None:
            print(f"building {name} (random weights, real size) ...", file=sys.stderr, flush=True)
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            if name == "clip":
                weights, seconds = build_clip(folder)
                info = _mark(folder, name, path=str(weights), build_seconds=seconds)
            elif name == "qwen2.5-vl-3b":
                _, params, seconds = build_qwen_vl(folder, size, corpus=_vl_corpus(), vocab_size=4000,
                                                   words_only=True)
                info = _mark(folder, name, path=str(folder), build_seconds=seconds, parameters=params)
            elif name == "qwen3-embedding-0.6b":
                info = _mark(folder, name, path=str(folder), build_seconds=build_qwen3_embedding(folder, size)[1])
            else:
                info = _mark(folder, name, path=str(folder), build_seconds=build_qwen3_reranker(folder, size)[1])
            info["built_now"] = True
            _free()
        out[name] = info
    return out


def settings_for(args: argparse.Namespace, device: str, models: dict[str, dict] | None):
    """The app's settings for this benchmark (the environment and any videoqa.toml are ignored)."""
    from app.settings import load_settings

    work = Path(args.work)
    common = {"device": device, "max_new_tokens": args.max_new_tokens}
    if args.tiny:
        return load_settings(config=work / "tiny" / "videoqa.toml", env={}).replace(
            index_dir=str(work / "tiny" / "index"), **common)
    assert models is not None
    return load_settings(env={}).replace(
        profile="full", index_dir=str(work / "index"), whisper_model="tiny.en",
        frame_embedder_path=models["clip"]["path"], describer_path=models["qwen2.5-vl-3b"]["path"],
        answerer_path=models["qwen2.5-vl-3b"]["path"], text_embedder_path=models["qwen3-embedding-0.6b"]["path"],
        reranker_path=models["qwen3-reranker-0.6b"]["path"], **common)


def _hub(settings, *, describer: bool = True, forced_tokens: int | None = None):
    """The model hub the app would build from ``settings``; optionally without a describer, or with the
    answerer's output length forced (its ``min_new_tokens`` option) and its weights in bfloat16."""
    from app.qa import models_config
    from models.hub import ModelHub

    config = models_config(settings, "full")
    if forced_tokens is not None:
        config.roles["answerer"].options.update(min_new_tokens=forced_tokens, max_new_tokens=forced_tokens,
                                                dtype="bfloat16")
    if describer:
        return ModelHub(config)

    class WithoutDescriber(ModelHub):
        def get(self, role: str):
            return None if role == "describer" else super().get(role)

    return WithoutDescriber(config)


def ensure_index(args: argparse.Namespace, settings, rebuild: bool) -> dict:
    """Index ``--videos`` once (no descriptions); reused while the models and the video list stay the same."""
    from app.qa import VideoQA

    index_dir = Path(settings.index_dir)
    videos = [str(MEDIA / v) for v in args.videos]
    info = _done(index_dir, "index")
    if info is not None and not rebuild and info.get("videos") == videos:
        return info
    if index_dir.exists():
        shutil.rmtree(index_dir)
    index_dir.mkdir(parents=True)
    print(f"indexing {len(videos)} videos without descriptions ...", file=sys.stderr, flush=True)
    qa = VideoQA(settings.replace(device="cpu"), hub=_hub(settings.replace(device="cpu"), describer=False))
    t0 = time.perf_counter()
    report = qa.index(videos)
    qa.close()
    if not report.ok:
        raise SystemExit(f"indexing failed: {[r.to_dict() for r in report.failed]}")
    info = _mark(index_dir, "index", videos=videos, seconds=round(time.perf_counter() - t0, 1))
    del qa
    _free()
    return info


# --- measuring ---------------------------------------------------------------------------------------------------


class Watch:
    """Forward hooks on the loaded answerer (they watch, they change nothing): per candidate, the
    generated tokens (one forward pass each), when the first ended, the vision encoder's time."""

    def __init__(self, model: Any, video_token_id: int):
        self.candidates: list[dict] = []
        self.video_token_id = video_token_id
        visual = next(m for n, m in model.named_modules() if n.split(".")[-1] == "visual")
        self.hooks = [model.register_forward_pre_hook(self._before, with_kwargs=True),
                      model.register_forward_hook(self._after),
                      visual.register_forward_pre_hook(self._vision_before),
                      visual.register_forward_hook(self._vision_after)]

    def start(self) -> None:
        self.candidates.append({"calls": [], "vision": {}})

    def _before(self, _module, _args, kwargs) -> None:
        _sync()
        calls = self.candidates[-1]["calls"]
        entry: dict[str, Any] = {"start": time.perf_counter()}
        ids = kwargs.get("input_ids")
        if not calls and ids is not None:
            entry["prompt_tokens"] = int(ids.shape[1])
            entry["visual_tokens"] = int((ids == self.video_token_id).sum())
        calls.append(entry)

    def _after(self, _module, _args, _output) -> None:
        _sync()
        self.candidates[-1]["calls"][-1]["end"] = time.perf_counter()

    def _vision_before(self, _module, _args) -> None:
        _sync()
        self.candidates[-1]["vision"]["start"] = time.perf_counter()

    def _vision_after(self, _module, _args, _output) -> None:
        _sync()
        self.candidates[-1]["vision"]["end"] = time.perf_counter()

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()


def ask_once(qa: Any, watch: Watch, question: str, top_k: int) -> dict:
    """One question through ``VideoQA.ask_stream``, timed event by event."""
    watch.candidates.clear()
    marks: dict[str, float] = {}
    clips: list[str] = []
    texts: list[str] = []
    _sync()
    t0 = time.perf_counter()
    answer = None
    for event in qa.ask_stream(question, top_k):
        _sync()
        now = time.perf_counter() - t0
        if event.kind == "hits":
            marks["retrieval"] = now
            from app.answering import _clip

            for hit in event.hits:
                clip = _clip(hit)
                clips.append(f"{hit.name} {clip.start or 0:.1f}-{clip.end or hit.duration:.1f} s" if clip else hit.name)
        elif event.kind == "candidate":
            watch.start()
        elif event.kind == "token":
            marks.setdefault("first_text", now)
        elif event.kind == "scored":
            marks.setdefault("scored", now)
            texts.append(event.text)
        elif event.kind == "final":
            marks["total"] = now
            answer = event.answer
    cands = []
    for c in watch.candidates:
        calls, vision = c["calls"], c["vision"]
        first, last = calls[0], calls[-1]
        encoder = vision["end"] - vision["start"] if vision else 0.0
        nested = bool(vision) and vision["start"] >= first["start"]  # the vision encoder ran inside the first pass
        decode = last["end"] - first["end"]
        cands.append({"tokens": len(calls), "prompt_tokens": first.get("prompt_tokens"),
                      "visual_tokens": first.get("visual_tokens"), "vision_encoder_seconds": encoder,
                      "prefill_seconds": first["end"] - first["start"] - (encoder if nested else 0.0),
                      "generate_seconds": last["end"] - min(first["start"], vision.get("start", first["start"])),
                      "decode_tokens_per_s": (len(calls) - 1) / decode if decode > 0 else None,
                      "first_end": first["end"] - t0, "last_end": last["end"] - t0})
    tokens = sum(c["tokens"] for c in cands)
    decode_time = sum(c["last_end"] - c["first_end"] for c in cands)
    run = {"retrieval_seconds": marks.get("retrieval"),
           "first_token_seconds": cands[0]["first_end"] if cands else None,
           "first_text_seconds": marks.get("first_text"), "answer_seconds": marks.get("total"),
           "rerank_seconds": marks["scored"] - cands[-1]["last_end"] if cands and "scored" in marks else None,
           "candidates": len(cands), "tokens": tokens,
           "decode_tokens_per_s": (tokens - len(cands)) / decode_time if decode_time > 0 else None,
           "method": answer.method if answer else None, "clips": clips,
           "per_candidate": [{k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()} for c in cands],
           "answer_text": (answer.answer if answer else "")[:120]}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()}


def warm_up(qa: Any) -> dict[str, float | None]:
    """Load every model of the answer path and run each once; returns the load seconds per role."""
    from models.types import Clip

    qa.search(ASK[0], 1)
    answerer, reranker = qa.hub.required.answerer, qa.hub.reranker
    answerer.answer(ASK[0], "[00:01-00:04] (speech) warm-up", Clip(MEDIA / VIDEOS[0], 0.0, 2.0))
    if reranker is not None:
        reranker.score(ASK[0], ["a warm-up answer"])
    _sync()
    return {role: round(m.load_seconds, 2) if m.load_seconds is not None else None
            for role in ("text_embedder", "frame_embedder", "answerer", "reranker")
            if (m := qa.hub.get(role)) is not None}


def bench_device(args: argparse.Namespace, device: str, models: dict | None) -> tuple[dict, list[dict]]:
    from app.qa import VideoQA
    from models import qwen_vl

    settings = settings_for(args, device, models)
    hub = _hub(settings, forced_tokens=args.max_new_tokens)
    qa = VideoQA(settings, hub=hub)
    print(f"{device}: loading the models and warming up ...", file=sys.stderr, flush=True)
    _free()
    _reset_peak()
    t0 = time.perf_counter()
    loads = warm_up(qa)
    print(f"{device}: loaded and warmed up in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    answerer = qa.hub.required.answerer
    watch = Watch(answerer._model, answerer._model.config.video_token_id)
    rows = []
    try:
        for top_k in args.top_k:
            _reset_peak()
            runs = []
            for i in range(args.runs):
                question = ASK[i % len(ASK)]
                print(f"{device}: top_k {top_k}, run {i + 1}/{args.runs}: {question!r} ...", file=sys.stderr,
                      flush=True)
                run = ask_once(qa, watch, question, top_k)
                run["question"] = question
                print(f"{device}:   {json.dumps({k: v for k, v in run.items() if k != 'per_candidate'})}",
                      file=sys.stderr, flush=True)
                if run["tokens"] != args.max_new_tokens * run["candidates"]:
                    print(f"{device}:   warning: {run['tokens']} tokens generated, not "
                          f"{args.max_new_tokens} per candidate", file=sys.stderr, flush=True)
                runs.append(run)
            keys = ("retrieval_seconds", "first_token_seconds", "first_text_seconds", "answer_seconds",
                    "rerank_seconds", "tokens", "decode_tokens_per_s", "candidates")
            summary = {k: median(r[k] for r in runs if r[k] is not None) for k in keys}
            cand = [c for r in runs for c in r["per_candidate"]]
            summary.update({f"median_{k}": median(c[k] for c in cand if c[k] is not None)
                            for k in ("visual_tokens", "prompt_tokens", "vision_encoder_seconds", "prefill_seconds")})
            rows.append({"device": device, "top_k": top_k, "runs": runs, "peak_memory": _peak(),
                         **{k: round(v, 3) for k, v in summary.items()}})
    finally:
        watch.remove()
        qa.close()
        del qa, hub, answerer
        qwen_vl.unload_all()
        _free()
    return {"device": device, "load_seconds": loads, "answerer_dtype": "bfloat16"}, rows


def _ints(value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {value!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError("expected positive numbers")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="Questions per top_k (after one warm-up); median.")
    parser.add_argument("--top-k", type=_ints, default=[1, 3], metavar="K[,K]",
                        help="Videos answered from, each a candidate (default: 1,3).")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="Tokens each candidate answer has (forced).")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cpu,cuda or auto (cuda when present).")
    parser.add_argument("--videos", default=",".join(VIDEOS), help="Sample videos to index (from sample_media/).")
    parser.add_argument("--work", default=str(RESULTS / "answer-work"), help="Where models and the index are kept.")
    parser.add_argument("--quick", action="store_true", help="One run, top_k 1 only.")
    parser.add_argument("--tiny", action="store_true", help="Tiny random models, to check the script (writes nothing).")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.top_k = 1, [1]
    if args.runs < 1 or args.max_new_tokens < 1:
        parser.error("--runs and --max-new-tokens must be at least 1")
    args.videos = [v.strip() for v in args.videos.split(",") if v.strip()]
    missing = [v for v in args.videos if not (MEDIA / v).exists()]
    if missing:
        parser.error(f"not in sample_media/: {', '.join(missing)}")

    import torch

    from models.base import quiet_transformers, resolve_device

    quiet_transformers()
    devices = [resolve_device(d.strip()) for d in args.device.split(",") if d.strip()]
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        parser.error("CUDA is not available here")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    models = None
    if args.tiny:
        from models.testing.tiny import make_all

        if _done(work / "tiny", "tiny") is None:
            make_all(work / "tiny")
            _mark(work / "tiny", "tiny")
            rebuilt = True
        else:
            rebuilt = False
    else:
        models = build_models(work)
        rebuilt = any(m.get("built_now") for k, m in models.items() if k != "qwen2.5-vl-3b")  # no descriptions
    index = ensure_index(args, settings_for(args, devices[0], models), rebuilt)

    infos, rows = [], []
    for device in devices:
        info, device_rows = bench_device(args, device, models)
        infos.append(info)
        rows.extend(device_rows)

    def num(v: Any, digits: int = 1) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    cols = ("device", "top_k", "candidates", "retrieval s", "first token s", "first text s", "answer s",
            "tokens", "decode tok/s", "rerank s", "visual tokens", "peak memory")
    lines = [(r["device"], str(r["top_k"]), f"{r['candidates']:.0f}", num(r["retrieval_seconds"], 2),
              num(r["first_token_seconds"]), num(r["first_text_seconds"]), num(r["answer_seconds"]),
              f"{r['tokens']:.0f}", num(r["decode_tokens_per_s"], 2), num(r["rerank_seconds"], 2),
              f"{r['median_visual_tokens']:.0f} of {r['median_prompt_tokens']:.0f}",
              f"{r['peak_memory']['rss_gib']} GiB" + (f" (CUDA {r['peak_memory']['cuda_gib']} GiB)"
                                                      if "cuda_gib" in r["peak_memory"] else ""))
             for r in rows]
    print(f"\nmachine: {machine()}")
    print(f"models: {'tiny random' if args.tiny else 'real-size random weights'}; {args.max_new_tokens} new tokens "
          f"forced per candidate; median of {args.runs} question(s) after one warm-up; speed only, never quality")
    print("load seconds: " + "; ".join(f"{i['device']}: " + ", ".join(f"{k} {v}" for k, v in i["load_seconds"].items())
                                       for i in infos) + "\n")
    if args.markdown:
        print("| " + " | ".join(cols) + " |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        for line in lines:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths)))
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if args.tiny:
        print("(tiny models: nothing written)")
        return
    path = write_json("answer", {
        "machine": machine(), "runs": args.runs, "top_k": args.top_k, "max_new_tokens": args.max_new_tokens,
        "speed_only": "real-size architectures with random weights: speed, never quality",
        "forced_output": "answerer min_new_tokens = max_new_tokens (its role options in the app's model config)",
        "index": {"videos": [Path(v).name for v in index["videos"]], "descriptions": False,
                  "transcriber": "faster-whisper tiny.en (packaged)", "seconds": index.get("seconds")},
        "models": {k: {kk: vv for kk, vv in v.items() if kk not in ("path", "version", "built_now")}
                   for k, v in (models or {}).items()},
        "devices": infos, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

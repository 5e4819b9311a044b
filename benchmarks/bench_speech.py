"""The speech stage against bare faster-whisper on the same audio with the same model, in the same run.

    python benchmarks/bench_speech.py [--runs 3] [--whisper-model tiny.en] [--english-reader auto] [--markdown]

videoqa's stage: Silero VAD regions -> windows -> language per window -> Whisper per window
(the detection's encoding reused, prompt chaining, transcript guard, early-end guard; English read
by Moonshine base and timed by Whisper under ``--english-reader auto``/``moonshine``), each run
cold (no encoding kept from the run before: every run reads the same audio). Two baselines with
the same loaded model and decoding settings, without videoqa's kept encodings: ``bare``,
``WhisperModel.transcribe(audio, vad_filter=True)``, which detects the language once per file;
and ``bare_ml``, the same with ``multilingual=True``, faster-whisper's own way of following a
change of language (it detects the language of every 30-s piece it decodes), the work that
videoqa's stage does too. Target (issues 5, 13): at most 1.1x the baseline's time. ``words_*``:
how many words each wrote (both baselines write nothing for the German half of the en-de
recording: see docs/BENCHMARKS.md), and ``ratio_per_word``, ours against bare per word written.
Audio: real recordings from ../shared/media/audio, each padded with silence to look like
a video's soundtrack. Prints a table and writes benchmarks/results/speech.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, write_json  # noqa: E402

from indexer.media import decode_audio  # noqa: E402
from indexer.speech import transcribe_speech  # noqa: E402
from indexer.windows import SpeechOptions  # noqa: E402
from models import ModelHub, ModelsConfig, RoleConfig  # noqa: E402

AUDIO = ROOT.parent / "shared" / "media" / "audio"
CLIPS = ["en-de_mit-license_multilingual.mp3", "en_jfk_inaugural_ask-not.flac", "en_librispeech_1995-1837-0001.wav"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--whisper-model", default="tiny.en")
    parser.add_argument("--transcriber", default="faster-whisper",
                        help="videoqa's transcriber backend (moonshine: Moonshine base, English only); the baseline "
                             "is always bare faster-whisper with --whisper-model")
    parser.add_argument("--english-reader", default="auto", choices=("auto", "moonshine", "whisper"),
                        help="the faster-whisper backend's english_reader setting (the baseline is Whisper alone)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    whisper = RoleConfig(model=args.whisper_model)
    ours_role = RoleConfig(model=args.whisper_model, options={"english_reader": args.english_reader}) \
        if args.transcriber == "faster-whisper" else RoleConfig(backend=args.transcriber)
    hub = ModelHub(ModelsConfig(profile="packaged", roles={"transcriber": ours_role}))
    vad, transcriber = hub.required.voice_activity, hub.required.transcriber
    vad.load()
    transcriber.load()
    if args.transcriber == "faster-whisper":
        baseline_transcriber = transcriber  # the same loaded WhisperModel
    else:
        baseline_transcriber = ModelHub(ModelsConfig(profile="packaged",
                                                     roles={"transcriber": whisper})).required.transcriber
        baseline_transcriber.load()
    bare = baseline_transcriber._model
    rows = []
    for name in CLIPS:
        speech = decode_audio(AUDIO / name)
        silence = np.zeros(16000 * 5, np.float32)
        audio = np.concatenate([silence, speech, silence, speech[: 16000 * 5], silence])
        seconds = audio.size / 16000

        def ours(audio=audio):
            # cold, as for a new file: the backend keeps the encodings of its last few encoder
            # passes, and every run reads the same audio again
            getattr(transcriber, "forget_encodings", lambda: None)()  # Moonshine keeps none
            return transcribe_speech(audio, vad, transcriber, SpeechOptions())

        def baseline(audio=audio, multilingual=False, t=baseline_transcriber):
            kept = t.kept_encodings
            t.kept_encodings = 0  # bare faster-whisper: none of videoqa's kept encodings
            t.forget_encodings()
            try:
                segments, _ = bare.transcribe(audio, beam_size=t.beam_size, temperature=0.0,
                                              vad_filter=True, language="en" if t.english_only else None,
                                              multilingual=multilingual and not t.english_only,
                                              no_repeat_ngram_size=t.no_repeat_ngram_size)
                return list(segments)
            finally:
                t.kept_encodings = kept

        def baseline_ml(audio=audio):
            return baseline(audio, multilingual=True)

        # warm up; what each wrote (the bare call skips speech in a second language: see docs/BENCHMARKS.md)
        words_ours = sum(len(x.text.split()) for x in ours())
        words_bare = sum(len(x.text.split()) for x in baseline())
        words_bare_ml = sum(len(x.text.split()) for x in baseline_ml())
        t_ours, t_base, t_ml = [], [], []
        for _ in range(args.runs):  # interleaved, so drifts in machine load hit both alike
            t0 = time.perf_counter()
            ours()
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            baseline()
            t_base.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            baseline_ml()
            t_ml.append(time.perf_counter() - t0)
        o, b, m = median(t_ours), median(t_base), median(t_ml)
        rows.append({"audio": f"{name} (+silence, {seconds:.0f} s)", "ours_s": round(o, 3), "bare_s": round(b, 3),
                     "ratio": round(o / b, 3), "bare_ml_s": round(m, 3), "ratio_ml": round(o / m, 3),
                     "ours_x_realtime": round(seconds / o, 1),
                     # time per word written: where bare faster-whisper skips speech (the German half of
                     # en-de) the time ratio compares unequal work
                     "ratio_per_word": round((o / max(words_ours, 1)) / (b / max(words_bare, 1)), 3),
                     "words_ours": words_ours, "words_bare": words_bare, "words_bare_ml": words_bare_ml})
    total_o = sum(r["ours_s"] for r in rows)
    total_b = sum(r["bare_s"] for r in rows)
    total_m = sum(r["bare_ml_s"] for r in rows)
    ours_name = f"{args.whisper_model}, English read by {args.english_reader}" \
        if args.transcriber == "faster-whisper" else f"{args.transcriber} (ours)"
    print(f"machine: {machine()}\nmodel: {ours_name}, bare faster-whisper {args.whisper_model}; "
          f"median of {args.runs} interleaved runs; "
          f"target: ratio <= 1.1\n")
    cols = ("audio", "ours_s", "bare_s", "ratio", "bare_ml_s", "ratio_ml", "ours_x_realtime", "words_ours",
            "words_bare", "words_bare_ml", "ratio_per_word")
    words_o, words_b = sum(r["words_ours"] for r in rows), sum(r["words_bare"] for r in rows)
    per_word = (total_o / max(words_o, 1)) / (total_b / max(words_b, 1))
    if args.markdown:
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
        print(f"| all | {total_o:.3f} | {total_b:.3f} | {total_o / total_b:.3f} | {total_m:.3f} | "
              f"{total_o / total_m:.3f} | | {words_o} | {words_b} | | {per_word:.3f} |")
    else:
        for r in rows:
            print("  ".join(f"{c}={r[c]}" for c in cols))
        print(f"all: ours {total_o:.3f} s, bare {total_b:.3f} s, ratio {total_o / total_b:.3f}; "
              f"bare multilingual {total_m:.3f} s, ratio {total_o / total_m:.3f}; per word written {per_word:.3f}")
    data = {"machine": machine(), "runs": args.runs, "model": args.whisper_model, "transcriber": args.transcriber,
            "english_reader": args.english_reader, "readings": getattr(transcriber, "readings", None), "rows": rows}
    print(f"wrote {write_json('speech', data)}")


if __name__ == "__main__":
    main()

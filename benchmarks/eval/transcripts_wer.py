"""Word error rate of the speech stage on every recording of ../shared/media with a ground-truth transcript.

    python benchmarks/eval/transcripts_wer.py [--english-reader auto|moonshine|whisper] [--whisper-model base]

Each file goes through ``transcribe_speech`` (Silero VAD, windows, language per window, the
transcriber as the packaged profile builds it) and its text is scored against
``ground_truth.json`` (word error rate; character error rate for Chinese, which has no spaces).
Prints a table (file, language(s) written, moments, error rate, seconds) and writes
benchmarks/results/transcripts_wer.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_json  # noqa: E402

from indexer.media import decode_audio  # noqa: E402
from indexer.speech import transcribe_speech  # noqa: E402
from models import ModelHub, ModelsConfig, RoleConfig  # noqa: E402
from tests.conftest import error_rate  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--english-reader", default="auto", choices=("auto", "moonshine", "whisper"))
    parser.add_argument("--whisper-model", default="base")
    args = parser.parse_args()
    role = RoleConfig(model=args.whisper_model, options={"english_reader": args.english_reader})
    hub = ModelHub(ModelsConfig(profile="packaged", roles={"transcriber": role}))
    vad, transcriber = hub.required.voice_activity, hub.required.transcriber
    truth = json.loads((MEDIA / "ground_truth.json").read_text())
    rows = []
    print("| recording | languages | moments | error rate | seconds |\n|---|---|---:|---:|---:|")
    for name, entry in truth.items():
        if not (isinstance(entry, dict) and entry.get("transcript")):
            continue
        audio = decode_audio(MEDIA / name)
        transcriber.forget_encodings()
        t0 = time.perf_counter()
        segments = transcribe_speech(audio, vad, transcriber)
        seconds = time.perf_counter() - t0
        text = " ".join(s.text for s in segments)
        chinese = Path(name).name.startswith("zh")
        rate = error_rate(entry["transcript"], text, chars=chinese)
        languages = ",".join(sorted({s.language for s in segments if s.language}))
        rows.append({"file": name, "languages": languages, "moments": len(segments), "error_rate": round(rate, 3),
                     "chars": chinese, "seconds": round(seconds, 2), "text": text})
        print(f"| `{Path(name).stem}` | {languages} | {len(segments)} | {rate:.3f}{' (CER)' if chinese else ''} "
              f"| {seconds:.2f} |", flush=True)
    data = {"english_reader": args.english_reader, "model": args.whisper_model, "rows": rows}
    print(f"wrote {write_json('transcripts_wer', data)}")


if __name__ == "__main__":
    main()

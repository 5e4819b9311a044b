"""Build the evaluation library: real media, linked in place or composed with ffmpeg.

    python benchmarks/eval/build_library.py [LIBRARY_DIR] [--media DIR] [--manifest FILE]

LIBRARY_DIR (default /tmp/videoqa-eval-library; never inside the repository) gets:

* symlinks, not copies, to the shared videos with speech ground truth (the three LRS2
  clips), to a few shared videos without speech (distractors) and to the four
  ``sample_media/*.mp4`` videos;
* composed videos: each English speech recording of ``MEDIA/audio`` laid at a known
  offset over different real footage of ``MEDIA/video`` (looped), H.264 CRF 32
  veryfast + AAC mono. The footage's own sound is dropped.

It then writes ``benchmarks/eval/library.json``: every file of the library, how it was
made and where its speech lies (absolute seconds in the video). The speech span inside
each recording is taken from the ground truth's word times where it has them, else
measured on the ffmpeg-decoded audio (20 ms RMS frames against the loudest frame and the
noise floor); sentence breaks inside a recording are pauses found by ffmpeg's
``silencedetect``. Gold spans of ``questions.jsonl`` are these sentences.

Needs Python 3.9+ and the ``ffmpeg`` / ``ffprobe`` commands; nothing else. Re-runnable:
a composed video whose parameters have not changed (their hash is kept in the file's
``comment`` tag) is not made again, and the output is deterministic for a given ffmpeg.
MEDIA defaults to ``../shared/media`` next to the checkout (``VIDEOQA_EVAL_MEDIA``).
"""

from __future__ import annotations

import argparse
import array
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_LIBRARY = Path("/tmp/videoqa-eval-library")
DEFAULT_MEDIA = Path(os.environ.get("VIDEOQA_EVAL_MEDIA", ROOT.parent / "shared" / "media"))
DEFAULT_MANIFEST = HERE / "library.json"

RECIPE_VERSION = 1  # bump to force every composed video to be made again

# Encoding of the composed videos.
WIDTH, HEIGHT, FPS = 640, 360, 25
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "32", "-pix_fmt", "yuv420p", "-threads", "2"]
AAC = ["-c:a", "aac", "-b:a", "64k", "-ar", "22050", "-ac", "1"]

# Speech detection (see speech_span_envelope).
FRAME_S = 0.02
SPEECH_BELOW_PEAK_DB = 25.0
SPEECH_ABOVE_FLOOR_DB = 6.0
SPEECH_MIN_RUN_S = 0.06
PAUSE_NOISE_DB, PAUSE_MIN_S = -35.0, 0.2  # silencedetect settings for the pauses between sentences

# Shared videos linked in place: (link name, source, role). Speech spans of the LRS2 clips
# come from their word times. The LRS2 links get neutral names: the shared file names
# carry words of the speech ("beer", "bbc-competes"), and videoqa indexes file names, so
# they would answer the questions for the speech channel. Composed videos are named
# after their sources and footage for the same reason, never after what is said.
LINKED_SHARED = [
    ("lrs2_00016.mp4", "video/speech_lrs2_00016_beer.mp4", "speech"),
    ("lrs2_00019.mp4", "video/speech_lrs2_00019_down-the-road.mp4", "speech"),
    ("lrs2_00024.mp4", "video/speech_lrs2_00024_bbc-competes.mp4", "speech"),
    ("silentfilm_chaplin_bw.mp4", "video/silentfilm_chaplin_bw.mp4", "distractor"),
    ("sport_basketball-gym.mp4", "video/sport_basketball-gym.mp4", "distractor"),
    ("scenecuts_bikes_street.mp4", "video/scenecuts_bikes_street.mp4", "distractor"),
    ("outdoor_airplane-then-field.mp4", "video/outdoor_airplane-then-field.mp4", "distractor"),
]
LINKED_SAMPLES = ["bicycle_repair.mp4", "bread_baking.mp4", "solar_system.mp4", "volcano_lecture.mp4"]

# Composed videos: (file name, recording, footage, offset s, seconds added to the recording, trim s or None).
# Every footage is used once; offsets vary from 3 to 15 s; each video is 10-20 s longer
# than its recording, so there is silence (and only footage) before and after the speech.
COMPOSED = [
    ("speech_jfk_over_airfield.mp4", "audio/en_jfk_inaugural_ask-not.flac",
     "video/outdoor_airplane-then-field.mp4", 6.0, 14.0, None),
    ("speech_ljspeech_over_street.mp4", "audio/en_ljspeech_LJ050-0131.wav",
     "video/scenecuts_bikes_street.mp4", 9.0, 16.0, None),
    ("speech_librispeech_over_gym.mp4", "audio/en_librispeech_1995-1837-0001.wav",
     "video/sport_basketball-gym.mp4", 4.0, 12.0, None),
    ("speech_harvard-sentence_over_arm-wrestling.mp4", "audio/en_birch-canoe.wav",
     "video/action_arm-wrestling_k400.mp4", 12.0, 18.0, None),
    ("speech_read-sentence_over_woodstove.mp4", "audio/en_culprits-name.flac",
     "video/homevideo_woodstove-dog.mp4", 15.0, 20.0, None),
    ("speech_slu-query_over_carphone.mp4", "audio/en_numbers_37.67-minus-75.7.wav",
     "video/talkinghead_carphone_noaudio.mp4", 3.0, 10.0, None),
    ("speech_stereo-two-voices_over_chaplin.mp4", "audio/en_stereo_L-wizard_R-horizon.wav",
     "video/silentfilm_chaplin_bw.mp4", 7.0, 13.0, None),
    # Only the English part (the German translation starts after the pause at 29.1-31.0 s).
    ("speech_mit-license_over_bunny.mp4", "audio/en-de_mit-license_multilingual.mp3",
     "video/animation_big-buck-bunny_0-30s.webm", 10.0, 15.0, 29.5),
]

# Recordings whose ground truth has word times: the speech span is taken from them.
WORD_TIMES_SPAN = {"audio/en_birch-canoe.wav"}

# Sentences of the recordings that say more than one (texts: the ground truth's, split).
# Each sentence but the last ends at the pause found by silencedetect (PAUSE_NOISE_DB,
# PAUSE_MIN_S) that contains the time given (seconds in the recording). Which pause ends
# the sentence was checked once with Whisper tiny.en word times on the cut recording.
# The stereo recording has two speakers at once: each channel's sentence spans its own
# channel's speech (measured like the speech span, on that channel alone).
SENTENCES = {
    "audio/en_librispeech_1995-1837-0001.wav": [
        ("IT WAS THE FIRST GREAT SORROW OF HIS LIFE", 2.4),
        ("IT WAS NOT SO MUCH THE LOSS OF THE COTTON ITSELF BUT THE FANTASY THE HOPES THE DREAMS BUILT AROUND IT",
         None)],
    "audio/en_ljspeech_LJ050-0131.wav": [
        ("unless a system is established for the frequent formal review of activities thereunder.", 6.2),
        ("in this regard", None)],
    "audio/en-de_mit-license_multilingual.mp3": [
        ("Permission is hereby granted, free of charge, to any person obtaining a copy of the software and "
         "associated documentation files to deal in the software without restriction, including without "
         "limitation the rights to use, copy, modify, merge, publish, distribute, sublicence, and or cell copies "
         "of the software, and to permit persons to whom the software is furnished to do so, subject to the "
         "following conditions.", 23.0),
        ("The above copyright notice and this permission notice, shall be included in all copies or "
         "substantial portions of the software.", None)],
}
CHANNEL_SENTENCES = {
    "audio/en_stereo_L-wizard_R-horizon.wav": [("FL", "left"), ("FR", "right")],
}
# LRS2 clips: number of words of each sentence (the annotation has one line of words; the
# sentence breaks are ours, at the clause ends; library.json gives each sentence's word
# range [first, last+1) and times, not its words).
LRS2_SENTENCE_WORDS = {
    "video/speech_lrs2_00016_beer.mp4": [25, 14],
    "video/speech_lrs2_00019_down-the-road.mp4": [7, 1, 18],
    "video/speech_lrs2_00024_bbc-competes.mp4": [3, 16],
}

NOTES = {
    "audio/en_stereo_L-wizard_R-horizon.wav": "stereo, two speakers at once (left: wizard sentence, right: horizon "
                                              "sentence), downmixed to mono",
    "audio/en-de_mit-license_multilingual.mp3": "first 29.5 s only: the English reading of the MIT licence "
                                                "(the ground-truth text, split into its two sentences "
                                                "here, is Whisper tiny output with its errors)",
    "audio/en_jfk_inaugural_ask-not.flac": "stereo, downmixed to mono",
    "audio/en_numbers_37.67-minus-75.7.wav": "ground truth is an SLU parse, not a verbatim transcript",
}


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def ffprobe_duration(path: Path) -> float:
    out = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)])
    if out.returncode != 0:
        raise SystemExit(f"{path}: ffprobe failed: {out.stderr.strip()}")
    return round(float(out.stdout.strip()), 3)


def ffprobe_comment(path: Path) -> str:
    out = run(["ffprobe", "-v", "error", "-show_entries", "format_tags=comment", "-of", "csv=p=0", str(path)])
    return out.stdout.strip() if out.returncode == 0 else ""


def audio_chain(trim: float | None) -> str:
    """The filters that turn a recording into the mono speech track (before the offset)."""
    chain = []
    if trim is not None:
        chain += [f"atrim=end={trim}", "asetpts=PTS-STARTPTS"]
    chain += ["aformat=sample_fmts=fltp:channel_layouts=mono", "aresample=22050"]
    return ",".join(chain)


def speech_span_envelope(recording: Path, trim: float | None, channel: str | None = None) -> dict:
    """Where the speech starts and ends inside the (trimmed, mono) recording.

    ffmpeg decodes the recording with the same filters as the composed track (16 kHz
    here); the speech runs from the first to the last stretch of at least
    SPEECH_MIN_RUN_S whose 20 ms frames are louder (RMS) than both the loudest frame
    minus SPEECH_BELOW_PEAK_DB and the noise floor (the 10th-percentile frame) plus
    SPEECH_ABOVE_FLOOR_DB. (ffmpeg's silencedetect tests every sample's peak, so the
    noise floor of some recordings, JFK's for one, never counts as silence.)
    """
    chain = audio_chain(trim).replace("fltp", "s16").replace("aresample=22050", "aresample=16000")
    if channel:
        chain = f"pan=mono|c0={channel}," + chain
    res = subprocess.run(["ffmpeg", "-v", "error", "-i", str(recording), "-af", chain, "-f", "s16le", "-"],
                         capture_output=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{recording}: ffmpeg could not decode it: {res.stderr.decode(errors='replace')}")
    samples = array.array("h")
    samples.frombytes(res.stdout[: len(res.stdout) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    n = int(16000 * FRAME_S)
    levels = []
    for i in range(0, len(samples) - n + 1, n):
        frame = samples[i:i + n]
        rms = math.sqrt(sum(x * x for x in frame) / n)
        levels.append(20 * math.log10(max(rms, 1.0) / 32768))
    peak = max(levels)
    floor = sorted(levels)[len(levels) // 10]
    threshold = max(peak - SPEECH_BELOW_PEAK_DB, floor + SPEECH_ABOVE_FLOOR_DB)
    k = max(1, round(SPEECH_MIN_RUN_S / FRAME_S))
    loud = [level > threshold for level in levels]
    runs = [i for i in range(len(loud) - k + 1) if all(loud[i:i + k])]
    length = len(samples) / 16000
    if not runs:
        raise SystemExit(f"{recording}: no speech found")
    return {"start": round(runs[0] * FRAME_S, 2), "end": round(min((runs[-1] + k) * FRAME_S, length), 2),
            "length": round(length, 3),
            "method": f"RMS envelope of the ffmpeg-decoded audio: 20 ms frames above {threshold:.1f} dBFS "
                      f"(max of loudest frame {peak:.1f} - {SPEECH_BELOW_PEAK_DB:g} dB and noise floor {floor:.1f} "
                      f"+ {SPEECH_ABOVE_FLOOR_DB:g} dB), runs of at least {SPEECH_MIN_RUN_S:g} s"}


def speech_span_word_times(recording: str, truth: dict, trim: float | None) -> dict:
    words = truth[recording]["approx_word_times"]
    length = ffprobe_duration(Path(truth["_media"]) / recording)
    return {"start": words[0][0], "end": words[-1][1], "length": round(min(length, trim or length), 3),
            "method": "ground_truth.json approx_word_times (first word start, last word end)"}


def transcript_of(recording: str, truth: dict) -> str:
    entry = truth.get(recording, {})
    if "transcript" in entry:
        return entry["transcript"]
    if "channels" in entry:
        return " / ".join(f"[{ch}] {text}" for ch, text in entry["channels"].items())
    if "transcript_segments" in entry:
        return entry["transcript_segments"][0]["text"]
    if recording.startswith("audio/en_numbers"):
        return "(approx.) What's 37.67 minus 75.7?"
    return ""


def compose(out: Path, recording: Path, footage: Path, offset: float, total: float, trim: float | None,
            tag: str) -> None:
    video = (f"[0:v]scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
             f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},format=yuv420p[v]")
    delay = int(round(offset * 1000))
    audio = f"[1:a]{audio_chain(trim)},adelay=delays={delay}:all=1,apad=whole_dur={total}[a]"
    tmp = out.with_name(f".{out.name}.part.mp4")
    cmd = ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(footage), "-i", str(recording),
           "-filter_complex", f"{video};{audio}", "-map", "[v]", "-map", "[a]", "-t", f"{total}",
           *X264, *AAC, "-map_metadata", "-1", "-metadata", f"comment={tag}",
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
           "-movflags", "+faststart", str(tmp)]
    res = run(cmd)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"ffmpeg failed for {out.name}:\n{res.stderr.strip()}")
    tmp.replace(out)


def word_sentences(words: list[dict], counts: list[int]) -> list[dict]:
    """Consecutive sentences of ``counts`` words each, timed by their first and last word.

    Only word positions, not the words: the LRS2 annotation stays in the shared folder.
    """
    if sum(counts) != len(words):
        raise SystemExit(f"sentence word counts {counts} do not add up to {len(words)} words")
    out, i = [], 0
    for n in counts:
        chunk = words[i:i + n]
        out.append({"words": [i, i + n], "start": chunk[0]["start"], "end": chunk[-1]["end"]})
        i += n
    return out


def pauses(recording: Path, trim: float | None) -> list[tuple[float, float]]:
    """Silences of the (trimmed, mono) recording, by ffmpeg's silencedetect."""
    res = run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(recording), "-af",
               f"{audio_chain(trim)},silencedetect=noise={PAUSE_NOISE_DB}dB:d={PAUSE_MIN_S}", "-f", "null", "-"])
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", res.stderr)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", res.stderr)]
    return list(zip(starts, ends))


def recording_sentences(rec_rel: str, recording: Path, trim: float | None, span: dict, transcript: str) -> list:
    """Sentences of a recording, in seconds of the recording."""
    if rec_rel in CHANNEL_SENTENCES:
        texts = [t for t in transcript.split(" / ")]
        out = []
        for (channel, label), text in zip(CHANNEL_SENTENCES[rec_rel], texts):
            ch = speech_span_envelope(recording, trim, channel)
            out.append({"text": text.split("] ", 1)[-1], "channel": label, "start": ch["start"], "end": ch["end"]})
        return out
    if rec_rel not in SENTENCES:
        return [{"text": transcript, "start": span["start"], "end": span["end"]}]
    found = pauses(recording, trim)
    out, start = [], span["start"]
    for text, near in SENTENCES[rec_rel]:
        if near is None:
            out.append({"text": text, "start": start, "end": span["end"]})
            break
        pause = next(((a, b) for a, b in found if a <= near <= b), None)
        if pause is None:
            raise SystemExit(f"{rec_rel}: no pause found around {near} s")
        out.append({"text": text, "start": start, "end": round(pause[0], 2)})
        start = round(pause[1], 2)
    return out


def link(target: Path, where: Path) -> str:
    """Make ``where`` a symlink to ``target``; returns what was done."""
    target = target.resolve()
    if not target.is_file():
        raise SystemExit(f"missing source file: {target}")
    if where.is_symlink() and Path(os.readlink(where)) == target:
        return "kept"
    if where.exists() or where.is_symlink():
        if where.is_dir() and not where.is_symlink():
            raise SystemExit(f"{where} is a folder, expected a symlink")
        where.unlink()
    where.symlink_to(target)
    return "linked"


def inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", nargs="?", type=Path, default=DEFAULT_LIBRARY,
                        help=f"folder to fill (default {DEFAULT_LIBRARY}); must be outside the repository")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA,
                        help=f"the shared media folder (default {DEFAULT_MEDIA})")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST,
                        help="where to write the description of the library (default benchmarks/eval/library.json)")
    args = parser.parse_args(argv)

    library: Path = args.library
    media: Path = args.media.resolve()
    if inside(library, ROOT):
        parser.error(f"{library} is inside the repository: the library (and its shared media) must stay out of it")
    if not (media / "ground_truth.json").is_file():
        parser.error(f"{media} has no ground_truth.json: pass --media")
    for tool in ("ffmpeg", "ffprobe"):
        if run([tool, "-version"]).returncode != 0:
            parser.error(f"the {tool} command is needed")
    library.mkdir(parents=True, exist_ok=True)

    truth = json.loads((media / "ground_truth.json").read_text(encoding="utf-8"))
    truth["_media"] = str(media)
    samples = json.loads((ROOT / "sample_media" / "ground_truth.json").read_text(encoding="utf-8"))
    sample_by_name = {v["file"]: v for v in samples["videos"]}
    ffmpeg_version = run(["ffmpeg", "-version"]).stdout.splitlines()[0].split(" Copyright")[0]

    files = []
    # 1. Shared videos, linked in place.
    for name, rel, role in LINKED_SHARED:
        src = media / rel
        done = link(src, library / name)
        entry = truth.get(rel, {})
        item = {"name": name, "kind": "link", "role": role, "source": f"shared:{rel}",
                "duration": ffprobe_duration(src)}
        words = entry.get("words")
        if words:
            item["speech"] = {"start": words[0]["start"], "end": words[-1]["end"],
                              "method": "ground_truth.json word times (LRS2 annotation)"}
            item["transcript"] = f"not copied here (LRS2): see ground_truth.json, key {rel}"
            item["sentences"] = word_sentences(words, LRS2_SENTENCE_WORDS[rel])
        else:
            item["speech"] = None
        item["licence"] = ("LRS2 (BBC): non-commercial research only; linked in place, never copied or "
                           "redistributed" if "lrs2" in rel else "see SOURCES.md; linked in place")
        files.append(item)
        print(f"{done:8} {name}")

    # 2. The project's own sample videos.
    for name in LINKED_SAMPLES:
        src = ROOT / "sample_media" / name
        done = link(src, library / name)
        gt = sample_by_name[name]
        narration = gt["narration"]
        files.append({"name": name, "kind": "link", "role": "speech", "source": f"repo:sample_media/{name}",
                      "duration": ffprobe_duration(src),
                      "speech": {"start": narration[0]["start"], "end": narration[-1]["end"],
                                 "method": "sample_media/ground_truth.json sentence times"},
                      "sentences": narration, "licence": "generated by this project (espeak-ng, ffmpeg)"})
        print(f"{done:8} {name}")

    # 3. Composed videos.
    for name, rec_rel, foot_rel, offset, extra, trim in COMPOSED:
        recording, footage = media / rec_rel, media / foot_rel
        for p in (recording, footage):
            if not p.is_file():
                raise SystemExit(f"missing source file: {p}")
        if rec_rel in WORD_TIMES_SPAN:
            span = speech_span_word_times(rec_rel, truth, trim)
        else:
            span = speech_span_envelope(recording, trim)
        length = span["length"]
        total = round(length + extra, 2)
        assert 3 <= offset <= 15 and 10 <= extra <= 20 and offset + length < total
        params = {"recipe": RECIPE_VERSION, "recording": rec_rel, "recording_sha256": sha256(recording),
                  "footage": foot_rel, "footage_sha256": sha256(footage), "offset": offset, "total": total,
                  "trim": trim, "size": [WIDTH, HEIGHT, FPS], "x264": X264, "aac": AAC, "ffmpeg": ffmpeg_version}
        tag = "videoqa-eval " + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        out = library / name
        if out.is_symlink():
            out.unlink()
        if out.is_file() and ffprobe_comment(out) == tag:
            done = "kept"
        else:
            compose(out, recording, footage, offset, total, trim, tag)
            done = "made"
        item = {"name": name, "kind": "composed", "role": "speech",
                "audio": f"shared:{rec_rel}", "footage": f"shared:{foot_rel}", "footage_looped": True,
                "offset": offset, "audio_trim": trim, "duration": ffprobe_duration(out),
                "speech_in_recording": {k: span[k] for k in ("start", "end", "method")},
                "speech": {"start": round(offset + span["start"], 2), "end": round(offset + span["end"], 2)},
                "transcript": transcript_of(rec_rel, truth)}
        item["sentences"] = [{**sent, "start": round(offset + sent["start"], 2), "end": round(offset + sent["end"], 2)}
                             for sent in recording_sentences(rec_rel, recording, trim, span, item["transcript"])]
        item["params_tag"] = tag
        if rec_rel in NOTES:
            item["note"] = NOTES[rec_rel]
        files.append(item)
        print(f"{done:8} {name}  speech {item['speech']['start']:.2f}-{item['speech']['end']:.2f} s "
              f"of {item['duration']:.2f} s")

    names = {f["name"] for f in files}
    for p in sorted(library.iterdir()):
        if p.name in names or p.name.startswith("."):
            continue
        ours = (p.is_symlink() and (inside(p, media) or inside(p, ROOT / "sample_media"))) or \
            (p.is_file() and ffprobe_comment(p).startswith("videoqa-eval "))
        if ours:  # made by an earlier version of this script
            p.unlink()
            print(f"removed  {p.name}")
    stray = sorted(p.name for p in library.iterdir() if p.name not in names and not p.name.startswith("."))
    if stray:
        print(f"note: {library} also holds files this script did not make: {', '.join(stray)}", file=sys.stderr)

    manifest = {
        "about": "The videoqa evaluation library; made by benchmarks/eval/build_library.py. Times are seconds "
                 "from the start of each video. 'shared:' paths are relative to the shared media folder "
                 "(../shared/media), 'repo:' paths to the repository.",
        "ffmpeg": ffmpeg_version,
        "composed_encoding": {"size": f"{WIDTH}x{HEIGHT}", "fps": FPS, "video": " ".join(X264),
                              "audio": " ".join(AAC),
                              "footage": "looped with -stream_loop -1, scaled and padded, its own audio dropped"},
        "files": files,
    }
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    args.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(files)} files in {library}; wrote {args.manifest}")
    return 0


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    sys.exit(main())

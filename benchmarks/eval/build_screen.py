"""The on-screen-text evaluation library: English and Chinese text burned into real footage.

    python benchmarks/eval/build_screen.py /tmp/videoqa-screen-library [--media ../shared/media]
    videoqa index /tmp/videoqa-screen-library --index-dir /tmp/videoqa-screen-index
    videoqa eval benchmarks/eval/questions_screen.jsonl --index-dir /tmp/videoqa-screen-index

Eight videos are composed with ffmpeg ``drawtext`` over footage from ../shared/media/video
(read in place, scaled to 1280x720, no sound): a departure notice, a results slide, a news
caption, a scoreboard, a street sign (English), and a meeting notice, a weather warning
and a shop sign (Chinese, in the WenQuanYi Micro Hei font of Debian's
``fonts-wqy-microhei``). The twelve shared videos, which show no such text, are linked
beside them as distractors; ``--with DIR`` links the videos of another library too (e.g.
the main evaluation library). Gold spans in ``questions_screen.jsonl`` are the times the
text is drawn (``TEXTS`` below).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from build_multilingual import link_videos, run  # the sibling builder: same links, same command line

ROOT = Path(__file__).resolve().parents[2]
LATIN = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
CJK = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
SECONDS = 12.0
# video name: (footage, [(lines shown together, font, first s, last s)])
TEXTS = {
    "departure_notice.mp4": ("outdoor_airplane-then-field.mp4",
                             [(["Flight BA 117 to New York", "now boarding at Gate 22"], LATIN, 2.0, 8.0)]),
    "results_slide.mp4": ("talkinghead_carphone_noaudio.mp4",
                          [(["Quarterly results", "Revenue up 12% to 4.2 million"], LATIN, 4.0, 10.0)]),
    "news_caption.mp4": ("action_arm-wrestling_k400.mp4",
                         [(["BREAKING NEWS", "Harbour bridge closed after storm damage"], LATIN, 3.0, 9.0)]),
    "scoreboard.mp4": ("sport_basketball-gym.mp4",
                       [(["HOME 78 - 74 AWAY", "4th QUARTER"], LATIN, 1.0, 11.0)]),
    "street_sign.mp4": ("silentfilm_chaplin_bw.mp4",
                        [(["Museum of Modern Art", "open daily until 6 pm"], LATIN, 5.0, 11.0)]),
    "meeting_notice_zh.mp4": ("speech_lrs2_00016_beer.mp4",
                              [(["会议通知", "周五下午三点在三楼会议室开会"], CJK, 2.0, 9.0)]),
    "weather_warning_zh.mp4": ("animation_big-buck-bunny_0-30s.webm",
                               [(["暴雨预警", "明天有大雨 出门请带雨伞"], CJK, 3.0, 10.0)]),
    "shop_sign_zh.mp4": ("homevideo_woodstove-dog.mp4",
                         [(["超市周末大促销", "苹果五元一斤"], CJK, 1.0, 7.0)]),
}


def _filters(name: str, texts: Path) -> str:
    """scale, then one drawtext per line (lines of one text stacked, on a half-transparent box)."""
    parts = ["scale=1280:720,setsar=1"]
    for i, (lines, font, first, last) in enumerate(TEXTS[name][1]):
        for j, line in enumerate(lines):
            spec = texts / f"{Path(name).stem}.{i}.{j}.txt"  # textfile, expansion none: no escaping
            spec.write_text(line, encoding="utf-8")
            y = f"h*0.62+{j * 72}"
            parts.append(f"drawtext=fontfile={font}:textfile={spec}:expansion=none:fontsize=52:fontcolor=white:box=1:"
                         f"boxcolor=black@0.6:boxborderw=10:x=(w-tw)/2:y={y}:enable='between(t,{first},{last})'")
    return ",".join(parts)


def build(folder: Path, media: Path, distractors: Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if folder.resolve().is_relative_to(ROOT):
        raise SystemExit("make the library outside the repository")
    for font in (LATIN, CJK):
        if not font.exists():
            raise SystemExit(f"{font} is missing: apt-get install fonts-dejavu-core fonts-wqy-microhei")
    for name, (footage, _) in TEXTS.items():
        out = folder / name
        if out.exists():
            continue
        with tempfile.TemporaryDirectory() as texts:
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i",
                            str(media / "video" / footage), "-t", str(SECONDS), "-vf", _filters(name, Path(texts)),
                            "-an", "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt",
                            "yuv420p", str(out)], check=True)
        print("made", out)
    links = sorted((media / "video").iterdir())
    if distractors is not None:
        links += sorted(distractors.iterdir())
    link_videos(folder, links)


def main() -> None:
    run(build, __doc__)


if __name__ == "__main__":
    main()

"""Write tiny random-weight models of every full-profile role, and a videoqa.toml that uses them.

    python -m models.testing.tiny OUTDIR
    VIDEOQA_CONFIG=OUTDIR/videoqa.toml videoqa index sample_media/
    VIDEOQA_CONFIG=OUTDIR/videoqa.toml videoqa ask "what flows down the volcano?" --json

The models have the real architectures, processors and tokenizers (trained offline in
a moment), so every loading and inference path of the full profile runs, in seconds,
on a CPU. Their outputs are random: they test code, never quality. Speech keeps the
real packaged Whisper tiny.en, so transcripts (and search) stay meaningful; the tiny
openai-whisper checkpoint is written too (``whisper/tiny-random.pt``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["make_all", "TOML"]

TOML = """\
# Tiny random-weight models for tests (python -m models.testing.tiny). Speed and code paths only.
profile = "full"
device = "cpu"
index_dir = "index"
whisper_model = "tiny.en"          # the real packaged Whisper, so transcripts mean something
# transcriber = "openai-whisper"   # or the tiny random openai-whisper checkpoint:
# transcriber_path = "whisper/tiny-random.pt"
frame_embedder_path = "clip"
describer_path = "qwen2.5-vl"
answerer_path = "qwen2.5-vl"
text_embedder_path = "qwen3-embedding"
reranker_path = "qwen3-reranker"
max_new_tokens = 16
answer_threshold = 0.0             # random reranker scores: always answer
vl_max_frames = 8
vl_max_pixels = 50176
"""


def make_all(outdir: Path) -> Path:
    """Build every tiny model into ``outdir``; returns the path of its videoqa.toml."""
    from models.testing.tiny_clip import make_tiny_clip
    from models.testing.tiny_qwen3 import make_tiny_qwen3_embedding, make_tiny_qwen3_reranker
    from models.testing.tiny_qwen_vl import make_tiny_qwen_vl
    from models.testing.tiny_whisper import make_tiny_openai_whisper

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for make in (make_tiny_clip, make_tiny_qwen_vl, make_tiny_qwen3_embedding, make_tiny_qwen3_reranker,
                 make_tiny_openai_whisper):
        make(outdir)
    toml = outdir / "videoqa.toml"
    toml.write_text(TOML)
    return toml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.testing.tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    toml = make_all(args.outdir)
    print(f"wrote tiny models and {toml} in {time.perf_counter() - t0:.1f} s")
    print(f"use them with: VIDEOQA_CONFIG={toml} videoqa index sample_media/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

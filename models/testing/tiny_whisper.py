"""A tiny random-weight openai-whisper checkpoint of the real architecture.

Real input and vocabulary sizes (80 mel bins, 1500 audio positions, 448 text positions,
the multilingual or English vocabulary, so openai-whisper's own tokenizer fits), with few
and narrow layers. Saved as openai-whisper saves its checkpoints: ``{"dims", "model_state_dict"}``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

__all__ = ["make_tiny_openai_whisper"]


def make_tiny_openai_whisper(outdir: Path, multilingual: bool = True) -> Path:
    """Write ``outdir/whisper/tiny-random.pt`` (``tiny-random.en.pt`` for English only); returns the file."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
        n_vocab=51865 if multilingual else 51864, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2,
    )
    with torch.random.fork_rng(devices=[]):  # deterministic, without touching the caller's random state
        torch.manual_seed(0)
        model = Whisper(dims)
        # openai-whisper leaves the decoder's positional embedding as torch.empty (every real
        # checkpoint overwrites it): uninitialised memory, different on every run, possibly huge.
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    folder = Path(outdir) / "whisper"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("tiny-random.pt" if multilingual else "tiny-random.en.pt")
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path

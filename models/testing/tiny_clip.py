"""A tiny random-weight open_clip model of the real CLIP architecture, written as a Hub repository is.

ViT image tower and causal text transformer as in ViT-B-32, shrunk; the text side keeps
open_clip's standard tokenizer (49408 tokens, 77 positions), which ships with the package.
The folder loads with open_clip's ``local-dir:`` schema, as a downloaded
``laion/CLIP-ViT-B-32-laion2B-s34B-b79K`` snapshot does.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["TINY_CLIP_CONFIG", "make_tiny_clip"]

# open_clip's OPENAI_DATASET_MEAN / _STD, the preprocessing of the LAION ViT-B-32 models.
_MEAN = [0.48145466, 0.4578275, 0.40821073]
_STD = [0.26862954, 0.26130258, 0.27577711]

TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": _MEAN, "std": _STD, "interpolation": "bicubic", "resize_mode": "shortest"},
}


def make_tiny_clip(outdir: Path) -> Path:
    """Write ``outdir/clip`` (``open_clip_config.json`` + ``open_clip_model.safetensors``); returns the folder."""
    import torch
    from open_clip import CLIP
    from safetensors.torch import save_file

    folder = Path(outdir) / "clip"
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):  # deterministic, without touching the caller's random state
        torch.manual_seed(0)
        model = CLIP(**TINY_CLIP_CONFIG["model_cfg"])
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG, indent=2) + "\n")
    return folder

"""Image and text vectors in one space with open_clip (ViT-B-32 trained on LAION-2B by default).

The weights are found where :class:`~models.base.LazyModel` looks (a local path, then the
Hugging Face cache) and are loaded offline in one of three layouts:

* a directory with ``open_clip_config.json`` and its weights (what the Hub repositories of
  open_clip models hold, e.g. ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``), loaded with
  open_clip's ``local-dir:`` schema;
* a weights file (``.safetensors``, ``.bin``, ``.pt``, ``.pth``), whose architecture is the part
  of the model name before ``/`` (``ViT-B-32`` of ``ViT-B-32/laion2b_s34b_b79k``), or the
  ``open_clip_config.json`` beside it;
* a directory with a weights file and no config, treated like that file.

Checkpoints are read with safetensors or ``torch.load(weights_only=True)``, never unpickled.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.base import LazyModel, resolve_dtype
from models.errors import ConfigError, ModelNotFoundError
from models.types import ModelLocation

__all__ = ["ClipFrameEmbedder", "WEIGHT_SUFFIXES"]

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
CONFIG_NAME = "open_clip_config.json"
# open_clip's own preference among the files of a model folder (factory._find_checkpoint_in_dir).
# Hub repositories also carry transformers-format weights (model.safetensors) that open_clip
# cannot load into its own classes, so only these names count as open_clip weights.
_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                 "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth")
HF_HUB_PREFIX = "hf-hub:"


def _weights_in(folder: Path) -> Path | None:
    """The open_clip weights file of a model folder, or None."""
    for name in _WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    if (folder / CONFIG_NAME).is_file():
        return None  # a Hub snapshot without open_clip weights: do not guess at model.safetensors
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return files[0] if len(files) == 1 else None


class ClipFrameEmbedder(LazyModel):
    """L2-normalised CLIP vectors of RGB frames and of texts, in the same space.

    ``model`` is ``ARCHITECTURE/PRETRAINED_TAG`` as open_clip names them
    (``ViT-B-32/laion2b_s34b_b79k``) or ``hf-hub:ORG/REPO``. Options: ``batch_size`` (images or
    texts per forward pass) and ``dtype`` (``auto``: bfloat16 on CUDA, float32 elsewhere).
    """

    role = "frame_embedder"
    backend_name = "open-clip"

    def __init__(self, model: str | None = None, *, batch_size: int = 32, dtype: str = "auto", **kw):
        super().__init__(model, **kw)
        if batch_size < 1:
            raise ConfigError(f"frame_embedder batch_size must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        self.dtype = dtype
        self._dim: int | None = None
        self._run_lock = threading.Lock()

    @property
    def architecture(self) -> str:
        """The open_clip architecture named by the model name (``ViT-B-32``), or ``""``."""
        if self.model_name.startswith(HF_HUB_PREFIX) or Path(self.model_name).expanduser().exists():
            return ""
        return self.model_name.split("/", 1)[0]

    def _hf_repo_for(self, model: str) -> str | None:
        if model.startswith(HF_HUB_PREFIX):
            return model[len(HF_HUB_PREFIX):]
        return None  # ARCH/TAG is not a repository id; see locate()

    def locate(self) -> ModelLocation:
        if self._location is None and self.hf_repo is None and not self.path and self.architecture \
                and "/" in self.model_name:
            self.hf_repo = self._tag_repo()
        return super().locate()

    def _tag_repo(self) -> str | None:
        """The Hub repository open_clip downloads a pretrained tag from (imported only for non-default tags)."""
        try:
            from open_clip.pretrained import get_pretrained_cfg
        except ImportError:
            return None
        arch, _, tag = self.model_name.partition("/")
        parts = get_pretrained_cfg(arch, tag).get("hf_hub", "").strip("/").split("/")
        return "/".join(parts[:2]) if len(parts) >= 2 else None

    def _load(self, location: ModelLocation, device: str) -> None:
        import open_clip
        import torch

        dtype = resolve_dtype(device, self.dtype)
        # open_clip's mixed precision keeps LayerNorm in float32, as OpenAI's CLIP does.
        precision = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        path = location.path
        if path.is_dir():
            weights = _weights_in(path)
            if weights is None:
                found = f"{CONFIG_NAME} but no open_clip weights" if (path / CONFIG_NAME).is_file() \
                    else f"neither {CONFIG_NAME} nor a single weights file"
                raise self._not_found(f"{path} has {found} ({', '.join(_WEIGHT_NAMES)})")
        elif path.suffix in WEIGHT_SUFFIXES:
            weights = path
        else:
            raise self._not_found(f"{path} is neither an open_clip model folder nor a weights file "
                                  f"({', '.join(WEIGHT_SUFFIXES)})")
        name = self._name_for_weights(weights)

        options: dict[str, Any] = {}
        if not name.startswith("local-dir:"):
            # The tag's preprocessing and activation (e.g. QuickGELU for OpenAI's weights) go with its weights.
            from open_clip.pretrained import get_pretrained_cfg

            tag_cfg = get_pretrained_cfg(name, self.model_name.partition("/")[2]) if "/" in self.model_name else {}
            options.update(force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                           image_mean=tag_cfg.get("mean"), image_std=tag_cfg.get("std"),
                           image_interpolation=tag_cfg.get("interpolation"),
                           image_resize_mode=tag_cfg.get("resize_mode"))
        # open_clip loads the weights itself when it would pick the same file; otherwise they are loaded
        # below into the model it builds (which it then calls randomly initialised).
        if name.startswith("local-dir:"):
            pretrained, load_weights = None, _weights_in(weights.parent) == weights
        else:
            pretrained, load_weights = str(weights), True
        with _quiet_random_init(enabled=not load_weights):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=pretrained,
                load_weights=load_weights,
                precision=precision,
                device=device,
                pretrained_image=False,  # never fetch tower weights from the network
                pretrained_text=False,
                weights_only=True,
                **options,
            )
        if not load_weights:
            open_clip.load_checkpoint(model, str(weights), strict=True, weights_only=True)
        model.eval()
        config = open_clip.get_model_config(name) or {}
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(name)
        self._device = device
        self._input_dtype = dtype
        self._dim = int(config.get("embed_dim") or model.visual.output_dim)
        log.debug("open_clip %s: %d-dimensional vectors, %s on %s", name, self._dim, precision, device)

    def _name_for_weights(self, weights: Path) -> str:
        """The open_clip model name whose architecture fits a bare weights file."""
        if (weights.parent / CONFIG_NAME).is_file():
            return "local-dir:" + str(weights.parent)
        from open_clip import get_model_config

        arch = self.architecture
        if not arch or get_model_config(arch) is None:
            raise ConfigError(
                f"frame_embedder: cannot tell the architecture of {weights}: name the model ARCHITECTURE/TAG "
                f"(e.g. ViT-B-32/laion2b_s34b_b79k; open_clip.list_models() lists architectures), not "
                f"{self.model_name!r}, or put its {CONFIG_NAME} beside it"
            )
        return arch

    def _not_found(self, problem: str) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"{self.role}: model {self.model_name!r} ({self.backend_name}) not found: {problem}. To get it: on a "
            f"connected machine: huggingface-cli download {self.hf_repo or 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K'}, "
            f"or set {self.role}_path to an open_clip model folder or weights file"
        )

    @property
    def dim(self) -> int:
        """The size of the vectors."""
        self.load()
        assert self._dim is not None
        return self._dim

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised float32 vectors of RGB uint8 images (H x W x 3), one row per image."""
        self.load()
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch
        from PIL import Image

        out = []
        with self._run_lock:
            for i in range(0, len(images), self.batch_size):
                batch = [self._preprocess(Image.fromarray(_rgb(img))) for img in images[i: i + self.batch_size]]
                out.append(self._forward(self._model.encode_image, torch.stack(batch)))
        return np.concatenate(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors of texts, in the space of the image vectors."""
        self.load()
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._run_lock:
            for i in range(0, len(texts), self.batch_size):
                out.append(self._forward(self._encode_text, self._tokenizer(list(texts[i: i + self.batch_size]))))
        return np.concatenate(out)

    def _encode_text(self, tokens):
        """``encode_text`` on the tokens up to the longest text's end token only.

        The tokenizer pads every text to the context length (77 for ViT-B-32), but the text
        tower is causal and pools at the end token, so the padding after it cannot change
        the vector: a 10-token query costs a seventh of the padded one. Models of another
        shape (custom text towers, other pooling) run as they are.
        """
        import open_clip
        import torch

        model = self._model
        pool = getattr(model, "text_pool_type", None)
        if (type(model) is not open_clip.CLIP or pool != "argmax" or getattr(model, "attn_mask", None) is None
                or tokens.ndim != 2):
            return model.encode_text(tokens)
        length = int(tokens.argmax(dim=-1).max()) + 1  # the end token has the highest id
        tokens = tokens[:, :length]
        cast = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
        x = x[range(x.shape[0]), tokens.argmax(dim=-1)]
        projection = model.text_projection
        if projection is not None:
            x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
        return x

    def _forward(self, encode, batch) -> np.ndarray:
        import torch

        batch = batch.to(self._device)
        if batch.is_floating_point():
            batch = batch.to(self._input_dtype)
        with torch.inference_mode():
            vecs = encode(batch).float()
            vecs = torch.nn.functional.normalize(vecs, dim=-1)
        return np.ascontiguousarray(vecs.cpu().numpy(), dtype=np.float32)


@contextmanager
def _quiet_random_init(enabled: bool):
    """Drop open_clip's "Model initialized randomly" warning (on the root logger) when weights follow."""
    def drop(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")

    root = logging.getLogger()
    if enabled:
        root.addFilter(drop)
    try:
        yield
    finally:
        if enabled:
            root.removeFilter(drop)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB uint8 image of shape (height, width, 3), got {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


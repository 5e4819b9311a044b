"""int8 weights for the packaged Qwen2.5 (CPU): smoothed, quantised once, stored in the model cache.

:func:`quantize_int8` smooths a Qwen2 model's transformer blocks (:func:`smooth_activations`,
SmoothQuant) and turns their linear layers into torch's dynamic int8 layers; the output layer
stays float32. Making that takes minutes for the 1.5B, so :func:`int8_model` stores the result in
the cache (:func:`save_int8`: int8 weights, per-channel scales and zero points, the smoothed
float tensors) and later loads read it (:func:`load_int8`), unless its stamp (the float weights'
files, torch's version, the smoothing and its calibration texts) says it was made from something
else. The calibration texts are the caller's (models/qwen_text.py: the answerer's and the
reranker's prompts), so this module knows nothing of either role.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from filelock import FileLock

from models.errors import ConfigError

__all__ = ["QUANTIZATIONS", "SMOOTHING_ALPHA", "resolve_quantization", "smooth_activations", "quantize_int8",
           "int8_cache_path", "save_int8", "load_int8", "int8_model"]

log = logging.getLogger(__name__)

QUANTIZATIONS = ("none", "int8")
SMOOTHING_ALPHA = 0.5
_FILE, _STAMP = "int8.safetensors", "int8.json"
# What the stamp compares besides the weights: files of the folder that change the model built from it.
_CONFIG_FILES = ("config.json", "generation_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def resolve_quantization(device: str, quantization: str = "none") -> str:
    """A checked quantization: none (the weights as loaded) or int8 (torch's dynamic quantisation, CPU only)."""
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"invalid quantization {quantization!r}, expected one of: {', '.join(QUANTIZATIONS)}")
    if quantization == "int8" and device.startswith("cuda"):
        raise ConfigError("quantization 'int8' runs on the CPU only; use 'none' with device cuda")
    return quantization


def _quiet_torch_quantization() -> None:
    """Silence the two deprecation warnings torch 2.14 gives every use of its eager int8 layers (they
    point at torchao, not installed here), and nothing else. Process-wide, once: a filter set in a
    ``catch_warnings`` block would hide every other thread's warnings meanwhile."""
    warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other "
                            r"quantized tensor creation functions", category=UserWarning)


def smooth_activations(model: Any, tokenizer: Any, texts: Sequence[str], alpha: float = SMOOTHING_ALPHA) -> bool:
    """SmoothQuant (Xiao et al., 2023) on a Qwen2 model, in place: the same function, with the
    inputs of the quantised layers made easier to quantise.

    A few input channels of each block's linear layers are far larger than the rest, and an int8
    layer quantises its whole input with one scale, so the small channels lose most of their
    precision. Each input channel j is divided by s_j = max|x_j|^alpha / max|w_j|^(1-alpha)
    (measured on ``texts``) and the weights that read it are multiplied by s_j: for q/k/v and
    gate/up the division is folded into the RMS norm before them, for down_proj into up_proj's
    rows. In float32 the outputs do not change (a test checks it). Returns False, changing
    nothing, for a model without Qwen2's layer names.
    """
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    names = ("input_layernorm", "post_attention_layernorm", "self_attn", "mlp")
    if not layers or not all(hasattr(layer, n) for layer in layers for n in names):
        return False
    largest: dict[Any, Any] = {}

    def record(module: Any, args: tuple) -> None:
        x = args[0].detach().reshape(-1, args[0].shape[-1]).abs().amax(0)
        largest[module] = torch.maximum(largest[module], x) if module in largest else x

    watched = [m for layer in layers for m in (layer.self_attn.q_proj, layer.mlp.gate_proj, layer.mlp.down_proj)]
    hooks = [m.register_forward_pre_hook(record) for m in watched]
    try:
        with torch.inference_mode():
            for text in texts:
                model(**tokenizer(text, return_tensors="pt").to(model.device))
    finally:
        for hook in hooks:
            hook.remove()

    def scales(x_max: Any, weights: list[Any]) -> Any:
        w_max = torch.stack([w.abs().amax(0) for w in weights]).amax(0)
        return (x_max.clamp(min=1e-5).pow(alpha) / w_max.clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)

    with torch.no_grad():
        for layer in layers:
            attn, mlp = layer.self_attn, layer.mlp
            for norm, linears in ((layer.input_layernorm, (attn.q_proj, attn.k_proj, attn.v_proj)),
                                  (layer.post_attention_layernorm, (mlp.gate_proj, mlp.up_proj))):
                s = scales(largest[linears[0]], [lin.weight for lin in linears])
                norm.weight.div_(s)
                for lin in linears:
                    lin.weight.mul_(s)
            s = scales(largest[mlp.down_proj], [mlp.down_proj.weight])
            mlp.up_proj.weight.div_(s[:, None])
            mlp.down_proj.weight.mul_(s)
    return True


def quantize_int8(model: Any, tokenizer: Any, texts: Sequence[str]) -> Any:
    """Every linear layer of the transformer blocks to int8 weights (per output channel), in place.

    torch's dynamic quantisation: weights stored as int8 with a scale per output row, each
    layer's input quantised on the fly with one scale, the product accumulated in int32
    (fbgemm). On 2 CPU cores a prompt is read in about half the float32 time
    (docs/BENCHMARKS.md). The weights are first smoothed (:func:`smooth_activations`, calibrated
    on ``texts``): without it the answers lost accuracy (docs/EVALUATION.md). The output layer
    (``lm_head``) stays float32: the probabilities the decline gate and the reranker read come
    from it.
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    _quiet_torch_quantization()
    smooth_activations(model, tokenizer, texts)
    spec = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name != "lm_head"}
    return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def _stamp(folder: Path, texts: Sequence[str]) -> dict:
    """What a stored int8 model was made from: the folder's weights and configuration files, torch,
    and the smoothing (its strength and the very texts it was calibrated on)."""
    import torch

    files = sorted(p for p in folder.iterdir() if p.suffix in _WEIGHT_SUFFIXES or p.name in _CONFIG_FILES)
    return {"source": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files], "folder": str(folder),
            "torch": torch.__version__, "alpha": SMOOTHING_ALPHA,
            "calibration": hashlib.sha256("\n".join(texts).encode()).hexdigest()}


def int8_cache_path(folder: Path, cache_dir: Path) -> Path:
    """Where the int8 model made from a float32 folder is stored."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / "int8" / f"{folder.name}-{digest}"


def save_int8(model: Any, target: Path, stamp: dict) -> None:
    """A quantised model into ``target``, atomically: each int8 layer's int8 weights, scales, zero
    points and bias, and every float tensor (the smoothed norms among them; a tied output layer once)."""
    from safetensors.torch import save_file
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    tensors: dict[str, Any] = {}
    layers: dict[str, list] = {}
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            weight, bias = module.weight(), module.bias()
            tensors[f"{name}.int8"] = weight.int_repr().contiguous()
            tensors[f"{name}.scales"] = weight.q_per_channel_scales().contiguous()
            tensors[f"{name}.zero_points"] = weight.q_per_channel_zero_points().contiguous()
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach().contiguous()
            layers[name] = [module.in_features, module.out_features, bias is not None]
    seen: set[int] = set()
    for key, value in model.state_dict().items():
        if key.rsplit(".", 1)[0] in layers or "._packed_params." in key or value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        tensors[key] = value.detach().contiguous()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        save_file(tensors, str(tmp / _FILE))
        (tmp / _STAMP).write_text(json.dumps({**stamp, "layers": layers}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # what a failed write left


def load_int8(folder: Path, stored: Path, texts: Sequence[str]) -> Any | None:
    """The int8 model stored from ``folder``, or None (with the reason logged) when there is none,
    it was made from other weights, by another torch or with other smoothing, or it cannot be read.

    Built on the meta device, so no float32 copy of the quantised layers is ever made; the folder's
    generation settings come with it, as with a model loaded from the folder itself."""
    if not (stored / _STAMP).is_file():
        return None
    try:
        stamp = json.loads((stored / _STAMP).read_text())
        layers = stamp.pop("layers")
        if stamp != _stamp(folder, texts):
            log.info("%s: made from other weights, torch or calibration; made again", stored)
            return None
        model = _build(folder, stored, layers)
    except Exception as exc:  # a truncated or damaged store is made again, not a failed load
        log.warning("%s: cannot be read (%s); made again", stored, exc)
        return None
    if model is None:
        log.warning("%s: some weights were missing from it; made again", stored)
    return model


def _build(folder: Path, stored: Path, layers: dict[str, list]) -> Any | None:
    import torch
    from safetensors.torch import load_file
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    tensors = load_file(str(stored / _FILE))
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    parts = {name: [tensors.pop(f"{name}.{part}", None) for part in ("int8", "scales", "zero_points", "bias")]
             for name in layers}
    model.load_state_dict(tensors, strict=False, assign=True)  # the float tensors; the int8 layers next

    def layer(name: str) -> Any:
        n_in, n_out, has_bias = layers[name]
        int8, scales, zero_points, bias = parts[name]
        # made at 1 x 1 (its constructor packs a zero weight of its own size), then given the stored weight
        made = Int8Linear(1, 1, bias_=has_bias, dtype=torch.qint8)
        made.in_features, made.out_features = n_in, n_out
        made.set_weight_bias(torch._make_per_channel_quantized_tensor(int8, scales, zero_points, 0), bias)
        return made

    _quiet_torch_quantization()
    # packing a weight for fbgemm is most of a read, and torch runs it outside the GIL: one thread per core
    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        for name, made in zip(layers, pool.map(layer, layers)):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, made)
    if getattr(config, "tie_word_embeddings", False):
        model.lm_head.weight = model.get_input_embeddings().weight
    rotary = model.model.rotary_emb  # its buffers are not stored: made again on the CPU
    model.model.rotary_emb = type(rotary)(config=config)
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(str(folder), local_files_only=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        return None
    return model.eval()


def int8_model(folder: Path, tokenizer: Any, texts: Sequence[str], cache_dir: Path | None) -> Any:
    """The int8 model of a float32 folder: read from ``cache_dir`` when stored there from the same
    weights, else made (quantised after smoothing on ``texts``) and stored for the next load. A store
    that cannot be written (a read-only or full cache) leaves the model made, with a warning."""
    import torch
    from transformers import AutoModelForCausalLM

    def made() -> Any:
        weights = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        return quantize_int8(weights.eval(), tokenizer, texts)

    if cache_dir is None:
        return made()
    stored = int8_cache_path(folder, cache_dir)
    try:
        stored.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(stored) + ".lock")
        lock.acquire()
    except OSError as exc:
        log.warning("%s: cannot be used (%s); int8 weights made for this process only", stored, exc)
        return made()
    try:
        model = load_int8(folder, stored, texts)
        if model is None:
            model = made()
            try:
                save_int8(model, stored, _stamp(folder, texts))
            except OSError as exc:
                log.warning("%s: the int8 weights cannot be stored (%s); they are made again at the next load",
                            stored, exc)
        return model
    finally:
        lock.release()

